//! A workflow step over a document: a transition's actions, the automatic transitions after it, the tasks they ask for, and a `delay` that pauses it.

use super::*;

/// A document while a workflow step runs over it.
pub(super) struct Working<'a> {
    pub(super) document_id: Id,
    pub(super) schema: &'a SchemaSnapshot,
    pub(super) actor: &'a Actor,
    pub(super) lookups: &'a Lookups,
    pub(super) creator_id: Option<Id>,
    pub(super) status: String,
    pub(super) data: Map<String, Value>,
    pub(super) user_ids: Vec<Id>,
    pub(super) group_ids: Vec<Id>,
    pub(super) tasks: Vec<TaskRequested>,
    /// When the step began, and when a `delay` would end.
    pub(super) since: Timestamp,
    pub(super) now: Timestamp,
    /// The after-actions to run once the step is done.
    pub(super) deferred: Vec<TaskAction>,
    /// Where a `delay` stopped the step.
    pub(super) paused: Option<Pause>,
}

/// Where a `delay` stopped a step, and until when.
pub(super) struct Pause {
    pub(super) transition_id: Option<Id>,
    pub(super) next_action: usize,
    pub(super) resume_at: Timestamp,
}

/// How many automatic transitions one step may chain (a loop in the configuration ends here).
pub(super) const MOST_AUTOMATIC_TRANSITIONS: usize = 64;

impl Working<'_> {
    /// The document as a `document` condition sees it.
    pub(super) fn as_json(&self) -> Value {
        json!({
            "id": self.document_id.to_string(),
            "status": self.status,
            "data": self.data,
            "creatorId": self.creator_id.map(|c| c.to_string()),
            "userIds": self.user_ids.iter().map(Id::to_string).collect::<Vec<_>>(),
            "groupIds": self.group_ids.iter().map(Id::to_string).collect::<Vec<_>>(),
        })
    }

    /// Whether every condition of a transition (`None`: the creation transition) holds.
    pub(super) fn conditions_hold(
        &self,
        transition: Option<usize>,
        conditions: &[Condition],
        input: Option<&Map<String, Value>>,
    ) -> bool {
        let actor = self.actor;
        conditions.iter().enumerate().all(|(i, condition)| {
            let validator = self.schema.compiled.condition(transition, i);
            match condition {
                Condition::Input { .. } => {
                    let input = Value::Object(input.cloned().unwrap_or_default());
                    validator.is_some_and(|v| v.validate(&input).is_ok())
                }
                Condition::Document { .. } => {
                    validator.is_some_and(|v| v.validate(&self.as_json()).is_ok())
                }
                Condition::InitiatorHasRelationToUserInData { user_id_field, .. } => {
                    id_at(&self.data, user_id_field).is_some_and(|patient| {
                        self.lookups
                            .patient_groups
                            .get(&patient)
                            .is_some_and(|groups| groups.iter().any(|g| actor.is_staff_of(*g)))
                    })
                }
                Condition::InitiatorHasRelationToGroupInData {
                    group_id_field,
                    relation,
                    required_permission,
                } => id_at(&self.data, group_id_field).is_some_and(|group| match relation {
                    GroupRelation::Patient => actor.patient_groups().any(|g| g == group),
                    GroupRelation::Staff => {
                        actor.is_staff_of(group)
                            && required_permission
                                .as_deref()
                                .is_none_or(|p| actor.allows_in(group, p))
                    }
                }),
            }
        })
    }

    pub(super) fn request_task(&mut self, task: &TaskAction) {
        let mut data = task.data.clone().unwrap_or_default();
        data.insert("schemaId".into(), json!(self.schema.id.to_string()));
        data.insert("documentId".into(), json!(self.document_id.to_string()));
        self.tasks.push(TaskRequested {
            function_name: task.function_name.clone(),
            priority: task.priority,
            data: JsonOf(data),
        });
    }

    pub(super) fn patient_groups_of(&self, user: Id) -> Vec<Id> {
        if self.actor.is_user(user) {
            return self.actor.patient_groups().collect();
        }
        self.lookups
            .patient_groups
            .get(&user)
            .map(|groups| groups.iter().copied().collect())
            .unwrap_or_default()
    }

    /// Runs `actions` from the one at `from`, until a `delay` pauses the step.
    pub(super) fn run(&mut self, actions: &[Action], from: usize, transition_id: Option<Id>) {
        for (at, action) in actions.iter().enumerate().skip(from) {
            match action {
                Action::Set { field, value } => set_path(&mut self.data, field, value.clone()),
                Action::Unset { fields } => {
                    for field in fields {
                        remove_path(&mut self.data, field);
                    }
                }
                Action::AddItems { field, values } => {
                    let mut items = match value_at(&self.data, field) {
                        Some(Value::Array(items)) => items.clone(),
                        _ => Vec::new(),
                    };
                    for value in values {
                        if !items.contains(value) {
                            items.push(value.clone());
                        }
                    }
                    set_path(&mut self.data, field, Value::Array(items));
                }
                Action::RemoveItems { field, values } => {
                    if let Some(Value::Array(items)) = value_at(&self.data, field) {
                        let kept = items
                            .iter()
                            .filter(|i| !values.contains(i))
                            .cloned()
                            .collect();
                        set_path(&mut self.data, field, Value::Array(kept));
                    }
                }
                Action::LinkCreator {} => {
                    if let Some(creator) = self.creator_id {
                        add_id(&mut self.user_ids, creator);
                    }
                }
                Action::LinkUserFromData { user_id_field } => {
                    if let Some(user) = id_at(&self.data, user_id_field) {
                        add_id(&mut self.user_ids, user);
                    }
                }
                Action::LinkEnlistedGroups { .. } => {
                    if let Some(creator) = self.creator_id {
                        for group in self.patient_groups_of(creator) {
                            add_id(&mut self.group_ids, group);
                        }
                    }
                }
                Action::LinkGroupFromData { group_id_field } => {
                    if let Some(group) = id_at(&self.data, group_id_field) {
                        add_id(&mut self.group_ids, group);
                    }
                }
                Action::Task(task) => self.request_task(task),
                Action::Delay { time } => {
                    // A configured delay is finite and not negative; `as` saturates.
                    let millis = (time * 1000.0).round() as i64;
                    self.paused = Some(Pause {
                        transition_id,
                        next_action: at + 1,
                        resume_at: Timestamp(self.now.millis().saturating_add(millis)),
                    });
                    return;
                }
                Action::MeasurementReviewedNotification {} => {}
            }
        }
    }

    pub(super) fn after(&mut self, after_actions: &[AfterAction]) {
        for after_action in after_actions {
            if let AfterAction::Task(task) = after_action {
                self.deferred.push(task.clone());
            }
        }
    }

    /// Runs the automatic transitions that apply, in configuration order, until none does or a
    /// `delay` pauses the step.
    pub(super) fn automatic(&mut self) -> Result<Vec<DocumentTransitioned>, DocumentError> {
        let transitions = &self.schema.compiled.definition.transitions;
        let mut ran = Vec::new();
        for _ in 0..MOST_AUTOMATIC_TRANSITIONS {
            if self.paused.is_some() {
                break;
            }
            let next = transitions.iter().enumerate().find(|(i, t)| {
                t.kind == TransitionType::Automatic
                    && t.from_statuses.contains(&self.status)
                    && self.conditions_hold(Some(*i), &t.conditions, None)
            });
            let Some((_, transition)) = next else { break };
            ran.push(self.transition(transition)?);
            self.after(&transition.after_actions);
        }
        Ok(ran)
    }

    pub(super) fn transition(
        &mut self,
        transition: &vigil_schemas::workflow::Transition,
    ) -> Result<DocumentTransitioned, DocumentError> {
        let transition_id = transition.id.parse().map_err(|_| {
            DocumentError::IllegalArgument(format!("`{}` is not a transition id", transition.id))
        })?;
        let from_status = std::mem::replace(&mut self.status, transition.to_status.clone());
        self.run(&transition.actions, 0, Some(transition_id));
        Ok(DocumentTransitioned {
            transition_id,
            transition_name: transition.name.clone(),
            from_status,
            to_status: self.status.clone(),
            data: JsonOf(self.data.clone()),
            user_ids: self.user_ids.clone(),
            group_ids: self.group_ids.clone(),
        })
    }

    /// The events of the automatic transitions and the tasks of a step — or of the lock, if a
    /// `delay` paused it — once its data is checked (fields the document already had outside
    /// the schema are left alone).
    pub(super) fn finish(
        mut self,
        mut events: Vec<DocumentEvent>,
        before: Option<&Map<String, Value>>,
    ) -> Result<Vec<DocumentEvent>, DocumentError> {
        let automatic = self.automatic()?;
        check_data(self.schema, before, &self.data)?;
        events.extend(automatic.into_iter().map(DocumentEvent::Transitioned));
        match self.paused.take() {
            Some(pause) => events.push(DocumentEvent::Locked(DocumentLocked {
                since: self.since,
                resume_at: pause.resume_at,
                transition_id: pause.transition_id,
                next_action: u32::try_from(pause.next_action).unwrap_or(u32::MAX),
                after_actions: JsonOf(self.deferred.clone()),
            })),
            None => {
                for task in std::mem::take(&mut self.deferred) {
                    self.request_task(&task);
                }
            }
        }
        events.extend(self.tasks.into_iter().map(DocumentEvent::TaskRequested));
        Ok(events)
    }
}
