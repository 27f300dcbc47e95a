//! Global roles and permissions over HTTP: granting and revoking access, in both deployments and
//! across nodes.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use vigil_domain::permission::CATALOGUE;
use vigil_tests::{TestEnv, TestServer};

use crate::http::{code, plain_user};
use crate::in_both_deployments;

fn token_of(tokens: &Value) -> String {
    tokens["access_token"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// Whether `token` may read the administrator (which needs `VIEW_USER`).
async fn sees_admin(server: &TestServer, token: &str) -> anyhow::Result<bool> {
    let path = format!("/users/v1/{}", server.admin.user_id);
    let (status, body) = server.call(Method::GET, &path, Some(token), None).await?;
    match status {
        StatusCode::OK => Ok(true),
        StatusCode::UNAUTHORIZED if code(&body) == Some(10) => Ok(false),
        other => anyhow::bail!("unexpected {other}: {body}"),
    }
}

in_both_deployments! {
    async fn roles_grant_and_revoke_access_at_once(deployment: Deployment) {
        let env = TestEnv::new(deployment).await?;
        let server = TestServer::start(&env).await?;
        let admin = server.admin_token().await?;
        let admin = Some(admin.as_str());
        let jane = plain_user(&server, "jane@example.com").await?;
        let jane_token = token_of(&server.login("jane@example.com", "jane's password").await?);
        let jane_token = jane_token.as_str();

        let (status, body) = server.call(Method::GET, "/users/v1/roles", Some(jane_token), None).await?;
        assert_eq!((status, code(&body)), (StatusCode::UNAUTHORIZED, Some(10)));
        assert!(!sees_admin(&server, jane_token).await?);

        let (status, role) = server
            .call(Method::POST, "/users/v1/roles", admin, Some(json!({"name": " Viewer ", "description": "Sees users"})))
            .await?;
        assert_eq!(status, StatusCode::OK, "{role}");
        assert_eq!((role["name"].clone(), role["permissions"].clone()), (json!("Viewer"), json!([])));
        let role_id = role["id"].as_str().unwrap_or_default().to_owned();
        let by_id = format!("?eq(id,{role_id})");

        let (_, added) = server
            .call(Method::POST, &format!("/users/v1/roles/add_permissions{by_id}"), admin,
                Some(json!({"permissions": ["VIEW_USER", "VIEW_ROLE"]})))
            .await?;
        assert_eq!(added, json!({"affectedRecords": 1}));
        let unknown_role = "0123456789abcdef01234567";
        let (_, given) = server
            .call(Method::POST, &format!("/users/v1/add_roles?eq(id,{jane})"), admin,
                Some(json!({"roles": [role_id, unknown_role]})))
            .await?;
        assert_eq!(given, json!({"affectedRecords": 1}));
        assert!(sees_admin(&server, jane_token).await?, "a granted permission works at once");
        let (_, me) = server.call(Method::GET, "/users/v1/me", Some(jane_token), None).await?;
        assert_eq!(me["roles"][0]["id"], json!(role_id));
        assert_eq!(me["roles"].as_array().map(Vec::len), Some(1), "the unknown role is ignored");
        let (status, listed) = server
            .call(Method::GET, "/users/v1/roles?eq(name,Viewer)", Some(jane_token), None)
            .await?;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(listed["page"]["total"], 1);
        let names: Vec<&str> = listed["data"][0]["permissions"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| p["name"].as_str())
            .collect();
        assert_eq!(names, ["VIEW_ROLE", "VIEW_USER"]);

        let (_, updated) = server
            .call(Method::PUT, &format!("/users/v1/roles/{role_id}"), admin, Some(json!({"description": "Reads users"})))
            .await?;
        assert_eq!((updated["name"].clone(), updated["description"].clone()), (json!("Viewer"), json!("Reads users")));

        let (_, removed) = server
            .call(Method::POST, &format!("/users/v1/roles/remove_permissions{by_id}"), admin,
                Some(json!({"permissions": ["VIEW_USER"]})))
            .await?;
        assert_eq!(removed, json!({"affectedRecords": 1}));
        assert!(!sees_admin(&server, jane_token).await?, "a removed permission is gone at once");

        server
            .call(Method::POST, &format!("/users/v1/roles/add_permissions{by_id}"), admin,
                Some(json!({"permissions": ["VIEW_USER"]})))
            .await?;
        assert!(sees_admin(&server, jane_token).await?);
        let (_, taken) = server
            .call(Method::POST, &format!("/users/v1/remove_roles?eq(id,{jane})"), admin, Some(json!({"roles": [role_id]})))
            .await?;
        assert_eq!(taken, json!({"affectedRecords": 1}));
        assert!(!sees_admin(&server, jane_token).await?, "a removed role is gone at once");

        server
            .call(Method::POST, &format!("/users/v1/add_roles?eq(id,{jane})"), admin, Some(json!({"roles": [role_id]})))
            .await?;
        assert!(sees_admin(&server, jane_token).await?);
        let (status, body) = server.call(Method::DELETE, "/users/v1/roles", admin, None).await?;
        assert_eq!((status, code(&body)), (StatusCode::BAD_REQUEST, Some(20)), "deleting needs RQL");
        let (_, deleted) = server.call(Method::DELETE, &format!("/users/v1/roles{by_id}"), admin, None).await?;
        assert_eq!(deleted, json!({"affectedRecords": 1}));
        assert!(!sees_admin(&server, jane_token).await?, "a deleted role grants nothing");
        let (_, me) = server.call(Method::GET, "/users/v1/me", Some(jane_token), None).await?;
        assert_eq!(me["roles"], json!([]));
        let (_, gone) = server.call(Method::GET, &format!("/users/v1/roles{by_id}"), admin, None).await?;
        assert_eq!(gone["data"], json!([]));
        let (status, body) = server
            .call(Method::PUT, &format!("/users/v1/roles/{role_id}"), admin, Some(json!({"name": "Again"})))
            .await?;
        assert_eq!((status, code(&body)), (StatusCode::NOT_FOUND, Some(16)));

        let (status, catalogue) = server.call(Method::GET, "/users/v1/permissions", None, None).await?;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(catalogue["page"]["total"], json!(CATALOGUE.len()));
        assert_eq!(catalogue["data"][0], json!({"name": "CREATE_APPLICATIONS", "description": "Create applications"}));
        Ok(())
    }
}

/// Polls `check` until it holds, for at most `within`; how long it took.
async fn settles_within(
    within: Duration,
    mut check: impl AsyncFnMut() -> anyhow::Result<bool>,
) -> anyhow::Result<Duration> {
    let start = Instant::now();
    loop {
        if check().await? {
            return Ok(start.elapsed());
        }
        anyhow::ensure!(start.elapsed() < within, "not settled within {within:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_on_one_node_takes_effect_on_another_within_a_second() -> anyhow::Result<()> {
    let env = TestEnv::new(vigil_tests::Deployment::Production).await?;
    let first = TestServer::start(&env).await?;
    let second = TestServer::another_node(&env, &first).await?;
    let admin = first.admin_token().await?;
    let admin = Some(admin.as_str());
    let jane = plain_user(&first, "jane@example.com").await?;

    // A token issued by the first node works on the second straight away.
    let jane_token = token_of(&first.login("jane@example.com", "jane's password").await?);
    let (status, me) = second
        .call(Method::GET, "/users/v1/me", Some(&jane_token), None)
        .await?;
    assert_eq!((status, me["id"].clone()), (StatusCode::OK, json!(jane)));

    let (_, role) = first
        .call(
            Method::POST,
            "/users/v1/roles",
            admin,
            Some(json!({"name": "Viewer"})),
        )
        .await?;
    let role_id = role["id"].as_str().unwrap_or_default().to_owned();
    first
        .call(
            Method::POST,
            &format!("/users/v1/roles/add_permissions?eq(id,{role_id})"),
            admin,
            Some(json!({"permissions": ["VIEW_USER"]})),
        )
        .await?;
    first
        .call(
            Method::POST,
            &format!("/users/v1/add_roles?eq(id,{jane})"),
            admin,
            Some(json!({"roles": [role_id]})),
        )
        .await?;
    settles_within(Duration::from_secs(1), async || {
        sees_admin(&second, &jane_token).await
    })
    .await?;

    first
        .call(
            Method::POST,
            &format!("/users/v1/remove_roles?eq(id,{jane})"),
            admin,
            Some(json!({"roles": [role_id]})),
        )
        .await?;
    let took = settles_within(Duration::from_secs(1), async || {
        Ok(!sees_admin(&second, &jane_token).await?)
    })
    .await?;
    eprintln!("a removed role took effect on the other node after {took:?}");
    Ok(())
}
