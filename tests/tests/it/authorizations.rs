//! OAuth2 authorization codes over HTTP, in both deployments: a logged-in user authorizes a public
//! client, which redeems the code once (with its PKCE verifier) for tokens of that user.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use vigil_tests::{TestEnv, TestServer};

use crate::http::{code, plain_user};
use crate::in_both_deployments;

const CALLBACK: &str = "https://app.example.com/callback";
/// RFC 7636, Appendix B.
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

/// A public OAuth2 application with one redirect URI; answers its client id.
async fn public_client(server: &TestServer, admin: Option<&str>) -> anyhow::Result<String> {
    let app = json!({
        "type": "oauth2", "name": "Third party", "description": "Reads your data",
        "redirectUris": [CALLBACK], "confidential": false,
    });
    let (_, app) = server
        .call(Method::POST, "/auth/v2/applications", admin, Some(app))
        .await?;
    let versions = format!(
        "/auth/v2/applications/{}/versions",
        app["id"].as_str().unwrap_or_default()
    );
    let (_, version) = server
        .call(Method::POST, &versions, admin, Some(json!({"name": "1.0"})))
        .await?;
    Ok(version["clientId"].as_str().unwrap_or_default().to_owned())
}

async fn redeem(server: &TestServer, body: Value) -> anyhow::Result<(StatusCode, Value)> {
    server
        .call(Method::POST, "/auth/v2/oauth2/tokens", None, Some(body))
        .await
}

in_both_deployments! {
    async fn an_authorization_code_is_redeemed_once_by_its_client_with_its_verifier(deployment: Deployment) {
        let env = TestEnv::new(deployment).await?;
        let server = TestServer::start(&env).await?;
        let admin = server.admin_token().await?;
        let client_id = public_client(&server, Some(&admin)).await?;
        let jane = plain_user(&server, "jane@example.com").await?;
        let tokens = server.login("jane@example.com", "jane's password").await?;
        let jane_token = tokens["access_token"].as_str();

        let request = json!({
            "responseType": "code", "clientId": client_id, "state": "xyz",
            "codeChallenge": CHALLENGE, "codeChallengeMethod": "S256",
        });
        let (status, created) = server
            .call(Method::POST, "/auth/v2/oauth2/authorizations", jane_token, Some(request.clone()))
            .await?;
        assert_eq!(status, StatusCode::OK, "{created}");
        assert_eq!((created["redirectUri"].as_str(), created["userId"].as_str(), created["state"].as_str()),
            (Some(CALLBACK), Some(jane.as_str()), Some("xyz")));
        let code_value = created["authorizationCode"].as_str().unwrap_or_default().to_owned();
        assert_eq!(code_value.len(), 40);

        let (_, listed) = server.call(Method::GET, "/auth/v2/oauth2/authorizations", jane_token, None).await?;
        assert_eq!(listed["page"]["total"], 1);
        assert!(listed["data"][0].get("authorizationCode").is_none(), "the code is shown once");

        let grant = |verifier: Option<&str>, client: &str| {
            let mut body = json!({"grant_type": "authorization_code", "code": code_value, "client_id": client});
            if let Some(verifier) = verifier {
                body["code_verifier"] = json!(verifier);
            }
            body
        };
        let (status, body) = redeem(&server, grant(None, &client_id)).await?;
        assert_eq!((status, body["error"].as_str(), code(&body)), (StatusCode::BAD_REQUEST, Some("invalid_grant"), Some(128)));
        let (status, body) = redeem(&server, grant(Some("not-the-verifier-at-all-but-long-enough-0123"), &client_id)).await?;
        assert_eq!((status, code(&body)), (StatusCode::BAD_REQUEST, Some(122)));
        let (status, body) = redeem(&server, grant(Some(VERIFIER), &server.admin.client_id)).await?;
        assert_eq!((status, code(&body)), (StatusCode::UNAUTHORIZED, Some(124)), "the admin app is confidential");
        let (status, issued) = redeem(&server, grant(Some(VERIFIER), &client_id)).await?;
        assert_eq!(status, StatusCode::OK, "{issued}");
        assert_eq!(issued["user_id"].as_str(), Some(jane.as_str()));
        let (status, me) = server.call(Method::GET, "/users/v1/me", issued["access_token"].as_str(), None).await?;
        assert_eq!((status, me["id"].as_str()), (StatusCode::OK, Some(jane.as_str())));

        let (status, body) = redeem(&server, grant(Some(VERIFIER), &client_id)).await?;
        assert_eq!((status, code(&body)), (StatusCode::BAD_REQUEST, Some(115)), "a code is spent once");
        // Presented again, the code is taken for a copy: the tokens of its first redemption end.
        let (status, body) = server.call(Method::GET, "/users/v1/me", issued["access_token"].as_str(), None).await?;
        assert_eq!((status, body["name"].as_str()), (StatusCode::UNAUTHORIZED, Some("ACCESS_TOKEN_UNKNOWN_EXCEPTION")), "{body}");
        let refresh = json!({"grant_type": "refresh_token", "refresh_token": issued["refresh_token"], "client_id": client_id});
        let (status, body) = redeem(&server, refresh).await?;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        let (_, listed) = server.call(Method::GET, "/auth/v2/oauth2/authorizations", jane_token, None).await?;
        assert_eq!(listed["page"]["total"], 0);

        // A code without PKCE, revoked by its owner before use; bad requests are refused.
        let (_, created) = server
            .call(Method::POST, "/auth/v2/oauth2/authorizations", jane_token,
                Some(json!({"responseType": "code", "clientId": client_id, "redirectUri": CALLBACK})))
            .await?;
        let id = created["id"].as_str().unwrap_or_default();
        let (status, body) = server.call(Method::DELETE, &format!("/auth/v2/oauth2/authorizations/{id}"), jane_token, None).await?;
        assert_eq!((status, body), (StatusCode::OK, json!({"affectedRecords": 1})));
        let spent = json!({"grant_type": "authorization_code", "code": created["authorizationCode"], "client_id": client_id});
        let (status, body) = redeem(&server, spent).await?;
        assert_eq!((status, code(&body)), (StatusCode::BAD_REQUEST, Some(115)));
        for (bad, exh) in [
            (json!({"responseType": "token", "clientId": client_id}), 114),
            (json!({"responseType": "code", "clientId": client_id, "redirectUri": "https://evil.example.com/"}), 113),
            (json!({"responseType": "code", "clientId": "unknown"}), 103),
            (json!({"responseType": "code", "clientId": client_id, "codeChallenge": "short"}), 15),
        ] {
            let (status, body) = server.call(Method::POST, "/auth/v2/oauth2/authorizations", jane_token, Some(bad.clone())).await?;
            assert_eq!((status, code(&body)), (StatusCode::BAD_REQUEST, Some(exh)), "{bad}");
        }
        Ok(())
    }
}

in_both_deployments! {
    async fn a_rotated_refresh_token_presented_again_ends_its_session(deployment: Deployment) {
        let env = TestEnv::new(deployment).await?;
        let server = TestServer::start(&env).await?;
        plain_user(&server, "jane@example.com").await?;
        let first = server.login("jane@example.com", "jane's password").await?;
        let refresh = |tokens: &Value| json!({
            "grant_type": "refresh_token",
            "refresh_token": tokens["refresh_token"],
            "client_id": server.admin.client_id,
            "client_secret": server.admin.client_secret,
        });
        let (status, second) = redeem(&server, refresh(&first)).await?;
        assert_eq!(status, StatusCode::OK, "{second}");
        // The first refresh token again: refused as unknown, and taken for theft.
        let (status, body) = redeem(&server, refresh(&first)).await?;
        assert_eq!((status, body["error"].as_str(), code(&body)), (StatusCode::BAD_REQUEST, Some("invalid_grant"), Some(119)), "{body}");
        // The pair issued from it is dead too.
        let (status, body) = redeem(&server, refresh(&second)).await?;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        let (status, body) = server.call(Method::GET, "/users/v1/me", second["access_token"].as_str(), None).await?;
        assert_eq!((status, body["name"].as_str()), (StatusCode::UNAUTHORIZED, Some("ACCESS_TOKEN_UNKNOWN_EXCEPTION")), "{body}");
        // Other logins of the user go on.
        let other = server.login("jane@example.com", "jane's password").await?;
        let (status, _) = server.call(Method::GET, "/users/v1/me", other["access_token"].as_str(), None).await?;
        assert_eq!(status, StatusCode::OK);
        Ok(())
    }
}
