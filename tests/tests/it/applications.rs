//! Applications and their versions over HTTP, in both deployments: credentials shown once, the
//! public face for everyone, and tokens that die with their version's credentials or application.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use vigil_tests::{ADMIN_EMAIL, ADMIN_PASSWORD, TestEnv, TestServer};

use crate::http::{code, plain_user};
use crate::in_both_deployments;

async fn password_grant(
    server: &TestServer,
    client_id: &str,
    client_secret: &str,
) -> anyhow::Result<(StatusCode, Value)> {
    let body = json!({
        "grant_type": "password",
        "username": ADMIN_EMAIL,
        "password": ADMIN_PASSWORD,
        "client_id": client_id,
        "client_secret": client_secret,
    });
    server
        .call(Method::POST, "/auth/v2/oauth2/tokens", None, Some(body))
        .await
}

in_both_deployments! {
    async fn applications_issue_credentials_that_can_be_withdrawn(deployment: Deployment) {
        let env = TestEnv::new(deployment).await?;
        let server = TestServer::start(&env).await?;
        let admin = server.admin_token().await?;
        let admin = Some(admin.as_str());
        let new_app = json!({
            "type": "oauth2",
            "name": "Patient app",
            "description": "The mobile app",
            "redirectUris": ["https://app.example.com/callback"],
            "confidential": true,
            "logo": "logo.png",
        });
        let (status, app) = server.call(Method::POST, "/auth/v2/applications", admin, Some(new_app.clone())).await?;
        assert_eq!(status, StatusCode::OK, "{app}");
        assert_eq!((app["confidential"].clone(), app["logo"].clone()), (json!(true), json!("logo.png")));
        assert_eq!(app["redirectUris"], json!(["https://app.example.com/callback"]));
        let id = app["id"].as_str().unwrap_or_default().to_owned();
        let versions = format!("/auth/v2/applications/{id}/versions");

        let (status, v1) = server.call(Method::POST, &versions, admin, Some(json!({"name": "1.0"}))).await?;
        assert_eq!(status, StatusCode::OK, "{v1}");
        let (client_id, secret) = (v1["clientId"].as_str().unwrap_or_default(), v1["clientSecret"].as_str().unwrap_or_default());
        assert_eq!((client_id.len(), secret.len()), (40, 40));
        let (status, tokens) = password_grant(&server, client_id, secret).await?;
        assert_eq!((status, tokens["application_id"].clone()), (StatusCode::OK, json!(id)));
        let (status, body) = server.call(Method::POST, &versions, admin, Some(json!({"name": "1.0"}))).await?;
        assert_eq!((status, code(&body)), (StatusCode::BAD_REQUEST, Some(17)), "version names are unique");

        let (_, listed) = server.call(Method::GET, "/auth/v2/applications?eq(name,Patient%20app)", admin, None).await?;
        assert_eq!(listed["page"]["total"], 1);
        let version = &listed["data"][0]["versions"][0];
        assert_eq!((version["name"].clone(), version["clientId"].clone()), (json!("1.0"), json!(client_id)));
        assert!(version.get("clientSecret").is_none(), "secrets are shown once");

        plain_user(&server, "jane@example.com").await?;
        let jane = server.login("jane@example.com", "jane's password").await?;
        let jane = jane["access_token"].as_str();
        let (_, public) = server.call(Method::GET, "/auth/v2/applications?eq(name,Patient%20app)", jane, None).await?;
        assert_eq!(public["data"][0], json!({"name": "Patient app", "description": "The mobile app", "type": "oauth2", "logo": "logo.png"}));
        let (status, body) = server.call(Method::POST, "/auth/v2/applications", jane, Some(new_app)).await?;
        assert_eq!((status, code(&body)), (StatusCode::UNAUTHORIZED, Some(10)));

        let app_path = format!("/auth/v2/applications/{id}");
        let (status, body) = server.call(Method::PUT, &app_path, admin, Some(json!({"type": "oauth1", "name": "x"}))).await?;
        assert_eq!((status, code(&body)), (StatusCode::BAD_REQUEST, Some(15)), "the type cannot change");
        let (_, body) = server.call(Method::PUT, &app_path, admin, Some(json!({"type": "oauth2", "name": "Renamed"}))).await?;
        assert_eq!(body, json!({"affectedRecords": 1}));

        let (_, body) = server.call(Method::DELETE, &format!("{versions}/1.0"), admin, None).await?;
        assert_eq!(body, json!({"affectedRecords": 1}));
        let (status, body) = password_grant(&server, client_id, secret).await?;
        assert_eq!((status, code(&body)), (StatusCode::UNAUTHORIZED, Some(123)), "a deleted version's credentials are dead");

        let (_, v2) = server.call(Method::POST, &versions, admin, Some(json!({"name": "2.0"}))).await?;
        let (_, tokens) = password_grant(&server, v2["clientId"].as_str().unwrap_or_default(), v2["clientSecret"].as_str().unwrap_or_default()).await?;
        let token = tokens["access_token"].as_str();
        let (status, _) = server.call(Method::GET, "/users/v1/me", token, None).await?;
        assert_eq!(status, StatusCode::OK);
        let (_, body) = server.call(Method::DELETE, &app_path, admin, None).await?;
        assert_eq!(body, json!({"affectedRecords": 1}));
        let (status, body) = server.call(Method::GET, "/users/v1/me", token, None).await?;
        assert_eq!((status, code(&body)), (StatusCode::UNAUTHORIZED, Some(117)), "tokens die with their application");
        let (_, gone) = server.call(Method::GET, "/auth/v2/applications?eq(id,{id})".replace("{id}", &id).as_str(), admin, None).await?;
        assert_eq!(gone["data"], json!([]));
        Ok(())
    }
}

in_both_deployments! {
    async fn tokens_are_listed_and_revoked(deployment: Deployment) {
        let env = TestEnv::new(deployment).await?;
        let server = TestServer::start(&env).await?;
        let admin = server.admin_token().await?;
        let jane_id = plain_user(&server, "jane@example.com").await?;
        let first = server.login("jane@example.com", "jane's password").await?;
        let second = server.login("jane@example.com", "jane's password").await?;
        let (first_token, second_token) = (first["access_token"].as_str(), second["access_token"].as_str());

        let (status, mine) = server.call(Method::GET, "/auth/v2/oauth2/tokens", second_token, None).await?;
        assert_eq!((status, mine["page"]["total"].clone()), (StatusCode::OK, json!(2)), "{mine}");
        assert!(mine["data"].as_array().into_iter().flatten().all(|t| t["userId"] == json!(jane_id)));
        assert!(mine["data"][0]["refreshTokenId"].is_string());
        let (_, everyone) = server.call(Method::GET, "/auth/v2/oauth2/tokens", Some(&admin), None).await?;
        assert_eq!(everyone["page"]["total"], 3);
        let admin_token_id = everyone["data"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|t| t["userId"] == json!(server.admin.user_id.to_string()))
            .and_then(|t| t["id"].as_str())
            .unwrap_or_default()
            .to_owned();
        let (status, body) = server.call(Method::DELETE, &format!("/auth/v2/oauth2/tokens/{admin_token_id}"), second_token, None).await?;
        assert_eq!((status, code(&body)), (StatusCode::UNAUTHORIZED, Some(10)));

        // Revoking an access token ends its login: both of its tokens die.
        let (_, all_mine) = server.call(Method::GET, "/auth/v2/oauth2/tokens", first_token, None).await?;
        let jane_token_ids = all_mine["data"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|t| t["id"].as_str().unwrap_or_default().to_owned())
            .collect::<Vec<_>>();
        assert_eq!(jane_token_ids.len(), 2);
        for id in &jane_token_ids {
            let (status, body) = server.call(Method::DELETE, &format!("/auth/v2/oauth2/tokens/{id}"), Some(&admin), None).await?;
            assert_eq!((status, body), (StatusCode::OK, json!({"affectedRecords": 1})));
        }
        for token in [first_token, second_token] {
            let (status, body) = server.call(Method::GET, "/users/v1/me", token, None).await?;
            assert_eq!((status, code(&body)), (StatusCode::UNAUTHORIZED, Some(117)));
        }
        let refresh = json!({
            "grant_type": "refresh_token",
            "refresh_token": first["refresh_token"],
            "client_id": server.admin.client_id,
            "client_secret": server.admin.client_secret,
        });
        let (status, body) = server.call(Method::POST, "/auth/v2/oauth2/tokens", None, Some(refresh)).await?;
        assert_eq!((status, code(&body)), (StatusCode::BAD_REQUEST, Some(119)), "{body}");

        // Revoking through the refresh token ends the login too.
        let third = server.login("jane@example.com", "jane's password").await?;
        let third_token = third["access_token"].as_str();
        let (_, refresh_tokens) = server.call(Method::GET, "/auth/v2/oauth2/refreshTokens", third_token, None).await?;
        assert_eq!(refresh_tokens["page"]["total"], 1);
        let refresh_id = refresh_tokens["data"][0]["id"].as_str().unwrap_or_default().to_owned();
        let (status, _) = server.call(Method::DELETE, &format!("/auth/v2/oauth2/refreshTokens/{refresh_id}"), third_token, None).await?;
        assert_eq!(status, StatusCode::OK);
        let (status, body) = server.call(Method::GET, "/users/v1/me", third_token, None).await?;
        assert_eq!((status, code(&body)), (StatusCode::UNAUTHORIZED, Some(117)));
        Ok(())
    }
}
