//! The document aggregate: which command needs which permission, which command is decided how
//! (the longer decisions are methods in `decide.rs`), and how each event is applied.

use super::*;

impl Aggregate for Document {
    const KIND: &'static str = "document";
    type Command = DocumentCommand;
    type Event = DocumentEvent;
    type Error = DocumentError;

    fn authorize(&self, command: &Self::Command, ctx: &Ctx<'_>) -> Result<(), Self::Error> {
        let schema = &*command.schema;
        let settings = &schema.compiled.definition.settings;
        let actor = ctx.actor;
        match &command.change {
            DocumentChange::SyncGroups | DocumentChange::Resume { .. } if actor.is_system() => {
                self.exists()
            }
            DocumentChange::SyncGroups | DocumentChange::Resume { .. } => {
                Err(DocumentError::NoPermission("Vigil itself".into()))
            }
            DocumentChange::AddComment { .. } => {
                let permission = format!("CREATE_DOCUMENT_COMMENTS:{}", schema.name);
                self.reachable(actor, schema, &[&permission])?;
                if self.owned_by(actor) || permitted(actor, self, &permission) {
                    Ok(())
                } else {
                    Err(DocumentError::NoPermission(permission))
                }
            }
            DocumentChange::UpdateComment { id, .. } | DocumentChange::RemoveComment { id, .. } => {
                let permission = format!("UPDATE_DOCUMENT_COMMENTS:{}", schema.name);
                self.reachable(actor, schema, &[&permission])?;
                let writer = self
                    .comments
                    .get(id)
                    .ok_or(DocumentError::UnknownComment(*id))?;
                // Anyone may change their own comment; others need the permission, which only
                // removal takes through a group role too.
                let own = writer.is_some_and(|w| actor.is_user(w));
                let allowed = match command.change {
                    DocumentChange::RemoveComment { .. } => permitted(actor, self, &permission),
                    _ => actor.allows(&permission),
                };
                if own || allowed {
                    Ok(())
                } else {
                    Err(DocumentError::NoPermission(permission))
                }
            }
            DocumentChange::Create { .. } => {
                let permission = format!("CREATE_DOCUMENTS:{}", schema.name);
                if settings.create_mode == CreateMode::AllUsers || actor.allows(&permission) {
                    Ok(())
                } else {
                    Err(DocumentError::NoPermission(permission))
                }
            }
            DocumentChange::LinkGroups { .. }
            | DocumentChange::UnlinkGroups { .. }
            | DocumentChange::LinkUsers { .. }
            | DocumentChange::UnlinkUsers { .. } => {
                let permission = schema.access_permission();
                self.reachable(actor, schema, &[&permission])?;
                if actor.allows(&permission) {
                    Ok(())
                } else {
                    Err(DocumentError::NoPermission(permission))
                }
            }
            DocumentChange::Update { .. }
            | DocumentChange::DeleteFields { .. }
            | DocumentChange::AppendToArray { .. }
            | DocumentChange::UpdateInArray { .. }
            | DocumentChange::RemoveFromArray { .. } => {
                let permission = format!("UPDATE_DOCUMENTS:{}", schema.name);
                self.reachable(actor, schema, &[&permission])?;
                if access(actor, self, &settings.update_mode, &permission) {
                    Ok(())
                } else {
                    Err(DocumentError::NoPermission(permission))
                }
            }
            // Which transition, and so which permission, is known once it is chosen.
            // The update permission, or the one for this transition, lets a caller reach it.
            DocumentChange::Transition { choice, .. } => {
                let update = format!("UPDATE_DOCUMENTS:{}", schema.name);
                let transition = transition_permission(schema, choice);
                self.reachable(actor, schema, &[&update, &transition])
            }
            DocumentChange::Delete => {
                let permission = format!("DELETE_DOCUMENTS:{}", schema.name);
                self.reachable(actor, schema, &[&permission])?;
                if access(actor, self, &settings.delete_mode, &permission) {
                    Ok(())
                } else {
                    Err(DocumentError::NoPermission(permission))
                }
            }
        }
    }

    fn handle(
        &self,
        command: &Self::Command,
        ctx: &Ctx<'_>,
    ) -> Result<Vec<Self::Event>, Self::Error> {
        if self.lock.is_some() && command.change.waits_for_lock() {
            return Err(DocumentError::Locked);
        }
        if command.seen.is_some_and(|seen| seen != self.events) {
            return Err(DocumentError::Stale);
        }
        let DocumentCommand {
            schema, lookups, ..
        } = command;
        match &command.change {
            DocumentChange::Resume { lock } => match &self.lock {
                Some(held) if held.event == *lock && !self.deleted => {
                    if ctx.now < held.resume_at {
                        return Err(DocumentError::NotDue);
                    }
                    self.resumed(held, schema, lookups, ctx)
                }
                // Resumed already, or gone.
                _ => Ok(vec![]),
            },
            DocumentChange::AddComment { id, text } => self.comment_added(schema, *id, text, ctx),
            DocumentChange::UpdateComment { id, text, .. } => {
                Ok(vec![DocumentEvent::CommentUpdated(CommentUpdated {
                    comment_id: *id,
                    text: Personal(comment_text(text)?),
                })])
            }
            DocumentChange::RemoveComment { id, .. } => {
                Ok(vec![DocumentEvent::CommentRemoved(CommentRemoved {
                    comment_id: *id,
                    comment_count: self.comment_count().saturating_sub(1),
                })])
            }
            DocumentChange::SyncGroups => self.groups_synced(schema, lookups),
            DocumentChange::Create { data } => self.created(schema, data, lookups, ctx),
            DocumentChange::Update { changes } => {
                let mut data = self.data.clone();
                for (field, value) in changes {
                    if value.is_null() {
                        data.remove(field);
                    } else {
                        data.insert(field.clone(), value.clone());
                    }
                }
                self.updated(schema, data)
            }
            DocumentChange::DeleteFields { fields } => {
                let mut data = self.data.clone();
                for field in fields {
                    check_path(field)?;
                    remove_path(&mut data, field);
                }
                self.updated(schema, data)
            }
            DocumentChange::Transition { choice, data } => {
                self.transitioned(schema, choice, data, lookups, ctx)
            }
            DocumentChange::Delete => Ok(vec![DocumentEvent::Deleted(DocumentDeleted {})]),
            DocumentChange::LinkGroups { group_ids, .. } => {
                let mut groups = self.group_ids.clone();
                for group in group_ids {
                    add_id(&mut groups, *group);
                }
                Ok(self.groups_now(groups))
            }
            DocumentChange::UnlinkGroups { group_ids, .. } => {
                let groups = match group_ids {
                    Some(gone) => self
                        .group_ids
                        .iter()
                        .filter(|g| !gone.contains(g))
                        .copied()
                        .collect(),
                    None => Vec::new(),
                };
                Ok(self.groups_now(groups))
            }
            DocumentChange::LinkUsers { user_ids } => self.users_linked(schema, user_ids, lookups),
            DocumentChange::UnlinkUsers { user_ids, .. } => {
                let users: Vec<Id> = match user_ids {
                    Some(gone) => self
                        .user_ids
                        .iter()
                        .filter(|u| !gone.contains(u))
                        .copied()
                        .collect(),
                    None => Vec::new(),
                };
                if users == self.user_ids {
                    return Ok(vec![]);
                }
                Ok(vec![DocumentEvent::UsersChanged(LinksChanged {
                    ids: users,
                })])
            }
            DocumentChange::AppendToArray { field, id, object } => {
                self.appended_to_array(schema, field, *id, object)
            }
            DocumentChange::UpdateInArray { field, id, changes } => {
                self.updated_in_array(schema, field, *id, changes)
            }
            DocumentChange::RemoveFromArray { field, id } => {
                self.removed_from_array(schema, field, *id)
            }
        }
    }

    fn apply(&mut self, event: &Self::Event) {
        self.events += 1;
        match event {
            DocumentEvent::Created(e) => {
                self.created = true;
                self.schema_id = Some(e.schema_id);
                self.creator_id = e.creator_id;
                self.status = e.status.clone();
                self.data = e.data.0.clone();
                self.user_ids = e.user_ids.clone();
                self.group_ids = e.group_ids.clone();
            }
            DocumentEvent::Updated(e) => self.data = e.data.0.clone(),
            DocumentEvent::Transitioned(e) => {
                self.status = e.to_status.clone();
                self.data = e.data.0.clone();
                self.user_ids = e.user_ids.clone();
                self.group_ids = e.group_ids.clone();
            }
            DocumentEvent::Deleted(_) => self.deleted = true,
            DocumentEvent::TaskRequested(_) => {}
            DocumentEvent::UsersChanged(e) => self.user_ids = e.ids.clone(),
            DocumentEvent::GroupsChanged(e) => self.group_ids = e.ids.clone(),
            DocumentEvent::Locked(e) => {
                self.lock = Some(Lock {
                    event: self.events,
                    since: e.since,
                    resume_at: e.resume_at,
                    transition_id: e.transition_id,
                    next_action: usize::try_from(e.next_action).unwrap_or(usize::MAX),
                    after_actions: e.after_actions.0.clone(),
                });
            }
            DocumentEvent::Resumed(e) => {
                self.lock = None;
                self.data = e.data.0.clone();
                self.user_ids = e.user_ids.clone();
                self.group_ids = e.group_ids.clone();
            }
            DocumentEvent::CommentAdded(e) => {
                self.comments.insert(e.comment_id, e.creator_id);
            }
            DocumentEvent::CommentUpdated(_) => {}
            DocumentEvent::CommentRemoved(e) => {
                self.comments.remove(&e.comment_id);
            }
        }
    }
}
