//! Who may reach a document: its access modes, its links and groups, and the permissions that stand in for them.

use super::*;

/// The id of the document a command is run on: its stream's key.
pub(super) fn document_id(ctx: &Ctx<'_>) -> Result<Id, DocumentError> {
    ctx.stream
        .id()
        .ok_or_else(|| DocumentError::NotADocumentStream(ctx.stream.clone()))
}

/// How the actor relates to a document, for the relational access modes.
pub(super) fn relates(actor: &Actor, document: &Document, relation: Relation) -> bool {
    match relation {
        Relation::Creator => document.creator_id.is_some_and(|c| actor.is_user(c)),
        Relation::LinkedUsers => document.user_ids.iter().any(|u| actor.is_user(*u)),
        Relation::LinkedGroupStaff => document.group_ids.iter().any(|g| actor.is_staff_of(*g)),
        Relation::LinkedGroupPatients => {
            let patient: BTreeSet<Id> = actor.patient_groups().collect();
            document.group_ids.iter().any(|g| patient.contains(g))
        }
    }
}

/// Whether the actor holds `permission` globally or through a group role of one of the
/// document's groups.
pub(super) fn permitted(actor: &Actor, document: &Document, permission: &str) -> bool {
    actor.allows(permission)
        || document
            .group_ids
            .iter()
            .any(|g| actor.allows_in(*g, permission))
}

/// Whether `mode` lets the actor at the document (permission holders always may).
pub(super) fn access(
    actor: &Actor,
    document: &Document,
    mode: &AccessMode,
    permission: &str,
) -> bool {
    permitted(actor, document, permission)
        || match mode {
            AccessMode::PermissionRequired => false,
            AccessMode::AllUsers => true,
            AccessMode::Relational(relations) => {
                relations.iter().any(|r| relates(actor, document, *r))
            }
        }
}

impl Document {
    pub(super) fn exists(&self) -> Result<(), DocumentError> {
        if self.created && !self.deleted {
            Ok(())
        } else {
            Err(DocumentError::NotFound)
        }
    }

    /// Whether the actor may read the document under its schema's settings.
    pub fn readable_by(&self, actor: &Actor, schema: &SchemaSnapshot) -> bool {
        let settings = &schema.compiled.definition.settings;
        access(
            actor,
            self,
            &settings.read_mode,
            &format!("VIEW_DOCUMENTS:{}", schema.name),
        )
    }

    /// Whether the actor may read the document's comments: their own document's, or with
    /// `VIEW_DOCUMENT_COMMENTS` (globally or through a group role of one of its groups).
    pub fn comments_readable_by(
        &self,
        actor: &Actor,
        schema: &SchemaSnapshot,
    ) -> Result<(), DocumentError> {
        let permission = format!("VIEW_DOCUMENT_COMMENTS:{}", schema.name);
        self.reachable(actor, schema, &[&permission])?;
        if self.owned_by(actor) || permitted(actor, self, &permission) {
            Ok(())
        } else {
            Err(DocumentError::NoPermission(permission))
        }
    }

    pub(super) fn updatable_by(&self, actor: &Actor, schema: &SchemaSnapshot) -> bool {
        let settings = &schema.compiled.definition.settings;
        access(
            actor,
            self,
            &settings.update_mode,
            &format!("UPDATE_DOCUMENTS:{}", schema.name),
        )
    }

    /// A document that exists and that the actor may read (or holds one of `permissions` for), in a
    /// schema that is enabled: one the actor cannot see is not found.
    pub(super) fn reachable(
        &self,
        actor: &Actor,
        schema: &SchemaSnapshot,
        permissions: &[&str],
    ) -> Result<(), DocumentError> {
        self.exists()?;
        if self.schema_id != Some(schema.id) {
            return Err(DocumentError::NotFound);
        }
        let permitted_any = permissions.iter().any(|p| permitted(actor, self, p));
        if !self.readable_by(actor, schema) && !permitted_any {
            return Err(DocumentError::NotFound);
        }
        if schema.disabled {
            return Err(DocumentError::SchemaDisabled);
        }
        Ok(())
    }
}

/// The permission that allows the transition a request chooses, whatever the modes say.
pub(super) fn transition_permission(schema: &SchemaSnapshot, choice: &TransitionChoice) -> String {
    let name = match choice {
        TransitionChoice::Name(name) => Some(name.as_str()),
        TransitionChoice::Id(id) => schema
            .compiled
            .definition
            .transitions
            .iter()
            .find(|t| t.id == id.to_string())
            .and_then(|t| t.name.as_deref()),
    };
    format!(
        "TRANSITION_DOCUMENTS:{}:{}",
        schema.name,
        name.unwrap_or_default()
    )
}
