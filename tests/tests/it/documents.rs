//! Documents over HTTP, in both deployments: the workflow at creation, who sees what under the
//! default modes, RQL on `data` paths compiled for each backend, updates, transitions, deletion.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use vigil_tests::{TestEnv, TestServer};

use crate::http::{code, plain_token, plain_user};
use crate::in_both_deployments;

const GROUP: &str = "5e9f0000000000000000d0c5";

fn ids(page: &Value) -> Vec<String> {
    page["data"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|d| d["id"].as_str().map(str::to_owned))
        .collect()
}

/// Logs a plain user in.
async fn token(server: &TestServer, email: &str) -> anyhow::Result<String> {
    let tokens = server.login(email, "jane's password").await?;
    Ok(tokens["access_token"]
        .as_str()
        .unwrap_or_default()
        .to_owned())
}

async fn configure(server: &TestServer, admin: Option<&str>) -> anyhow::Result<()> {
    let (status, body) = server
        .call(
            Method::POST,
            "/data/v1/",
            admin,
            Some(json!({"name": "blood-pressure", "description": "BP"})),
        )
        .await?;
    assert_eq!(status, StatusCode::OK, "{body}");
    let properties = [
        ("systolic", json!({"type": "number", "minimum": 0})),
        ("note", json!({"type": "string"})),
        (
            "tags",
            json!({"type": "array", "items": {"type": "string"}}),
        ),
        (
            "readings",
            json!({"type": "array", "items": {"type": "object", "properties": {"value": {"type": "number"}}}}),
        ),
        ("measured", json!({"type": "string"})),
    ];
    for (name, configuration) in properties {
        let (status, body) = server
            .call(
                Method::POST,
                "/data/v1/blood-pressure/properties",
                admin,
                Some(json!({"name": name, "configuration": configuration})),
            )
            .await?;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    for status_name in ["analyzed", "reviewed"] {
        server
            .call(
                Method::POST,
                "/data/v1/blood-pressure/statuses",
                admin,
                Some(json!({"name": status_name})),
            )
            .await?;
    }
    let steps = [
        (
            "PUT",
            "/data/v1/blood-pressure/creationTransition",
            json!({
                "type": "manual", "toStatus": "new",
                "actions": [{"type": "linkCreator"}, {"type": "linkEnlistedGroups"}],
            }),
        ),
        (
            "POST",
            "/data/v1/blood-pressure/transitions",
            json!({
                "name": "analyze", "type": "automatic", "fromStatuses": ["new"], "toStatus": "analyzed",
                "conditions": [{"type": "document", "configuration": {"type": "object", "properties": {"data": {"type": "object", "properties": {"systolic": {"type": "number", "minimum": 140}}, "required": ["systolic"]}}}}],
            }),
        ),
        (
            "POST",
            "/data/v1/blood-pressure/transitions",
            json!({
                "name": "review", "type": "manual", "fromStatuses": ["analyzed"], "toStatus": "reviewed",
                "actions": [{"type": "addItems", "field": "tags", "values": ["reviewed"]}],
            }),
        ),
    ];
    for (method, path, body) in steps {
        let (status, answer) = server
            .call(
                Method::from_bytes(method.as_bytes())?,
                path,
                admin,
                Some(body),
            )
            .await?;
        assert_eq!(status, StatusCode::OK, "{path}: {answer}");
    }
    Ok(())
}

in_both_deployments! {
    async fn documents_follow_their_workflow_and_lists_show_only_what_may_be_read(deployment: Deployment) {
        let env = TestEnv::new(deployment).await?;
        let server = TestServer::start(&env).await?;
        let admin = server.admin_token().await?;
        let admin = Some(admin.as_str());
        configure(&server, admin).await?;

        let patient_id = plain_user(&server, "patient@example.com").await?;
        let physician_id = plain_user(&server, "physician@example.com").await?;
        server.call(Method::POST, &format!("/users/v1/{patient_id}/patient_enlistments"), admin, Some(json!({"group_id": GROUP}))).await?;
        server.call(Method::POST, &format!("/users/v1/add_to_staff?eq(id,{physician_id})"), admin, Some(json!({"groups": [GROUP]}))).await?;
        let patient = token(&server, "patient@example.com").await?;
        let physician = token(&server, "physician@example.com").await?;
        let stranger = plain_token(&server, "stranger@example.com").await?;
        let (patient, physician, stranger) = (Some(patient.as_str()), Some(physician.as_str()), Some(stranger.as_str()));

        // Creation runs the creation transition (links) and then the automatic one.
        let mut created = Vec::new();
        for data in [
            json!({"systolic": 150, "tags": ["a", "b"], "readings": [{"value": 1}, {"value": 5}], "note": "Morning rest", "measured": "2026-11-20T08:00:00.000Z"}),
            json!({"systolic": 120, "tags": ["b"], "measured": "2026-11-21T08:00:00.000Z"}),
            json!({"systolic": 130.5, "note": "évening", "readings": [{"value": 2}]}),
        ] {
            let (status, document) = server.call(Method::POST, "/data/v1/blood-pressure/documents", patient, Some(data.clone())).await?;
            assert_eq!(status, StatusCode::OK, "{document}");
            assert_eq!(document["data"], data);
            assert_eq!(document["creatorId"], patient_id.as_str());
            assert_eq!(document["userIds"], json!([patient_id]));
            assert_eq!(document["groupIds"], json!([GROUP]));
            created.push(document);
        }
        assert_eq!(created[0]["status"], "analyzed");
        assert_eq!(created[1]["status"], "new");
        let [high, calm, evening] = [0, 1, 2].map(|i| created[i]["id"].as_str().unwrap_or_default().to_owned());

        let (status, invalid) = server.call(Method::POST, "/data/v1/blood-pressure/documents", patient, Some(json!({"systolic": "high"}))).await?;
        assert_eq!((status, code(&invalid)), (StatusCode::BAD_REQUEST, Some(15)), "{invalid}");
        assert!(invalid["message"].as_str().is_some_and(|m| m.contains("/systolic")), "{invalid}");

        // Who sees what: the patient (linked user), the physician (staff of the group), nobody else.
        let get = |token: Option<&str>, rql: &str| {
            let path = format!("/data/v1/blood-pressure/documents{rql}");
            let token = token.map(str::to_owned);
            let server = &server;
            async move {
                let (status, page) = server.call(Method::GET, &path, token.as_deref(), None).await?;
                assert_eq!(status, StatusCode::OK, "{path}: {page}");
                anyhow::Ok(page)
            }
        };
        assert_eq!(get(patient, "").await?["page"]["total"], 3);
        assert_eq!(get(physician, "").await?["page"]["total"], 3);
        let none = get(stranger, "").await?;
        assert_eq!((none["page"]["total"].clone(), none["data"].clone()), (json!(0), json!([])));
        assert_eq!(get(admin, "").await?["page"]["total"], 3);
        // A create answers the document exactly as the read models then list it.
        for document in &created {
            let page = get(admin, &format!("?eq(id,{})", document["id"].as_str().unwrap_or_default())).await?;
            assert_eq!(page["data"][0], *document);
        }

        // RQL on data paths.
        let cases: Vec<(String, Vec<&String>)> = vec![
            ("?eq(data.systolic,150)".into(), vec![&high]),
            ("?eq(data.systolic,130.5)".into(), vec![&evening]),
            ("?gt(data.systolic,125)".into(), vec![&high, &evening]),
            ("?le(data.systolic,130.5)".into(), vec![&calm, &evening]),
            ("?in(data.systolic,120,150)".into(), vec![&high, &calm]),
            ("?out(data.systolic,120,150)".into(), vec![&evening]),
            ("?eq(data.tags,b)".into(), vec![&high, &calm]),
            ("?ne(data.tags,a)".into(), vec![&calm, &evening]),
            ("?like(data.note,morning)".into(), vec![&high]),
            ("?like(data.note,%C3%A9vening)".into(), vec![&evening]),
            ("?contains(data.readings,gt(value,4))".into(), vec![&high]),
            ("?excludes(data.readings,gt(value,4))".into(), vec![&calm, &evening]),
            ("?excludes(data.note)".into(), vec![&calm]),
            ("?contains(data,gt(systolic,125),lt(systolic,140))".into(), vec![&evening]),
            ("?contains(data.note)".into(), vec![&high, &evening]),
            ("?eq(data.note,null)".into(), vec![&calm]),
            ("?eq(data.systolic,string:150)".into(), vec![]),
            ("?ge(data.measured,2026-11-21T00:00:00.000Z)".into(), vec![&calm]),
            ("?and(eq(status,new),lt(data.systolic,125))".into(), vec![&calm]),
            ("?or(eq(status,analyzed),eq(data.tags,b))".into(), vec![&high, &calm]),
            (format!("?eq(userIds,{patient_id})"), vec![&high, &calm, &evening]),
            (format!("?eq(groupIds,{GROUP})&eq(creatorId,{patient_id})&eq(id,{calm})"), vec![&calm]),
        ];
        for (rql, expected) in cases {
            let page = get(patient, &rql).await?;
            let mut found = ids(&page);
            found.sort();
            let mut expected: Vec<String> = expected.into_iter().cloned().collect();
            expected.sort();
            assert_eq!(found, expected, "{rql}");
            assert_eq!(page["page"]["total"], json!(expected.len()), "{rql}");
        }
        let sorted = get(patient, "?sort(-data.systolic)").await?;
        assert_eq!(ids(&sorted), [high.as_str(), evening.as_str(), calm.as_str()]);
        let sorted = get(patient, "?sort(data.note,-creationTimestamp)").await?;
        assert_eq!(ids(&sorted), [calm.as_str(), high.as_str(), evening.as_str()], "missing first, then by code point");
        let paged = get(patient, "?sort(data.systolic)&limit(1,1)&select(id,data.systolic)").await?;
        assert_eq!(paged["data"], json!([{"id": evening, "data": {"systolic": 130.5}}]));
        assert_eq!(paged["page"], json!({"total": 3, "offset": 1, "limit": 1}));
        let (status, bad) = server.call(Method::GET, "/data/v1/blood-pressure/documents?eq(data.a%22b,1)", patient, None).await?;
        assert_eq!((status, code(&bad)), (StatusCode::BAD_REQUEST, Some(19)), "{bad}");

        // Updates: partial, `null` clears, guarded by RQL.
        let path = format!("/data/v1/blood-pressure/documents/{calm}");
        let (status, body) = server.call(Method::PUT, &path, patient, Some(json!({"note": "after walk", "measured": null}))).await?;
        assert_eq!((status, body), (StatusCode::OK, json!({"affectedRecords": 1})));
        let page = get(patient, &format!("?eq(id,{calm})")).await?;
        assert_eq!(page["data"][0]["data"], json!({"systolic": 120, "tags": ["b"], "note": "after walk"}));
        // The schema's id names it as well as its name does (a task's `schemaId`).
        let (_, schemas) = server.call(Method::GET, "/data/v1/?eq(name,blood-pressure)", admin, None).await?;
        let schema_id = schemas["data"][0]["id"].as_str().unwrap_or_default().to_owned();
        let by_id = format!("/data/v1/{schema_id}/documents/{calm}");
        let (status, body) = server.call(Method::PUT, &by_id, patient, Some(json!({"note": "after walk"}))).await?;
        assert_eq!((status, body), (StatusCode::OK, json!({"affectedRecords": 1})));
        let (_, body) = server.call(Method::PUT, &format!("{path}?eq(status,analyzed)"), patient, Some(json!({"note": "x"}))).await?;
        assert_eq!(body, json!({"affectedRecords": 0}), "the guard excludes it");
        let (status, body) = server.call(Method::PUT, &path, stranger, Some(json!({"note": "x"}))).await?;
        assert_eq!((status, code(&body)), (StatusCode::NOT_FOUND, Some(16)), "{body}");
        let (status, body) = server.call(Method::POST, &format!("{path}/deleteFields"), physician, Some(json!({"fields": ["note"]}))).await?;
        assert_eq!((status, body), (StatusCode::OK, json!({"affectedRecords": 1})));

        // A manual transition by name; from the wrong status it is refused.
        let high_path = format!("/data/v1/blood-pressure/documents/{high}");
        let (status, body) = server.call(Method::POST, &format!("{path}/transition"), physician, Some(json!({"name": "review"}))).await?;
        assert_eq!((status, code(&body)), (StatusCode::BAD_REQUEST, Some(26)), "{body}");
        let (status, body) = server.call(Method::POST, &format!("{high_path}/transition"), physician, Some(json!({"name": "review"}))).await?;
        assert_eq!((status, body), (StatusCode::OK, json!({"affectedRecords": 1})));
        let page = get(patient, &format!("?eq(id,{high})")).await?;
        assert_eq!(page["data"][0]["status"], "reviewed");
        assert_eq!(page["data"][0]["data"]["tags"], json!(["a", "b", "reviewed"]));

        // Deletion needs the permission under the default delete mode.
        let (status, body) = server.call(Method::DELETE, &high_path, patient, None).await?;
        assert_eq!((status, code(&body)), (StatusCode::UNAUTHORIZED, Some(10)), "{body}");
        let (status, _) = server.call(Method::DELETE, &high_path, admin, None).await?;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(get(patient, "").await?["page"]["total"], 2);

        // The log keeps every step of the document.
        let history: Vec<String> = server.history(&format!("document-{high}")).await?.into_iter().map(|(name, _)| name).collect();
        assert_eq!(history, ["document.created", "document.transitioned", "document.transitioned", "document.deleted"]);
        Ok(())
    }
}

in_both_deployments! {
    async fn links_and_arrays_of_objects(deployment: Deployment) {
        let env = TestEnv::new(deployment).await?;
        let server = TestServer::start(&env).await?;
        let admin = server.admin_token().await?;
        let admin = Some(admin.as_str());
        configure(&server, admin).await?;
        let patient_id = plain_user(&server, "patient@example.com").await?;
        let patient = token(&server, "patient@example.com").await?;
        let other = plain_token(&server, "other@example.com").await?;
        let (patient, other) = (Some(patient.as_str()), Some(other.as_str()));

        let (_, document) = server
            .call(Method::POST, "/data/v1/blood-pressure/documents", patient, Some(json!({"readings": [{"value": 1}]})))
            .await?;
        let id = document["id"].as_str().unwrap_or_default().to_owned();
        let base = format!("/data/v1/blood-pressure/documents/{id}");
        let read = |token| {
            let path = format!("/data/v1/blood-pressure/documents?eq(id,{id})");
            let server = &server;
            async move {
                let (_, page) = server.call(Method::GET, &path, token, None).await?;
                anyhow::Ok(page["data"][0].clone())
            }
        };

        // Links: the global permission only; the other user sees the document once linked.
        let (status, body) = server.call(Method::POST, &format!("{base}/linkGroups"), patient, Some(json!({"groupIds": [GROUP]}))).await?;
        assert_eq!((status, code(&body)), (StatusCode::UNAUTHORIZED, Some(10)), "{body}");
        let (status, body) = server.call(Method::POST, &format!("{base}/linkGroups"), admin, Some(json!({"groupIds": [GROUP, "5e9f0000000000000000d0c6"]}))).await?;
        assert_eq!((status, body), (StatusCode::OK, json!({"affectedRecords": 1})));
        assert_eq!(read(other).await?, Value::Null);
        let other_id = server.call(Method::GET, "/users/v1/me", other, None).await?.1["id"].as_str().unwrap_or_default().to_owned();
        let linked = server.call(Method::POST, &format!("{base}/linkUsers"), admin, Some(json!({"userIds": [other_id]}))).await?;
        assert_eq!(linked, (StatusCode::OK, json!({"affectedRecords": 1})));
        assert_eq!(read(other).await?["userIds"], json!([patient_id, other_id]));
        let unlinked = server.call(Method::POST, &format!("{base}/unlinkGroups"), admin, Some(json!({"groupIds": [GROUP]}))).await?;
        assert_eq!(unlinked.0, StatusCode::OK);
        assert_eq!(read(patient).await?["groupIds"], json!(["5e9f0000000000000000d0c6"]));
        let unlinked = server.call(Method::POST, &format!("{base}/unlinkGroups"), admin, Some(json!({}))).await?;
        assert_eq!(unlinked.0, StatusCode::OK);
        assert_eq!(read(patient).await?["groupIds"], json!([]));
        let unlinked = server.call(Method::POST, &format!("{base}/unlinkUsers"), admin, Some(json!({"userIds": [other_id]}))).await?;
        assert_eq!(unlinked.0, StatusCode::OK);
        assert_eq!(read(other).await?, Value::Null);
        let (status, body) = server.call(Method::POST, &format!("{base}/linkUsers"), admin, Some(json!({"userIds": ["nope"]}))).await?;
        assert_eq!((status, code(&body)), (StatusCode::BAD_REQUEST, Some(12)), "{body}");

        // Arrays of objects: elements get ids, are changed and removed by them.
        let (status, element) = server.call(Method::POST, &format!("{base}/readings/"), patient, Some(json!({"value": 2}))).await?;
        assert_eq!(status, StatusCode::OK, "{element}");
        let element_id = element["id"].as_str().unwrap_or_default().to_owned();
        assert_eq!(element, json!({"value": 2, "id": element_id}));
        let (status, _) = server.call(Method::PUT, &format!("{base}/readings/{element_id}"), patient, Some(json!({"value": 3}))).await?;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(read(patient).await?["data"]["readings"], json!([{"value": 1}, {"value": 3, "id": element_id}]));
        let (status, body) = server.call(Method::PUT, &format!("{base}/readings/{element_id}"), patient, Some(json!({"value": "high"}))).await?;
        assert_eq!((status, code(&body)), (StatusCode::BAD_REQUEST, Some(15)), "{body}");
        let (status, _) = server.call(Method::DELETE, &format!("{base}/readings/{element_id}"), patient, None).await?;
        assert_eq!(status, StatusCode::OK);
        let (status, body) = server.call(Method::DELETE, &format!("{base}/readings/{element_id}"), patient, None).await?;
        assert_eq!((status, code(&body)), (StatusCode::NOT_FOUND, Some(16)), "{body}");
        let (status, body) = server.call(Method::POST, &format!("{base}/note"), patient, Some(json!({"value": 2}))).await?;
        assert_eq!((status, code(&body)), (StatusCode::BAD_REQUEST, Some(15)), "not an array property: {body}");
        assert_eq!(read(patient).await?["data"]["readings"], json!([{"value": 1}]));
        let deep = vec!["a"; 17].join(".");
        let (status, body) = server.call(Method::POST, &format!("{base}/{deep}"), patient, Some(json!({}))).await?;
        assert_eq!((status, code(&body)), (StatusCode::BAD_REQUEST, Some(15)), "{body}");
        Ok(())
    }
}

in_both_deployments! {
    async fn a_guarded_update_is_decided_on_the_document_it_was_checked_against(deployment: Deployment) {
        let env = TestEnv::new(deployment).await?;
        let server = TestServer::start(&env).await?;
        let admin = server.admin_token().await?;
        let admin = Some(admin.as_str());
        configure(&server, admin).await?;
        let (_, document) = server
            .call(Method::POST, "/data/v1/blood-pressure/documents", admin, Some(json!({"systolic": 1})))
            .await?;
        let path = format!("/data/v1/blood-pressure/documents/{}?eq(data.systolic,1)", document["id"].as_str().unwrap_or_default());
        // Ten writers race to move the value on from 1; the guard lets exactly one of them.
        let writes = (2..12).map(|value| {
            let path = path.clone();
            let server = &server;
            async move { server.call(Method::PUT, &path, admin, Some(json!({"systolic": value}))).await }
        });
        let answers = futures::future::try_join_all(writes).await?;
        let written: Vec<&Value> = answers.iter().map(|(_, body)| &body["affectedRecords"]).collect();
        assert_eq!(written.iter().filter(|n| ***n == json!(1)).count(), 1, "{answers:?}");
        assert_eq!(written.iter().filter(|n| ***n == json!(0)).count(), 9, "{answers:?}");
        let history = server.history(&format!("document-{}", document["id"].as_str().unwrap_or_default())).await?;
        assert_eq!(history.len(), 2, "one update: {history:?}");
        Ok(())
    }
}

/// The `groupIds` of a document as `token` lists it, once they are `expected` (within 10 s).
async fn groups_become(
    server: &TestServer,
    token: Option<&str>,
    schema: &str,
    id: &str,
    expected: Value,
) -> anyhow::Result<()> {
    let path = format!("/data/v1/{schema}/documents?eq(id,{id})");
    let mut seen = Value::Null;
    for _ in 0..100 {
        let (_, page) = server.call(Method::GET, &path, token, None).await?;
        seen = page["data"][0]["groupIds"].clone();
        if seen == expected {
            return Ok(());
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    anyhow::bail!("the groups of {id} stayed {seen}, not {expected}")
}

in_both_deployments! {
    async fn groups_follow_patient_enlistments_under_a_group_sync_mode(deployment: Deployment) {
        let env = TestEnv::new(deployment).await?;
        let server = TestServer::start(&env).await?;
        let admin = server.admin_token().await?;
        let admin = Some(admin.as_str());
        for (name, mode) in [("synced", "creatorPatientEnlistments"), ("later", "disabled")] {
            let (status, body) = server
                .call(Method::POST, "/data/v1/", admin, Some(json!({"name": name, "description": "", "groupSyncMode": mode})))
                .await?;
            assert_eq!(status, StatusCode::OK, "{body}");
        }
        let patient_id = plain_user(&server, "patient@example.com").await?;
        let enlist = |group: &'static str| {
            let path = format!("/users/v1/{patient_id}/patient_enlistments");
            let server = &server;
            async move { server.call(Method::POST, &path, admin, Some(json!({"group_id": group}))).await }
        };
        assert_eq!(enlist(GROUP).await?.0, StatusCode::OK);
        let patient = token(&server, "patient@example.com").await?;
        let patient = Some(patient.as_str());
        let (_, synced) = server.call(Method::POST, "/data/v1/synced/documents", patient, Some(json!({}))).await?;
        let (_, later) = server.call(Method::POST, "/data/v1/later/documents", patient, Some(json!({}))).await?;
        let (synced, later) = (synced["id"].as_str().unwrap_or_default().to_owned(), later["id"].as_str().unwrap_or_default().to_owned());
        groups_become(&server, admin, "synced", &synced, json!([GROUP])).await?;
        groups_become(&server, admin, "later", &later, json!([])).await?;

        // A new enlistment, then a removed one: the synced document follows, the other does not.
        const SECOND: &str = "5e9f0000000000000000d0c7";
        assert_eq!(enlist(SECOND).await?.0, StatusCode::OK);
        groups_become(&server, admin, "synced", &synced, json!([GROUP, SECOND])).await?;
        let (status, _) = server.call(Method::DELETE, &format!("/users/v1/{patient_id}/patient_enlistments/{GROUP}"), admin, None).await?;
        assert_eq!(status, StatusCode::OK);
        groups_become(&server, admin, "synced", &synced, json!([SECOND])).await?;
        groups_become(&server, admin, "later", &later, json!([])).await?;

        // A mode set later applies to the documents already there.
        let (status, _) = server.call(Method::PUT, "/data/v1/later", admin, Some(json!({"groupSyncMode": "creatorPatientEnlistments"}))).await?;
        assert_eq!(status, StatusCode::OK);
        groups_become(&server, admin, "later", &later, json!([SECOND])).await?;
        let history = server.history(&format!("document-{later}")).await?;
        assert_eq!(history.last().map(|(name, _)| name.as_str()), Some("document.groups_changed"));
        Ok(())
    }
}

/// The document `id` of `schema` as `token` lists it, once `ready` holds for it (within 15 s).
async fn document_once(
    server: &TestServer,
    token: Option<&str>,
    schema: &str,
    id: &str,
    ready: impl Fn(&Value) -> bool,
) -> anyhow::Result<Value> {
    let path = format!("/data/v1/{schema}/documents?eq(id,{id})");
    let mut seen = Value::Null;
    for _ in 0..150 {
        let (_, page) = server.call(Method::GET, &path, token, None).await?;
        seen = page["data"][0].clone();
        if ready(&seen) {
            return Ok(seen);
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    anyhow::bail!("document {id} stayed {seen}")
}

in_both_deployments! {
    async fn a_delay_locks_the_document_until_its_step_resumes_on_any_node(deployment: Deployment) {
        let env = TestEnv::new(deployment).await?;
        let first = TestServer::start(&env).await?;
        let second = TestServer::another_node(&env, &first).await?;
        // Each node is asked with a token it issued (another node's follows within a second).
        let (admin, first_admin) = (second.admin_token().await?, first.admin_token().await?);
        let (admin, first_admin) = (Some(admin.as_str()), Some(first_admin.as_str()));
        configure(&first, first_admin).await?;
        let (status, body) = first
            .call(Method::PUT, "/data/v1/blood-pressure/creationTransition", first_admin, Some(json!({
                "type": "manual", "toStatus": "new",
                "actions": [
                    {"type": "addItems", "field": "tags", "values": ["measured"]},
                    {"type": "delay", "time": 1.5},
                    {"type": "addItems", "field": "tags", "values": ["checked"]},
                ],
            })))
            .await?;
        assert_eq!(status, StatusCode::OK, "{body}");

        let (status, document) = first.call(Method::POST, "/data/v1/blood-pressure/documents", first_admin, Some(json!({"systolic": 120}))).await?;
        assert_eq!(status, StatusCode::OK, "{document}");
        let id = document["id"].as_str().unwrap_or_default().to_owned();
        assert_eq!(document["data"]["tags"], json!(["measured"]));
        assert_eq!(document["transitionLock"]["timestamp"], document["creationTimestamp"], "{document}");
        let (_, listed) = first.call(Method::GET, &format!("/data/v1/blood-pressure/documents?eq(id,{id})"), first_admin, None).await?;
        assert_eq!(listed["data"][0], document, "a create answers the document as it is listed");

        // While the step is paused, changes are refused; reads go on.
        let path = format!("/data/v1/blood-pressure/documents/{id}");
        let refused = [
            (Method::PUT, path.clone(), json!({"note": "x"})),
            (Method::POST, format!("{path}/deleteFields"), json!({"fields": ["systolic"]})),
            (Method::POST, format!("{path}/readings"), json!({"value": 1})),
            (Method::POST, format!("{path}/comments"), json!({"text": "x"})),
        ];
        for (method, path, body) in refused {
            let (status, answer) = second.call(method, &path, admin, Some(body)).await?;
            assert_eq!((status, code(&answer)), (StatusCode::BAD_REQUEST, Some(415)), "{path}: {answer}");
            assert_eq!(answer["name"], "LOCKED_DOCUMENT_EXCEPTION");
        }

        // The node that locked it stops; the other resumes the step when it is due.
        first.stop().await?;
        let resumed = document_once(&second, admin, "blood-pressure", &id, |d| d.get("transitionLock").is_none()).await?;
        assert_eq!(resumed["data"]["tags"], json!(["measured", "checked"]));
        let (status, body) = second.call(Method::PUT, &path, admin, Some(json!({"note": "after"}))).await?;
        assert_eq!((status, body), (StatusCode::OK, json!({"affectedRecords": 1})));
        let history: Vec<String> = second.history(&format!("document-{id}")).await?.into_iter().map(|(name, _)| name).collect();
        assert_eq!(history, ["document.created", "document.locked", "document.resumed", "document.updated"]);

        // Deletion is not held up by a lock.
        let (_, locked) = second.call(Method::POST, "/data/v1/blood-pressure/documents", admin, Some(json!({}))).await?;
        let locked_path = format!("/data/v1/blood-pressure/documents/{}", locked["id"].as_str().unwrap_or_default());
        assert!(locked.get("transitionLock").is_some(), "{locked}");
        let (status, body) = second.call(Method::DELETE, &locked_path, admin, None).await?;
        assert_eq!((status, body), (StatusCode::OK, json!({"affectedRecords": 1})));
        Ok(())
    }
}

in_both_deployments! {
    async fn concurrent_writers_never_lose_an_update(deployment: Deployment) {
        let env = TestEnv::new(deployment).await?;
        let server = TestServer::start(&env).await?;
        let admin = server.admin_token().await?;
        let admin = Some(admin.as_str());
        configure(&server, admin).await?;
        let (_, document) = server.call(Method::POST, "/data/v1/blood-pressure/documents", admin, Some(json!({"readings": []}))).await?;
        let id = document["id"].as_str().unwrap_or_default().to_owned();
        // Sixteen writers append at once and two more change other fields: every write lands.
        let path = format!("/data/v1/blood-pressure/documents/{id}");
        let appends = (0..16).map(|value| {
            let path = format!("{path}/readings");
            let server = &server;
            async move { server.call(Method::POST, &path, admin, Some(json!({"value": value}))).await }
        });
        let updates = [json!({"note": "n"}), json!({"systolic": 99})].map(|body| {
            let path = path.clone();
            let server = &server;
            async move { server.call(Method::PUT, &path, admin, Some(body)).await }
        });
        let (appended, updated) = futures::future::join(
            futures::future::try_join_all(appends),
            futures::future::try_join_all(updates),
        )
        .await;
        for (status, body) in appended?.into_iter().chain(updated?) {
            assert_eq!(status, StatusCode::OK, "{body}");
        }
        let document = document_once(&server, admin, "blood-pressure", &id, |_| true).await?;
        let mut values: Vec<i64> = document["data"]["readings"].as_array().into_iter().flatten().filter_map(|r| r["value"].as_i64()).collect();
        values.sort_unstable();
        assert_eq!(values, (0..16).collect::<Vec<_>>(), "{document}");
        assert_eq!((document["data"]["note"].clone(), document["data"]["systolic"].clone()), (json!("n"), json!(99)));
        assert_eq!(server.history(&format!("document-{id}")).await?.len(), 19);
        Ok(())
    }
}

in_both_deployments! {
    async fn comments_on_documents(deployment: Deployment) {
        let env = TestEnv::new(deployment).await?;
        let server = TestServer::start(&env).await?;
        let admin = server.admin_token().await?;
        let admin = Some(admin.as_str());
        configure(&server, admin).await?;
        let patient_id = plain_user(&server, "patient@example.com").await?;
        let physician_id = plain_user(&server, "physician@example.com").await?;
        server.call(Method::POST, &format!("/users/v1/{patient_id}/patient_enlistments"), admin, Some(json!({"group_id": GROUP}))).await?;
        server.call(Method::POST, &format!("/users/v1/add_to_staff?eq(id,{physician_id})"), admin, Some(json!({"groups": [GROUP]}))).await?;
        let patient = token(&server, "patient@example.com").await?;
        let physician = token(&server, "physician@example.com").await?;
        let stranger = plain_token(&server, "stranger@example.com").await?;
        let (patient, physician, stranger) = (Some(patient.as_str()), Some(physician.as_str()), Some(stranger.as_str()));
        let (_, document) = server.call(Method::POST, "/data/v1/blood-pressure/documents", patient, Some(json!({"systolic": 120}))).await?;
        let id = document["id"].as_str().unwrap_or_default().to_owned();
        assert_eq!(document["commentCount"], 0);
        let comments = format!("/data/v1/blood-pressure/documents/{id}/comments");

        let (status, comment) = server.call(Method::POST, &comments, patient, Some(json!({"text": "Felt dizzy"}))).await?;
        assert_eq!(status, StatusCode::OK, "{comment}");
        let comment_id = comment["id"].as_str().unwrap_or_default().to_owned();
        assert_eq!((comment["text"].clone(), comment["creatorId"].clone(), comment["documentId"].clone()), (json!("Felt dizzy"), json!(patient_id), json!(id)));
        let (_, schemas) = server.call(Method::GET, "/data/v1/?eq(name,blood-pressure)", admin, None).await?;
        assert_eq!(comment["schemaId"], schemas["data"][0]["id"]);
        let (status, body) = server.call(Method::POST, &comments, patient, Some(json!({"text": ""}))).await?;
        assert_eq!((status, code(&body)), (StatusCode::BAD_REQUEST, Some(15)), "{body}");

        // The staff of the patient's group read the document, but its comments need the permission.
        let (status, body) = server.call(Method::GET, &comments, physician, None).await?;
        assert_eq!((status, code(&body)), (StatusCode::UNAUTHORIZED, Some(10)), "{body}");
        let (status, body) = server.call(Method::GET, &comments, stranger, None).await?;
        assert_eq!((status, code(&body)), (StatusCode::NOT_FOUND, Some(16)), "{body}");
        let (status, body) = server.call(Method::POST, &comments, stranger, Some(json!({"text": "spam"}))).await?;
        assert_eq!((status, code(&body)), (StatusCode::NOT_FOUND, Some(16)), "{body}");
        let (status, page) = server.call(Method::POST, &comments, admin, Some(json!({"text": "Seen"}))).await?;
        assert_eq!(status, StatusCode::OK, "{page}");
        let (status, page) = server.call(Method::GET, &format!("{comments}?eq(creatorId,{patient_id})"), admin, None).await?;
        assert_eq!(status, StatusCode::OK, "{page}");
        assert_eq!((page["page"]["total"].clone(), page["data"][0]["id"].clone()), (json!(1), json!(comment_id)));
        let listed = document_once(&server, patient, "blood-pressure", &id, |d| d["commentCount"] == 2).await?;
        assert_eq!(listed["commentCount"], 2);

        // One's own comment may be changed and removed; another's only with the permission.
        let own = format!("{comments}/{comment_id}");
        let (status, body) = server.call(Method::PUT, &own, physician, Some(json!({"text": "x"}))).await?;
        assert_eq!((status, code(&body)), (StatusCode::UNAUTHORIZED, Some(10)), "{body}");
        let (status, body) = server.call(Method::PUT, &own, patient, Some(json!({"text": "Felt dizzy, then fine"}))).await?;
        assert_eq!((status, body), (StatusCode::OK, json!({"affectedRecords": 1})));
        let (_, page) = server.call(Method::GET, &comments, patient, None).await?;
        assert_eq!(page["data"][0]["text"], "Felt dizzy, then fine");
        let (status, body) = server.call(Method::DELETE, &own, patient, None).await?;
        assert_eq!((status, body), (StatusCode::OK, json!({"affectedRecords": 1})));
        let (status, body) = server.call(Method::DELETE, &own, patient, None).await?;
        assert_eq!((status, code(&body)), (StatusCode::NOT_FOUND, Some(16)), "{body}");
        let (_, page) = server.call(Method::GET, &comments, admin, None).await?;
        assert_eq!(page["page"]["total"], 1);
        document_once(&server, patient, "blood-pressure", &id, |d| d["commentCount"] == 1).await?;

        // Deleting the document takes its comments along.
        server.call(Method::DELETE, &format!("/data/v1/blood-pressure/documents/{id}"), admin, None).await?;
        let (status, body) = server.call(Method::GET, &comments, admin, None).await?;
        assert_eq!((status, code(&body)), (StatusCode::NOT_FOUND, Some(16)), "{body}");
        Ok(())
    }
}

in_both_deployments! {
    /// Documents written by schema name go to the schema holding the name when they are written:
    /// after a rename, the old name is unknown until another schema takes it.
    async fn a_schema_name_names_the_schema_holding_it_now(deployment: Deployment) {
        let env = TestEnv::new(deployment).await?;
        let server = TestServer::start(&env).await?;
        let admin = server.admin_token().await?;
        let schema = |name: &str| json!({"name": name, "createMode": "allUsers", "readMode": "allUsers"});
        let call = |method: Method, path: String, body: Option<Value>| {
            let (server, admin) = (&server, admin.as_str());
            async move { server.call(method, &path, Some(admin), body).await }
        };
        let (status, first) = call(Method::POST, "/data/v1/".into(), Some(schema("alpha"))).await?;
        assert_eq!(status, StatusCode::OK, "{first}");
        let first_id = first["id"].as_str().unwrap_or_default().to_owned();
        let (status, body) = call(Method::POST, "/data/v1/alpha/documents".into(), Some(json!({}))).await?;
        assert_eq!(status, StatusCode::OK, "{body}");

        let (status, body) = call(Method::PUT, format!("/data/v1/{first_id}"), Some(json!({"name": "beta"}))).await?;
        assert_eq!(status, StatusCode::OK, "{body}");
        let (status, body) = call(Method::POST, "/data/v1/alpha/documents".into(), Some(json!({}))).await?;
        assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
        assert_eq!(body["name"], "RESOURCE_UNKNOWN_EXCEPTION", "{body}");
        let (status, body) = call(Method::POST, "/data/v1/beta/documents".into(), Some(json!({}))).await?;
        assert_eq!(status, StatusCode::OK, "{body}");

        let (status, second) = call(Method::POST, "/data/v1/".into(), Some(schema("alpha"))).await?;
        assert_eq!(status, StatusCode::OK, "{second}");
        let (status, body) = call(Method::POST, "/data/v1/alpha/documents".into(), Some(json!({}))).await?;
        assert_eq!(status, StatusCode::OK, "{body}");
        for (name, expected) in [("alpha", 1), ("beta", 2)] {
            let (status, page) = call(Method::GET, format!("/data/v1/{name}/documents"), None).await?;
            assert_eq!(status, StatusCode::OK, "{page}");
            assert_eq!(page["page"]["total"], expected, "{name}: {page}");
        }
        Ok(())
    }
}
