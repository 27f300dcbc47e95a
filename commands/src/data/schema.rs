//! Data-service schemas: unique names (a schema is addressed by id or by name), and finding the
//! schema a path names.

use serde_json::{Map, Value};
use vigil_domain::aggregate::Aggregate;
use vigil_domain::commit::CommandMeta;
use vigil_domain::data::schema::{Schema, SchemaCommand, SchemaError, SchemaRef};
use vigil_domain::id::{Id, StreamId};
use vigil_domain::log::LogError;
use vigil_domain::reservation::{self, Reservation};

use crate::flow::{CommandBus, CommandError, Outcome};
use crate::ids::IdGenerator;
use crate::unique::Unique;

const NAMESPACE: &str = "schema";

fn name_claim(name: &str) -> Unique {
    Unique {
        namespace: NAMESPACE,
        value: name.to_owned(),
    }
}

/// A new schema's name, description and settings (by wire name), as given.
#[derive(Debug, Clone, Default)]
pub struct SchemaForm {
    pub name: Option<String>,
    pub description: Option<String>,
    pub settings: Map<String, Value>,
}

/// Creates a schema under a name no other schema has.
pub async fn create(
    bus: &CommandBus,
    ids: &IdGenerator,
    form: SchemaForm,
    meta: &CommandMeta,
) -> Result<(Id, Outcome), CommandError<SchemaError>> {
    let id = ids.next();
    let name = form.name.unwrap_or_default();
    let command = SchemaCommand::Create {
        name: name.clone(),
        description: form.description.unwrap_or_default(),
        settings: form.settings,
    };
    let outcome = bus
        .execute_unique::<Schema>(
            &StreamId::of(Schema::KIND, id),
            &command,
            &[name_claim(&name)],
            meta,
        )
        .await?;
    Ok((id, outcome))
}

/// Changes the given root attributes; a new name must be free, and frees the old one.
pub async fn update(
    bus: &CommandBus,
    schema_id: Id,
    form: SchemaForm,
    meta: &CommandMeta,
) -> Result<Outcome, CommandError<SchemaError>> {
    let stream = StreamId::of(Schema::KIND, schema_id);
    let (schema, _) = bus.load::<Schema>(&stream).await?;
    let old_name = schema.name;
    let command = SchemaCommand::Update {
        name: form.name.clone(),
        description: form.description,
        settings: form.settings,
    };
    let renamed = form.name.filter(|name| *name != old_name);
    let Some(new_name) = renamed else {
        return bus.execute::<Schema>(&stream, &command, meta).await;
    };
    let outcome = bus
        .execute_unique::<Schema>(&stream, &command, &[name_claim(&new_name)], meta)
        .await?;
    if outcome.appended {
        let meta = meta.step("release-name");
        bus.release::<SchemaError>(&stream, &name_claim(&old_name), &meta)
            .await?;
    }
    Ok(outcome)
}

/// Deletes a disabled schema and frees its name.
pub async fn delete(
    bus: &CommandBus,
    schema_id: Id,
    meta: &CommandMeta,
) -> Result<Outcome, CommandError<SchemaError>> {
    let stream = StreamId::of(Schema::KIND, schema_id);
    let (schema, _) = bus.load::<Schema>(&stream).await?;
    let outcome = bus
        .execute::<Schema>(&stream, &SchemaCommand::Delete, meta)
        .await?;
    if outcome.appended {
        let meta = meta.step("release-name");
        bus.release::<SchemaError>(&stream, &name_claim(&schema.name), &meta)
            .await?;
    }
    Ok(outcome)
}

/// The schema `schema` names, if there is one.
pub async fn find(bus: &CommandBus, schema: &SchemaRef) -> Result<Option<(Id, Schema)>, LogError> {
    Ok(find_loaded(bus, schema)
        .await?
        .map(|(id, schema, _)| (id, schema)))
}

/// [`find`], with the version of the schema's stream it found.
pub async fn find_loaded(
    bus: &CommandBus,
    schema: &SchemaRef,
) -> Result<Option<(Id, Schema, u64)>, LogError> {
    let stream = match schema {
        SchemaRef::Id(id) => StreamId::of(Schema::KIND, *id),
        SchemaRef::Name(name) => {
            let (claim, _) = bus
                .load::<Reservation>(&reservation::stream(NAMESPACE, name))
                .await?;
            match claim.holder {
                Some(holder) => holder.owner,
                None => return Ok(None),
            }
        }
    };
    let Some(id) = stream.id() else {
        return Ok(None);
    };
    let (found, head) = bus.load::<Schema>(&stream).await?;
    // A claim whose command never committed names a schema without that name.
    let named = match schema {
        SchemaRef::Id(_) => true,
        SchemaRef::Name(name) => found.name == *name,
    };
    let exists = found.created && !found.deleted && named;
    Ok(exists.then(|| (id, found, head.map_or(0, |h| h.version))))
}
