//! How the document aggregate decides the commands that need more than a line: one method per
//! command (or shared step), called from `Aggregate::handle`.

use super::*;

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

    pub(super) fn comment_added(
        &self,
        schema: &Arc<SchemaSnapshot>,
        id: Id,
        text: &str,
        ctx: &Ctx<'_>,
    ) -> Result<Vec<DocumentEvent>, DocumentError> {
        Ok(vec![DocumentEvent::CommentAdded(CommentAdded {
            comment_id: id,
            schema_id: schema.id,
            creator_id: ctx.actor.record().user_id,
            text: Personal(comment_text(text)?),
            comment_count: self.comment_count().saturating_add(1),
        })])
    }

    /// The groups the schema's `groupSyncMode` gives the document now.
    pub(super) fn groups_synced(
        &self,
        schema: &Arc<SchemaSnapshot>,
        lookups: &Lookups,
    ) -> Result<Vec<DocumentEvent>, DocumentError> {
        let patients_of = |user: &Id| lookups.patient_groups.get(user).into_iter().flatten();
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

    /// A new document: its data checked, then its creation transition run.
    pub(super) fn created(
        &self,
        schema: &Arc<SchemaSnapshot>,
        data: &Map<String, Value>,
        lookups: &Lookups,
        ctx: &Ctx<'_>,
    ) -> Result<Vec<DocumentEvent>, DocumentError> {
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

    pub(super) fn users_linked(
        &self,
        schema: &Arc<SchemaSnapshot>,
        user_ids: &[Id],
        lookups: &Lookups,
    ) -> Result<Vec<DocumentEvent>, DocumentError> {
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

    pub(super) fn appended_to_array(
        &self,
        schema: &Arc<SchemaSnapshot>,
        field: &str,
        id: Id,
        object: &Map<String, Value>,
    ) -> Result<Vec<DocumentEvent>, DocumentError> {
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

    pub(super) fn updated_in_array(
        &self,
        schema: &Arc<SchemaSnapshot>,
        field: &str,
        id: Id,
        changes: &Map<String, Value>,
    ) -> Result<Vec<DocumentEvent>, DocumentError> {
        check_path(field)?;
        let mut data = self.data.clone();
        let element = element_mut(&mut data, field, id)?;
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

    pub(super) fn removed_from_array(
        &self,
        schema: &Arc<SchemaSnapshot>,
        field: &str,
        id: Id,
    ) -> Result<Vec<DocumentEvent>, DocumentError> {
        check_path(field)?;
        let mut data = self.data.clone();
        element_mut(&mut data, field, id)?;
        if let Some(Value::Array(items)) = value_at(&data, field) {
            let kept = items
                .iter()
                .filter(|item| item.get("id").and_then(Value::as_str) != Some(&id.to_string()))
                .cloned()
                .collect();
            set_path(&mut data, field, Value::Array(kept));
        }
        self.updated(schema, data)
    }
}

/// The element with `id` of the array of objects at `field`.
fn element_mut<'a>(
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
