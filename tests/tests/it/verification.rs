//! Pin codes, the verification settings and the pending-request listings over HTTP, with the
//! mails received on a real SMTP server, in both deployments.

use std::time::Duration;

use anyhow::Context as _;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use vigil_tests::TestServer;

use crate::http::{code, mailing_server, plain_token};
use crate::in_both_deployments;

const WAIT: Duration = Duration::from_secs(10);

fn registration(email: &str, mode: &str) -> Value {
    json!({
        "first_name": "Pim",
        "last_name": "Code",
        "email": email,
        "password": "pim's password",
        "language": "EN",
        "activation_mode": mode,
    })
}

/// The pending requests of one kind (`activation` or `forgot_password`), as the administrator
/// lists them.
async fn pending(server: &TestServer, admin: &str, kind: &str) -> anyhow::Result<Vec<Value>> {
    let (status, page) = server
        .call(
            Method::GET,
            &format!("/users/v1/{kind}_requests/"),
            Some(admin),
            None,
        )
        .await?;
    anyhow::ensure!(status == StatusCode::OK, "{page}");
    Ok(page["data"].as_array().cloned().unwrap_or_default())
}

in_both_deployments! {
    async fn pin_codes_verify_addresses_once_enabled(deployment: Deployment) {
        let (mut smtp, _env, server) = mailing_server(deployment).await?;
        let admin = server.admin_token().await?;

        let (status, body) = server.call(Method::POST, "/users/v1/register", None, Some(registration("pim@example.com", "pin_code"))).await?;
        assert_eq!((status, code(&body)), (StatusCode::FORBIDDEN, Some(218)), "pins are off by default");

        let plain = plain_token(&server, "plain@example.com").await?;
        let (status, body) = server.call(Method::GET, "/users/v1/settings/verification", Some(&plain), None).await?;
        assert_eq!((status, code(&body)), (StatusCode::UNAUTHORIZED, Some(10)));
        let (status, body) = server.call(Method::PUT, "/users/v1/settings/verification", Some(&plain), Some(json!({"enable_pin_code_activation_requests": true}))).await?;
        assert_eq!((status, code(&body)), (StatusCode::UNAUTHORIZED, Some(10)));
        let (status, body) = server.call(Method::GET, "/users/v1/activation_requests", Some(&plain), None).await?;
        assert_eq!((status, code(&body)), (StatusCode::UNAUTHORIZED, Some(10)));

        let (_, defaults) = server.call(Method::GET, "/users/v1/settings/verification", Some(&admin), None).await?;
        assert_eq!(defaults, json!({
            "enable_pin_code_activation_requests": false,
            "enable_pin_code_forgot_password_requests": false,
            "limit_hash_activation_requests": true,
            "limit_hash_forgot_password_requests": true,
        }));
        let (status, body) = server.call(Method::PUT, "/users/v1/settings/verification", Some(&admin), Some(json!({"enable_pin_code_activation_requests": "yes"}))).await?;
        assert_eq!((status, code(&body)), (StatusCode::BAD_REQUEST, Some(15)), "{body}");
        let (status, settings) = server.call(Method::PUT, "/users/v1/settings/verification", Some(&admin), Some(json!({
            "enable_pin_code_activation_requests": true,
            "enable_pin_code_forgot_password_requests": true,
        }))).await?;
        assert_eq!(status, StatusCode::OK, "{settings}");
        assert_eq!((settings["enable_pin_code_activation_requests"].clone(), settings["limit_hash_activation_requests"].clone()), (json!(true), json!(true)));

        // Activation with a mailed pin: a wrong pin is counted, the right one activates.
        let before = vigil_commands::ids::now().millis();
        let (status, pim) = server.call(Method::POST, "/users/v1/register", None, Some(registration("pim@example.com", "pin_code"))).await?;
        assert_eq!(status, StatusCode::OK, "{pim}");
        let pim_id = pim["id"].as_str().unwrap_or_default().to_owned();
        let activation = smtp.next_mail(WAIT).await?;
        assert!(activation.text().contains("pin code within 15 minutes"), "{}", activation.data);
        let pin = activation.pin().context("no pin in the activation mail")?;
        assert!(activation.code().is_none(), "a pin mail carries no hash");

        let requests = pending(&server, &admin, "activation").await?;
        assert_eq!(requests.len(), 1, "{requests:?}");
        let request = &requests[0];
        assert_eq!((request["user_id"].clone(), request["mode"].clone(), request["request_count"].clone(), request["failed_attempts"].clone()),
            (json!(pim_id), json!("pin_code"), json!(1), json!(0)));
        let expiry = request["expiry_timestamp"].as_i64().context("the code's expiry is listed")?;
        assert!((before + 15 * 60_000..before + 16 * 60_000).contains(&expiry), "{request}");

        let wrong = if pin == "00000000" { "11111111" } else { "00000000" };
        let (status, body) = server.call(Method::POST, "/users/v1/activation", None, Some(json!({"email": "pim@example.com", "pin_code": wrong}))).await?;
        assert_eq!((status, code(&body)), (StatusCode::BAD_REQUEST, Some(224)), "{body}");
        let requests = pending(&server, &admin, "activation").await?;
        assert_eq!(requests[0]["failed_attempts"], 1);
        assert!(requests[0]["last_failed_attempt_timestamp"].is_i64());
        let (status, body) = server.call(Method::POST, "/users/v1/activation", None, Some(json!({"email": "PIM@example.com", "pin_code": pin}))).await?;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert!(pending(&server, &admin, "activation").await?.is_empty(), "a used request is no longer pending");

        // Password reset with a pin: three wrong pins spend it; an administrator clears the run.
        let (status, _) = server.call(Method::GET, "/users/v1/forgot_password?email=pim%40example.com&mode=pin_code", None, None).await?;
        assert_eq!(status, StatusCode::OK);
        let reset = smtp.next_mail(WAIT).await?;
        let pin = reset.pin().context("no pin in the reset mail")?;
        let wrong = if pin == "00000000" { "11111111" } else { "00000000" };
        for _ in 0..3 {
            let (status, body) = server.call(Method::POST, "/users/v1/forgot_password", None, Some(json!({"email": "pim@example.com", "pin_code": wrong, "new_password": "pim's new password"}))).await?;
            assert_eq!((status, code(&body)), (StatusCode::BAD_REQUEST, Some(224)), "{body}");
        }
        let (status, body) = server.call(Method::POST, "/users/v1/forgot_password", None, Some(json!({"email": "pim@example.com", "pin_code": pin, "new_password": "pim's new password"}))).await?;
        assert_eq!((status, code(&body)), (StatusCode::UNAUTHORIZED, Some(213)), "three wrong pins spend it");
        let (status, body) = server.call(Method::GET, "/users/v1/forgot_password?email=pim%40example.com&mode=pin_code", None, None).await?;
        assert_eq!((status, code(&body)), (StatusCode::FORBIDDEN, Some(221)), "five minutes between requests");

        let requests = pending(&server, &admin, "forgot_password").await?;
        assert_eq!((requests.len(), requests[0]["failed_attempts"].clone()), (1, json!(3)));
        let request_id = requests[0]["id"].as_str().unwrap_or_default().to_owned();
        let (status, body) = server.call(Method::DELETE, &format!("/users/v1/forgot_password_requests/{request_id}"), Some(&plain), None).await?;
        assert_eq!((status, code(&body)), (StatusCode::UNAUTHORIZED, Some(10)));
        let (status, body) = server.call(Method::DELETE, &format!("/users/v1/activation_requests/{request_id}"), Some(&admin), None).await?;
        assert_eq!((status, code(&body)), (StatusCode::NOT_FOUND, Some(16)), "not an activation request");
        let (status, body) = server.call(Method::DELETE, &format!("/users/v1/forgot_password_requests/{request_id}"), Some(&admin), None).await?;
        assert_eq!((status, body), (StatusCode::OK, json!({"affectedRecords": 1})));
        assert!(pending(&server, &admin, "forgot_password").await?.is_empty());

        let (status, _) = server.call(Method::GET, "/users/v1/forgot_password?email=pim%40example.com&mode=pin_code", None, None).await?;
        assert_eq!(status, StatusCode::OK, "cleared: a new request at once");
        let pin = smtp.next_mail(WAIT).await?.pin().context("no pin in the second reset mail")?;
        let (status, body) = server.call(Method::POST, "/users/v1/forgot_password", None, Some(json!({"email": "pim@example.com", "pin_code": pin, "new_password": "pim's new password"}))).await?;
        assert_eq!(status, StatusCode::OK, "{body}");
        server.login("pim@example.com", "pim's new password").await?;

        // An address without a pin request.
        let (status, body) = server.call(Method::POST, "/users/v1/forgot_password", None, Some(json!({"email": "nobody@example.com", "pin_code": "12345678", "new_password": "whatever password"}))).await?;
        assert_eq!((status, code(&body)), (StatusCode::BAD_REQUEST, Some(219)));
        let (status, body) = server.call(Method::POST, "/users/v1/forgot_password", None, Some(json!({"email": "pim@example.com", "pin_code": "12345678", "new_password": "whatever password"}))).await?;
        assert_eq!((status, code(&body)), (StatusCode::BAD_REQUEST, Some(219)), "a used pin is no longer pending");
        // The code is checked before the new password: an account tells nothing by a weak one.
        for email in ["pim@example.com", "nobody@example.com"] {
            let (status, body) = server.call(Method::POST, "/users/v1/forgot_password", None, Some(json!({"email": email, "pin_code": "12345678", "new_password": "a"}))).await?;
            assert_eq!((status, code(&body)), (StatusCode::BAD_REQUEST, Some(219)), "{email}");
        }
        let (status, body) = server.call(Method::POST, "/users/v1/forgot_password", None, Some(json!({"new_password": "whatever password"}))).await?;
        assert_eq!((status, code(&body)), (StatusCode::BAD_REQUEST, Some(14)));
        Ok(())
    }
}

in_both_deployments! {
    async fn email_templates_are_configured_per_mail(deployment: Deployment) {
        let (_smtp, _env, server) = mailing_server(deployment).await?;
        let admin = server.admin_token().await?;
        let plain = plain_token(&server, "plain@example.com").await?;

        let (status, body) = server.call(Method::GET, "/users/v1/email_templates", Some(&plain), None).await?;
        assert_eq!((status, code(&body)), (StatusCode::UNAUTHORIZED, Some(10)));
        let (status, body) = server.call(Method::PUT, "/users/v1/email_templates", Some(&plain), Some(json!({}))).await?;
        assert_eq!((status, code(&body)), (StatusCode::UNAUTHORIZED, Some(10)));
        let (_, empty) = server.call(Method::GET, "/users/v1/email_templates", Some(&admin), None).await?;
        assert_eq!(empty, json!({}), "unset templates are left out");

        let (status, templates) = server.call(Method::PUT, "/users/v1/email_templates", Some(&admin), Some(json!({
            "activation_email_template_name": "welcome",
            "password_reset_pin_email_template_id": "5f0c4a3e2b1d0c9a8b7f6e5d",
        }))).await?;
        assert_eq!((status, templates.clone()), (StatusCode::OK, json!({
            "activation_email_template_name": "welcome",
            "password_reset_pin_email_template_id": "5f0c4a3e2b1d0c9a8b7f6e5d",
        })));
        let (status, templates) = server.call(Method::PUT, "/users/v1/email_templates", Some(&admin), Some(json!({
            "password_reset_pin_email_template_id": null,
            "password_reset_pin_email_template_name": "reset-pin",
        }))).await?;
        assert_eq!((status, templates["password_reset_pin_email_template_name"].clone()), (StatusCode::OK, json!("reset-pin")));
        assert!(templates.get("password_reset_pin_email_template_id").is_none(), "a name replaces an id");
        for bad in [
            json!({"activation_email_template_id": "a", "activation_email_template_name": "b"}),
            json!({"welcome_email_template_name": "x"}),
            json!({"activation_email_template_name": 3}),
        ] {
            let (status, body) = server.call(Method::PUT, "/users/v1/email_templates", Some(&admin), Some(bad.clone())).await?;
            assert_eq!((status, code(&body)), (StatusCode::BAD_REQUEST, Some(15)), "{bad}");
        }

        // A configured template is used or the mail is refused, never replaced silently.
        let (status, body) = server.call(Method::POST, "/users/v1/register", None, Some(registration("tem@example.com", "hash"))).await?;
        assert_eq!((status, code(&body)), (StatusCode::BAD_REQUEST, Some(27)), "{body}");
        let (status, body) = server.call(Method::POST, "/users/v1/register", None, Some(registration("tem@example.com", "manual"))).await?;
        assert_eq!(status, StatusCode::OK, "a manual activation mails nothing: {body}");
        server.call(Method::PUT, "/users/v1/email_templates", Some(&admin), Some(json!({"activation_email_template_name": null}))).await?;
        let (status, body) = server.call(Method::POST, "/users/v1/register", None, Some(registration("tem2@example.com", "hash"))).await?;
        assert_eq!(status, StatusCode::OK, "{body}");
        Ok(())
    }
}

in_both_deployments! {
    /// The mailer keeps its checkpoint before a mail it could not deliver, so a node started after
    /// it stopped delivers that mail (once the first attempt's one-minute claim has lapsed).
    async fn a_mail_not_delivered_before_a_restart_is_delivered_after(deployment: Deployment) {
        let env = vigil_tests::TestEnv::new(deployment).await?;
        let dead = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
        let unreachable = vigil_scheduler::mail::MailConfig {
            smtp_url: format!("smtp://{dead}"),
            from: "Vigil <no-reply@example.com>".into(),
        };
        let server = TestServer::start_with(&env, Some(&unreachable)).await?;
        let (status, body) = server.call(Method::POST, "/users/v1/register", None, Some(registration("held@example.com", "hash"))).await?;
        assert_eq!(status, StatusCode::OK, "{body}");
        let requested = server.state.bus.log().head().await?;
        // Later commits the mailer follows (it passes over them, holding the request).
        crate::http::plain_user(&server, "later@example.com").await?;
        let later = server.state.bus.log().head().await?;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
        let mut stored = 0;
        while tokio::time::Instant::now() < deadline {
            stored = vigil_scheduler::runner::checkpoint(&server.state.store, "mail").await?;
            anyhow::ensure!(stored < requested, "the checkpoint {stored} moved past the undelivered request at {requested}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(stored < later);
        let admin = server.admin.clone();
        server.stop().await?;

        let mut smtp = vigil_tests::smtp::TestSmtp::start().await?;
        let reachable = vigil_scheduler::mail::MailConfig {
            smtp_url: smtp.url.clone(),
            from: "Vigil <no-reply@example.com>".into(),
        };
        let _restarted = TestServer::restart_with(&env, admin, Some(&reachable)).await?;
        // The first node's attempt claimed the request for a minute (against other mailers).
        let mail = smtp.next_mail(Duration::from_secs(90)).await?;
        assert_eq!(mail.to, ["held@example.com"]);
        assert!(mail.text().contains("Activate your account"), "{}", mail.text());
        Ok(())
    }
}
