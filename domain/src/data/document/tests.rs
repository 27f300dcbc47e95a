use super::*;
use crate::actor::{Rights, Via};
use crate::aggregate::testing::{NOW, given, id};
use crate::permission::Permissions;
use vigil_schemas::definition::{Definition, Write};

const GROUP: u8 = 40;

/// A JSON object as a map (what a document's data is).
fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(object) => object,
        other => panic!("not an object: {other}"),
    }
}

/// Task after-actions for generated `document.locked` events.
pub(crate) fn task_actions() -> impl proptest::strategy::Strategy<Value = JsonOf<Vec<TaskAction>>> {
    use proptest::prelude::*;
    let action = (
        "[a-z]{1,8}",
        proptest::option::of(0i64..10),
        proptest::option::of(Just(Map::new())),
    )
        .prop_map(|(function_name, priority, data)| TaskAction {
            function_name,
            priority,
            data,
        });
    proptest::collection::vec(action, 0..3).prop_map(JsonOf)
}

fn user(n: u8, permissions: &[&str]) -> Actor {
    let global: Permissions = permissions.iter().map(|p| (*p).to_owned()).collect();
    Actor::user(id(n), None, global, Via::Http, None)
}

fn staff(n: u8) -> Actor {
    let rights = Rights {
        staff: [(id(GROUP), Permissions::default())].into(),
        ..Rights::default()
    };
    Actor::user(id(n), None, rights, Via::Http, None)
}

fn patient(n: u8) -> Actor {
    let rights = Rights {
        patient: [id(GROUP)].into(),
        ..Rights::default()
    };
    Actor::user(id(n), None, rights, Via::Http, None)
}

/// Blood pressure: `new` → (automatic, systolic ≥ 140) `alarm`; manual `review` from `new` or
/// `alarm` to `reviewed`.
fn blood_pressure(configure: impl FnOnce(&mut Definition)) -> Arc<SchemaSnapshot> {
    let mut d = Definition::default();
    d.write_property(
        "systolic",
        &json!({"type": "number", "minimum": 0}),
        Write::Add,
    )
    .unwrap();
    d.write_property("note", &json!({"type": "string"}), Write::Add)
        .unwrap();
    d.write_property(
        "readings",
        &json!({"type": "array", "items": {"type": "object", "properties": {"value": {"type": "number"}}}}),
        Write::Add,
    )
    .unwrap();
    d.write_property(
        "flag",
        &json!({"type": "object", "properties": {"high": {"type": "boolean"}}}),
        Write::Add,
    )
    .unwrap();
    d.write_property(
        "tags",
        &json!({"type": "array", "items": {"type": "string"}}),
        Write::Add,
    )
    .unwrap();
    for status in ["alarm", "reviewed"] {
        d.write_status(status, Map::new(), Write::Add).unwrap();
    }
    d.set_creation_transition(&json!({
        "type": "manual", "toStatus": "new",
        "actions": [{"type": "linkCreator"}, {"type": "addItems", "field": "tags", "values": ["measured"]}],
        "afterActions": [{"type": "task", "functionName": "analyze", "data": {"kind": "bp"}}],
    }))
    .unwrap();
    d.write_transition(&id(1).to_string(), &json!({
        "name": "alarm", "type": "automatic", "fromStatuses": ["new"], "toStatus": "alarm",
        "conditions": [{"type": "document", "configuration": {"type": "object", "properties": {"data": {"type": "object", "properties": {"systolic": {"type": "number", "minimum": 140}}, "required": ["systolic"]}}}}],
        "actions": [{"type": "set", "field": "flag.high", "value": true}],
    }), Write::Add)
    .unwrap();
    d.write_transition(&id(2).to_string(), &json!({
        "name": "review", "type": "manual", "fromStatuses": ["alarm"], "toStatus": "reviewed",
        "conditions": [{"type": "input", "configuration": {"type": "object", "required": ["note"]}}],
    }), Write::Add)
    .unwrap();
    d.write_transition(
        &id(3).to_string(),
        &json!({
            "name": "review", "type": "manual", "fromStatuses": ["new"], "toStatus": "reviewed",
        }),
        Write::Add,
    )
    .unwrap();
    configure(&mut d);
    Arc::new(SchemaSnapshot {
        id: id(30),
        name: "bp".into(),
        disabled: false,
        compiled: CompiledSchema::compile(d).unwrap(),
    })
}

fn create(schema: &Arc<SchemaSnapshot>, data: Value) -> DocumentCommand {
    DocumentCommand::new(
        schema.clone(),
        DocumentChange::Create {
            data: data.as_object().cloned().unwrap_or_default(),
        },
    )
}

fn created_by(actor: Actor, schema: &Arc<SchemaSnapshot>, data: Value) -> Vec<DocumentEvent> {
    given::<Document>(&[])
        .on(id(50))
        .by(actor)
        .when(create(schema, data))
        .events()
}

#[test]
fn creation_runs_the_creation_transition_then_the_automatic_ones() {
    let schema = blood_pressure(|_| {});
    let events = created_by(patient(7), &schema, json!({"systolic": 150}));
    let DocumentEvent::Created(created) = &events[0] else {
        panic!("{events:?}")
    };
    assert_eq!(created.status, "new");
    assert_eq!(created.creator_id, Some(id(7)));
    assert_eq!(created.user_ids, [id(7)]);
    assert_eq!(
        &Value::Object(created.data.0.clone()),
        &json!({"systolic": 150, "tags": ["measured"]})
    );
    let DocumentEvent::Transitioned(alarm) = &events[1] else {
        panic!("{events:?}")
    };
    assert_eq!(
        (alarm.from_status.as_str(), alarm.to_status.as_str()),
        ("new", "alarm")
    );
    assert_eq!(alarm.data.0["flag"], json!({"high": true}));
    let DocumentEvent::TaskRequested(task) = &events[2] else {
        panic!("{events:?}")
    };
    assert_eq!(task.function_name, "analyze");
    assert_eq!(
        &Value::Object(task.data.0.clone()),
        &json!({"kind": "bp", "schemaId": id(30).to_string(), "documentId": id(50).to_string()})
    );
    assert_eq!(events.len(), 3);
    assert_eq!(Document::fold(&events).status, "alarm");

    let calm = created_by(patient(7), &schema, json!({"systolic": 120}));
    assert_eq!(calm.len(), 2, "no automatic transition applies: {calm:?}");
    assert_eq!(Document::fold(&calm).status, "new");
}

#[test]
fn data_outside_the_schema_is_refused_naming_the_path() {
    let schema = blood_pressure(|_| {});
    let refused = given::<Document>(&[])
        .by(patient(7))
        .when(create(&schema, json!({"systolic": -1, "unknown": 1})))
        .events_or_error();
    let Err(DocumentError::InvalidData(message)) = refused else {
        panic!("{refused:?}")
    };
    assert!(message.contains("/systolic"), "{message}");
}

#[test]
fn create_mode_permission_required_needs_the_permission_for_the_schema() {
    let schema = blood_pressure(|d| {
        d.settings.create_mode = CreateMode::PermissionRequired;
    });
    given::<Document>(&[])
        .by(patient(7))
        .when(create(&schema, json!({})))
        .then_err(DocumentError::NoPermission("CREATE_DOCUMENTS:bp".into()));
    assert_eq!(
        created_by(user(7, &["CREATE_DOCUMENTS:bp"]), &schema, json!({})).len(),
        2
    );
    assert_eq!(
        created_by(user(7, &["CREATE_DOCUMENTS"]), &schema, json!({})).len(),
        2
    );
    given::<Document>(&[])
        .by(user(7, &["CREATE_DOCUMENTS:other"]))
        .when(create(&schema, json!({})))
        .then_err(DocumentError::NoPermission("CREATE_DOCUMENTS:bp".into()));
}

#[test]
fn updates_follow_the_update_mode_and_null_clears_a_field() {
    let schema = blood_pressure(|d| {
        d.creation_transition
            .actions
            .push(Action::LinkEnlistedGroups { only_active: None });
    });
    let history = created_by(
        patient(7),
        &schema,
        json!({"systolic": 120, "note": "rest"}),
    );
    let update = |changes: Value| {
        DocumentCommand::new(
            schema.clone(),
            DocumentChange::Update {
                changes: changes.as_object().cloned().unwrap_or_default(),
            },
        )
    };
    let events = given::<Document>(&history)
        .by(patient(7))
        .when(update(json!({"note": null, "systolic": 125})))
        .events();
    assert_eq!(
        events,
        [DocumentEvent::Updated(DocumentUpdated {
            data: JsonOf(object(json!({"systolic": 125, "tags": ["measured"]})))
        })]
    );
    // Staff of the document's group may (default modes); a stranger does not even see it.
    assert_eq!(
        given::<Document>(&history)
            .by(staff(8))
            .when(update(json!({"systolic": 1})))
            .events()
            .len(),
        1
    );
    given::<Document>(&history)
        .by(user(9, &[]))
        .when(update(json!({"systolic": 1})))
        .then_err(DocumentError::NotFound);
    given::<Document>(&history)
        .by(user(9, &["VIEW_DOCUMENTS:bp"]))
        .when(update(json!({"systolic": 1})))
        .then_err(DocumentError::NoPermission("UPDATE_DOCUMENTS:bp".into()));
    given::<Document>(&history)
        .by(patient(7))
        .when(update(json!({"systolic": "high"})))
        .events_or_error()
        .unwrap_err();
    given::<Document>(&history)
        .by(patient(7))
        .when(update(json!({"systolic": 120})))
        .then(&[]);
}

#[test]
fn a_manual_transition_by_name_takes_the_one_that_fits_the_status() {
    let schema = blood_pressure(|_| {});
    let transition = |actor: Actor, history: &[DocumentEvent], input: Value| {
        given::<Document>(history)
            .by(actor)
            .when(DocumentCommand::new(
                schema.clone(),
                DocumentChange::Transition {
                    choice: TransitionChoice::Name("review".into()),
                    data: input.as_object().cloned().unwrap_or_default(),
                },
            ))
    };
    let calm = created_by(patient(7), &schema, json!({"systolic": 120}));
    let events = transition(patient(7), &calm, json!({})).events();
    let DocumentEvent::Transitioned(review) = &events[0] else {
        panic!("{events:?}")
    };
    assert_eq!(review.transition_id, id(3));

    let alarm = created_by(patient(7), &schema, json!({"systolic": 150}));
    let refused = transition(patient(7), &alarm, json!({})).events_or_error();
    assert!(
        matches!(refused, Err(DocumentError::IllegalArgument(_))),
        "{refused:?}"
    );
    let events = transition(patient(7), &alarm, json!({"note": "seen", "other": 1})).events();
    let DocumentEvent::Transitioned(review) = &events[0] else {
        panic!("{events:?}")
    };
    assert_eq!(review.transition_id, id(2));
    assert_eq!(
        review.data.0["note"], "seen",
        "input fields that are properties are kept"
    );
    assert!(review.data.0.get("other").is_none());

    let reader = user(9, &["VIEW_DOCUMENTS:bp"]);
    transition(reader, &alarm, json!({"note": "x"})).then_err(DocumentError::NoPermission(
        "TRANSITION_DOCUMENTS:bp:review".into(),
    ));
    let transitioner = user(9, &["VIEW_DOCUMENTS:bp", "TRANSITION_DOCUMENTS:bp:review"]);
    assert_eq!(
        transition(transitioner, &alarm, json!({"note": "x"}))
            .events()
            .len(),
        1
    );
    let unknown = given::<Document>(&alarm)
        .by(patient(7))
        .when(DocumentCommand::new(
            schema.clone(),
            DocumentChange::Transition {
                choice: TransitionChoice::Id(id(99)),
                data: Map::new(),
            },
        ));
    unknown.then_err(DocumentError::UnknownTransition(id(99).to_string()));
}

#[test]
fn a_cycle_of_automatic_transitions_ends() {
    let schema =
        blood_pressure(|d| {
            d.write_transition(&id(4).to_string(), &json!({
            "name": "back", "type": "automatic", "fromStatuses": ["alarm"], "toStatus": "new",
        }), Write::Add)
        .unwrap();
        });
    let events = created_by(patient(7), &schema, json!({"systolic": 150}));
    let transitions = events
        .iter()
        .filter(|e| matches!(e, DocumentEvent::Transitioned(_)))
        .count();
    assert_eq!(transitions, MOST_AUTOMATIC_TRANSITIONS);
}

#[test]
fn deletion_needs_the_permission_by_default() {
    let schema = blood_pressure(|_| {});
    let history = created_by(patient(7), &schema, json!({}));
    let delete = || DocumentCommand::new(schema.clone(), DocumentChange::Delete);
    given::<Document>(&history)
        .by(patient(7))
        .when(delete())
        .then_err(DocumentError::NoPermission("DELETE_DOCUMENTS:bp".into()));
    given::<Document>(&history)
        .by(user(9, &["DELETE_DOCUMENTS"]))
        .when(delete())
        .then(&[DocumentEvent::Deleted(DocumentDeleted {})]);
    let mut deleted = history.clone();
    deleted.push(DocumentEvent::Deleted(DocumentDeleted {}));
    given::<Document>(&deleted)
        .by(user(9, &["DELETE_DOCUMENTS"]))
        .when(delete())
        .then_err(DocumentError::NotFound);
}

#[test]
fn links_need_the_global_access_permission() {
    let schema = blood_pressure(|d| {
        d.settings.group_sync_mode = GroupSyncMode::LinkedUsersPatientEnlistments;
    });
    let history = created_by(patient(7), &schema, json!({}));
    let link = |users: Vec<Id>| {
        DocumentCommand::new(
            schema.clone(),
            DocumentChange::LinkUsers { user_ids: users },
        )
        .looked_up(Lookups {
            patient_groups: [(id(8), [id(41)].into())].into(),
        })
    };
    given::<Document>(&history)
        .by(patient(7))
        .when(link(vec![id(8)]))
        .then_err(DocumentError::NoPermission(
            "UPDATE_ACCESS_TO_DOCUMENT:bp".into(),
        ));
    let manager = user(9, &["UPDATE_ACCESS_TO_DOCUMENT:bp"]);
    let events = given::<Document>(&history)
        .by(manager.clone())
        .when(link(vec![id(8), id(7)]))
        .events();
    assert_eq!(
        events,
        [
            DocumentEvent::UsersChanged(LinksChanged {
                ids: vec![id(7), id(8)]
            }),
            DocumentEvent::GroupsChanged(LinksChanged {
                ids: vec![id(GROUP), id(41)]
            }),
        ]
    );
    let mut linked = history.clone();
    linked.extend(events);
    given::<Document>(&linked)
        .by(manager.clone())
        .when(DocumentCommand::new(
            schema.clone(),
            DocumentChange::UnlinkGroups {
                group_ids: Some(vec![]),
            },
        ))
        .then(&[]);
    given::<Document>(&linked)
        .by(manager.clone())
        .when(DocumentCommand::new(
            schema.clone(),
            DocumentChange::UnlinkGroups { group_ids: None },
        ))
        .then(&[DocumentEvent::GroupsChanged(LinksChanged { ids: vec![] })]);
    given::<Document>(&linked)
        .by(manager)
        .when(DocumentCommand::new(
            schema.clone(),
            DocumentChange::UnlinkUsers {
                user_ids: Some(vec![id(7)]),
            },
        ))
        .then(&[DocumentEvent::UsersChanged(LinksChanged {
            ids: vec![id(8)],
        })]);
}

#[test]
fn arrays_of_objects_get_elements_with_ids() {
    let schema = blood_pressure(|_| {});
    let history = created_by(patient(7), &schema, json!({"readings": [{"value": 1}]}));
    let events = given::<Document>(&history)
        .by(patient(7))
        .when(DocumentCommand::new(
            schema.clone(),
            DocumentChange::AppendToArray {
                field: "readings".into(),
                id: id(60),
                object: json!({"value": 2}).as_object().cloned().unwrap_or_default(),
            },
        ))
        .events();
    let mut history = history;
    history.extend(events);
    assert_eq!(
        Document::fold(&history).data["readings"],
        json!([{"value": 1}, {"value": 2, "id": id(60).to_string()}])
    );
    let events = given::<Document>(&history)
        .by(patient(7))
        .when(DocumentCommand::new(
            schema.clone(),
            DocumentChange::UpdateInArray {
                field: "readings".into(),
                id: id(60),
                changes: json!({"value": 3, "id": "forged"})
                    .as_object()
                    .cloned()
                    .unwrap_or_default(),
            },
        ))
        .events();
    history.extend(events);
    assert_eq!(
        Document::fold(&history).data["readings"][1],
        json!({"value": 3, "id": id(60).to_string()})
    );
    given::<Document>(&history)
        .by(patient(7))
        .when(DocumentCommand::new(
            schema.clone(),
            DocumentChange::RemoveFromArray {
                field: "readings".into(),
                id: id(61),
            },
        ))
        .then_err(DocumentError::UnknownElement(format!(
            "readings/{}",
            id(61)
        )));
    let events = given::<Document>(&history)
        .by(patient(7))
        .when(DocumentCommand::new(
            schema.clone(),
            DocumentChange::RemoveFromArray {
                field: "readings".into(),
                id: id(60),
            },
        ))
        .events();
    history.extend(events);
    assert_eq!(
        Document::fold(&history).data["readings"],
        json!([{"value": 1}])
    );
    given::<Document>(&history)
        .by(patient(7))
        .when(DocumentCommand::new(
            schema.clone(),
            DocumentChange::UpdateInArray {
                field: "readings".into(),
                id: id(60),
                changes: Map::new(),
            },
        ))
        .then_err(DocumentError::UnknownElement(format!(
            "readings/{}",
            id(60)
        )));
}

/// What a random step does to a document.
#[derive(Debug, Clone)]
enum Step {
    Transition(&'static str, i64),
    Update(i64),
    Delete,
}

fn step() -> impl proptest::strategy::Strategy<Value = Step> {
    use proptest::prelude::*;
    prop_oneof![
        (
            prop_oneof![Just("review"), Just("alarm"), Just("back"), Just("nothing")],
            0i64..200
        )
            .prop_map(|(name, systolic)| Step::Transition(name, systolic)),
        (-50i64..200).prop_map(Step::Update),
        Just(Step::Delete),
    ]
}

proptest::proptest! {
    /// Whatever is asked, in whatever order, a document only ever moves along the configured
    /// transitions into configured statuses, and its data always fits the schema.
    #[test]
    fn random_steps_stay_inside_the_workflow(
        systolic in 0i64..200,
        steps in proptest::collection::vec(step(), 0..12),
    ) {
        let schema = blood_pressure(|d| {
            d.write_transition(&id(4).to_string(), &json!({
                "name": "back", "type": "manual", "fromStatuses": ["reviewed"], "toStatus": "new",
            }), Write::Add)
            .unwrap();
        });
        let definition = &schema.compiled.definition;
        let edges: BTreeSet<(String, String)> = definition
            .transitions
            .iter()
            .flat_map(|t| t.from_statuses.iter().map(|from| (from.clone(), t.to_status.clone())))
            .collect();
        let actor = user(7, &["UPDATE_DOCUMENTS", "VIEW_DOCUMENTS", "DELETE_DOCUMENTS"]);
        let mut history = given::<Document>(&[])
            .by(actor.clone())
            .when(create(&schema, json!({"systolic": systolic})))
            .events();
        for step in steps {
            let command = match step {
                Step::Transition(name, systolic) => DocumentCommand::new(schema.clone(), DocumentChange::Transition { choice: TransitionChoice::Name(name.into()), data: json!({"systolic": systolic, "note": "n"}).as_object().cloned().unwrap_or_default() }),
                Step::Update(systolic) => DocumentCommand::new(schema.clone(), DocumentChange::Update { changes: json!({"systolic": systolic}).as_object().cloned().unwrap_or_default() }),
                Step::Delete => DocumentCommand::new(schema.clone(), DocumentChange::Delete),
            };
            match given::<Document>(&history).by(actor.clone()).when(command).events_or_error() {
                Ok(events) => history.extend(events),
                // What a step may be refused for: data outside the schema, a transition that
                // does not apply or exist, a document already deleted.
                Err(
                    DocumentError::InvalidData(_)
                    | DocumentError::IllegalArgument(_)
                    | DocumentError::UnknownTransition(_)
                    | DocumentError::NotFound,
                ) => {}
                Err(other) => proptest::prop_assert!(false, "refused with {other:?}"),
            }
            let document = Document::fold(&history);
            proptest::prop_assert!(definition.statuses.contains_key(&document.status));
            proptest::prop_assert!(schema.compiled.validate_data(&Value::Object(document.data.clone())).is_ok());
        }
        for event in &history {
            if let DocumentEvent::Transitioned(t) = event {
                proptest::prop_assert!(
                    edges.contains(&(t.from_status.clone(), t.to_status.clone())),
                    "{} -> {} is not configured", t.from_status, t.to_status
                );
            }
        }
    }
}

/// The blood-pressure schema whose automatic `alarm` transition waits 30 seconds between
/// flagging the document and tagging it.
fn delayed_alarm() -> Arc<SchemaSnapshot> {
    blood_pressure(|d| {
        d.write_transition(&id(1).to_string(), &json!({
            "name": "alarm", "type": "automatic", "fromStatuses": ["new"], "toStatus": "alarm",
            "conditions": [{"type": "document", "configuration": {"type": "object", "properties": {"data": {"type": "object", "properties": {"systolic": {"type": "number", "minimum": 140}}, "required": ["systolic"]}}}}],
            "actions": [
                {"type": "set", "field": "flag.high", "value": true},
                {"type": "delay", "time": 30},
                {"type": "addItems", "field": "tags", "values": ["alarmed"]},
            ],
            "afterActions": [{"type": "task", "functionName": "page-a-doctor"}],
        }), Write::Replace)
        .unwrap();
    })
}

fn resume(schema: &Arc<SchemaSnapshot>, history: &[DocumentEvent]) -> DocumentCommand {
    DocumentCommand::new(
        schema.clone(),
        DocumentChange::Resume {
            lock: Document::fold(history).lock.map_or(0, |l| l.event),
        },
    )
}

#[test]
fn a_delay_locks_the_document_until_the_step_resumes() {
    let schema = delayed_alarm();
    let history = created_by(patient(7), &schema, json!({"systolic": 150}));
    // Created, the alarm transition up to the delay, the lock; no task yet.
    let names: Vec<&str> = history.iter().map(DocumentEvent::wire_name).collect();
    assert_eq!(
        names,
        [
            "document.created",
            "document.transitioned",
            "document.locked"
        ]
    );
    let DocumentEvent::Locked(locked) = &history[2] else {
        panic!("{history:?}")
    };
    assert_eq!(locked.since, NOW);
    assert_eq!(locked.resume_at, Timestamp(NOW.millis() + 30_000));
    assert_eq!(locked.transition_id, Some(id(1)));
    assert_eq!(locked.next_action, 2);
    let document = Document::fold(&history);
    assert_eq!(document.status, "alarm");
    assert_eq!(document.data["flag"], json!({"high": true}));
    assert!(document.lock.is_some());

    // Changes wait; reading and deleting do not.
    let update = DocumentCommand::new(
        schema.clone(),
        DocumentChange::Update {
            changes: json!({"note": "x"})
                .as_object()
                .cloned()
                .unwrap_or_default(),
        },
    );
    given::<Document>(&history)
        .by(patient(7))
        .when(update.clone())
        .then_err(DocumentError::Locked);
    given::<Document>(&history)
        .by(patient(7))
        .when(DocumentCommand::new(
            schema.clone(),
            DocumentChange::AddComment {
                id: id(61),
                text: "hello".into(),
            },
        ))
        .then_err(DocumentError::Locked);
    assert!(document.readable_by(&patient(7), &schema));
    given::<Document>(&history)
        .by(user(9, &["DELETE_DOCUMENTS"]))
        .when(DocumentCommand::new(schema.clone(), DocumentChange::Delete))
        .then(&[DocumentEvent::Deleted(DocumentDeleted {})]);

    // Only Vigil resumes, and only once the delay is over.
    given::<Document>(&history)
        .by(patient(7))
        .when(resume(&schema, &history))
        .then_err(DocumentError::NoPermission("Vigil itself".into()));
    given::<Document>(&history)
        .at(Timestamp(NOW.millis() + 29_999))
        .when(resume(&schema, &history))
        .then_err(DocumentError::NotDue);
    let resumed = given::<Document>(&history)
        .at(Timestamp(NOW.millis() + 30_000))
        .when(resume(&schema, &history))
        .events();
    let names: Vec<&str> = resumed.iter().map(DocumentEvent::wire_name).collect();
    // The after-actions of the whole step: the creation transition's, then the alarm's.
    let tasks: Vec<&str> = resumed
        .iter()
        .filter_map(|e| match e {
            DocumentEvent::TaskRequested(t) => Some(t.function_name.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(names[0], "document.resumed");
    assert_eq!(tasks, ["analyze", "page-a-doctor"]);
    let mut after = history.clone();
    after.extend(resumed);
    let document = Document::fold(&after);
    assert!(document.lock.is_none());
    assert_eq!(document.data["tags"], json!(["measured", "alarmed"]));
    given::<Document>(&after)
        .by(patient(7))
        .when(update)
        .then(&[DocumentEvent::Updated(DocumentUpdated {
            data: JsonOf(object(json!({"systolic": 150, "tags": ["measured", "alarmed"], "flag": {"high": true}, "note": "x"}))),
        })]);
    // A lock resumed already is left alone (a second node, a retry).
    given::<Document>(&after)
        .at(Timestamp(NOW.millis() + 60_000))
        .when(resume(&schema, &history))
        .then(&[]);
}

#[test]
fn a_step_paused_twice_keeps_its_first_timestamp() {
    let schema = blood_pressure(|d| {
        d.set_creation_transition(&json!({
            "type": "manual", "toStatus": "new",
            "actions": [{"type": "delay", "time": 1}, {"type": "delay", "time": 0.5}, {"type": "linkCreator"}],
        }))
        .unwrap();
    });
    let history = created_by(patient(7), &schema, json!({"systolic": 100}));
    let second = given::<Document>(&history)
        .at(Timestamp(NOW.millis() + 1_000))
        .when(resume(&schema, &history))
        .events();
    let [DocumentEvent::Resumed(_), DocumentEvent::Locked(locked)] = second.as_slice() else {
        panic!("{second:?}")
    };
    assert_eq!(locked.since, NOW);
    assert_eq!(locked.resume_at, Timestamp(NOW.millis() + 1_500));
    assert_eq!(locked.transition_id, None);
    let mut history = history;
    history.extend(second);
    let third = given::<Document>(&history)
        .at(Timestamp(NOW.millis() + 1_500))
        .when(resume(&schema, &history))
        .events();
    history.extend(third);
    let document = Document::fold(&history);
    assert!(document.lock.is_none());
    assert_eq!(document.user_ids, [id(7)]);
}

#[test]
fn comments_belong_to_their_writers() {
    let schema = blood_pressure(|_| {});
    let mut history = created_by(patient(7), &schema, json!({"systolic": 120}));
    let add = |text: &str| {
        DocumentCommand::new(
            schema.clone(),
            DocumentChange::AddComment {
                id: id(61),
                text: text.into(),
            },
        )
    };
    // Someone who cannot see the document does not find it; the owner may comment.
    given::<Document>(&history)
        .by(user(8, &[]))
        .when(add("hi"))
        .then_err(DocumentError::NotFound);
    given::<Document>(&history)
        .by(patient(7))
        .when(add("  "))
        .then_err(DocumentError::InvalidData(format!(
            "text: a comment is 1 to {LONGEST_COMMENT} characters"
        )));
    let added = given::<Document>(&history)
        .by(patient(7))
        .when(add("feeling dizzy"))
        .events();
    assert_eq!(
        added,
        [DocumentEvent::CommentAdded(CommentAdded {
            comment_id: id(61),
            schema_id: id(30),
            creator_id: Some(id(7)),
            text: Personal("feeling dizzy".into()),
            comment_count: 1,
        })]
    );
    history.extend(added);
    // A reader with the permission may comment too, but not change another's comment.
    let reader = user(8, &["VIEW_DOCUMENTS", "CREATE_DOCUMENT_COMMENTS"]);
    given::<Document>(&history)
        .by(reader.clone())
        .when(add("noted"))
        .events();
    let update = DocumentCommand::new(
        schema.clone(),
        DocumentChange::UpdateComment {
            id: id(61),
            text: "edited".into(),
        },
    );
    given::<Document>(&history)
        .by(reader)
        .when(update.clone())
        .then_err(DocumentError::NoPermission(
            "UPDATE_DOCUMENT_COMMENTS:bp".into(),
        ));
    given::<Document>(&history)
        .by(patient(7))
        .when(update)
        .then(&[DocumentEvent::CommentUpdated(CommentUpdated {
            comment_id: id(61),
            text: Personal("edited".into()),
        })]);
    let remove = |comment: u8| {
        DocumentCommand::new(
            schema.clone(),
            DocumentChange::RemoveComment { id: id(comment) },
        )
    };
    given::<Document>(&history)
        .by(user(8, &["VIEW_DOCUMENTS", "UPDATE_DOCUMENT_COMMENTS"]))
        .when(remove(61))
        .events();
    given::<Document>(&history)
        .by(patient(7))
        .when(remove(62))
        .then_err(DocumentError::UnknownComment(id(62)));
    history.extend(
        given::<Document>(&history)
            .by(patient(7))
            .when(remove(61))
            .events(),
    );
    assert!(Document::fold(&history).comments.is_empty());
}

#[test]
fn a_guarded_command_needs_the_document_as_it_was() {
    let schema = blood_pressure(|_| {});
    let history = created_by(patient(7), &schema, json!({"systolic": 120}));
    let guarded = |seen: u64| {
        let changes = json!({"note": "x"})
            .as_object()
            .cloned()
            .unwrap_or_default();
        DocumentCommand::new(schema.clone(), DocumentChange::Update { changes }).guarded(seen)
    };
    let seen = Document::fold(&history).events;
    assert_eq!(
        given::<Document>(&history)
            .by(patient(7))
            .when(guarded(seen))
            .events()
            .len(),
        1
    );
    given::<Document>(&history)
        .by(patient(7))
        .when(guarded(seen - 1))
        .then_err(DocumentError::Stale);
    given::<Document>(&history)
        .by(user(9, &[]))
        .when(guarded(seen))
        .then_err(DocumentError::NotFound);
}

#[test]
fn fields_outside_the_schema_are_refused_when_written_and_kept_when_left_alone() {
    let with_extra = blood_pressure(|d| {
        d.write_property("extra", &json!({"type": "string"}), Write::Add)
            .unwrap();
    });
    let history = created_by(
        patient(7),
        &with_extra,
        json!({"extra": "kept", "systolic": 120}),
    );
    // The property is removed from the schema; the document keeps it and stays usable.
    let without = blood_pressure(|_| {});
    let update = |changes: Value| {
        DocumentCommand::new(
            without.clone(),
            DocumentChange::Update {
                changes: changes.as_object().cloned().unwrap_or_default(),
            },
        )
    };
    assert_eq!(
        given::<Document>(&history)
            .by(patient(7))
            .when(update(json!({"systolic": 121})))
            .events()
            .len(),
        1
    );
    let changed = given::<Document>(&history)
        .by(patient(7))
        .when(update(json!({"extra": "changed"})))
        .events_or_error();
    assert!(
        matches!(changed, Err(DocumentError::InvalidData(_))),
        "{changed:?}"
    );
    // An action writing outside the schema is refused with the step.
    let setting = blood_pressure(|d| {
        d.creation_transition.actions.push(Action::Set {
            field: "elsewhere".into(),
            value: json!(1),
        });
    });
    let refused = given::<Document>(&[])
        .by(patient(7))
        .when(create(&setting, json!({})))
        .events_or_error();
    assert!(
        matches!(refused, Err(DocumentError::InvalidData(_))),
        "{refused:?}"
    );
}

#[test]
fn paths_and_data_are_bounded() {
    let schema = blood_pressure(|_| {});
    let history = created_by(patient(7), &schema, json!({}));
    let deep_path = vec!["a"; 17].join(".");
    let refused = given::<Document>(&history)
        .by(patient(7))
        .when(DocumentCommand::new(
            schema.clone(),
            DocumentChange::AppendToArray {
                field: deep_path,
                id: id(60),
                object: Map::new(),
            },
        ))
        .events_or_error();
    assert!(
        matches!(refused, Err(DocumentError::InvalidData(_))),
        "{refused:?}"
    );
    let mut deep = json!(1);
    for _ in 0..40 {
        deep = json!([deep]);
    }
    let refused = given::<Document>(&history)
        .by(patient(7))
        .when(DocumentCommand::new(
            schema.clone(),
            DocumentChange::Update {
                changes: json!({"tags": deep})
                    .as_object()
                    .cloned()
                    .unwrap_or_default(),
            },
        ))
        .events_or_error();
    assert!(
        matches!(&refused, Err(DocumentError::InvalidData(m)) if m.contains("deeper")),
        "{refused:?}"
    );
}

#[test]
fn a_command_on_a_stream_that_names_no_document_is_refused() {
    let stream = crate::id::StreamId::new(Document::KIND, "not-an-id").unwrap();
    let actor = Actor::system(Via::Cli);
    let ctx = Ctx {
        now: NOW,
        actor: &actor,
        stream: &stream,
    };
    let created = Document::default().handle(
        &DocumentCommand::new(
            blood_pressure(|_| {}),
            DocumentChange::Create { data: Map::new() },
        ),
        &ctx,
    );
    assert!(
        matches!(&created, Err(DocumentError::NotADocumentStream(s)) if *s == stream),
        "{created:?}"
    );
}
