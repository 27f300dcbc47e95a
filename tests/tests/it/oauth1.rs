//! OAuth1 over HTTP, in both deployments, with a request signer written here (RFC 5849,
//! HMAC-SHA1): what Vigil refuses (unknown consumer, unknown token, wrong or stale signature, a
//! replayed nonce) and that a token dies with its user's password reset or deletion.

use base64::Engine as _;
use hmac::{Hmac, KeyInit, Mac};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use vigil_tests::TestEnv;
use vigil_tests::TestServer;

use crate::http::{code, plain_user};
use crate::in_both_deployments;

const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

fn enc(text: &str) -> String {
    utf8_percent_encode(text, UNRESERVED).to_string()
}

/// The pieces of one signed request.
struct Signer<'a> {
    consumer: (&'a str, &'a str),
    token: Option<(&'a str, &'a str)>,
    nonce: String,
    timestamp: i64,
}

impl Signer<'_> {
    /// The `Authorization` header for `method url` (query parameters in `url` are signed).
    fn header(&self, method: &str, url: &str) -> String {
        let (base_url, query) = url.split_once('?').unwrap_or((url, ""));
        let mut oauth = vec![
            ("oauth_consumer_key".to_owned(), self.consumer.0.to_owned()),
            ("oauth_nonce".to_owned(), self.nonce.clone()),
            ("oauth_signature_method".to_owned(), "HMAC-SHA1".to_owned()),
            ("oauth_timestamp".to_owned(), self.timestamp.to_string()),
            ("oauth_version".to_owned(), "1.0".to_owned()),
        ];
        if let Some((token, _)) = self.token {
            oauth.push(("oauth_token".to_owned(), token.to_owned()));
        }
        let mut params: Vec<(String, String)> = query
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| {
                // Parameters are signed decoded, then encoded again (RFC 5849 §3.4.1.3).
                let (k, v) = p.split_once('=').unwrap_or((p, ""));
                let decoded = |t: &str| percent_decode_str(t).decode_utf8_lossy().into_owned();
                (enc(&decoded(k)), enc(&decoded(v)))
            })
            .chain(oauth.iter().map(|(k, v)| (enc(k), enc(v))))
            .collect();
        params.sort();
        let normalized: Vec<String> = params.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let base = format!("{method}&{}&{}", enc(base_url), enc(&normalized.join("&")));
        let key = format!(
            "{}&{}",
            enc(self.consumer.1),
            enc(self.token.map_or("", |(_, secret)| secret))
        );
        let mut mac = <Hmac<sha1::Sha1> as KeyInit>::new_from_slice(key.as_bytes()).unwrap();
        mac.update(base.as_bytes());
        let signature =
            base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
        oauth.push(("oauth_signature".to_owned(), signature));
        oauth.sort();
        let fields: Vec<String> = oauth
            .iter()
            .map(|(k, v)| format!("{k}=\"{}\"", enc(v)))
            .collect();
        format!("OAuth {}", fields.join(", "))
    }
}

fn now() -> i64 {
    vigil_domain::value::Timestamp::now().millis() / 1000
}

fn nonce() -> String {
    hex::encode(rand::random::<[u8; 16]>())
}

async fn signed(
    server: &TestServer,
    method: Method,
    path: &str,
    header: String,
    body: Option<Value>,
) -> anyhow::Result<(StatusCode, Value)> {
    let mut request = reqwest::Client::new()
        .request(method, server.url(path))
        .header("authorization", header);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await?;
    let status = response.status();
    let text = response.text().await?;
    Ok((
        status,
        if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text)?
        },
    ))
}

in_both_deployments! {
    async fn oauth1_signatures_are_checked_and_tokens_die_with_their_login(deployment: Deployment) {
        let env = TestEnv::new(deployment).await?;
        let server = TestServer::start(&env).await?;
        let admin = server.admin_token().await?;
        let (_, app) = server.call(Method::POST, "/auth/v2/applications", Some(&admin),
            Some(json!({"type": "oauth1", "name": "CLI", "description": "Command line"}))).await?;
        let versions = format!("/auth/v2/applications/{}/versions", app["id"].as_str().unwrap_or_default());
        let (_, version) = server.call(Method::POST, &versions, Some(&admin), Some(json!({"name": "1"}))).await?;
        let (key, secret) = (version["consumerKey"].as_str().unwrap_or_default(), version["consumerSecret"].as_str().unwrap_or_default());
        let jane = plain_user(&server, "jane@example.com").await?;
        let consumer_only = |nonce: String, timestamp: i64| Signer { consumer: (key, secret), token: None, nonce, timestamp };

        let login_url = server.url("/auth/v2/oauth1/tokens");
        let credentials = json!({"email": "jane@example.com", "password": "jane's password"});
        let (status, token) = signed(&server, Method::POST, "/auth/v2/oauth1/tokens",
            consumer_only(nonce(), now()).header("POST", &login_url), Some(credentials.clone())).await?;
        assert_eq!(status, StatusCode::OK, "{token}");
        assert_eq!(token["userId"].as_str(), Some(jane.as_str()));
        let (token_key, token_secret) = (token["token"].as_str().unwrap_or_default(), token["tokenSecret"].as_str().unwrap_or_default());
        let as_jane = |nonce: String| Signer { consumer: (key, secret), token: Some((token_key, token_secret)), nonce, timestamp: now() };

        // A signed request with a query string, on a path the client wrote with a trailing slash.
        let path = "/users/v1/?select(id,email)&eq(email,jane%40example.com)";
        let request_nonce = nonce();
        let header = as_jane(request_nonce.clone()).header("GET", &server.url(path));
        let (status, found) = signed(&server, Method::GET, path, header.clone(), None).await?;
        assert_eq!(status, StatusCode::OK, "{found}");
        // The same nonce again is a replay.
        let (status, body) = signed(&server, Method::GET, path, header, None).await?;
        assert_eq!((status, code(&body)), (StatusCode::UNAUTHORIZED, Some(110)), "{body}");

        let me = server.url("/users/v1/me");
        let (status, body) = signed(&server, Method::GET, "/users/v1/me", as_jane(nonce()).header("GET", &me), None).await?;
        assert_eq!((status, body["id"].as_str()), (StatusCode::OK, Some(jane.as_str())), "{body}");
        // Behind a proxy, the client signed the public URL.
        let public = as_jane(nonce()).header("GET", "https://api.example.com/users/v1/me");
        let response = reqwest::Client::new()
            .get(server.url("/users/v1/me"))
            .header("authorization", public)
            .header("x-forwarded-proto", "https")
            .header("x-forwarded-host", "api.example.com")
            .send()
            .await?;
        assert_eq!(response.status(), StatusCode::OK);
        // Nonces are shared by the nodes: the request that one node took is a replay on another.
        let other = TestServer::another_node(&env, &server).await?;
        let public = as_jane(nonce()).header("GET", "https://api.example.com/users/v1/me");
        for (node, expected) in [(&server, StatusCode::OK), (&other, StatusCode::UNAUTHORIZED)] {
            let response = reqwest::Client::new()
                .get(node.url("/users/v1/me"))
                .header("authorization", &public)
                .header("x-forwarded-proto", "https")
                .header("x-forwarded-host", "api.example.com")
                .send()
                .await?;
            let status = response.status();
            let body: Value = response.json().await?;
            assert_eq!(status, expected, "{body}");
            if expected == StatusCode::UNAUTHORIZED {
                assert_eq!(code(&body), Some(110), "{body}");
            }
        }
        // Signed for another path, with a wrong secret, stale, from an unknown consumer, with an
        // unknown token, or with the consumer alone: all refused.
        let wrong_path = as_jane(nonce()).header("GET", &server.url("/users/v1/other"));
        let wrong_secret = Signer { consumer: (key, "not the secret"), ..as_jane(nonce()) }.header("GET", &me);
        let stale = Signer { timestamp: now() - 3600, ..as_jane(nonce()) }.header("GET", &me);
        let unknown_consumer = Signer { consumer: ("0".repeat(40).as_str(), secret), ..as_jane(nonce()) }.header("GET", &me);
        let unknown_token = Signer { token: Some(("1".repeat(40).as_str(), token_secret)), ..as_jane(nonce()) }.header("GET", &me);
        let no_token = consumer_only(nonce(), now()).header("GET", &me);
        for (header, expected) in [(wrong_path, 109), (wrong_secret, 109), (stale, 109), (unknown_consumer, 107), (unknown_token, 108), (no_token, 104)] {
            let (status, body) = signed(&server, Method::GET, "/users/v1/me", header, None).await?;
            assert_eq!((status, code(&body)), (StatusCode::UNAUTHORIZED, Some(expected)), "{body}");
        }

        // Listed, until jane's account is deleted: that logs her out everywhere, OAuth1 included.
        let (_, listed) = server.call(Method::GET, "/auth/v2/oauth1/tokens", Some(&admin), None).await?;
        assert!(listed["data"].as_array().into_iter().flatten().any(|t| t["id"] == token["id"]), "{listed}");
        let (status, _) = server.call(Method::DELETE, &format!("/users/v1/{jane}"), Some(&admin), None).await?;
        assert_eq!(status, StatusCode::OK);
        let (status, body) = signed(&server, Method::GET, "/users/v1/me", as_jane(nonce()).header("GET", &me), None).await?;
        assert_eq!((status, code(&body)), (StatusCode::UNAUTHORIZED, Some(108)), "{body}");
        let (_, listed) = server.call(Method::GET, "/auth/v2/oauth1/tokens", Some(&admin), None).await?;
        assert!(listed["data"].as_array().into_iter().flatten().all(|t| t["id"] != token["id"]), "{listed}");
        Ok(())
    }
}
