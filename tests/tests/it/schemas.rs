//! Data-service schemas over HTTP, in both deployments: the whole configuration life cycle, the
//! errors of each step, and the configuration history kept in the log.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use vigil_tests::{TestEnv, TestServer};

use crate::http::{code, plain_token};
use crate::in_both_deployments;

/// The one schema `GET /data/v1/?eq(name,…)` finds.
async fn schema_named(
    server: &TestServer,
    token: Option<&str>,
    name: &str,
) -> anyhow::Result<Value> {
    let (status, page) = server
        .call(
            Method::GET,
            &format!("/data/v1/?eq(name,{name})"),
            token,
            None,
        )
        .await?;
    assert_eq!(status, StatusCode::OK, "{page}");
    Ok(page["data"][0].clone())
}

in_both_deployments! {
    async fn a_schema_is_configured_step_by_step(deployment: Deployment) {
        let env = TestEnv::new(deployment).await?;
        let server = TestServer::start(&env).await?;
        let admin = server.admin_token().await?;
        let admin = Some(admin.as_str());

        let (status, schema) = server
            .call(Method::POST, "/data/v1/", admin, Some(json!({
                "name": "blood-pressure",
                "description": "Blood pressure measurements",
                "readMode": "default",
                "updateMode": "creatorOnly",
                "defaultLimit": 10,
            })))
            .await?;
        assert_eq!(status, StatusCode::OK, "{schema}");
        let id = schema["id"].as_str().unwrap_or_default().to_owned();
        assert_eq!(schema["statuses"], json!({"new": {}}));
        assert_eq!(schema["creationTransition"], json!({"type": "manual", "toStatus": "new"}));
        assert_eq!(schema["readMode"], json!(["linkedUsers", "linkedGroupStaff"]));
        assert_eq!(schema["updateMode"], json!(["creator"]));
        assert_eq!(schema["createMode"], json!("allUsers"));
        assert_eq!(schema["deleteMode"], json!("permissionRequired"));
        assert_eq!((schema["defaultLimit"].clone(), schema["maximumLimit"].clone()), (json!(10), json!(100)));
        assert!(schema["creationTimestamp"].as_str().is_some_and(|t| t.ends_with('Z')), "{schema}");

        // Properties by dotted path, statuses, transitions, an index — addressed by name or id.
        for (path, body) in [
            ("/data/v1/blood-pressure/properties", json!({"name": "systolic", "configuration": {"type": "number", "minimum": 0}})),
            ("/data/v1/blood-pressure/properties", json!({"name": "location", "configuration": {"type": "object", "properties": {}}})),
            (&format!("/data/v1/{id}/properties"), json!({"name": "location.lat", "configuration": {"type": "number"}})),
            ("/data/v1/blood-pressure/statuses", json!({"name": "analyzed", "data": {"label": "Analyzed"}})),
            ("/data/v1/blood-pressure/statuses", json!({"name": "reviewed"})),
        ] {
            let (status, body) = server.call(Method::POST, path, admin, Some(body)).await?;
            assert_eq!((status, body.clone()), (StatusCode::OK, json!({"affectedRecords": 1})), "{path}");
        }
        let (status, analyze) = server
            .call(Method::POST, "/data/v1/blood-pressure/transitions", admin, Some(json!({
                "name": "analyze", "type": "automatic", "fromStatuses": ["new"], "toStatus": "analyzed",
                "conditions": [{"type": "document", "configuration": {"type": "object", "properties": {"data": {"type": "object", "required": ["systolic"]}}}}],
            })))
            .await?;
        assert_eq!(status, StatusCode::OK, "{analyze}");
        assert_eq!(analyze["name"], "analyze");
        let analyze_id = analyze["id"].as_str().unwrap_or_default().to_owned();
        let (status, index) = server
            .call(Method::POST, "/data/v1/blood-pressure/indexes", admin,
                Some(json!({"fields": [{"name": "data.systolic", "type": "desc"}], "options": {"sparse": true}})))
            .await?;
        assert_eq!(status, StatusCode::OK, "{index}");
        assert_eq!(index["name"], "data.systolic_-1");
        let (status, again) = server
            .call(Method::POST, "/data/v1/blood-pressure/indexes", admin,
                Some(json!({"fields": [{"name": "data.systolic", "type": "desc"}]})))
            .await?;
        assert_eq!((status, code(&again)), (StatusCode::BAD_REQUEST, Some(17)), "{again}");

        let schema = schema_named(&server, admin, "blood-pressure").await?;
        assert_eq!(schema["properties"]["location"]["properties"]["lat"], json!({"type": "number"}));
        assert_eq!(schema["statuses"]["analyzed"], json!({"label": "Analyzed"}));
        assert_eq!(schema["transitions"][0]["id"], analyze_id.as_str());
        assert_eq!(schema["indexes"][0]["options"], json!({"sparse": true}));

        // A status a transition uses stays; unused ones go.
        let (status, in_use) = server
            .call(Method::DELETE, "/data/v1/blood-pressure/statuses/analyzed", admin, None)
            .await?;
        assert_eq!((status, code(&in_use)), (StatusCode::BAD_REQUEST, Some(414)), "{in_use}");
        let (status, _) = server
            .call(Method::DELETE, "/data/v1/blood-pressure/statuses/reviewed", admin, None)
            .await?;
        assert_eq!(status, StatusCode::OK);

        // Changes and removals.
        let (status, _) = server
            .call(Method::PUT, &format!("/data/v1/blood-pressure/transitions/{analyze_id}"), admin, Some(json!({
                "name": "analyse", "type": "manual", "fromStatuses": ["new"], "toStatus": "analyzed",
            })))
            .await?;
        assert_eq!(status, StatusCode::OK);
        let (status, _) = server
            .call(Method::PUT, "/data/v1/blood-pressure/properties/location.lat", admin,
                Some(json!({"type": "number", "minimum": -90, "maximum": 90})))
            .await?;
        assert_eq!(status, StatusCode::OK);
        let (status, _) = server
            .call(Method::PUT, "/data/v1/blood-pressure/creationTransition", admin,
                Some(json!({"type": "manual", "toStatus": "new", "actions": [{"type": "linkCreator"}]})))
            .await?;
        assert_eq!(status, StatusCode::OK);
        let (status, _) = server
            .call(Method::PUT, "/data/v1/blood-pressure", admin,
                Some(json!({"name": "pressure", "description": "Renamed", "deleteMode": "linkedUsersOnly"})))
            .await?;
        assert_eq!(status, StatusCode::OK);
        let schema = schema_named(&server, admin, "pressure").await?;
        assert_eq!(schema["id"], id.as_str());
        assert_eq!(schema["description"], "Renamed");
        assert_eq!(schema["deleteMode"], json!(["linkedUsers", "linkedGroupStaff"]));
        assert_eq!(schema["transitions"][0]["name"], "analyse");
        assert_eq!(schema["properties"]["location"]["properties"]["lat"]["maximum"], 90);
        assert_eq!(schema["creationTransition"]["actions"], json!([{"type": "linkCreator"}]));
        let (status, _) = server.call(Method::GET, "/data/v1/blood-pressure/indexes", admin, None).await?;
        assert_ne!(status, StatusCode::OK);
        let (status, gone) = server
            .call(Method::PUT, "/data/v1/blood-pressure", admin, Some(json!({"description": "x"})))
            .await?;
        assert_eq!((status, code(&gone)), (StatusCode::NOT_FOUND, Some(16)), "the old name is free: {gone}");

        // The freed name can be taken; the new one cannot.
        let (status, taken) = server
            .call(Method::POST, "/data/v1/", admin, Some(json!({"name": "pressure", "description": ""})))
            .await?;
        assert_eq!((status, code(&taken)), (StatusCode::BAD_REQUEST, Some(17)), "{taken}");
        let (status, _) = server
            .call(Method::POST, "/data/v1/", admin, Some(json!({"name": "blood-pressure", "description": ""})))
            .await?;
        assert_eq!(status, StatusCode::OK);

        // Deletion: disabled first; disabled schemas are hidden from users without DISABLE_SCHEMAS.
        let (status, enabled) = server.call(Method::DELETE, "/data/v1/pressure", admin, None).await?;
        assert_eq!((status, code(&enabled)), (StatusCode::BAD_REQUEST, Some(27)), "{enabled}");
        let (status, _) = server.call(Method::POST, "/data/v1/pressure/disable", admin, None).await?;
        assert_eq!(status, StatusCode::OK);
        let jane = plain_token(&server, "jane@example.com").await?;
        let (_, seen) = server.call(Method::GET, "/data/v1/", Some(&jane), None).await?;
        let names: Vec<&str> = seen["data"].as_array().into_iter().flatten().filter_map(|s| s["name"].as_str()).collect();
        assert_eq!(names, ["blood-pressure"], "{seen}");
        assert_eq!(schema_named(&server, admin, "pressure").await?["disabled"], true);
        let (status, _) = server.call(Method::DELETE, &format!("/data/v1/{id}"), admin, None).await?;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(schema_named(&server, admin, "pressure").await?, Value::Null);
        let (status, _) = server.call(Method::POST, "/data/v1/", admin, Some(json!({"name": "pressure", "description": ""}))).await?;
        assert_eq!(status, StatusCode::OK, "a deleted schema's name is free again");

        // The configuration history is in the log, change by change.
        let history: Vec<String> = server
            .history(&format!("schema-{id}"))
            .await?
            .into_iter()
            .map(|(name, _)| name)
            .collect();
        assert_eq!(
            history,
            [
                "schema.created",
                "schema.property_added",
                "schema.property_added",
                "schema.property_added",
                "schema.status_added",
                "schema.status_added",
                "schema.transition_added",
                "schema.index_added",
                "schema.status_removed",
                "schema.transition_updated",
                "schema.property_updated",
                "schema.creation_transition_set",
                "schema.updated",
                "schema.disabled",
                "schema.deleted",
            ]
        );
        Ok(())
    }
}

in_both_deployments! {
    async fn bad_configurations_get_extra_horizon_errors(deployment: Deployment) {
        let env = TestEnv::new(deployment).await?;
        let server = TestServer::start(&env).await?;
        let admin = server.admin_token().await?;
        let admin = Some(admin.as_str());
        let (status, _) = server
            .call(Method::POST, "/data/v1/", admin, Some(json!({"name": "notes", "description": "Notes"})))
            .await?;
        assert_eq!(status, StatusCode::OK);

        let cases: Vec<(Method, &str, Option<Value>, StatusCode, u64)> = vec![
            (Method::POST, "/data/v1/", Some(json!({"description": "no name"})), StatusCode::BAD_REQUEST, 14),
            (Method::POST, "/data/v1/", Some(json!({"name": "x"})), StatusCode::BAD_REQUEST, 15),
            (Method::POST, "/data/v1/", Some(json!({"name": "fine", "readMode": "creatorOnly"})), StatusCode::BAD_REQUEST, 15),
            (Method::POST, "/data/v1/", Some(json!({"name": "fine", "colour": "red"})), StatusCode::BAD_REQUEST, 15),
            (Method::POST, "/data/v1/", Some(json!({"name": "fine", "defaultLimit": 500})), StatusCode::BAD_REQUEST, 15),
            (Method::PUT, "/data/v1/no%20such%20name", Some(json!({})), StatusCode::BAD_REQUEST, 416),
            (Method::PUT, "/data/v1/unknown-schema", Some(json!({})), StatusCode::NOT_FOUND, 16),
            (Method::PUT, "/data/v1/5e9f00000000000000000001", Some(json!({})), StatusCode::NOT_FOUND, 16),
            (Method::POST, "/data/v1/notes/properties", Some(json!({"name": "n", "configuration": {"type": "integer"}})), StatusCode::BAD_REQUEST, 15),
            (Method::POST, "/data/v1/notes/properties", Some(json!({"name": "a.b", "configuration": {"type": "string"}})), StatusCode::NOT_FOUND, 16),
            (Method::PUT, "/data/v1/notes/properties/missing", Some(json!({"type": "string"})), StatusCode::NOT_FOUND, 16),
            (Method::POST, "/data/v1/notes/statuses", Some(json!({"name": "new"})), StatusCode::BAD_REQUEST, 17),
            (Method::PUT, "/data/v1/notes/statuses/missing", Some(json!({"data": {}})), StatusCode::NOT_FOUND, 16),
            (Method::POST, "/data/v1/notes/transitions", Some(json!({"type": "manual", "fromStatuses": ["new"], "toStatus": "nowhere"})), StatusCode::BAD_REQUEST, 15),
            (Method::POST, "/data/v1/notes/transitions", Some(json!({"type": "manual", "fromStatuses": ["new"], "toStatus": "new", "actions": [{"type": "explode"}]})), StatusCode::BAD_REQUEST, 15),
            (Method::PUT, "/data/v1/notes/transitions/5e9f00000000000000000001", Some(json!({"type": "manual", "fromStatuses": ["new"], "toStatus": "new"})), StatusCode::NOT_FOUND, 16),
            (Method::DELETE, "/data/v1/notes/transitions/not-an-id", None, StatusCode::BAD_REQUEST, 12),
            (Method::POST, "/data/v1/notes/indexes", Some(json!({"fields": [{"name": "password", "type": "asc"}]})), StatusCode::BAD_REQUEST, 15),
            (Method::DELETE, "/data/v1/notes/indexes/5e9f00000000000000000001", None, StatusCode::NOT_FOUND, 16),
            (Method::PUT, "/data/v1/notes/creationTransition", Some(json!({"type": "manual"})), StatusCode::BAD_REQUEST, 15),
        ];
        for (method, path, body, expected_status, expected_code) in cases {
            let (status, answer) = server.call(method.clone(), path, admin, body).await?;
            assert_eq!((status, code(&answer)), (expected_status, Some(expected_code)), "{method} {path}: {answer}");
        }
        let schema = schema_named(&server, admin, "notes").await?;
        assert_eq!(schema["properties"], json!({}), "refused changes left nothing behind");
        assert_eq!(schema["transitions"], json!([]));

        // Without the permissions, nothing changes.
        let jane = plain_token(&server, "jane@example.com").await?;
        for (method, path, body) in [
            (Method::POST, "/data/v1/", Some(json!({"name": "mine", "description": ""}))),
            (Method::PUT, "/data/v1/notes", Some(json!({"description": "mine"}))),
            (Method::POST, "/data/v1/notes/disable", None),
            (Method::DELETE, "/data/v1/notes", None),
            (Method::POST, "/data/v1/notes/statuses", Some(json!({"name": "mine"}))),
        ] {
            let (status, answer) = server.call(method.clone(), path, Some(&jane), body).await?;
            assert_eq!((status, code(&answer)), (StatusCode::UNAUTHORIZED, Some(10)), "{method} {path}: {answer}");
        }
        Ok(())
    }
}
