//! The document aggregate: how each command is decided and each event applied.

use super::*;

impl Aggregate for Document {
    const KIND: &'static str = "document";
    type Command = DocumentCommand;
    type Event = DocumentEvent;
    type Error = DocumentError;

    fn authorize(&self, command: &Self::Command, ctx: &Ctx<'_>) -> Result<(), Self::Error> {
        let schema = command.schema();
        let settings = &schema.compiled.definition.settings;
        let actor = ctx.actor;
        match command {
            DocumentCommand::Guarded { command, .. } => self.authorize(command, ctx),
            DocumentCommand::SyncGroups { .. } | DocumentCommand::Resume { .. }
                if actor.is_system() =>
            {
                self.exists()
            }
            DocumentCommand::SyncGroups { .. } | DocumentCommand::Resume { .. } => {
                Err(DocumentError::NoPermission("Vigil itself".into()))
            }
            DocumentCommand::AddComment { .. } => {
                let permission = format!("CREATE_DOCUMENT_COMMENTS:{}", schema.name);
                self.reachable(actor, schema, &[&permission])?;
                if self.owned_by(actor) || permitted(actor, self, &permission) {
                    Ok(())
                } else {
                    Err(DocumentError::NoPermission(permission))
                }
            }
            DocumentCommand::UpdateComment { id, .. }
            | DocumentCommand::RemoveComment { id, .. } => {
                let permission = format!("UPDATE_DOCUMENT_COMMENTS:{}", schema.name);
                self.reachable(actor, schema, &[&permission])?;
                let writer = self
                    .comments
                    .get(id)
                    .ok_or(DocumentError::UnknownComment(*id))?;
                // Anyone may change their own comment; others need the permission, which only
                // removal takes through a group role too.
                let own = writer.is_some_and(|w| actor.is_user(w));
                let allowed = match command {
                    DocumentCommand::RemoveComment { .. } => permitted(actor, self, &permission),
                    _ => actor.allows(&permission),
                };
                if own || allowed {
                    Ok(())
                } else {
                    Err(DocumentError::NoPermission(permission))
                }
            }
            DocumentCommand::Create { .. } => {
                let permission = format!("CREATE_DOCUMENTS:{}", schema.name);
                if settings.create_mode == CreateMode::AllUsers || actor.allows(&permission) {
                    Ok(())
                } else {
                    Err(DocumentError::NoPermission(permission))
                }
            }
            DocumentCommand::LinkGroups { .. }
            | DocumentCommand::UnlinkGroups { .. }
            | DocumentCommand::LinkUsers { .. }
            | DocumentCommand::UnlinkUsers { .. } => {
                // Global only: a group role cannot hand out access to documents.
                let permission = format!("UPDATE_ACCESS_TO_DOCUMENT:{}", schema.name);
                self.reachable(actor, schema, &[&permission])?;
                if actor.allows(&permission) {
                    Ok(())
                } else {
                    Err(DocumentError::NoPermission(permission))
                }
            }
            DocumentCommand::Update { .. }
            | DocumentCommand::DeleteFields { .. }
            | DocumentCommand::AppendToArray { .. }
            | DocumentCommand::UpdateInArray { .. }
            | DocumentCommand::RemoveFromArray { .. } => {
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
            DocumentCommand::Transition { choice, .. } => {
                let update = format!("UPDATE_DOCUMENTS:{}", schema.name);
                let transition = transition_permission(schema, choice);
                self.reachable(actor, schema, &[&update, &transition])
            }
            DocumentCommand::Delete { .. } => {
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
        if self.lock.is_some() && command.waits_for_lock() {
            return Err(DocumentError::Locked);
        }
        match command {
            DocumentCommand::Guarded { seen, .. } if *seen != self.events => {
                Err(DocumentError::Stale)
            }
            DocumentCommand::Resume {
                schema,
                lookups,
                lock,
            } => match &self.lock {
                Some(held) if held.event == *lock && !self.deleted => {
                    if ctx.now < held.resume_at {
                        return Err(DocumentError::NotDue);
                    }
                    self.resumed(held, schema, lookups, ctx)
                }
                // Resumed already, or gone.
                _ => Ok(vec![]),
            },
            DocumentCommand::AddComment { schema, id, text } => {
                Ok(vec![DocumentEvent::CommentAdded(CommentAdded {
                    comment_id: *id,
                    schema_id: schema.id,
                    creator_id: ctx.actor.record().user_id,
                    text: Personal(comment_text(text)?),
                    comment_count: self.comment_count().saturating_add(1),
                })])
            }
            DocumentCommand::UpdateComment { id, text, .. } => {
                Ok(vec![DocumentEvent::CommentUpdated(CommentUpdated {
                    comment_id: *id,
                    text: Personal(comment_text(text)?),
                })])
            }
            DocumentCommand::RemoveComment { id, .. } => {
                Ok(vec![DocumentEvent::CommentRemoved(CommentRemoved {
                    comment_id: *id,
                    comment_count: self.comment_count().saturating_sub(1),
                })])
            }
            DocumentCommand::Guarded { command, .. } => self.handle(command, ctx),
            DocumentCommand::SyncGroups { schema, lookups } => {
                let patients_of =
                    |user: &Id| lookups.patient_groups.get(user).into_iter().flatten();
                let mut groups = Vec::new();
                match schema.compiled.definition.settings.group_sync_mode {
                    GroupSyncMode::Disabled => return Ok(vec![]),
                    GroupSyncMode::CreatorPatientEnlistments => {
                        for group in self.creator_id.iter().flat_map(patients_of) {
                            add_id(&mut groups, *group);
                        }
                    }
                    GroupSyncMode::LinkedUsersPatientEnlistments => {
                        for group in self.user_ids.iter().flat_map(patients_of) {
                            add_id(&mut groups, *group);
                        }
                    }
                }
                Ok(self.groups_now(groups))
            }
            DocumentCommand::Create {
                schema,
                data,
                lookups,
            } => {
                if self.created {
                    return Err(DocumentError::AlreadyExists);
                }
                if schema.disabled {
                    return Err(DocumentError::SchemaDisabled);
                }
                check_data(schema, None, data)?;
                let definition = &schema.compiled.definition;
                let creation = &definition.creation_transition;
                let document_id = document_id(ctx)?;
                let creator_id = ctx.actor.record().user_id;
                let mut working = Working {
                    document_id,
                    schema,
                    actor: ctx.actor,
                    lookups,
                    creator_id,
                    status: creation.to_status.clone(),
                    data: data.clone(),
                    user_ids: Vec::new(),
                    group_ids: Vec::new(),
                    tasks: Vec::new(),
                    since: ctx.now,
                    now: ctx.now,
                    deferred: Vec::new(),
                    paused: None,
                };
                if !working.conditions_hold(None, &creation.conditions, Some(data)) {
                    return Err(DocumentError::IllegalArgument(
                        "The conditions of the creation transition are not met".into(),
                    ));
                }
                working.run(&creation.actions, 0, None);
                match definition.settings.group_sync_mode {
                    GroupSyncMode::Disabled => {}
                    GroupSyncMode::CreatorPatientEnlistments => {
                        if let Some(creator) = creator_id {
                            for group in working.patient_groups_of(creator) {
                                add_id(&mut working.group_ids, group);
                            }
                        }
                    }
                    GroupSyncMode::LinkedUsersPatientEnlistments => {
                        for user in working.user_ids.clone() {
                            for group in working.patient_groups_of(user) {
                                add_id(&mut working.group_ids, group);
                            }
                        }
                    }
                }
                working.after(&creation.after_actions);
                let created = DocumentEvent::Created(DocumentCreated {
                    schema_id: schema.id,
                    creator_id,
                    status: working.status.clone(),
                    data: JsonOf(working.data.clone()),
                    user_ids: working.user_ids.clone(),
                    group_ids: working.group_ids.clone(),
                });
                working.finish(vec![created], None)
            }
            DocumentCommand::Update { schema, changes } => {
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
            DocumentCommand::DeleteFields { schema, fields } => {
                let mut data = self.data.clone();
                for field in fields {
                    check_path(field)?;
                    remove_path(&mut data, field);
                }
                self.updated(schema, data)
            }
            DocumentCommand::Transition {
                schema,
                choice,
                data,
                lookups,
            } => self.transitioned(schema, choice, data, lookups, ctx),
            DocumentCommand::Delete { .. } => Ok(vec![DocumentEvent::Deleted(DocumentDeleted {})]),
            DocumentCommand::LinkGroups { group_ids, .. } => {
                let mut groups = self.group_ids.clone();
                for group in group_ids {
                    add_id(&mut groups, *group);
                }
                Ok(self.groups_now(groups))
            }
            DocumentCommand::UnlinkGroups { group_ids, .. } => {
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
            DocumentCommand::LinkUsers {
                schema,
                user_ids,
                lookups,
            } => {
                let mut users = self.user_ids.clone();
                for user in user_ids {
                    add_id(&mut users, *user);
                }
                let mut events = Vec::new();
                if users != self.user_ids {
                    events.push(DocumentEvent::UsersChanged(LinksChanged { ids: users }));
                }
                if schema.compiled.definition.settings.group_sync_mode
                    == GroupSyncMode::LinkedUsersPatientEnlistments
                {
                    let mut groups = self.group_ids.clone();
                    for user in user_ids {
                        for group in lookups.patient_groups.get(user).into_iter().flatten() {
                            add_id(&mut groups, *group);
                        }
                    }
                    events.extend(self.groups_now(groups));
                }
                Ok(events)
            }
            DocumentCommand::UnlinkUsers { user_ids, .. } => {
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
            DocumentCommand::AppendToArray {
                schema,
                field,
                id,
                object,
            } => {
                check_path(field)?;
                let mut data = self.data.clone();
                let mut items = match value_at(&data, field) {
                    Some(Value::Array(items)) => items.clone(),
                    Some(_) => {
                        return Err(DocumentError::IllegalArgument(format!(
                            "`{field}` is not an array"
                        )));
                    }
                    None => Vec::new(),
                };
                let mut object = object.clone();
                object.insert("id".into(), json!(id.to_string()));
                items.push(Value::Object(object));
                set_path(&mut data, field, Value::Array(items));
                self.updated(schema, data)
            }
            DocumentCommand::UpdateInArray {
                schema,
                field,
                id,
                changes,
            } => {
                check_path(field)?;
                let mut data = self.data.clone();
                let element = element_mut(&mut data, field, *id)?;
                for (key, value) in changes {
                    if key == "id" {
                        continue;
                    }
                    if value.is_null() {
                        element.remove(key);
                    } else {
                        element.insert(key.clone(), value.clone());
                    }
                }
                self.updated(schema, data)
            }
            DocumentCommand::RemoveFromArray { schema, field, id } => {
                check_path(field)?;
                let mut data = self.data.clone();
                element_mut(&mut data, field, *id)?;
                if let Some(Value::Array(items)) = value_at(&data, field) {
                    let kept = items
                        .iter()
                        .filter(|item| {
                            item.get("id").and_then(Value::as_str) != Some(&id.to_string())
                        })
                        .cloned()
                        .collect();
                    set_path(&mut data, field, Value::Array(kept));
                }
                self.updated(schema, data)
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

/// The element with `id` of the array of objects at `field`.
pub(super) fn element_mut<'a>(
    data: &'a mut Map<String, Value>,
    field: &str,
    id: Id,
) -> Result<&'a mut Map<String, Value>, DocumentError> {
    let id = id.to_string();
    get_path_mut(data, field)
        .and_then(Value::as_array_mut)
        .and_then(|items| {
            items
                .iter_mut()
                .filter_map(Value::as_object_mut)
                .find(|item| item.get("id").and_then(Value::as_str) == Some(id.as_str()))
        })
        .ok_or_else(|| DocumentError::UnknownElement(format!("{field}/{id}")))
}

impl Document {
    /// A `GroupsChanged` event if `groups` are not the document's (in any order).
    pub(super) fn groups_now(&self, groups: Vec<Id>) -> Vec<DocumentEvent> {
        let same = groups.iter().collect::<BTreeSet<_>>() == self.group_ids.iter().collect();
        if same && groups.len() == self.group_ids.len() {
            Vec::new()
        } else {
            vec![DocumentEvent::GroupsChanged(LinksChanged { ids: groups })]
        }
    }

    pub(super) fn updated(
        &self,
        schema: &SchemaSnapshot,
        data: Map<String, Value>,
    ) -> Result<Vec<DocumentEvent>, DocumentError> {
        if data == self.data {
            return Ok(vec![]);
        }
        check_data(schema, Some(&self.data), &data)?;
        Ok(vec![DocumentEvent::Updated(DocumentUpdated {
            data: JsonOf(data),
        })])
    }

    /// A manual transition, then the automatic ones it leads to.
    pub(super) fn transitioned(
        &self,
        schema: &SchemaSnapshot,
        choice: &TransitionChoice,
        input: &Map<String, Value>,
        lookups: &Lookups,
        ctx: &Ctx<'_>,
    ) -> Result<Vec<DocumentEvent>, DocumentError> {
        let transitions = &schema.compiled.definition.transitions;
        let candidates: Vec<(usize, &vigil_schemas::workflow::Transition)> = transitions
            .iter()
            .enumerate()
            .filter(|(_, t)| match choice {
                TransitionChoice::Id(id) => t.id == id.to_string(),
                TransitionChoice::Name(name) => t.name.as_deref() == Some(name.as_str()),
            })
            .collect();
        if candidates.is_empty() {
            return Err(DocumentError::UnknownTransition(match choice {
                TransitionChoice::Id(id) => id.to_string(),
                TransitionChoice::Name(name) => name.clone(),
            }));
        }
        // Permission first: a caller without it learns nothing of the conditions.
        let permission = transition_permission(schema, choice);
        if !self.updatable_by(ctx.actor, schema) && !permitted(ctx.actor, self, &permission) {
            return Err(DocumentError::NoPermission(permission));
        }
        // Fields of the input that are properties of the schema are written into the data.
        let mut data = self.data.clone();
        for (field, value) in input {
            if schema.compiled.definition.properties.contains_key(field) {
                data.insert(field.clone(), value.clone());
            }
        }
        let mut working = self.working(schema, lookups, ctx)?;
        working.data = data;
        let chosen = candidates.into_iter().find(|(i, t)| {
            t.kind == TransitionType::Manual
                && t.from_statuses.contains(&self.status)
                && working.conditions_hold(Some(*i), &t.conditions, Some(input))
        });
        let Some((_, transition)) = chosen else {
            return Err(DocumentError::IllegalArgument(format!(
                "The transition cannot run from status `{}`, or its conditions are not met",
                self.status
            )));
        };
        let manual = working.transition(transition)?;
        working.after(&transition.after_actions);
        working.finish(vec![DocumentEvent::Transitioned(manual)], Some(&self.data))
    }

    /// A step over the document as it is now.
    pub(super) fn working<'a>(
        &self,
        schema: &'a SchemaSnapshot,
        lookups: &'a Lookups,
        ctx: &Ctx<'a>,
    ) -> Result<Working<'a>, DocumentError> {
        Ok(Working {
            document_id: document_id(ctx)?,
            schema,
            actor: ctx.actor,
            lookups,
            creator_id: self.creator_id,
            status: self.status.clone(),
            data: self.data.clone(),
            user_ids: self.user_ids.clone(),
            group_ids: self.group_ids.clone(),
            tasks: Vec::new(),
            since: ctx.now,
            now: ctx.now,
            deferred: Vec::new(),
            paused: None,
        })
    }

    /// Goes on with the step the lock paused: the rest of the paused transition's actions (as
    /// the schema configures them now), then the automatic transitions and after-actions.
    pub(super) fn resumed(
        &self,
        lock: &Lock,
        schema: &SchemaSnapshot,
        lookups: &Lookups,
        ctx: &Ctx<'_>,
    ) -> Result<Vec<DocumentEvent>, DocumentError> {
        let definition = &schema.compiled.definition;
        let actions: &[Action] = match lock.transition_id {
            None => &definition.creation_transition.actions,
            Some(id) => definition
                .transitions
                .iter()
                .find(|t| t.id == id.to_string())
                .map_or(&[], |t| &t.actions),
        };
        let mut working = self.working(schema, lookups, ctx)?;
        working.since = lock.since;
        working.deferred = lock.after_actions.clone();
        working.run(actions, lock.next_action, lock.transition_id);
        let resumed = DocumentEvent::Resumed(DocumentResumed {
            data: JsonOf(working.data.clone()),
            user_ids: working.user_ids.clone(),
            group_ids: working.group_ids.clone(),
        });
        working.finish(vec![resumed], Some(&self.data))
    }

    pub(super) fn comment_count(&self) -> u32 {
        u32::try_from(self.comments.len()).unwrap_or(u32::MAX)
    }

    /// Whether the document is the actor's own: they created it or are linked to it.
    pub(super) fn owned_by(&self, actor: &Actor) -> bool {
        relates(actor, self, Relation::Creator) || relates(actor, self, Relation::LinkedUsers)
    }
}
