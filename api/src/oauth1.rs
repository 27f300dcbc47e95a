//! OAuth 1.0a request signatures (RFC 5849, HMAC-SHA1, in the `Authorization` header), checked
//! the way the Extra Horizon SDK signs: the base string is the method, `scheme://host/path` and
//! the sorted, percent-encoded query and `oauth_*` parameters (a JSON body is not signed), where
//! query parameters are read as `qs` reads them (an RQL term such as `eq(a,b)` is a key with an
//! empty value). The key is the consumer secret and the token secret, both kept sealed.

use std::sync::atomic::{AtomicI64, Ordering};

use axum::http::{Method, Uri};
use base64::Engine as _;
use hmac::{Hmac, KeyInit, Mac};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use sha1::Sha1;
use vigil_commands::auth::oauth1;
use vigil_commands::{ids, secrets};
use vigil_domain::error::ExhCode;
use vigil_domain::id::{Digest, Id};
use vigil_projections::access::OAuth1Holder;
use vigil_projections::nonces;
use vigil_projections::store::ReadStore;

use crate::edge::Origin;
use crate::error::ApiError;
use crate::state::AppState;

/// How far a request's timestamp may be from the server's clock, in seconds.
const WINDOW_SECONDS: i64 = 300;

/// RFC 3986 unreserved characters stay as they are; everything else is encoded.
const ENCODE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

fn encode(text: &str) -> String {
    utf8_percent_encode(text, ENCODE).to_string()
}

/// Form-style decoding as `qs` does it: `+` is a space, then percent-decoding.
fn decode(text: &str) -> String {
    percent_decode_str(&text.replace('+', " "))
        .decode_utf8_lossy()
        .into_owned()
}

/// A verified signature: the consumer's application and, for a signed-in client, its token.
#[derive(Debug, Clone)]
pub struct Signed {
    pub application_id: Id,
    pub token: Option<OAuth1Holder>,
}

fn refused(code: ExhCode, message: &str) -> ApiError {
    ApiError::new(code, message)
}

/// The `oauth_*` parameters of an `Authorization: OAuth …` header.
fn header_parameters(value: &str) -> Option<Vec<(String, String)>> {
    let rest = value.strip_prefix("OAuth ")?;
    rest.split(',')
        .map(str::trim)
        .filter(|part| !part.is_empty())
        .map(|part| {
            let (key, quoted) = part.split_once('=')?;
            let unquoted = quoted.trim().strip_prefix('"')?.strip_suffix('"')?;
            // Header values are percent-encoded only (RFC 5849 §3.5.1): a `+` is a plus.
            let plain = |text: &str| percent_decode_str(text).decode_utf8_lossy().into_owned();
            Some((plain(key.trim()), plain(unquoted)))
        })
        .collect()
}

/// The query parameters as the SDK signs them.
fn query_parameters(query: Option<&str>) -> Vec<(String, String)> {
    query
        .unwrap_or("")
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let key = decode(key);
            let key = key.strip_suffix("[]").map(str::to_owned).unwrap_or(key);
            (key, decode(value))
        })
        .collect()
}

/// The signature base string (RFC 5849 §3.4.1).
fn base_string(method: &Method, base_url: &str, parameters: &[(String, String)]) -> String {
    let mut encoded: Vec<(String, String)> = parameters
        .iter()
        .map(|(key, value)| (encode(key), encode(value)))
        .collect();
    encoded.sort();
    let normalized: Vec<String> = encoded
        .into_iter()
        .map(|(key, value)| format!("{key}={value}"))
        .collect();
    format!(
        "{}&{}&{}",
        encode(method.as_str()),
        encode(base_url),
        encode(&normalized.join("&"))
    )
}

/// HMAC-SHA1 of `base` under `consumer_secret&token_secret`, in base64.
fn signature(base: &str, consumer_secret: &str, token_secret: &str) -> String {
    let key = format!("{}&{}", encode(consumer_secret), encode(token_secret));
    let mut mac = <Hmac<Sha1> as KeyInit>::new_from_slice(key.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(base.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// How often a node deletes the expired nonces, in seconds.
const PRUNE_EVERY_SECONDS: i64 = 60;

/// The nonces seen within the timestamp window, per consumer, kept in the read store that every
/// node shares (see [`vigil_projections::nonces`]), so a captured request cannot be replayed on
/// any node. This node deletes the expired ones now and then.
#[derive(Debug, Default)]
pub struct Nonces {
    pruned_at: AtomicI64,
}

impl Nonces {
    /// Records `nonce` of a request signed at `timestamp`; false if it was already used within
    /// the window.
    async fn fresh(
        &self,
        store: &ReadStore,
        (consumer, nonce): (&str, &str),
        timestamp: i64,
        now: i64,
    ) -> Result<bool, ApiError> {
        let key = Digest::of(format!("{consumer}:{nonce}").as_bytes()).to_string();
        // A request is accepted while its timestamp is within the window of the clock.
        let expires_at = timestamp.saturating_add(WINDOW_SECONDS);
        let fresh = nonces::first_use(store, &key, expires_at, now).await?;
        let pruned = self.pruned_at.load(Ordering::Relaxed);
        if now - pruned >= PRUNE_EVERY_SECONDS
            && self
                .pruned_at
                .compare_exchange(pruned, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            nonces::forget_expired(store, now).await?;
        }
        Ok(fresh)
    }
}

/// Checks the OAuth1 signature of a request whose `Authorization` header is `header`.
pub async fn verify(
    state: &AppState,
    header: &str,
    method: &Method,
    uri: &Uri,
    origin: &Origin,
) -> Result<Signed, ApiError> {
    let oauth = header_parameters(header).ok_or_else(|| {
        refused(
            ExhCode::OAuthSignature,
            "The OAuth Authorization header is malformed",
        )
    })?;
    let get = |name: &str| {
        oauth
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    };
    let consumer_key = get("oauth_consumer_key")
        .ok_or_else(|| refused(ExhCode::OAuthKey, "oauth_consumer_key is missing"))?;
    let presented = get("oauth_signature")
        .ok_or_else(|| refused(ExhCode::OAuthSignature, "oauth_signature is missing"))?;
    if get("oauth_signature_method") != Some("HMAC-SHA1") {
        return Err(refused(
            ExhCode::OAuthSignature,
            "Only HMAC-SHA1 signatures are accepted",
        ));
    }
    let timestamp: i64 = get("oauth_timestamp")
        .and_then(|t| t.parse().ok())
        .ok_or_else(|| refused(ExhCode::OAuthSignature, "oauth_timestamp is missing"))?;
    let now = ids::now().millis() / 1000;
    if now.abs_diff(timestamp) > WINDOW_SECONDS.unsigned_abs() {
        return Err(refused(
            ExhCode::OAuthSignature,
            "oauth_timestamp is too far from the server's time",
        ));
    }
    let nonce = get("oauth_nonce")
        .filter(|n| !n.is_empty())
        .ok_or_else(|| refused(ExhCode::OAuthSignature, "oauth_nonce is missing"))?;

    let consumer = state
        .lookup(|access| access.consumer(consumer_key))
        .await?
        .ok_or_else(|| refused(ExhCode::OAuthKey, "The consumer key is unknown"))?;
    let consumer_secret = state
        .vault
        .open(
            &consumer.secret,
            &oauth1::consumer_context(consumer.version_id),
        )
        .map_err(ApiError::internal)?;
    let token = match get("oauth_token") {
        Some(token) => {
            let digest = secrets::token_digest(token);
            let holder = state
                .lookup(|access| access.oauth1_token(&digest))
                .await?
                .filter(|holder| holder.application_id == consumer.application_id)
                .ok_or_else(|| refused(ExhCode::OAuthToken, "The OAuth token is unknown"))?;
            Some(holder)
        }
        None => None,
    };
    let token_secret = match &token {
        Some(holder) => state
            .vault
            .open(&holder.secret, &oauth1::token_context(holder.token_id))
            .map_err(ApiError::internal)?,
        None => Vec::new(),
    };
    let consumer_secret = String::from_utf8_lossy(&consumer_secret);
    let token_secret = String::from_utf8_lossy(&token_secret);

    let mut parameters = query_parameters(uri.query());
    parameters.extend(
        oauth
            .iter()
            .filter(|(key, _)| key != "oauth_signature" && key != "realm")
            .cloned(),
    );
    // The URL as the client saw it: behind a trusted proxy, the forwarded scheme and host.
    let scheme = origin.scheme.as_str();
    let host = origin
        .host
        .as_deref()
        .or_else(|| uri.authority().map(|a| a.as_str()))
        .unwrap_or_default();
    // Paths are routed without a trailing slash, which the client may have signed.
    let path = uri.path();
    let matches = [path.to_owned(), format!("{path}/")].iter().any(|path| {
        let base = base_string(method, &format!("{scheme}://{host}{path}"), &parameters);
        let expected = signature(&base, &consumer_secret, &token_secret);
        expected.len() == presented.len()
            && bool::from(subtle::ConstantTimeEq::ct_eq(
                expected.as_bytes(),
                presented.as_bytes(),
            ))
    });
    if !matches {
        return Err(refused(
            ExhCode::OAuthSignature,
            "The OAuth signature does not match",
        ));
    }
    let fresh = state
        .auth
        .nonces
        .fresh(&state.store, (consumer_key, nonce), timestamp, now)
        .await?;
    if !fresh {
        return Err(refused(
            ExhCode::DuplicateRequest,
            "This request was already made (nonce and timestamp reused)",
        ));
    }
    Ok(Signed {
        application_id: consumer.application_id,
        token,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rfc_5849_example_signs_as_specified() {
        // RFC 5849 §3.4.1.1 (the example request, with its `c2&a3=2+q` body parameters put in the
        // query here, which signs the same) and §3.4.2 (the HMAC-SHA1 signature).
        let parameters = {
            let mut p = query_parameters(Some("b5=%3D%253D&a3=a&c%40=&a2=r%20b&c2&a3=2+q"));
            p.extend(
                [
                    ("oauth_consumer_key", "9djdj82h48djs9d2"),
                    ("oauth_token", "kkk9d7dh3k39sjv7"),
                    ("oauth_signature_method", "HMAC-SHA1"),
                    ("oauth_timestamp", "137131201"),
                    ("oauth_nonce", "7d8f3e4a"),
                ]
                .map(|(k, v)| (k.to_owned(), v.to_owned())),
            );
            p
        };
        let base = base_string(&Method::POST, "http://example.com/request", &parameters);
        assert_eq!(
            base,
            "POST&http%3A%2F%2Fexample.com%2Frequest&a2%3Dr%2520b%26a3%3D2%2520q\
             %26a3%3Da%26b5%3D%253D%25253D%26c%2540%3D%26c2%3D%26oauth_consumer_\
             key%3D9djdj82h48djs9d2%26oauth_nonce%3D7d8f3e4a%26oauth_signature_m\
             ethod%3DHMAC-SHA1%26oauth_timestamp%3D137131201%26oauth_token%3Dkkk\
             9d7dh3k39sjv7"
        );
    }

    #[test]
    fn rql_terms_are_keys_with_empty_values() {
        let parameters = query_parameters(Some("select(id,email)&eq(email,jane%40example.com)"));
        assert_eq!(
            parameters,
            [
                ("select(id,email)".to_owned(), String::new()),
                ("eq(email,jane@example.com)".to_owned(), String::new()),
            ]
        );
        let base = base_string(&Method::GET, "http://localhost/users/v1/", &parameters);
        assert!(base.contains("eq%2528email%252Cjane%2540example.com%2529%3D"));
    }

    #[test]
    fn the_header_is_read_with_its_values_decoded() {
        let parameters = header_parameters(
            "OAuth oauth_consumer_key=\"key\", oauth_nonce=\"abc\", oauth_signature=\"a%2Bb%3D\"",
        )
        .unwrap_or_default();
        assert_eq!(parameters[2], ("oauth_signature".into(), "a+b=".into()));
        assert!(header_parameters("Bearer x").is_none());
    }
}
