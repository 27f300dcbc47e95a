//! A small OpenID provider on loopback for the tests. It speaks real HTTP and issues real ID
//! tokens signed with RS256 (a fixed test key, `tests/fixtures/oidc-test-key.pem`): a discovery
//! document, a key set, an authorization endpoint that signs in whoever the test says (or the
//! address a `login_hint` names) and redirects back with a code, a token endpoint that takes
//! `client_secret_basic`, and user info.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use base64::Engine as _;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

const KEY: &[u8] = include_bytes!("../fixtures/oidc-test-key.pem");
const KEY_ID: &str = "vigil-test";
/// The public half of [`KEY`] (base64url modulus and exponent).
const MODULUS: &str = "wDRtoHMBMhccnq_ZdT0BztYqd8pTDUNMipmaTYSTyZc3XeIvQczQZH-WVjS6wW5GgV6g9lDOU4w9qGDXUljV0n81_rPy2nd78X28BrqK1RoXXueJzVZ71uS79Z0qT9Q-587IIsJoTy9A_VmIZDROfpKUrG_5YAPK_R0SbCtfhfCjY3TTBrva4m32t_Dm7DwARSY_N054h_FOm_Lkmp5uEo6wMLVUg2mP-UZzjbvfp0gTQRNiBrJqYtTv5y8hsbY0rBBbuCiGhYtPCyfqM0-yqlfzHplybo8BOQqeX38mBlstSnTLik4yKeS7bWUZOBfhsdv8E4CKuWiojZM_zzgElw";
const EXPONENT: &str = "AQAB";

/// Who signs in at the provider.
#[derive(Debug, Clone)]
pub struct Person {
    pub subject: String,
    pub email: String,
    pub given_name: String,
    pub family_name: String,
}

/// A fault the provider puts in its next ID tokens, to see Vigil refuse them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// For another client.
    Audience,
    /// From another issuer.
    Issuer,
    /// Expired an hour ago.
    Expired,
    /// The signature does not match the token.
    Signature,
    /// Signed with a shared secret (HS256) instead of the published key.
    Symmetric,
    /// The user info says the email address is not verified.
    UnverifiedEmail,
}

#[derive(Default)]
struct Inner {
    signed_in: Option<Person>,
    fault: Option<Fault>,
    /// Authorization code → the person and the nonce of the request.
    codes: HashMap<String, (Person, String)>,
    /// Access token → the person.
    access: HashMap<String, Person>,
}

#[derive(Clone)]
struct Provider {
    issuer: String,
    client_id: String,
    client_secret: String,
    inner: Arc<Mutex<Inner>>,
}

pub struct TestOidcProvider {
    pub issuer: String,
    pub client_id: String,
    pub client_secret: String,
    inner: Arc<Mutex<Inner>>,
    task: JoinHandle<()>,
}

impl TestOidcProvider {
    pub async fn start(client_id: &str, client_secret: &str) -> anyhow::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let issuer = format!("http://127.0.0.1:{}", listener.local_addr()?.port());
        let inner = Arc::new(Mutex::new(Inner::default()));
        let provider = Provider {
            issuer: issuer.clone(),
            client_id: client_id.to_owned(),
            client_secret: client_secret.to_owned(),
            inner: inner.clone(),
        };
        let app = Router::new()
            .route("/.well-known/openid-configuration", get(discovery))
            .route("/jwks", get(jwks))
            .route("/authorize", get(authorize))
            .route("/token", post(token))
            .route("/userinfo", get(userinfo))
            .with_state(provider);
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self {
            issuer,
            client_id: client_id.to_owned(),
            client_secret: client_secret.to_owned(),
            inner,
            task,
        })
    }

    /// The person the authorization endpoint signs in from now on.
    pub fn sign_in_as(&self, person: Person) {
        if let Ok(mut inner) = self.inner.lock() {
            inner.signed_in = Some(person);
        }
    }

    /// The fault of the ID tokens and user info from now on (`None`: none).
    pub fn set_fault(&self, fault: Option<Fault>) {
        if let Ok(mut inner) = self.inner.lock() {
            inner.fault = fault;
        }
    }

    /// Follows an authentication URL as a browser would, and answers the code it is redirected
    /// back with.
    pub async fn authorization_code(&self, authentication_url: &str) -> anyhow::Result<String> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        let response = client.get(authentication_url).send().await?;
        anyhow::ensure!(
            response.status() == StatusCode::SEE_OTHER,
            "the provider answered {}",
            response.status()
        );
        let location = response
            .headers()
            .get(header::LOCATION)
            .and_then(|l| l.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let query = location.split_once('?').map_or("", |(_, q)| q);
        let params: HashMap<String, String> = serde_urlencoded::from_str(query)?;
        params
            .get("code")
            .cloned()
            .ok_or_else(|| anyhow::anyhow!("no code in {location}"))
    }

    /// The provider's settings as Vigil's API takes them.
    pub fn settings(&self, name: &str, redirect_uri: &str) -> Value {
        json!({
            "name": name,
            "description": "The test suite's OpenID provider",
            "clientId": self.client_id,
            "clientSecret": self.client_secret,
            "issuerId": self.issuer,
            "authorizationEndpoint": format!("{}/authorize", self.issuer),
            "tokenEndpoint": format!("{}/token", self.issuer),
            "userinfoEndpoint": format!("{}/userinfo", self.issuer),
            "redirectUri": redirect_uri,
        })
    }
}

impl Drop for TestOidcProvider {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn discovery(State(provider): State<Provider>) -> Json<Value> {
    let issuer = &provider.issuer;
    Json(json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/authorize"),
        "token_endpoint": format!("{issuer}/token"),
        "userinfo_endpoint": format!("{issuer}/userinfo"),
        "jwks_uri": format!("{issuer}/jwks"),
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic"],
    }))
}

async fn jwks() -> Json<Value> {
    Json(json!({"keys": [{
        "kty": "RSA", "use": "sig", "alg": "RS256", "kid": KEY_ID, "n": MODULUS, "e": EXPONENT,
    }]}))
}

fn random() -> String {
    hex::encode(rand::random::<[u8; 16]>())
}

async fn authorize(
    State(provider): State<Provider>,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    let known_client = params.get("client_id") == Some(&provider.client_id);
    let asks_code = params.get("response_type").map(String::as_str) == Some("code");
    let scopes = params.get("scope").cloned().unwrap_or_default();
    if !known_client || !asks_code || !scopes.split(' ').any(|s| s == "openid") {
        return (StatusCode::BAD_REQUEST, "invalid authorization request").into_response();
    }
    let (Some(redirect_uri), Some(nonce)) = (params.get("redirect_uri"), params.get("nonce"))
    else {
        return (
            StatusCode::BAD_REQUEST,
            "redirect_uri and nonce are required",
        )
            .into_response();
    };
    let Ok(mut inner) = provider.inner.lock() else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    // A `login_hint` (which the SDK suite appends) signs in that address as its own subject.
    let hinted = params.get("login_hint").map(|email| Person {
        subject: format!("subject-of-{email}"),
        email: email.clone(),
        given_name: "Sdk".into(),
        family_name: "User".into(),
    });
    let Some(person) = hinted.or_else(|| inner.signed_in.clone()) else {
        return (StatusCode::UNAUTHORIZED, "nobody signed in").into_response();
    };
    let code = random();
    inner.codes.insert(code.clone(), (person, nonce.clone()));
    let mut back = vec![("code", code)];
    if let Some(state) = params.get("state") {
        back.push(("state", state.clone()));
    }
    let query = serde_urlencoded::to_string(&back).unwrap_or_default();
    Redirect::to(&format!("{redirect_uri}?{query}")).into_response()
}

fn basic(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(value.strip_prefix("Basic ")?)
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (id, secret) = text.split_once(':')?;
    // Both halves are form-encoded (RFC 6749 §2.3.1).
    let decode = |part: &str| -> Option<String> {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(&format!("v={part}")).ok()?;
        pairs.into_iter().next().map(|(_, value)| value)
    };
    Some((decode(id)?, decode(secret)?))
}

async fn token(
    State(provider): State<Provider>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    if basic(&headers) != Some((provider.client_id.clone(), provider.client_secret.clone())) {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": "invalid_client"})),
        )
            .into_response();
    }
    let Ok(mut inner) = provider.inner.lock() else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let redeemed = form
        .get("code")
        .filter(|_| form.get("grant_type").map(String::as_str) == Some("authorization_code"))
        .and_then(|code| inner.codes.remove(code));
    let Some((person, nonce)) = redeemed else {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "invalid_grant"})),
        )
            .into_response();
    };
    let fault = inner.fault;
    let now = jsonwebtoken::get_current_timestamp();
    let mut claims = json!({
        "iss": provider.issuer,
        "aud": provider.client_id,
        "sub": person.subject,
        "iat": now,
        "exp": now + 300,
        "nonce": nonce,
    });
    match fault {
        Some(Fault::Audience) => claims["aud"] = json!("another-client"),
        Some(Fault::Issuer) => claims["iss"] = json!("https://impostor.example.com"),
        Some(Fault::Expired) => claims["exp"] = json!(now - 3600),
        _ => {}
    }
    let signed = if fault == Some(Fault::Symmetric) {
        // The published key's modulus as the shared secret: the classic algorithm confusion.
        let header = Header::new(Algorithm::HS256);
        jsonwebtoken::encode(
            &header,
            &claims,
            &EncodingKey::from_secret(MODULUS.as_bytes()),
        )
    } else {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(KEY_ID.to_owned());
        EncodingKey::from_rsa_pem(KEY).and_then(|key| jsonwebtoken::encode(&header, &claims, &key))
    };
    let Ok(mut id_token) = signed else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    if fault == Some(Fault::Signature) {
        // Another subject in the payload, under the original signature.
        let mut parts: Vec<String> = id_token.split('.').map(str::to_owned).collect();
        claims["sub"] = json!("someone-else");
        parts[1] = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(claims.to_string());
        id_token = parts.join(".");
    }
    let access_token = random();
    inner.access.insert(access_token.clone(), person);
    Json(json!({
        "access_token": access_token,
        "token_type": "Bearer",
        "expires_in": 300,
        "id_token": id_token,
    }))
    .into_response()
}

async fn userinfo(State(provider): State<Provider>, headers: HeaderMap) -> Response {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    let Ok(inner) = provider.inner.lock() else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let verified = inner.fault != Some(Fault::UnverifiedEmail);
    match inner.access.get(token) {
        Some(person) => Json(json!({
            "sub": person.subject,
            "email": person.email,
            "email_verified": verified,
            "given_name": person.given_name,
            "family_name": person.family_name,
        }))
        .into_response(),
        None => StatusCode::UNAUTHORIZED.into_response(),
    }
}
