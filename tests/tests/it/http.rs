//! The HTTP API against a real listener, in both deployments.

use reqwest::{Client, StatusCode};
use serde_json::{Value, json};
use vigil_commands::ids::IdGenerator;
use vigil_commands::secrets;
use vigil_domain::aggregate::Aggregate;
use vigil_domain::id::StreamId;
use vigil_domain::users::user::{PasswordHash, Registration, User, UserCommand};
use vigil_domain::value::Email;
use vigil_tests::{ADMIN_EMAIL, ADMIN_PASSWORD, TestEnv, TestServer, system_meta};

use crate::in_both_deployments;

async fn get(
    server: &TestServer,
    path: &str,
    token: Option<&str>,
) -> anyhow::Result<(StatusCode, Value)> {
    server.call(reqwest::Method::GET, path, token, None).await
}

async fn token_request(server: &TestServer, body: Value) -> anyhow::Result<(StatusCode, Value)> {
    let response = Client::new()
        .post(server.url("/auth/v2/oauth2/tokens"))
        .json(&body)
        .send()
        .await?;
    Ok((response.status(), response.json().await?))
}

/// A request to the token endpoint as the bootstrapped (confidential) application.
pub(crate) async fn grant(server: &TestServer, body: Value) -> anyhow::Result<(StatusCode, Value)> {
    let mut body = body;
    body["client_id"] = serde_json::json!(server.admin.client_id);
    body["client_secret"] = serde_json::json!(server.admin.client_secret);
    server
        .call(
            reqwest::Method::POST,
            "/auth/v2/oauth2/tokens",
            None,
            Some(body),
        )
        .await
}

/// The Extra Horizon error code of a response.
pub(crate) fn code(body: &Value) -> Option<u64> {
    body["code"]
        .as_u64()
        .or_else(|| body["exh_error"]["code"].as_u64())
}

/// A server that mails to a fresh SMTP server on loopback, with its environment (kept alive by
/// the caller) and that SMTP server.
pub(crate) async fn mailing_server(
    deployment: vigil_tests::Deployment,
) -> anyhow::Result<(vigil_tests::smtp::TestSmtp, TestEnv, TestServer)> {
    let smtp = vigil_tests::smtp::TestSmtp::start().await?;
    let env = TestEnv::new(deployment).await?;
    let mail = vigil_scheduler::mail::MailConfig {
        smtp_url: smtp.url.clone(),
        from: "Vigil <no-reply@example.com>".into(),
    };
    let server = TestServer::start_with(&env, Some(&mail)).await?;
    Ok((smtp, env, server))
}

/// The access token of a new activated user without any role (password "jane's password").
pub(crate) async fn plain_token(server: &TestServer, email: &str) -> anyhow::Result<String> {
    plain_user(server, email).await?;
    let tokens = server.login(email, "jane's password").await?;
    Ok(tokens["access_token"]
        .as_str()
        .unwrap_or_default()
        .to_owned())
}

/// Registers an activated user without any role, straight through the command bus.
pub(crate) async fn plain_user(server: &TestServer, email: &str) -> anyhow::Result<String> {
    let password_hash = secrets::hash_password("jane's password".into()).await?;
    let (id, position) = registered(&server.state.bus, email, password_hash).await?;
    server.state.settle(position).await?;
    Ok(id.to_string())
}

/// Registers an activated user without any role through `bus`, with its email address claimed;
/// its id and the position of its registration.
pub(crate) async fn registered(
    bus: &vigil_commands::CommandBus,
    email: &str,
    password_hash: PasswordHash,
) -> anyhow::Result<(vigil_domain::id::Id, u64)> {
    let id = IdGenerator::new().next();
    let register = UserCommand::Register(Registration {
        email: Email::parse(email)?,
        first_name: "Jane".into(),
        last_name: "Doe".into(),
        phone_number: Some("+32 0123".into()),
        language: "NL".into(),
        time_zone: "Europe/Brussels".into(),
        password_hash,
        activated: true,
        activation_request: None,
        oidc: None,
    });
    let unique = vigil_commands::unique::Unique {
        namespace: "email",
        value: email.into(),
    };
    let outcome = bus
        .execute_unique::<User>(
            &StreamId::of(User::KIND, id),
            &register,
            &[unique],
            &system_meta(),
        )
        .await?;
    Ok((id, outcome.position))
}

in_both_deployments! {
    async fn a_body_over_the_limit_is_refused_in_the_extra_horizon_shape(deployment: Deployment) {
        let env = TestEnv::new(deployment).await?;
        let server = TestServer::start(&env).await?;
        let huge = json!({"email": "a".repeat(11 * 1024 * 1024), "password": "x"}).to_string();
        // Sent raw: the server answers once it has read 10 MiB and closes, which a client still
        // writing may take for a failed request.
        let mut request = format!(
            "POST /users/v1/register HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
            huge.len()
        )
        .into_bytes();
        request.extend_from_slice(huge.as_bytes());
        let answer = raw_exchange(&server, &request).await?;
        let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
        assert!(head.starts_with("HTTP/1.1 413 "), "{head}");
        let body: Value = serde_json::from_str(body)?;
        assert_eq!(body["name"], "BODY_FORMAT_EXCEPTION", "{body}");
        Ok(())
    }
}

in_both_deployments! {
    async fn an_administrator_logs_in_and_reads_users(deployment: Deployment) {
        let env = TestEnv::new(deployment).await?;
        let server = TestServer::start(&env).await?;
        let tokens = server.login(ADMIN_EMAIL, ADMIN_PASSWORD).await?;
        assert_eq!(tokens["token_type"], "bearer");
        assert_eq!(tokens["user_id"], server.admin.user_id.to_string());
        assert_eq!(tokens["access_token"].as_str().map(str::len), Some(40));
        let token = tokens["access_token"].as_str().unwrap_or_default();

        let (status, me) = get(&server, "/users/v1/me", Some(token)).await?;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(me["email"], ADMIN_EMAIL);
        assert_eq!(me["activation"], true);
        assert!(me["creation_timestamp"].as_i64().is_some());
        let permissions = me["roles"][0]["permissions"].as_array().map(Vec::len).unwrap_or_default();
        assert!(permissions > 150, "the administrator holds every permission");

        let jane = plain_user(&server, "jane@example.com").await?;
        let (_, page) = get(&server, "/users/v1/?sort(-email)&select(id,email)&limit(1)", Some(token)).await?;
        assert_eq!(page["page"], json!({"total": 2, "offset": 0, "limit": 1}));
        assert_eq!(page["data"], json!([{"id": jane, "email": "jane@example.com"}]));
        let (_, filtered) = get(&server, "/users/v1?eq(email,admin%2540example.com)", Some(token)).await?;
        assert_eq!(filtered["data"][0]["id"], server.admin.user_id.to_string());
        let (_, phone) = get(&server, "/users/v1/?eq(phone_number,string:%252B32%25200123)&skipCount()", Some(token)).await?;
        assert_eq!(phone["data"][0]["id"], jane);
        assert!(phone["page"].get("total").is_none());
        let (status, one) = get(&server, &format!("/users/v1/{jane}"), Some(token)).await?;
        assert_eq!((status, one["first_name"].clone()), (StatusCode::OK, json!("Jane")));
        Ok(())
    }
}

in_both_deployments! {
    async fn a_user_without_permissions_sees_only_themselves(deployment: Deployment) {
        let env = TestEnv::new(deployment).await?;
        let server = TestServer::start(&env).await?;
        let jane = plain_user(&server, "jane@example.com").await?;
        let tokens = server.login("jane@example.com", "jane's password").await?;
        let token = tokens["access_token"].as_str().unwrap_or_default();
        let (status, me) = get(&server, "/users/v1/me", Some(token)).await?;
        assert_eq!((status, me["id"].clone()), (StatusCode::OK, json!(jane)));
        assert_eq!(me["roles"], json!([]));
        let (status, own) = get(&server, &format!("/users/v1/{jane}"), Some(token)).await?;
        assert_eq!((status, own["email"].clone()), (StatusCode::OK, json!("jane@example.com")));
        let (status, other) = get(&server, &format!("/users/v1/{}", server.admin.user_id), Some(token)).await?;
        assert_eq!((status, code(&other)), (StatusCode::UNAUTHORIZED, Some(10)));
        assert_eq!(other["name"], "NO_PERMISSION_EXCEPTION");
        let (_, list) = get(&server, "/users/v1/", Some(token)).await?;
        assert_eq!(list["page"]["total"], 0);
        Ok(())
    }
}

in_both_deployments! {
    async fn tokens_rotate_on_refresh_and_the_old_ones_die(deployment: Deployment) {
        let env = TestEnv::new(deployment).await?;
        let server = TestServer::start(&env).await?;
        let first = server.login(ADMIN_EMAIL, ADMIN_PASSWORD).await?;
        let refresh = |token: &Value| json!({
            "grant_type": "refresh_token",
            "refresh_token": token,
            "client_id": server.admin.client_id,
            "client_secret": server.admin.client_secret,
        });
        let (status, second) = token_request(&server, refresh(&first["refresh_token"])).await?;
        assert_eq!(status, StatusCode::OK);
        assert_ne!(second["refresh_token"], first["refresh_token"]);
        let (status, _) = get(&server, "/users/v1/me", second["access_token"].as_str()).await?;
        assert_eq!(status, StatusCode::OK);
        let (status, old) = get(&server, "/users/v1/me", first["access_token"].as_str()).await?;
        assert_eq!((status, code(&old)), (StatusCode::UNAUTHORIZED, Some(117)));
        let (status, spent) = token_request(&server, refresh(&first["refresh_token"])).await?;
        assert_eq!((status, spent["error"].clone(), code(&spent)), (StatusCode::BAD_REQUEST, json!("invalid_grant"), Some(119)));
        Ok(())
    }
}

in_both_deployments! {
    async fn the_token_endpoint_answers_errors_in_the_oauth2_shape(deployment: Deployment) {
        let env = TestEnv::new(deployment).await?;
        let server = TestServer::start(&env).await?;
        let password = |username: &str, password: &str, client_id: &str, secret: Option<&str>| {
            let mut body = json!({"grant_type": "password", "username": username, "password": password, "client_id": client_id});
            if let Some(secret) = secret {
                body["client_secret"] = json!(secret);
            }
            body
        };
        let (id, secret) = (server.admin.client_id.as_str(), server.admin.client_secret.as_str());
        let cases = [
            (password(ADMIN_EMAIL, "wrong", id, Some(secret)), 400, "invalid_grant", 106),
            (password("nobody@example.com", "wrong", id, Some(secret)), 400, "invalid_grant", 106),
            (password(ADMIN_EMAIL, ADMIN_PASSWORD, "unknown", Some(secret)), 401, "invalid_client", 123),
            (password(ADMIN_EMAIL, ADMIN_PASSWORD, id, None), 401, "invalid_client", 124),
            (password(ADMIN_EMAIL, ADMIN_PASSWORD, id, Some("wrong")), 401, "invalid_client", 124),
            (json!({"grant_type": "password", "username": ADMIN_EMAIL, "password": ADMIN_PASSWORD}), 400, "invalid_request", 126),
            (json!({"grant_type": "telepathy", "client_id": id, "client_secret": secret}), 400, "unsupported_grant_type", 121),
            (json!({"grant_type": "password", "client_id": id, "client_secret": secret}), 400, "invalid_request", 14),
        ];
        for (body, status, error, exh) in cases {
            let (got, answer) = token_request(&server, body.clone()).await?;
            assert_eq!((got.as_u16(), answer["error"].as_str(), code(&answer)), (status, Some(error), Some(exh)), "{body}");
        }
        let response = Client::new()
            .post(server.url("/auth/v2/oauth2/tokens"))
            .header("content-type", "application/json")
            .body("{not json")
            .send()
            .await?;
        let (status, answer) = (response.status(), response.json::<Value>().await?);
        assert_eq!((status, code(&answer)), (StatusCode::BAD_REQUEST, Some(22)));
        // Standard form-encoded requests work too (a second after the failed attempt above).
        tokio::time::sleep(std::time::Duration::from_millis(1_100)).await;
        let response = Client::new()
            .post(server.url("/auth/v2/oauth2/tokens"))
            .basic_auth(id, Some(secret))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("grant_type=password&username=admin%40example.com&password={}", ADMIN_PASSWORD.replace(' ', "+")))
            .send()
            .await?;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers().get("cache-control").and_then(|v| v.to_str().ok()), Some("no-store"));
        Ok(())
    }
}

in_both_deployments! {
    async fn every_failure_has_the_extra_horizon_error_shape(deployment: Deployment) {
        let env = TestEnv::new(deployment).await?;
        let server = TestServer::start(&env).await?;
        let token = server.admin_token().await?;
        let cases = [
            ("/users/v1/me", None, 401, 104),
            ("/users/v1/me", Some("0000000000000000000000000000000000000000"), 401, 117),
            ("/users/v1/", None, 401, 104),
            ("/nowhere", None, 404, 16),
            ("/users/v1/not-an-id", Some(token.as_str()), 400, 12),
            ("/users/v1/5e9fff9d90135a2a9a718e2f", Some(token.as_str()), 404, 16),
            ("/users/v1/?eq(first_name", Some(token.as_str()), 400, 19),
            ("/users/v1/?eq(password,x)", Some(token.as_str()), 400, 19),
        ];
        for (path, token, status, exh) in cases {
            let (got, body) = get(&server, path, token).await?;
            assert_eq!((got.as_u16(), code(&body)), (status, Some(exh)), "{path}");
            assert!(body["name"].as_str().is_some_and(|n| n.ends_with("_EXCEPTION")), "{body}");
            assert!(body["message"].as_str().is_some(), "{body}");
        }
        let response = Client::new().delete(server.url("/users/v1/me")).send().await?;
        assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(code(&response.json().await?), Some(16));
        for health in ["/users/v1/health", "/auth/v2/health"] {
            assert_eq!(get(&server, health, None).await?.0, StatusCode::OK, "{health}");
        }

        // What the layers in front of the handlers refuse is answered in the same shape.
        let register = server.url("/users/v1/register");
        let edge = [
            ("an unknown Content-Encoding", Client::new().post(&register).header("content-encoding", "x-unknown").body("{}"), 415),
            ("a body that is not gzip", Client::new().post(&register).header("content-encoding", "gzip").header("content-type", "application/json").body("not gzip at all"), 400),
            ("a path that is not UTF-8", Client::new().get(format!("{}/%FF%FE", server.url("/users/v1"))).bearer_auth(&token), 400),
        ];
        for (what, request, status) in edge {
            let response = request.send().await?;
            assert_eq!(response.status().as_u16(), status, "{what}");
            let content_type = response.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
            assert!(content_type.starts_with("application/json"), "{what}: {content_type}");
            let body: Value = response.json().await?;
            assert!(code(&body).is_some() && body["name"].as_str().is_some_and(|n| n.ends_with("_EXCEPTION")), "{what}: {body}");
            assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()), "{what}: {body}");
        }

        // What hyper answers itself, before the application, too.
        let headers: String = (0..2000).map(|n| format!("x-h{n}: v\r\n")).collect();
        let raw = [
            ("a 100 KB path", format!("GET /users/v1/{} HTTP/1.1\r\nhost: x\r\n\r\n", "a".repeat(100 * 1024)), 414),
            ("a 1 MB query", format!("GET /users/v1/?{} HTTP/1.1\r\nhost: x\r\n\r\n", "a".repeat(1024 * 1024)), 431),
            ("a 1 MB header", format!("GET /users/v1/health HTTP/1.1\r\nhost: x\r\nx-big: {}\r\n\r\n", "a".repeat(1024 * 1024)), 431),
            ("2,000 headers", format!("GET /users/v1/health HTTP/1.1\r\nhost: x\r\n{headers}\r\n"), 431),
            ("a request line that is not HTTP", "GET\r\n\r\n".to_owned(), 400),
        ];
        for (what, request, status) in raw {
            let answer = raw_exchange(&server, request.as_bytes()).await?;
            let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
            assert!(head.starts_with(&format!("HTTP/1.1 {status} ")), "{what}: {head}");
            assert!(head.contains("content-type: application/json"), "{what}: {head}");
            let body: Value = serde_json::from_str(body).map_err(|e| anyhow::anyhow!("{what}: {e}: {body}"))?;
            assert!(code(&body).is_some() && body["message"].as_str().is_some_and(|m| !m.is_empty()), "{what}: {body}");
        }
        Ok(())
    }
}

/// Sends `request` as is on a new connection and reads the answer until the server closes it.
pub(crate) async fn raw_exchange(server: &TestServer, request: &[u8]) -> anyhow::Result<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(server.http).await?;
    // The server may answer and close before it has read everything.
    let _ = stream.write_all(request).await;
    let mut answer = Vec::new();
    tokio::time::timeout(
        std::time::Duration::from_secs(30),
        stream.read_to_end(&mut answer),
    )
    .await
    .map_err(|_| anyhow::anyhow!("no answer within 30 s"))?
    .or_else(|error| if answer.is_empty() { Err(error) } else { Ok(0) })?;
    Ok(String::from_utf8_lossy(&answer).into_owned())
}

in_both_deployments! {
    async fn the_audit_trail_records_who_and_through_what(deployment: Deployment) {
        let env = TestEnv::new(deployment).await?;
        let server = TestServer::start(&env).await?;
        let before = server.state.bus.log().head().await?;
        let response = Client::new()
            .post(server.url("/auth/v2/oauth2/tokens"))
            .header("x-request-id", "trace-me-42")
            .json(&json!({
                "grant_type": "password",
                "username": ADMIN_EMAIL,
                "password": ADMIN_PASSWORD,
                "client_id": server.admin.client_id,
                "client_secret": server.admin.client_secret,
            }))
            .send()
            .await?;
        assert_eq!(response.status(), StatusCode::OK);
        let commits = server.state.bus.log().read_all(before, 10).await?;
        assert_eq!(commits.len(), 1);
        let commit = &commits[0].commit;
        assert_eq!(commit.stream.kind(), "session");
        assert_eq!(commit.correlation_id, "trace-me-42");
        assert_eq!(commit.actor.user_id, Some(server.admin.user_id));
        assert_eq!(commit.actor.application_id, Some(server.admin.application_id));
        assert_eq!(commit.actor.client_ip.as_deref(), Some("127.0.0.1"));
        Ok(())
    }
}

in_both_deployments! {
    async fn error_messages_do_not_grow_with_the_input_they_refuse(deployment: Deployment) {
        let env = TestEnv::new(deployment).await?;
        let server = TestServer::start(&env).await?;
        let admin = server.admin_token().await?;
        let admin = Some(admin.as_str());

        // A megabyte of an unknown activation mode is not repeated back.
        let register = json!({
            "first_name": "Jane", "last_name": "Doe", "email": "jane@example.com",
            "password": "Secret123!", "phone_number": "+32 0123", "language": "EN",
            "activation_mode": "x".repeat(1024 * 1024),
        });
        let (status, body) = server
            .call(reqwest::Method::POST, "/users/v1/register", None, Some(register))
            .await?;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{}", &body.to_string()[..200]);
        let message = body["message"].as_str().unwrap_or_default();
        assert!(message.chars().count() <= 1100, "{} characters", message.len());
        assert!(message.ends_with("more characters)"), "{message}");

        // Fifty thousand unknown fields: the first are named, the rest counted.
        let (status, answer) = server
            .call(reqwest::Method::POST, "/data/v1/", admin, Some(json!({"name": "note", "description": "a note"})))
            .await?;
        assert_eq!(status, StatusCode::OK, "{answer}");
        let data: serde_json::Map<String, Value> =
            (0..50_000).map(|n| (format!("unknown{n}"), json!(n))).collect();
        let (status, body) = server
            .call(reqwest::Method::POST, "/data/v1/note/documents", admin, Some(Value::Object(data)))
            .await?;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{}", &body.to_string()[..200]);
        let message = body["message"].as_str().unwrap_or_default();
        assert!(message.chars().count() <= 1100, "{} characters", message.len());
        assert!(message.contains("more"), "{message}");
        Ok(())
    }
}

in_both_deployments! {
    async fn free_text_is_bounded_and_permissions_must_be_known(deployment: Deployment) {
        use reqwest::Method;
        let env = TestEnv::new(deployment).await?;
        let server = TestServer::start(&env).await?;
        let admin = server.admin_token().await?;
        let admin = Some(admin.as_str());
        let refused = |what: &str, (status, body): (StatusCode, Value)| {
            assert_eq!((status, code(&body)), (StatusCode::BAD_REQUEST, Some(15)), "{what}: {}", &body.to_string().chars().take(300).collect::<String>());
        };
        let register = |first_name: String, phone: String| json!({
            "first_name": first_name, "last_name": "Doe", "email": "jane@example.com",
            "password": "Secret123!", "phone_number": phone, "language": "EN",
            "activation_mode": "manual",
        });
        for (what, body) in [
            ("a 500 KB phone number", register("Jane".into(), "1".repeat(500 * 1024))),
            ("a NUL in a name", register("Ja\u{0}ne".into(), "+32 1".into())),
            ("a 101-character name", register("J".repeat(101), "+32 1".into())),
        ] {
            refused(what, server.call(Method::POST, "/users/v1/register", None, Some(body)).await?);
        }

        let (_, role) = server.call(Method::POST, "/users/v1/roles", admin, Some(json!({"name": "Nurse"}))).await?;
        let role_id = role["id"].as_str().unwrap_or_default().to_owned();
        let add = format!("/users/v1/roles/add_permissions?eq(id,{role_id})");
        refused("an unknown permission", server.call(Method::POST, &add, admin, Some(json!({"permissions": ["VIEW_DOCUMENT"]}))).await?);
        let (status, _) = server.call(Method::POST, &add, admin, Some(json!({"permissions": ["VIEW_DOCUMENTS:notes"]}))).await?;
        assert_eq!(status, StatusCode::OK);
        refused("a 1 MB description", server.call(Method::POST, "/users/v1/roles", admin, Some(json!({"name": "Big", "description": "d".repeat(1024 * 1024)}))).await?);
        let group = "5e9f0000000000000000d0c5";
        let (_, group_role) = server.call(Method::POST, &format!("/users/v1/groups/{group}/roles"), admin, Some(json!({"name": "Staff"}))).await?;
        let group_add = format!("/users/v1/groups/{group}/roles/add_permissions?eq(id,{})", group_role["id"].as_str().unwrap_or_default());
        refused("a global-only permission in a group role", server.call(Method::POST, &group_add, admin, Some(json!({"permissions": ["VIEW_PATIENTS"]}))).await?);

        let app = |uri: &str| json!({"type": "oauth2", "name": "Viewer", "description": "Views", "redirectUris": [uri], "confidential": false});
        for uri in ["http://app.example.com/callback", "javascript:alert(1)", "/relative"] {
            refused(uri, server.call(Method::POST, "/auth/v2/applications", admin, Some(app(uri))).await?);
        }
        let (status, created) = server.call(Method::POST, "/auth/v2/applications", admin, Some(app("https://app.example.com/callback"))).await?;
        assert_eq!(status, StatusCode::OK, "{created}");
        let logo = json!({"type": "oauth2", "logo": "x".repeat(900 * 1024)});
        let at = format!("/auth/v2/applications/{}", created["id"].as_str().unwrap_or_default());
        refused("a 900 KB logo", server.call(Method::PUT, &at, admin, Some(logo)).await?);
        Ok(())
    }
}
