//! Accounts over HTTP: registration, profile, passwords and deletion, in both deployments.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use vigil_tests::{TestEnv, TestServer};

use anyhow::Context as _;

use crate::http::code;
use crate::in_both_deployments;

fn registration(email: &str, mode: &str) -> Value {
    json!({
        "first_name": "Jane",
        "last_name": "Doe",
        "email": email,
        "password": "jane's password",
        "phone_number": "+32 470 00 00 00",
        "language": "nl",
        "time_zone": "Europe/Brussels",
        "activation_mode": mode,
        "gender": 2,
    })
}

async fn token_of(server: &TestServer, email: &str, password: &str) -> anyhow::Result<String> {
    let tokens = server.login(email, password).await?;
    Ok(tokens["access_token"]
        .as_str()
        .unwrap_or_default()
        .to_owned())
}

in_both_deployments! {
    async fn an_account_lives_from_registration_to_deletion(deployment: Deployment) {
        let env = TestEnv::new(deployment).await?;
        let server = TestServer::start(&env).await?;
        let email = "Jane.Doe@Example.com";

        let (status, body) = server.call(Method::GET, "/users/v1/email_available?email=jane.doe%40example.com", None, None).await?;
        assert_eq!((status, body), (StatusCode::OK, json!({"email_available": true})));
        let (status, body) = server.call(Method::POST, "/users/v1/register", None, Some(registration(email, "hash"))).await?;
        assert_eq!((status, code(&body)), (StatusCode::BAD_REQUEST, Some(27)), "{body}");
        let mut bad = registration(email, "manual");
        bad["language"] = json!("Dutch");
        let (status, body) = server.call(Method::POST, "/users/v1/register", None, Some(bad)).await?;
        assert_eq!((status, code(&body)), (StatusCode::BAD_REQUEST, Some(15)), "{body}");
        let mut weak = registration(email, "manual");
        weak["password"] = json!("short");
        let (status, body) = server.call(Method::POST, "/users/v1/register", None, Some(weak)).await?;
        assert_eq!((status, code(&body)), (StatusCode::BAD_REQUEST, Some(208)), "{body}");

        let (status, jane) = server.call(Method::POST, "/users/v1/register", None, Some(registration(email, "manual"))).await?;
        assert_eq!(status, StatusCode::OK, "{jane}");
        assert_eq!(jane["email"], "jane.doe@example.com");
        assert_eq!((jane["language"].clone(), jane["activation"].clone()), (json!("NL"), json!(false)));
        let id = jane["id"].as_str().unwrap_or_default().to_owned();
        let (status, body) = server.call(Method::POST, "/users/v1/register", None, Some(registration("jane.doe@example.com", "manual"))).await?;
        assert_eq!((status, code(&body)), (StatusCode::BAD_REQUEST, Some(203)), "{body}");
        let (_, body) = server.call(Method::GET, "/users/v1/email_available?email=jane.doe%40example.com", None, None).await?;
        assert_eq!(body, json!({"email_available": false}));

        let token = token_of(&server, email, "jane's password").await?;
        let token = Some(token.as_str());
        let (_, me) = server.call(Method::GET, "/users/v1/me", token, None).await?;
        assert_eq!(me["id"], json!(id));
        let (status, updated) = server
            .call(Method::PUT, &format!("/users/v1/{id}"), token, Some(json!({"first_name": "Janet", "phone_number": null})))
            .await?;
        assert_eq!(status, StatusCode::OK, "{updated}");
        assert_eq!((updated["first_name"].clone(), updated["phone_number"].clone()), (json!("Janet"), Value::Null));
        assert_eq!(updated["last_name"], "Doe");
        let admin_path = format!("/users/v1/{}", server.admin.user_id);
        let (status, body) = server.call(Method::PUT, &admin_path, token, Some(json!({"first_name": "Mallory"}))).await?;
        assert_eq!((status, code(&body)), (StatusCode::UNAUTHORIZED, Some(10)));
        let (status, body) = server.call(Method::DELETE, &admin_path, token, None).await?;
        assert_eq!((status, code(&body)), (StatusCode::UNAUTHORIZED, Some(10)));

        let (status, body) = server.call(Method::POST, "/users/v1/confirm_password", token, Some(json!({"password": "wrong password"}))).await?;
        assert_eq!((status, code(&body)), (StatusCode::BAD_REQUEST, Some(208)));
        let (status, _) = server.call(Method::POST, "/users/v1/confirm_password", token, Some(json!({"password": "jane's password"}))).await?;
        assert_eq!(status, StatusCode::OK);
        let change = |old: &str, new: &str| json!({"old_password": old, "new_password": new});
        let (status, body) = server.call(Method::PUT, "/users/v1/password", token, Some(change("wrong password", "a new password"))).await?;
        assert_eq!((status, code(&body)), (StatusCode::BAD_REQUEST, Some(208)));
        let (status, body) = server.call(Method::PUT, "/users/v1/password", token, Some(change("jane's password", "short"))).await?;
        assert_eq!((status, code(&body)), (StatusCode::BAD_REQUEST, Some(208)));
        let (status, _) = server.call(Method::PUT, "/users/v1/password", token, Some(change("jane's password", "a new password"))).await?;
        assert_eq!(status, StatusCode::OK);
        assert!(server.login(email, "jane's password").await.is_err(), "the old password is dead");
        // One login attempt per second after a failure.
        tokio::time::sleep(std::time::Duration::from_millis(1_100)).await;
        let second = token_of(&server, email, "a new password").await?;

        let (status, body) = server.call(Method::DELETE, &format!("/users/v1/{id}"), token, None).await?;
        assert_eq!((status, body), (StatusCode::OK, json!({"affectedRecords": 1})));
        for dead in [token, Some(second.as_str())] {
            let (status, body) = server.call(Method::GET, "/users/v1/me", dead, None).await?;
            assert_eq!((status, code(&body)), (StatusCode::UNAUTHORIZED, Some(117)), "logged out everywhere");
        }
        assert!(server.login(email, "a new password").await.is_err());
        let admin = server.admin_token().await?;
        let (status, body) = server.call(Method::GET, &format!("/users/v1/{id}"), Some(&admin), None).await?;
        assert_eq!((status, code(&body)), (StatusCode::NOT_FOUND, Some(16)));
        let (_, body) = server.call(Method::GET, "/users/v1/email_available?email=jane.doe%40example.com", None, None).await?;
        assert_eq!(body, json!({"email_available": true}), "a deleted account frees its email");
        let (status, again) = server.call(Method::POST, "/users/v1/register", None, Some(registration(email, "manual"))).await?;
        assert_eq!(status, StatusCode::OK, "{again}");
        assert_ne!(again["id"], json!(id));

        let (status, policy) = server.call(Method::GET, "/users/v1/password_policy", None, None).await?;
        assert_eq!((status, policy["minimum_length"].clone()), (StatusCode::OK, json!(8)));
        Ok(())
    }
}

in_both_deployments! {
    async fn failed_logins_are_throttled_alike_for_known_and_unknown_addresses(deployment: Deployment) {
        let env = TestEnv::new(deployment).await?;
        let server = TestServer::start(&env).await?;
        let (_, jane) = server.call(Method::POST, "/users/v1/register", None, Some(registration("jane@example.com", "manual"))).await?;
        let id = jane["id"].as_str().unwrap_or_default().to_owned();
        let attempt = |email: &str, password: &str| {
            json!({
                "grant_type": "password",
                "username": email,
                "password": password,
                "client_id": server.admin.client_id,
                "client_secret": server.admin.client_secret,
            })
        };
        for email in ["jane@example.com", "nobody@example.com"] {
            let (status, body) = server.call(Method::POST, "/auth/v2/oauth2/tokens", None, Some(attempt(email, "wrong password"))).await?;
            assert_eq!((status, code(&body)), (StatusCode::BAD_REQUEST, Some(106)), "{email}: {body}");
            // Straight after a failure, even the right password must wait a second.
            let (status, body) = server.call(Method::POST, "/auth/v2/oauth2/tokens", None, Some(attempt(email, "jane's password"))).await?;
            assert_eq!((status, code(&body)), (StatusCode::BAD_REQUEST, Some(211)), "{email}: {body}");
            assert_eq!(body["exh_error"]["name"], "LOGIN_TIMEOUT_EXCEPTION");
        }

        let admin = server.admin_token().await?;
        let (_, seen) = server.call(Method::GET, &format!("/users/v1/{id}"), Some(&admin), None).await?;
        assert_eq!(seen["failed_count"], 1);
        assert!(seen["last_failed_timestamp"].as_i64().is_some(), "{seen}");

        let reset = format!("/users/v1/{id}/reset_failed_login_attempts");
        let (status, body) = server.call(Method::POST, &reset, None, None).await?;
        assert_eq!((status, code(&body)), (StatusCode::UNAUTHORIZED, Some(104)));
        let (status, body) = server.call(Method::POST, &reset, Some(&admin), None).await?;
        assert_eq!((status, body), (StatusCode::OK, json!({"affectedRecords": 1})));
        let tokens = server.login("jane@example.com", "jane's password").await?;
        let (_, me) = server.call(Method::GET, "/users/v1/me", tokens["access_token"].as_str(), None).await?;
        assert_eq!(me["failed_count"], 0);
        Ok(())
    }
}

in_both_deployments! {
    async fn activation_and_password_reset_go_through_mail(deployment: Deployment) {
        let (mut smtp, _env, server) = crate::http::mailing_server(deployment).await?;
        let wait = std::time::Duration::from_secs(10);

        let mut form = registration("jane@example.com", "hash");
        form.as_object_mut().map(|f| f.remove("activation_mode"));
        let (status, jane) = server.call(Method::POST, "/users/v1/register", None, Some(form)).await?;
        assert_eq!((status, jane["activation"].clone()), (StatusCode::OK, json!(false)), "{jane}");
        let id = jane["id"].as_str().unwrap_or_default().to_owned();
        let activation = smtp.next_mail(wait).await?;
        assert_eq!(activation.to, ["jane@example.com"]);
        assert!(activation.data.contains("Activate your account"), "{}", activation.data);
        let activation_code = activation.code().context("no code in the activation mail")?;

        let (status, body) = server.call(Method::POST, "/users/v1/activation", None, Some(json!({"hash": "0".repeat(40)}))).await?;
        assert_eq!((status, code(&body)), (StatusCode::BAD_REQUEST, Some(205)));
        let (status, _) = server.call(Method::POST, "/users/v1/activation", None, Some(json!({"hash": activation_code}))).await?;
        assert_eq!(status, StatusCode::OK);
        let token = token_of(&server, "jane@example.com", "jane's password").await?;
        let (_, me) = server.call(Method::GET, "/users/v1/me", Some(&token), None).await?;
        assert_eq!((me["id"].clone(), me["activation"].clone()), (json!(id), json!(true)));
        let (status, body) = server.call(Method::POST, "/users/v1/activation", None, Some(json!({"hash": activation_code}))).await?;
        assert_eq!((status, code(&body)), (StatusCode::BAD_REQUEST, Some(205)), "a code works once");
        let (status, body) = server.call(Method::GET, "/users/v1/activation?email=jane%40example.com", None, None).await?;
        assert_eq!((status, code(&body)), (StatusCode::BAD_REQUEST, Some(206)));

        // An unknown address gets the same answer as a known one, and no mail.
        let (status, _) = server.call(Method::GET, "/users/v1/forgot_password?email=nobody%40example.com", None, None).await?;
        assert_eq!(status, StatusCode::OK);
        assert!(smtp.no_mail(std::time::Duration::from_millis(500)).await);
        let (status, _) = server.call(Method::GET, "/users/v1/forgot_password?email=jane%40example.com", None, None).await?;
        assert_eq!(status, StatusCode::OK);
        let reset = smtp.next_mail(wait).await?;
        assert!(reset.data.contains("Reset your password"), "{}", reset.data);
        let reset_code = reset.code().context("no code in the reset mail")?;
        let (status, body) = server.call(Method::GET, "/users/v1/forgot_password?email=jane%40example.com", None, None).await?;
        assert_eq!((status, code(&body)), (StatusCode::FORBIDDEN, Some(221)), "five minutes between requests");
        let (status, body) = server.call(Method::GET, "/users/v1/forgot_password?email=nobody%40example.com", None, None).await?;
        assert_eq!((status, code(&body)), (StatusCode::FORBIDDEN, Some(221)), "an unknown address is limited alike");

        let reset_form = json!({"hash": reset_code, "new_password": "a brand new password"});
        let (status, _) = server.call(Method::POST, "/users/v1/forgot_password", None, Some(reset_form.clone())).await?;
        assert_eq!(status, StatusCode::OK);
        let (status, body) = server.call(Method::GET, "/users/v1/me", Some(&token), None).await?;
        assert_eq!((status, code(&body)), (StatusCode::UNAUTHORIZED, Some(117)), "logged out everywhere");
        token_of(&server, "jane@example.com", "a brand new password").await?;
        let (status, body) = server.call(Method::POST, "/users/v1/forgot_password", None, Some(reset_form)).await?;
        assert_eq!((status, code(&body)), (StatusCode::BAD_REQUEST, Some(207)), "a reset code works once");

        // A new address is verified again, by a code mailed to it; the old one is free again.
        let token = token_of(&server, "jane@example.com", "a brand new password").await?;
        let (status, moved) = server
            .call(Method::PUT, &format!("/users/v1/{id}/email"), Some(&token), Some(json!({"email": "Jane@New.example"})))
            .await?;
        assert_eq!(status, StatusCode::OK, "{moved}");
        assert_eq!((moved["email"].clone(), moved["activation"].clone()), (json!("jane@new.example"), json!(false)));
        let again = smtp.next_mail(wait).await?;
        assert_eq!(again.to, ["jane@new.example"]);
        let again_code = again.code().context("no code in the re-activation mail")?;
        let (status, _) = server.call(Method::POST, "/users/v1/activation", None, Some(json!({"hash": again_code}))).await?;
        assert_eq!(status, StatusCode::OK);
        let (_, body) = server.call(Method::GET, "/users/v1/email_available?email=jane%40example.com", None, None).await?;
        assert_eq!(body, json!({"email_available": true}));
        let token = token_of(&server, "jane@new.example", "a brand new password").await?;
        let (_, me) = server.call(Method::GET, "/users/v1/me", Some(&token), None).await?;
        assert_eq!(me["activation"], true);
        Ok(())
    }
}

in_both_deployments! {
    async fn the_password_policy_is_set_and_enforced(deployment: Deployment) {
        let env = TestEnv::new(deployment).await?;
        let server = TestServer::start(&env).await?;
        let admin = server.admin_token().await?;
        let (_, policy) = server.call(Method::GET, "/users/v1/password_policy", None, None).await?;
        assert_eq!(policy["minimum_length"], 8);
        let (_, jane) = server.call(Method::POST, "/users/v1/register", None, Some(registration("jane@example.com", "manual"))).await?;
        let jane_token = token_of(&server, "jane@example.com", "jane's password").await?;
        let stricter = json!({"minimum_length": 12, "number_required": true});
        let (status, body) = server.call(Method::PUT, "/users/v1/password_policy", Some(&jane_token), Some(stricter.clone())).await?;
        assert_eq!((status, code(&body)), (StatusCode::UNAUTHORIZED, Some(10)));
        let (status, body) = server.call(Method::PUT, "/users/v1/password_policy", Some(&admin), Some(json!({"minimum_length": 300}))).await?;
        assert_eq!((status, code(&body)), (StatusCode::BAD_REQUEST, Some(15)));
        let (status, policy) = server.call(Method::PUT, "/users/v1/password_policy", Some(&admin), Some(stricter)).await?;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            (policy["minimum_length"].clone(), policy["maximum_length"].clone(), policy["number_required"].clone()),
            (json!(12), json!(128), json!(true))
        );
        let mut form = registration("john@example.com", "manual");
        form["password"] = json!("no digits at all");
        let (status, body) = server.call(Method::POST, "/users/v1/register", None, Some(form.clone())).await?;
        assert_eq!((status, code(&body)), (StatusCode::BAD_REQUEST, Some(208)), "{body}");
        form["password"] = json!("one digit: 1 here");
        let (status, _) = server.call(Method::POST, "/users/v1/register", None, Some(form)).await?;
        assert_eq!(status, StatusCode::OK);

        let check = |password: &str| json!({"email": "jane@example.com", "password": password});
        let (status, user) = server.call(Method::POST, "/users/v1/authenticate", None, Some(check("jane's password"))).await?;
        assert_eq!((status, user["id"].clone()), (StatusCode::OK, jane["id"].clone()));
        let (status, body) = server.call(Method::POST, "/users/v1/authenticate", None, Some(check("wrong password"))).await?;
        assert_eq!((status, code(&body)), (StatusCode::UNAUTHORIZED, Some(106)));
        let (status, body) = server.call(Method::POST, "/users/v1/authenticate", None, Some(check("jane's password"))).await?;
        assert_eq!((status, code(&body)), (StatusCode::UNAUTHORIZED, Some(211)), "counted like a login");
        Ok(())
    }
}

in_both_deployments! {
    async fn profile_images_and_bulk_deletion(deployment: Deployment) {
        let env = TestEnv::new(deployment).await?;
        let server = TestServer::start(&env).await?;
        let admin = server.admin_token().await?;
        let (_, jane) = server.call(Method::POST, "/users/v1/register", None, Some(registration("jane@example.com", "manual"))).await?;
        let id = jane["id"].as_str().unwrap_or_default().to_owned();
        let token = token_of(&server, "jane@example.com", "jane's password").await?;
        let image = format!("/users/v1/{id}/profile_image");
        let (status, me) = server.call(Method::PUT, &image, Some(&token), Some(json!({"hash": "5f1d8c2a-image"}))).await?;
        assert_eq!((status, me["profile_image"].clone()), (StatusCode::OK, json!("5f1d8c2a-image")));
        let admin_image = format!("/users/v1/{}/profile_image", server.admin.user_id);
        let (status, body) = server.call(Method::PUT, &admin_image, Some(&token), Some(json!({"hash": "x"}))).await?;
        assert_eq!((status, code(&body)), (StatusCode::UNAUTHORIZED, Some(10)));
        let (status, me) = server.call(Method::DELETE, &image, Some(&token), None).await?;
        assert_eq!(status, StatusCode::OK);
        assert!(me.get("profile_image").is_none(), "{me}");

        let (status, body) = server.call(Method::DELETE, "/users/v1/", Some(&admin), None).await?;
        assert_eq!((status, code(&body)), (StatusCode::BAD_REQUEST, Some(20)), "deleting needs RQL");
        let (_, body) = server.call(Method::DELETE, "/users/v1/?eq(email,admin%2540example.com)", Some(&token), None).await?;
        assert_eq!(body, json!({"affectedRecords": 0}), "without DELETE_USER only oneself");
        let (_, body) = server.call(Method::DELETE, "/users/v1/?eq(email,jane%2540example.com)", Some(&admin), None).await?;
        assert_eq!(body, json!({"affectedRecords": 1}));
        let (status, body) = server.call(Method::GET, "/users/v1/me", Some(&token), None).await?;
        assert_eq!((status, code(&body)), (StatusCode::UNAUTHORIZED, Some(117)));
        Ok(())
    }
}

/// Asserts that answers for known and for unknown addresses take about as long: measured in
/// pairs, back to back (so a moment of load on the machine weighs on both), the median ratio is
/// within a factor of 1.5.
fn assert_alike(known: &[u128], unknown: &[u128], what: &str) {
    let mut ratios: Vec<f64> = known
        .iter()
        .zip(unknown)
        .map(|(k, u)| *k as f64 / (*u).max(1) as f64)
        .collect();
    ratios.sort_by(f64::total_cmp);
    let median = ratios[ratios.len() / 2];
    assert!(
        (1.0 / 1.5..1.5).contains(&median),
        "{what}: known/unknown answer time ratio {median:.2} (known {known:?} µs, unknown {unknown:?} µs)"
    );
}

in_both_deployments! {
    async fn a_login_with_an_unknown_address_answers_like_a_wrong_password(deployment: Deployment) {
        // Not a performance figure: a check that an unknown address costs what a known one does
        // (one Argon2 verification each, against a decoy hash when there is no account), so the
        // time of the answer does not tell which addresses have accounts.
        let env = TestEnv::new(deployment).await?;
        let server = TestServer::start(&env).await?;
        const ROUNDS: usize = 12;
        for n in 0..ROUNDS {
            crate::http::plain_user(&server, &format!("known-{n}@example.com")).await?;
        }
        let attempt = |email: String| {
            let server = &server;
            async move {
                let started = std::time::Instant::now();
                let body = json!({"grant_type": "password", "username": email, "password": "not the password"});
                let (status, body) = crate::http::grant(server, body).await?;
                anyhow::Ok((started.elapsed().as_micros(), status, body))
            }
        };
        let (mut known, mut unknown) = (Vec::new(), Vec::new());
        for n in 0..ROUNDS {
            // Interleaved, each address once (a second failure on an address would be throttled).
            let (k, known_status, known_body) = attempt(format!("known-{n}@example.com")).await?;
            let (u, unknown_status, unknown_body) = attempt(format!("nobody-{n}@example.com")).await?;
            assert_eq!((known_status, &known_body), (unknown_status, &unknown_body));
            assert_eq!(code(&known_body), Some(106));
            known.push(k);
            unknown.push(u);
        }
        assert_alike(&known, &unknown, "login");
        Ok(())
    }
}

in_both_deployments! {
    async fn a_reset_request_for_an_unknown_address_answers_like_one_for_an_account(deployment: Deployment) {
        // Not a performance figure: both record one request (on the account, or on the address)
        // and answer alike, so neither the answer nor its time tells which addresses have accounts.
        let (_smtp, _env, server) = crate::http::mailing_server(deployment).await?;
        const ROUNDS: usize = 24;
        for n in 0..ROUNDS {
            crate::http::plain_user(&server, &format!("known-{n}@example.com")).await?;
        }
        let request = |email: String| {
            let server = &server;
            async move {
                let path = format!("/users/v1/forgot_password?email={email}");
                let started = std::time::Instant::now();
                let (status, body) = server.call(Method::GET, &path, None, None).await?;
                anyhow::Ok((started.elapsed().as_micros(), status, body))
            }
        };
        let (mut known, mut unknown) = (Vec::new(), Vec::new());
        for n in 0..ROUNDS {
            let (k, known_status, known_body) = request(format!("known-{n}%40example.com")).await?;
            let (u, unknown_status, unknown_body) = request(format!("nobody-{n}%40example.com")).await?;
            assert_eq!((known_status, &known_body), (unknown_status, &unknown_body));
            assert_eq!(known_status, StatusCode::OK);
            known.push(k);
            unknown.push(u);
        }
        assert_alike(&known, &unknown, "forgot-password");
        Ok(())
    }
}

in_both_deployments! {
    async fn parallel_password_guesses_cannot_outrun_the_throttle(deployment: Deployment) {
        let env = TestEnv::new(deployment).await?;
        let server = TestServer::start(&env).await?;
        crate::http::plain_user(&server, "jane@example.com").await?;
        const GUESSES: usize = 6;
        let guesses = (0..GUESSES).map(|n| {
            let body = json!({"grant_type": "password", "username": "jane@example.com", "password": format!("guess {n}")});
            crate::http::grant(&server, body)
        });
        let answers = futures::future::try_join_all(guesses).await?;
        let codes: Vec<Option<u64>> = answers.iter().map(|(_, body)| code(body)).collect();
        let counted = codes.iter().filter(|c| **c == Some(106)).count();
        assert!(codes.iter().all(|c| *c == Some(106) || *c == Some(211)), "{codes:?}");
        // Attempts decided within the same second as a failure are refused, not evaluated: only
        // those a second apart count, whatever the concurrency.
        assert!((1..GUESSES).contains(&counted), "{codes:?}");
        let stream = vigil_domain::users::login::stream(&vigil_domain::value::Email::parse("jane@example.com")?);
        let (login, _) = server.state.bus.load::<vigil_domain::users::login::Login>(&stream).await?;
        assert_eq!(usize::try_from(login.failed_count)?, counted);
        Ok(())
    }
}

in_both_deployments! {
    async fn password_checks_by_a_signed_in_user_are_counted_and_frozen_like_logins(deployment: Deployment) {
        let env = TestEnv::new(deployment).await?;
        let server = TestServer::start(&env).await?;
        let confirm = |password: &str| json!({"password": password});
        let change = |old: &str| json!({"old_password": old, "new_password": "Another password 1!"});
        let attempts = [
            ("jane@example.com", Method::POST, "/users/v1/confirm_password", confirm("wrong"), confirm("jane's password")),
            ("john@example.com", Method::PUT, "/users/v1/password", change("wrong"), change("jane's password")),
        ];
        for (email, method, path, wrong, right) in attempts {
            server.call(Method::POST, "/users/v1/register", None, Some(registration(email, "manual"))).await?;
            let token = token_of(&server, email, "jane's password").await?;
            for _ in 0..10 {
                let (status, body) = server.call(method.clone(), path, Some(&token), Some(wrong.clone())).await?;
                assert_eq!((status, body["name"].as_str()), (StatusCode::BAD_REQUEST, Some("PASSWORD_EXCEPTION")), "{path}: {body}");
            }
            // Ten failures freeze the address for a minute, as ten failed logins do: even the right
            // password is refused, and so is a login.
            let (status, body) = server.call(method, path, Some(&token), Some(right)).await?;
            assert_eq!((status, code(&body)), (StatusCode::UNAUTHORIZED, Some(212)), "{path}: {body}");
            let login = json!({
                "grant_type": "password",
                "username": email,
                "password": "jane's password",
                "client_id": server.admin.client_id,
                "client_secret": server.admin.client_secret,
            });
            let (status, body) = server.call(Method::POST, "/auth/v2/oauth2/tokens", None, Some(login)).await?;
            assert_eq!((status, code(&body)), (StatusCode::BAD_REQUEST, Some(212)), "{path}: {body}");
        }
        Ok(())
    }
}

in_both_deployments! {
    async fn a_password_change_ends_every_other_session_of_the_user(deployment: Deployment) {
        let env = TestEnv::new(deployment).await?;
        let server = TestServer::start(&env).await?;
        server.call(Method::POST, "/users/v1/register", None, Some(registration("jane@example.com", "manual"))).await?;
        let first = server.login("jane@example.com", "jane's password").await?;
        let second = server.login("jane@example.com", "jane's password").await?;
        let token = |tokens: &Value, kind: &str| tokens[kind].as_str().unwrap_or_default().to_owned();
        let change = json!({"old_password": "jane's password", "new_password": "Another password 1!"});
        let (status, body) = server.call(Method::PUT, "/users/v1/password", Some(&token(&first, "access_token")), Some(change)).await?;
        assert_eq!(status, StatusCode::OK, "{body}");

        let refresh = |tokens: &Value| json!({
            "grant_type": "refresh_token",
            "refresh_token": token(tokens, "refresh_token"),
            "client_id": server.admin.client_id,
            "client_secret": server.admin.client_secret,
        });
        // The other session is over: its access token is unknown, its refresh token refused.
        let (status, body) = server.call(Method::GET, "/users/v1/me", Some(&token(&second, "access_token")), None).await?;
        assert_eq!((status, body["name"].as_str()), (StatusCode::UNAUTHORIZED, Some("ACCESS_TOKEN_UNKNOWN_EXCEPTION")), "{body}");
        let (status, body) = server.call(Method::POST, "/auth/v2/oauth2/tokens", None, Some(refresh(&second))).await?;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        // The session the change was made with goes on.
        let (status, me) = server.call(Method::GET, "/users/v1/me", Some(&token(&first, "access_token")), None).await?;
        assert_eq!(status, StatusCode::OK, "{me}");
        let (status, body) = server.call(Method::POST, "/auth/v2/oauth2/tokens", None, Some(refresh(&first))).await?;
        assert_eq!(status, StatusCode::OK, "{body}");
        // And so does a login with the new password.
        server.login("jane@example.com", "Another password 1!").await?;
        Ok(())
    }
}
