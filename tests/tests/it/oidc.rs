//! OpenID Connect providers and logins over HTTP, against a real OpenID provider on loopback
//! issuing RS256-signed ID tokens, in both deployments.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use vigil_tests::TestServer;
use vigil_tests::oidc::{Fault, Person, TestOidcProvider};

use crate::http::{code, mailing_server, plain_token};
use crate::in_both_deployments;

fn person(subject: &str, email: &str) -> Person {
    Person {
        subject: subject.into(),
        email: email.into(),
        given_name: "Olivia".into(),
        family_name: "Idp".into(),
    }
}

async fn authentication_url(
    server: &TestServer,
    name: &str,
    body: Option<Value>,
) -> anyhow::Result<(StatusCode, Value)> {
    server
        .call(
            Method::POST,
            &format!("/auth/v2/oidc/providers/{name}/generateAuthenticationUrl"),
            None,
            body,
        )
        .await
}

async fn oidc_login(
    server: &TestServer,
    name: &str,
    code: &str,
) -> anyhow::Result<(StatusCode, Value)> {
    let body = json!({
        "client_id": server.admin.client_id,
        "client_secret": server.admin.client_secret,
        "authorizationCode": code,
    });
    server
        .call(
            Method::POST,
            &format!("/auth/v2/oidc/providers/{name}/oAuth2Login"),
            None,
            Some(body),
        )
        .await
}

/// Signs `who` in at the provider and logs in to Vigil with the code.
async fn sign_in(
    server: &TestServer,
    idp: &TestOidcProvider,
    who: Person,
) -> anyhow::Result<(StatusCode, Value)> {
    idp.sign_in_as(who);
    let (_, url) = authentication_url(server, "test-idp", None).await?;
    let code = idp
        .authorization_code(url["authenticationUrl"].as_str().unwrap_or_default())
        .await?;
    oidc_login(server, "test-idp", &code).await
}

in_both_deployments! {
    async fn users_log_in_through_an_openid_provider(deployment: Deployment) {
        let idp = TestOidcProvider::start("vigil-client", "the provider's secret YF3X").await?;
        let (mut smtp, _env, server) = mailing_server(deployment).await?;
        let admin = server.admin_token().await?;
        let plain = plain_token(&server, "taken@example.com").await?;
        let settings = idp.settings("test-idp", "https://app.example.com/callback");

        let (status, body) = server.call(Method::POST, "/auth/v2/oidc/providers", Some(&plain), Some(settings.clone())).await?;
        assert_eq!((status, code(&body)), (StatusCode::UNAUTHORIZED, Some(10)));
        let mut bad = settings.clone();
        bad["tokenEndpoint"] = json!("not a url");
        let (status, body) = server.call(Method::POST, "/auth/v2/oidc/providers", Some(&admin), Some(bad)).await?;
        assert_eq!((status, code(&body)), (StatusCode::BAD_REQUEST, Some(15)), "{body}");
        let (status, provider) = server.call(Method::POST, "/auth/v2/oidc/providers", Some(&admin), Some(settings.clone())).await?;
        assert_eq!(status, StatusCode::OK, "{provider}");
        assert_eq!((provider["clientSecretHint"].clone(), provider["enabled"].clone()), (json!("YF3X"), json!(false)));
        assert!(provider.get("clientSecret").is_none(), "the secret is never shown");
        let provider_id = provider["id"].as_str().unwrap_or_default().to_owned();
        let (status, _) = server.call(Method::POST, "/auth/v2/oidc/providers", Some(&admin), Some(settings)).await?;
        assert_ne!(status, StatusCode::OK, "names are unique");

        let (status, body) = authentication_url(&server, "test-idp", None).await?;
        assert_eq!((status, code(&body)), (StatusCode::BAD_REQUEST, Some(27)), "disabled");
        let (status, body) = server.call(Method::POST, &format!("/auth/v2/oidc/providers/{provider_id}/enable"), Some(&admin), Some(json!({}))).await?;
        assert_eq!((status, body), (StatusCode::OK, json!({"affectedRecords": 1})));
        let (status, body) = authentication_url(&server, "test-idp", Some(json!({"state": "s-1"}))).await?;
        assert_eq!(status, StatusCode::OK, "{body}");
        let url = body["authenticationUrl"].as_str().unwrap_or_default();
        for part in ["/authorize?response_type=code", "client_id=vigil-client", "scope=openid+email+profile", "redirect_uri=https%3A%2F%2Fapp.example.com%2Fcallback", "nonce=", "state=s-1"] {
            assert!(url.contains(part), "{part} in {url}");
        }

        // The first login creates the account; the next finds it by the subject.
        let (status, tokens) = sign_in(&server, &idp, person("subject-1", "olivia@example.com")).await?;
        assert_eq!(status, StatusCode::OK, "{tokens}");
        let token = tokens["access_token"].as_str().unwrap_or_default().to_owned();
        let (_, me) = server.call(Method::GET, "/users/v1/me", Some(&token), None).await?;
        assert_eq!((me["email"].clone(), me["first_name"].clone(), me["activation"].clone(), me["id"].clone()),
            (json!("olivia@example.com"), json!("Olivia"), json!(true), tokens["user_id"].clone()));
        assert_eq!(me["oidc_links"], json!([{"provider_id": provider_id, "subject_id": "subject-1"}]));
        let (status, again) = sign_in(&server, &idp, person("subject-1", "olivia@example.com")).await?;
        assert_eq!((status, again["user_id"].clone()), (StatusCode::OK, tokens["user_id"].clone()));
        let (status, body) = server.call(Method::GET, "/users/v1/forgot_password?email=olivia%40example.com", None, None).await?;
        assert_eq!((status, code(&body)), (StatusCode::FORBIDDEN, Some(215)), "no password to reset");

        // A code works once; an address with a password account is not taken over.
        idp.sign_in_as(person("subject-1", "olivia@example.com"));
        let (_, url) = authentication_url(&server, "test-idp", None).await?;
        let code_once = idp.authorization_code(url["authenticationUrl"].as_str().unwrap_or_default()).await?;
        assert_eq!(oidc_login(&server, "test-idp", &code_once).await?.0, StatusCode::OK);
        let (status, body) = oidc_login(&server, "test-idp", &code_once).await?;
        assert_eq!((status, code(&body)), (StatusCode::BAD_REQUEST, Some(139)), "{body}");
        let (status, body) = sign_in(&server, &idp, person("subject-2", "taken@example.com")).await?;
        assert_eq!((status, code(&body)), (StatusCode::BAD_REQUEST, Some(203)), "{body}");

        // ID tokens that are not for this client, not from this issuer, expired, tampered with
        // or signed with a shared secret are refused; so is an unverified email address.
        for (fault, expected) in [
            (Fault::Audience, 136),
            (Fault::Issuer, 136),
            (Fault::Expired, 136),
            (Fault::Signature, 136),
            (Fault::Symmetric, 136),
            (Fault::UnverifiedEmail, 138),
        ] {
            idp.set_fault(Some(fault));
            let (status, body) = sign_in(&server, &idp, person("subject-9", "faulty@example.com")).await?;
            assert_eq!(code(&body), Some(expected), "{fault:?}: {status} {body}");
        }
        idp.set_fault(None);

        // A deleted account's subject logs in to a new account.
        let (_, doomed) = sign_in(&server, &idp, person("subject-4", "doomed@example.com")).await?;
        let doomed_token = doomed["access_token"].as_str().unwrap_or_default().to_owned();
        let (status, _) = server.call(Method::DELETE, &format!("/users/v1/{}", doomed["user_id"].as_str().unwrap_or_default()), Some(&doomed_token), None).await?;
        assert_eq!(status, StatusCode::OK);
        let (status, reborn) = sign_in(&server, &idp, person("subject-4", "doomed@example.com")).await?;
        assert_eq!(status, StatusCode::OK, "{reborn}");
        assert_ne!(reborn["user_id"], doomed["user_id"]);
        let (status, _) = server.call(Method::GET, "/users/v1/me", Some(&doomed_token), None).await?;
        assert_eq!(status, StatusCode::UNAUTHORIZED);

        // A nonce this deployment did not make is refused.
        idp.sign_in_as(person("subject-1", "olivia@example.com"));
        let forged = format!("{}/authorize?response_type=code&client_id=vigil-client&scope=openid&redirect_uri=https%3A%2F%2Fapp.example.com%2Fcallback&nonce=00.99999999999999.00", idp.issuer);
        let code_forged = idp.authorization_code(&forged).await?;
        let (status, body) = oidc_login(&server, "test-idp", &code_forged).await?;
        assert_eq!((status, code(&body)), (StatusCode::BAD_REQUEST, Some(137)), "{body}");

        let (status, body) = server.call(Method::GET, "/auth/v2/oidc/loginAttempts", Some(&plain), None).await?;
        assert_eq!((status, code(&body)), (StatusCode::UNAUTHORIZED, Some(10)));
        let (_, attempts) = server.call(Method::GET, "/auth/v2/oidc/loginAttempts?eq(status,failed)", Some(&admin), None).await?;
        let failed: Vec<Value> = attempts["data"].as_array().cloned().unwrap_or_default();
        let codes: Vec<Value> = failed.iter().map(|a| a["error"]["code"].clone()).collect();
        for expected in [139, 203, 137, 136, 138] {
            assert!(codes.contains(&json!(expected)), "{expected} in {attempts}");
        }
        let (_, succeeded) = server.call(Method::GET, "/auth/v2/oidc/loginAttempts?eq(status,success)", Some(&admin), None).await?;
        assert_eq!(succeeded["page"]["total"], 5, "{succeeded}");
        assert_eq!((succeeded["data"][0]["providerName"].clone(), succeeded["data"][0]["providerSubjectId"].clone(), succeeded["data"][0]["userId"].clone()),
            (json!("test-idp"), json!("subject-1"), tokens["user_id"].clone()));

        // A password account is linked with a presence token: the password and every login end.
        let plain_id = server.call(Method::GET, "/users/v1/me", Some(&plain), None).await?.1["id"].clone();
        let (_, presence) = server.call(Method::POST, "/auth/v2/confirmPresence", Some(&plain), Some(json!({"password": "jane's password"}))).await?;
        let presence_token = presence["token"].as_str().unwrap_or_default().to_owned();
        idp.sign_in_as(person("subject-1", "olivia@example.com"));
        let (_, url) = authentication_url(&server, "test-idp", None).await?;
        let olivias = idp.authorization_code(url["authenticationUrl"].as_str().unwrap_or_default()).await?;
        let link = |code: &str, presence: &str| json!({"presenceToken": presence, "authorizationCode": code});
        let (status, body) = server.call(Method::POST, "/auth/v2/oidc/providers/test-idp/link", Some(&plain), Some(link(&olivias, &presence_token))).await?;
        assert_eq!((status, code(&body)), (StatusCode::BAD_REQUEST, Some(17)), "another account's subject: {body}");
        idp.sign_in_as(person("subject-3", "taken@example.com"));
        let (_, url) = authentication_url(&server, "test-idp", None).await?;
        let own = idp.authorization_code(url["authenticationUrl"].as_str().unwrap_or_default()).await?;
        let (status, body) = server.call(Method::POST, "/auth/v2/oidc/providers/test-idp/link", Some(&plain), Some(link(&own, "0000"))).await?;
        assert_eq!((status, code(&body)), (StatusCode::BAD_REQUEST, Some(132)), "{body}");
        let (status, body) = server.call(Method::POST, "/auth/v2/oidc/providers/test-idp/link", Some(&plain), Some(link(&own, &presence_token))).await?;
        assert_eq!((status, body), (StatusCode::OK, json!({"affectedRecords": 1})));
        let (status, body) = server.call(Method::GET, "/users/v1/me", Some(&plain), None).await?;
        assert_eq!((status, code(&body)), (StatusCode::UNAUTHORIZED, Some(117)), "logged out everywhere");
        assert!(server.login("taken@example.com", "jane's password").await.is_err(), "the password is gone");
        let (status, linked) = sign_in(&server, &idp, person("subject-3", "taken@example.com")).await?;
        assert_eq!((status, linked["user_id"].clone()), (StatusCode::OK, plain_id));

        // Unlinked by an administrator: a mailed code sets a new password.
        let olivia_id = tokens["user_id"].as_str().unwrap_or_default().to_owned();
        let linked_token = linked["access_token"].as_str().unwrap_or_default().to_owned();
        let (status, body) = server.call(Method::POST, &format!("/auth/v2/oidc/users/{olivia_id}/unlink"), Some(&linked_token), Some(json!({}))).await?;
        assert_eq!((status, code(&body)), (StatusCode::UNAUTHORIZED, Some(10)));
        let (status, body) = server.call(Method::POST, &format!("/auth/v2/oidc/users/{olivia_id}/unlink"), Some(&admin), Some(json!({}))).await?;
        assert_eq!((status, body), (StatusCode::OK, json!({"affectedRecords": 1})));
        let unlink_mail = smtp.next_mail(std::time::Duration::from_secs(10)).await?;
        assert_eq!(unlink_mail.to, ["olivia@example.com"]);
        assert!(unlink_mail.text().contains("no longer logs in through your identity provider"), "{}", unlink_mail.data);
        let hash = unlink_mail.code().ok_or_else(|| anyhow::anyhow!("no code in the unlink mail"))?;
        let (status, body) = server.call(Method::POST, "/users/v1/forgot_password", None, Some(json!({"hash": hash, "new_password": "olivia's own password"}))).await?;
        assert_eq!(status, StatusCode::OK, "{body}");
        server.login("olivia@example.com", "olivia's own password").await?;
        let (_, olivia) = server.call(Method::GET, &format!("/users/v1/{olivia_id}"), Some(&admin), None).await?;
        assert!(olivia.get("oidc_links").is_none(), "{olivia}");

        // Renamed, its secret replaced; deleted only when disabled and unused.
        let (status, _) = server.call(Method::PUT, &format!("/auth/v2/oidc/providers/{provider_id}"), Some(&admin), Some(json!({"name": "renamed-idp", "clientSecret": "another secret ABCD"}))).await?;
        assert_eq!(status, StatusCode::OK);
        let (_, listed) = server.call(Method::GET, "/auth/v2/oidc/providers?eq(name,renamed-idp)", Some(&admin), None).await?;
        assert_eq!((listed["data"][0]["id"].clone(), listed["data"][0]["clientSecretHint"].clone()), (json!(provider_id), json!("ABCD")));
        let (status, body) = authentication_url(&server, "test-idp", None).await?;
        assert_eq!((status, code(&body)), (StatusCode::NOT_FOUND, Some(16)), "the old name is gone");
        let (status, body) = server.call(Method::DELETE, &format!("/auth/v2/oidc/providers/{provider_id}"), Some(&admin), None).await?;
        assert_eq!((status, code(&body)), (StatusCode::BAD_REQUEST, Some(27)), "enabled");
        server.call(Method::POST, &format!("/auth/v2/oidc/providers/{provider_id}/disable"), Some(&admin), Some(json!({}))).await?;
        let (status, body) = server.call(Method::DELETE, &format!("/auth/v2/oidc/providers/{provider_id}"), Some(&admin), None).await?;
        assert_eq!((status, code(&body)), (StatusCode::BAD_REQUEST, Some(27)), "a user logs in through it");
        Ok(())
    }
}
