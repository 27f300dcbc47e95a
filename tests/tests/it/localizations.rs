//! The localization service over HTTP, in both deployments: the wire shapes the SDK renames
//! (snake_case, epoch milliseconds), a bulk request recorded as one commit, all or nothing, and
//! the read model rebuilt from the log to the same rows.

use reqwest::{Method, StatusCode};
use serde_json::json;
use vigil_projections::runner;
use vigil_tests::{TestEnv, TestServer};

use crate::http::{code, plain_token};
use crate::in_both_deployments;

in_both_deployments! {
    async fn localizations_are_written_in_bulk_as_one_commit(deployment: Deployment) {
        let env = TestEnv::new(deployment).await?;
        let server = TestServer::start(&env).await?;
        let admin = server.admin_token().await?;

        let (status, created) = server
            .call(Method::POST, "/localizations/v1/", Some(&admin), Some(json!({"localizations": [
                {"key": "greeting", "text": {"EN": "Hello", "NL": "Hallo"}},
                {"key": "farewell", "text": {"EN": "Bye"}},
            ]})))
            .await?;
        assert_eq!(status, StatusCode::OK, "{created}");
        assert_eq!(created, json!({"created": 2, "existing": 0, "existing_ids": []}));
        let (_, listed) = server.call(Method::GET, "/localizations/v1/?sort(key)", Some(&admin), None).await?;
        assert_eq!(listed["page"], json!({"total": 2, "offset": 0, "limit": 20}));
        assert_eq!(listed["data"][0]["key"], "farewell");
        assert_eq!(listed["data"][1]["text"], json!({"EN": "Hello", "NL": "Hallo"}));
        assert!(listed["data"][1]["creation_timestamp"].as_i64().is_some(), "{listed}");
        let (_, dutch) = server.call(Method::GET, "/localizations/v1/?eq(text.NL,Hallo)&select(key)", Some(&admin), None).await?;
        assert_eq!(dutch["data"], json!([{"key": "greeting"}]));

        // One bad localization refuses the whole request: nothing of it is written.
        let (status, refused) = server
            .call(Method::POST, "/localizations/v1/", Some(&admin), Some(json!({"localizations": [
                {"key": "fine", "text": {"EN": "Fine"}},
                {"key": "dutch_only", "text": {"NL": "Alleen"}},
            ]})))
            .await?;
        assert_eq!((status, code(&refused)), (StatusCode::BAD_REQUEST, Some(801)), "{refused}");
        let (status, refused) = server
            .call(Method::POST, "/localizations/v1/", Some(&admin), Some(json!({"localizations": [{"text": {"EN": "No key"}}]})))
            .await?;
        assert_eq!((status, code(&refused)), (StatusCode::BAD_REQUEST, Some(14)), "{refused}");
        let (_, listed) = server.call(Method::GET, "/localizations/v1/", Some(&admin), None).await?;
        assert_eq!(listed["page"]["total"], 2);

        // Writing takes the permission; reading and requesting any user may.
        let user = plain_token(&server, "patient@example.com").await?;
        let (status, refused) = server
            .call(Method::PUT, "/localizations/v1/", Some(&user), Some(json!({"localizations": []})))
            .await?;
        assert_eq!((status, code(&refused)), (StatusCode::UNAUTHORIZED, Some(10)), "{refused}");
        let (status, texts) = server
            .call(Method::POST, "/localizations/v1/request", Some(&user), Some(json!({
                "localization_codes": ["nl"], "localizations": ["greeting", "farewell"],
            })))
            .await?;
        assert_eq!(status, StatusCode::OK, "{texts}");
        assert_eq!(texts, json!({"greeting": {"EN": "Hello", "NL": "Hallo"}, "farewell": {"EN": "Bye"}}));

        let (status, updated) = server
            .call(Method::PUT, "/localizations/v1/", Some(&admin), Some(json!({"localizations": [
                {"key": "farewell", "text": {"NL": "Dag"}},
                {"key": "nowhere", "text": {"EN": "?"}},
            ]})))
            .await?;
        assert_eq!(status, StatusCode::OK, "{updated}");
        assert_eq!(updated, json!({"updated": 1, "missing": 1, "missing_ids": ["nowhere"]}));
        let (status, deleted) = server.call(Method::DELETE, "/localizations/v1/?eq(key,greeting)", Some(&admin), None).await?;
        assert_eq!(status, StatusCode::OK, "{deleted}");
        assert_eq!(deleted, json!({"records_affected": 1}));

        // Each accepted request is one commit of the catalog, with its caller.
        let history = server.history("localizations-catalog").await?;
        let names: Vec<&str> = history.iter().map(|(name, _)| name.as_str()).collect();
        assert_eq!(names, ["localization.created", "localization.updated", "localization.deleted"]);
        assert_eq!(history[1].1["localizations"][0]["text"], json!({"EN": "Bye", "NL": "Dag"}));

        // Rebuilt from the log, the read model holds the same rows.
        let (_, before) = server.call(Method::GET, "/localizations/v1/", Some(&admin), None).await?;
        let credentials = server.admin.clone();
        let log = server.state.bus.log().clone();
        server.stop().await?;
        let store = env.open().await?.store;
        runner::rebuild(&store, log, vigil_projections::all()).await?;
        let server = TestServer::restart(&env, credentials).await?;
        let admin = server.admin_token().await?;
        let (_, after) = server.call(Method::GET, "/localizations/v1/", Some(&admin), None).await?;
        assert_eq!(before, after);
        assert_eq!(after["data"][0]["text"], json!({"EN": "Bye", "NL": "Dag"}));
        Ok(())
    }
}
