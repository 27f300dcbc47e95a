//! Multi-factor authentication over HTTP, in both deployments: presence tokens, a TOTP method
//! verified with a code computed here (RFC 6238, `totp-rs`), recovery codes, the `mfa_required`
//! answer to a password login and the MFA grant, the re-attempt delay, and the log never holding
//! a secret in the clear.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use vigil_domain::aggregate::Aggregate as _;
use vigil_domain::auth::mfa::Mfa;
use vigil_domain::id::StreamId;
use vigil_tests::{TestEnv, TestServer};

use crate::http::{code, grant, plain_user};
use crate::in_both_deployments;

const PASSWORD: &str = "jane's password";

/// The TOTP code of `secret` (base32) for the time step `offset` steps from now.
fn totp(secret: &str, offset: i64) -> anyhow::Result<String> {
    let bytes = totp_rs::Secret::try_from_base32(secret)
        .map_err(|e| anyhow::anyhow!("{e:?}"))?
        .as_bytes()
        .to_vec();
    let generator = totp_rs::Builder::new()
        .with_secret(bytes)
        .build()
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
    let at = now.saturating_add_signed(offset * 30);
    Ok(generator.generate(at).to_string())
}

/// A password login of jane that must end in an MFA challenge; answers its `mfa` field.
async fn challenged(server: &TestServer) -> anyhow::Result<Value> {
    let (status, body) = grant(
        server,
        json!({"grant_type": "password", "username": "jane@example.com", "password": PASSWORD}),
    )
    .await?;
    assert_eq!(
        (status, body["error"].as_str(), code(&body)),
        (StatusCode::BAD_REQUEST, Some("mfa_required"), Some(129)),
        "{body}"
    );
    Ok(body["mfa"].clone())
}

async fn answer(
    server: &TestServer,
    mfa: &Value,
    method_id: &str,
    code: &str,
) -> anyhow::Result<(StatusCode, Value)> {
    grant(
        server,
        json!({"grant_type": "mfa", "token": mfa["token"], "method_id": method_id, "code": code}),
    )
    .await
}

in_both_deployments! {
    async fn mfa_guards_the_password_login_once_enabled(deployment: Deployment) {
        let env = TestEnv::new(deployment).await?;
        let server = TestServer::start(&env).await?;
        let jane = plain_user(&server, "jane@example.com").await?;
        let tokens = server.login("jane@example.com", PASSWORD).await?;
        let token = tokens["access_token"].as_str();
        let settings = format!("/auth/v2/mfa/users/{jane}");

        let (status, body) = server.call(Method::GET, &settings, token, None).await?;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!((body["id"].as_str(), &body["enabled"], &body["methods"]), (Some(jane.as_str()), &json!(false), &json!([])));

        // Changes need a presence token, which needs the password again.
        let methods = format!("{settings}/methods");
        let (status, body) = server.call(Method::POST, &methods, token, Some(json!({"type": "totp"}))).await?;
        assert_eq!((status, code(&body)), (StatusCode::BAD_REQUEST, Some(14)), "{body}");
        let (status, body) = server.call(Method::POST, &methods, token, Some(json!({"type": "totp", "presenceToken": "0".repeat(40)}))).await?;
        assert_eq!((status, code(&body)), (StatusCode::BAD_REQUEST, Some(132)), "{body}");
        for name in ["", "Pho\u{0}ne"] {
            let (status, body) = server.call(Method::POST, &methods, token, Some(json!({"type": "totp", "name": name, "presenceToken": "0".repeat(40)}))).await?;
            assert_eq!((status, code(&body)), (StatusCode::BAD_REQUEST, Some(15)), "{name:?}: {body}");
        }
        let (status, body) = server.call(Method::POST, "/auth/v2/confirmPresence", token, Some(json!({"password": "wrong"}))).await?;
        assert_eq!((status, code(&body)), (StatusCode::UNAUTHORIZED, Some(106)), "{body}");
        // The failure above made the next password check wait a second (login throttling).
        tokio::time::sleep(Duration::from_millis(1100)).await;
        let (status, presence) = server.call(Method::POST, "/auth/v2/confirmPresence", token, Some(json!({"password": PASSWORD}))).await?;
        assert_eq!(status, StatusCode::OK, "{presence}");
        let presence_token = presence["token"].as_str().unwrap_or_default().to_owned();
        assert_eq!(presence_token.len(), 40);
        assert!(presence["expiryTimestamp"].as_i64() > presence["creationTimestamp"].as_i64());

        let (status, totp_method) = server.call(Method::POST, &methods, token,
            Some(json!({"type": "totp", "name": "Phone", "tags": ["main"], "presenceToken": presence_token}))).await?;
        assert_eq!(status, StatusCode::OK, "{totp_method}");
        let secret = totp_method["secret"].as_str().unwrap_or_default().to_owned();
        let totp_id = totp_method["id"].as_str().unwrap_or_default().to_owned();
        assert_eq!((totp_method["type"].as_str(), totp_method["verified"].as_bool()), (Some("totp"), Some(false)));
        let (status, recovery) = server.call(Method::POST, &methods, token,
            Some(json!({"type": "recoveryCodes", "presenceToken": presence_token}))).await?;
        assert_eq!(status, StatusCode::OK, "{recovery}");
        let codes: Vec<String> = serde_json::from_value(recovery["codes"].clone())?;
        assert_eq!(codes.len(), 10);
        let recovery_id = recovery["id"].as_str().unwrap_or_default().to_owned();

        let enable = format!("{settings}/enable");
        let presence_body = json!({"presenceToken": presence_token});
        let (status, body) = server.call(Method::POST, &enable, token, Some(presence_body.clone())).await?;
        assert_eq!((status, code(&body)), (StatusCode::BAD_REQUEST, Some(133)), "an unverified method is not enough: {body}");

        // A wrong code, then a second attempt too soon, then the right one.
        let confirm = format!("{settings}/methods/{totp_id}/verification/confirm");
        let wrong = if totp(&secret, 0)? == "000000" { "111111" } else { "000000" };
        let (status, body) = server.call(Method::POST, &confirm, token, Some(json!({"presenceToken": presence_token, "code": wrong}))).await?;
        assert_eq!((status, code(&body)), (StatusCode::BAD_REQUEST, Some(130)), "{body}");
        let (status, body) = server.call(Method::POST, &confirm, token, Some(json!({"presenceToken": presence_token, "code": totp(&secret, 0)?}))).await?;
        assert_eq!((status, code(&body)), (StatusCode::BAD_REQUEST, Some(134)), "{body}");
        assert!(body["remainingDelay"].as_i64().is_some_and(|ms| ms > 0 && ms <= 1000), "{body}");
        tokio::time::sleep(Duration::from_millis(1100)).await;
        let (status, body) = server.call(Method::POST, &confirm, token, Some(json!({"presenceToken": presence_token, "code": totp(&secret, 0)?}))).await?;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert!(body["description"].is_string());
        let (status, body) = server.call(Method::POST, &enable, token, Some(presence_body.clone())).await?;
        assert_eq!((status, &body), (StatusCode::OK, &json!({"affectedRecords": 1})));

        let (_, body) = server.call(Method::GET, &settings, token, None).await?;
        assert_eq!(body["enabled"], json!(true));
        // Data teams see the same in the read models, without any secret.
        let store = &server.state.store;
        let methods_sql = "SELECT type, verified FROM mfa_methods_v1 WHERE user_id = $1 ORDER BY creation_timestamp, id";
        let rows: Vec<(String, bool)> = vigil_projections::with_pool!(store, pool => {
            sqlx::query_as(methods_sql).bind(&jane).fetch_all(pool).await?
        });
        let mut rows = rows;
        rows.sort();
        assert_eq!(rows, [("recoveryCodes".to_owned(), false), ("totp".to_owned(), true)]);
        let enabled: Vec<bool> = vigil_projections::with_pool!(store, pool => {
            sqlx::query_scalar("SELECT enabled FROM mfa_users_v1 WHERE user_id = $1").bind(&jane).fetch_all(pool).await?
        });
        assert_eq!(enabled, [true]);
        assert_eq!(body["methods"][0]["verified"], json!(true));
        assert!(body["methods"][0].get("secret").is_none(), "the secret is shown once");
        assert!(body["methods"][1].get("codes").is_none(), "the codes are shown once");

        // The password alone no longer logs in; the challenge names the usable methods.
        let mfa = challenged(&server).await?;
        assert_eq!(mfa["token"].as_str().map(str::len), Some(40));
        assert_eq!(mfa["tokenExpiresIn"], json!(600_000));
        let listed: Vec<&str> = mfa["methods"].as_array().into_iter().flatten().filter_map(|m| m["id"].as_str()).collect();
        assert_eq!(listed, [totp_id.as_str(), recovery_id.as_str()]);
        assert_eq!(mfa["methods"][0], json!({"id": totp_id, "type": "totp", "name": "Phone", "tags": ["main"]}));

        // The step used to verify the method is spent; the next one logs in, once.
        let (status, tokens) = answer(&server, &mfa, &totp_id, &totp(&secret, 1)?).await?;
        assert_eq!(status, StatusCode::OK, "{tokens}");
        let (status, me) = server.call(Method::GET, "/users/v1/me", tokens["access_token"].as_str(), None).await?;
        assert_eq!((status, me["id"].as_str()), (StatusCode::OK, Some(jane.as_str())));
        let (status, body) = answer(&server, &mfa, &totp_id, &totp(&secret, 1)?).await?;
        assert_eq!((status, body["error"].as_str(), code(&body)), (StatusCode::BAD_REQUEST, Some("invalid_grant"), Some(131)), "{body}");

        // A recovery code works once (in any case, with or without its dash).
        let mfa = challenged(&server).await?;
        let (status, body) = answer(&server, &mfa, &recovery_id, &codes[3].to_lowercase().replace('-', "")).await?;
        assert_eq!(status, StatusCode::OK, "{body}");
        let mfa = challenged(&server).await?;
        let (status, body) = answer(&server, &mfa, &recovery_id, &codes[3]).await?;
        assert_eq!((status, code(&body)), (StatusCode::BAD_REQUEST, Some(130)), "{body}");
        let (status, body) = answer(&server, &mfa, &recovery_id, &codes[4]).await?;
        assert_eq!((status, code(&body)), (StatusCode::BAD_REQUEST, Some(134)), "{body}");
        assert!(body["remainingDelay"].as_i64().is_some_and(|ms| ms > 0), "{body}");
        tokio::time::sleep(Duration::from_millis(1100)).await;
        let (status, body) = answer(&server, &mfa, &recovery_id, &codes[4]).await?;
        assert_eq!(status, StatusCode::OK, "{body}");

        // While enabled, the last verified TOTP method stays; disabled, the password suffices.
        let remove = format!("{settings}/methods/{totp_id}/remove");
        let (status, body) = server.call(Method::POST, &remove, token, Some(presence_body.clone())).await?;
        assert_eq!((status, code(&body)), (StatusCode::BAD_REQUEST, Some(133)), "{body}");
        let (status, _) = server.call(Method::POST, &format!("{settings}/disable"), token, Some(presence_body.clone())).await?;
        assert_eq!(status, StatusCode::OK);
        server.login("jane@example.com", PASSWORD).await?;
        let (status, body) = server.call(Method::POST, &remove, token, Some(presence_body)).await?;
        assert_eq!((status, &body), (StatusCode::OK, &json!({"affectedRecords": 1})));

        // The log holds neither the TOTP secret nor a recovery code.
        let secret_bytes = totp_rs::Secret::try_from_base32(&secret).map_err(|e| anyhow::anyhow!("{e:?}"))?.as_bytes().to_vec();
        let stream = StreamId::of(Mfa::KIND, jane.parse()?);
        let commits = server.state.bus.log().read_stream(&stream, 0).await?;
        assert!(commits.len() >= 8);
        for recorded in commits {
            let (bytes, _) = recorded.commit.encode()?;
            assert!(!bytes.windows(secret_bytes.len()).any(|w| w == secret_bytes.as_slice()));
            let text = String::from_utf8_lossy(&bytes);
            assert!(!text.contains(&secret) && codes.iter().all(|c| !text.contains(&c[..5])));
        }
        Ok(())
    }
}

in_both_deployments! {
    async fn mfa_settings_are_their_users_own(deployment: Deployment) {
        let env = TestEnv::new(deployment).await?;
        let server = TestServer::start(&env).await?;
        let jane = plain_user(&server, "jane@example.com").await?;
        plain_user(&server, "john@example.com").await?;
        let john = server.login("john@example.com", PASSWORD).await?;
        let john = john["access_token"].as_str();
        let (status, body) = server.call(Method::GET, &format!("/auth/v2/mfa/users/{jane}"), john, None).await?;
        assert_eq!((status, code(&body)), (StatusCode::UNAUTHORIZED, Some(10)));
        // John's own presence token does not let him change Jane's settings.
        let (_, presence) = server.call(Method::POST, "/auth/v2/confirmPresence", john, Some(json!({"password": PASSWORD}))).await?;
        let (status, body) = server.call(Method::POST, &format!("/auth/v2/mfa/users/{jane}/disable"), john, Some(json!({"presenceToken": presence["token"]}))).await?;
        assert_eq!((status, code(&body)), (StatusCode::UNAUTHORIZED, Some(10)));
        // An administrator may view anyone's, and learns when a user does not exist.
        let admin = server.admin_token().await?;
        let (status, body) = server.call(Method::GET, &format!("/auth/v2/mfa/users/{jane}"), Some(&admin), None).await?;
        assert_eq!((status, body["enabled"].as_bool()), (StatusCode::OK, Some(false)));
        let (status, body) = server.call(Method::GET, "/auth/v2/mfa/users/5e9f0000000000000000000a", Some(&admin), None).await?;
        assert_eq!((status, code(&body)), (StatusCode::NOT_FOUND, Some(16)));
        // An unknown MFA token is refused as such.
        let (status, body) = grant(&server, json!({"grant_type": "mfa", "token": "0".repeat(40), "method_id": jane, "code": "123456"})).await?;
        assert_eq!((status, body["error"].as_str(), code(&body)), (StatusCode::BAD_REQUEST, Some("invalid_grant"), Some(131)));
        Ok(())
    }
}

in_both_deployments! {
    async fn a_node_with_another_secrets_key_is_refused_at_start(deployment: Deployment) {
        let env = TestEnv::new(deployment).await?;
        let first = TestServer::start(&env).await?;
        // Another node with the deployment's key starts; one with any other key does not, since
        // it could not open the secrets the log holds sealed.
        TestServer::another_node(&env, &first).await?;
        let other_key = vigil_commands::secrets::Vault::new([9; 32]);
        let refused = vigil_api::cli::start(
            env.open().await?,
            vigil_commands::auth::session::TokenLifetimes::default(),
            None,
            other_key,
            vigil_scheduler::tasks::TaskSettings::default(),
        )
        .await;
        let Err(error) = refused else {
            anyhow::bail!("a node with another secrets key started");
        };
        assert!(error.0.contains("secrets key is not the one this deployment registered"), "{}", error.0);
        Ok(())
    }
}
