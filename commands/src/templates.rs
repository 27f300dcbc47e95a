//! Templates (v2): unique names (a template is addressed by id or by name).

use vigil_domain::aggregate::Aggregate;
use vigil_domain::commit::CommandMeta;
use vigil_domain::id::{Id, StreamId};
use vigil_domain::log::LogError;
use vigil_domain::reservation::{self, Reservation};
use vigil_domain::templates::{Template, TemplateAttributes, TemplateCommand, TemplateError};

use crate::flow::{CommandBus, CommandError, Outcome};
use crate::ids::IdGenerator;
use crate::unique::Unique;

const NAMESPACE: &str = "template";

fn name_claim(name: &str) -> Unique {
    Unique {
        namespace: NAMESPACE,
        value: name.to_owned(),
    }
}

/// Creates a template under a name no other template has.
pub async fn create(
    bus: &CommandBus,
    ids: &IdGenerator,
    attributes: TemplateAttributes,
    meta: &CommandMeta,
) -> Result<(Id, Outcome), CommandError<TemplateError>> {
    let id = ids.next();
    let claim = name_claim(&attributes.name);
    let command = TemplateCommand::Create(attributes);
    let outcome = bus
        .execute_unique::<Template>(&StreamId::of(Template::KIND, id), &command, &[claim], meta)
        .await?;
    Ok((id, outcome))
}

/// Replaces template `id`'s attributes; a new name must be free, and frees the old one.
pub async fn update(
    bus: &CommandBus,
    id: Id,
    attributes: TemplateAttributes,
    meta: &CommandMeta,
) -> Result<Outcome, CommandError<TemplateError>> {
    let stream = StreamId::of(Template::KIND, id);
    let (template, _) = bus.load::<Template>(&stream).await?;
    let Some(current) = template.attributes else {
        return Err(CommandError::Domain(TemplateError::Unknown));
    };
    let renamed = (attributes.name != current.name).then(|| attributes.name.clone());
    let command = TemplateCommand::Update(attributes);
    let Some(new_name) = renamed else {
        return bus.execute::<Template>(&stream, &command, meta).await;
    };
    let outcome = bus
        .execute_unique::<Template>(&stream, &command, &[name_claim(&new_name)], meta)
        .await?;
    if outcome.appended {
        let meta = meta.step("release-name");
        bus.release::<TemplateError>(&stream, &name_claim(&current.name), &meta)
            .await?;
    }
    Ok(outcome)
}

/// Deletes template `id` and frees its name.
pub async fn delete(
    bus: &CommandBus,
    id: Id,
    meta: &CommandMeta,
) -> Result<Outcome, CommandError<TemplateError>> {
    let stream = StreamId::of(Template::KIND, id);
    let (template, _) = bus.load::<Template>(&stream).await?;
    let outcome = bus
        .execute::<Template>(&stream, &TemplateCommand::Delete, meta)
        .await?;
    if let (true, Some(attributes)) = (outcome.appended, template.attributes) {
        let meta = meta.step("release-name");
        bus.release::<TemplateError>(&stream, &name_claim(&attributes.name), &meta)
            .await?;
    }
    Ok(outcome)
}

/// The template with id or name `id_or_name` (an id first: a name can look like one), if
/// there is one, with its attributes.
pub async fn find(
    bus: &CommandBus,
    id_or_name: &str,
) -> Result<Option<(Id, TemplateAttributes)>, LogError> {
    if let Ok(id) = id_or_name.parse::<Id>() {
        let (template, _) = bus
            .load::<Template>(&StreamId::of(Template::KIND, id))
            .await?;
        if let Some(attributes) = template.attributes {
            return Ok(Some((id, attributes)));
        }
    }
    let (claim, _) = bus
        .load::<Reservation>(&reservation::stream(NAMESPACE, id_or_name))
        .await?;
    let Some(id) = claim.holder.and_then(|holder| holder.owner.id()) else {
        return Ok(None);
    };
    let (template, _) = bus
        .load::<Template>(&StreamId::of(Template::KIND, id))
        .await?;
    // A claim whose command never committed names a template without that name.
    Ok(template
        .attributes
        .filter(|attributes| attributes.name == id_or_name)
        .map(|attributes| (id, attributes)))
}
