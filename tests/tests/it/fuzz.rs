//! A fuzz target for the request edge and RQL: arbitrary requests — every mounted route's method
//! and path with hostile path segments, RQL-like and raw query strings, content types, encodings,
//! credentials and bodies — sent through the whole application in process (every layer, every
//! extractor, every handler). Whatever comes in, the answer is below 500, and an error is Extra
//! Horizon's `{code, name, message}` JSON. Bounded so it runs in CI (`VIGIL_FUZZ_CASES`, 300 by
//! default); raise it to search longer.

use std::sync::atomic::{AtomicUsize, Ordering};

use axum::body::Body;
use axum::http::{Method, Request};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use tower::ServiceExt;
use vigil_tests::{TestEnv, TestServer};

use crate::route_inventory::INVENTORY;

/// How many answers were successes, and how many refusals.
#[derive(Debug, Default)]
struct Answered {
    success: AtomicUsize,
    refused: AtomicUsize,
}

/// The whole application, as the server runs it.
type App = tower_http::normalize_path::NormalizePath<axum::Router>;

/// One generated request.
#[derive(Debug, Clone)]
struct Fuzzed {
    method: Method,
    path: String,
    query: Option<String>,
    content_type: Option<&'static str>,
    content_encoding: Option<&'static str>,
    authorized: Authorization,
    body: Vec<u8>,
}

#[derive(Debug, Clone, Copy)]
enum Authorization {
    None,
    Administrator,
    Garbage,
    OAuthGarbage,
}

/// A path segment a route's parameter might be given.
fn segment() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("5e9f0000000000000000000a".to_owned()),
        "[0-9a-f]{24}",
        "[A-Za-z0-9_.-]{1,40}",
        "(%[0-9A-F]{2}|[a-z]){1,30}",
        Just("..".to_owned()),
        Just("%00".to_owned()),
        Just("a".repeat(5000)),
        "\\PC{1,20}".prop_map(|s| percent_encoding::utf8_percent_encode(
            &s,
            percent_encoding::NON_ALPHANUMERIC
        )
        .to_string()),
    ]
}

/// RQL as a client might write it, broken in places, or any characters at all.
fn query() -> impl Strategy<Value = String> {
    let token = prop_oneof![
        Just("eq("),
        Just("ne("),
        Just("lt("),
        Just("in("),
        Just("out("),
        Just("like("),
        Just("contains("),
        Just("excludes("),
        Just("and("),
        Just("or("),
        Just("not("),
        Just("select("),
        Just("sort("),
        Just("limit("),
        Just(")"),
        Just(","),
        Just("id"),
        Just("data.a.b"),
        Just("email"),
        Just("-creationTimestamp"),
        Just("1"),
        Just("-1e309"),
        Just("true"),
        Just("null"),
        Just("%28"),
        Just("%FF"),
        Just("&"),
        Just("="),
        Just("*"),
        Just("'"),
        Just("\""),
        Just("5e9f0000000000000000000a"),
        Just("string:1"),
        Just("date:x"),
    ];
    prop_oneof![
        proptest::collection::vec(token, 0..40).prop_map(|tokens| tokens.concat()),
        "[ -~]{0,200}".prop_map(|s| s.replace(['#', ' '], "")),
    ]
}

/// A JSON value of any shape, not too deep.
fn json() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(serde_json::Value::from),
        "\\PC{0,30}".prop_map(serde_json::Value::from),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..8).prop_map(serde_json::Value::from),
            proptest::collection::btree_map(
                prop_oneof![
                    "[a-zA-Z_]{1,12}",
                    Just("__proto__".to_owned()),
                    Just("$where".to_owned()),
                    Just("name".to_owned()),
                    Just("email".to_owned()),
                    Just("permissions".to_owned()),
                ],
                inner,
                0..8,
            )
            .prop_map(|map| serde_json::Value::Object(map.into_iter().collect())),
        ]
    })
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(Vec::new()),
        json().prop_map(|value| value.to_string().into_bytes()),
        proptest::collection::vec(any::<u8>(), 0..512),
        "\\PC{0,100}".prop_map(String::into_bytes),
    ]
}

fn fuzzed() -> impl Strategy<Value = Fuzzed> {
    let route = proptest::sample::select(INVENTORY);
    let method = prop_oneof![
        4 => Just(None),
        1 => proptest::sample::select(vec![Method::PATCH, Method::HEAD, Method::OPTIONS, Method::GET, Method::DELETE]).prop_map(Some),
    ];
    (
        route,
        method,
        proptest::collection::vec(segment(), 4),
        proptest::option::of(query()),
        proptest::sample::select(vec![
            None,
            Some("application/json"),
            Some("application/x-www-form-urlencoded"),
            Some("text/plain"),
            Some("multipart/form-data; boundary=x"),
        ]),
        proptest::sample::select(vec![None, None, Some("gzip"), Some("br"), Some("identity")]),
        proptest::sample::select(vec![
            Authorization::None,
            Authorization::Administrator,
            Authorization::Administrator,
            Authorization::Garbage,
            Authorization::OAuthGarbage,
        ]),
        body(),
    )
        .prop_map(
            |(
                (route_method, path, _),
                method,
                segments,
                query,
                content_type,
                content_encoding,
                authorized,
                body,
            )| {
                let mut segments = segments.into_iter();
                let mut concrete = String::new();
                for part in path.split('/').filter(|p| !p.is_empty()) {
                    concrete.push('/');
                    if part.starts_with('{') {
                        concrete.push_str(&segments.next().unwrap_or_default());
                    } else {
                        concrete.push_str(part);
                    }
                }
                Fuzzed {
                    method: method.unwrap_or_else(|| {
                        Method::from_bytes(route_method.as_bytes()).unwrap_or(Method::GET)
                    }),
                    path: concrete,
                    query,
                    content_type,
                    content_encoding,
                    authorized,
                    body,
                }
            },
        )
}

/// Sends `request` through the application; a failure says what was sent and what came back.
async fn check(
    app: &App,
    admin: &str,
    request: &Fuzzed,
    answered: &Answered,
) -> Result<(), TestCaseError> {
    let uri = match &request.query {
        Some(query) => format!("{}?{query}", request.path),
        None => request.path.clone(),
    };
    let mut builder = Request::builder().method(request.method.clone()).uri(&uri);
    if let Some(content_type) = request.content_type {
        builder = builder.header("content-type", content_type);
    }
    if let Some(encoding) = request.content_encoding {
        builder = builder.header("content-encoding", encoding);
    }
    builder = match request.authorized {
        Authorization::None => builder,
        Authorization::Administrator => builder.header("authorization", format!("Bearer {admin}")),
        Authorization::Garbage => builder.header("authorization", "Bearer 0123456789abcdef"),
        Authorization::OAuthGarbage => builder.header(
            "authorization",
            "OAuth oauth_consumer_key=\"x\", oauth_signature=\"%ZZ\"",
        ),
    };
    // A URI the HTTP library cannot even represent never reaches a server.
    let Ok(http_request) = builder.body(Body::from(request.body.clone())) else {
        return Ok(());
    };
    let response = app
        .clone()
        .oneshot(http_request)
        .await
        .map_err(|e| TestCaseError::fail(format!("{e}")))?;
    let status = response.status();
    let class = if status.is_success() {
        &answered.success
    } else {
        &answered.refused
    };
    class.fetch_add(1, Ordering::Relaxed);
    let json = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    let bytes = axum::body::to_bytes(response.into_body(), 16 * 1024 * 1024)
        .await
        .map_err(|e| TestCaseError::fail(format!("{e}")))?;
    let shown = || {
        String::from_utf8_lossy(&bytes)
            .chars()
            .take(300)
            .collect::<String>()
    };
    prop_assert!(
        !status.is_server_error(),
        "{} {uri}: {status} {}",
        request.method,
        shown()
    );
    if status.is_client_error() && request.method != Method::HEAD {
        prop_assert!(
            json,
            "{} {uri}: {status} is not JSON: {}",
            request.method,
            shown()
        );
        let body: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| {
            TestCaseError::fail(format!("{} {uri}: {e}: {}", request.method, shown()))
        })?;
        let code = body["code"].as_u64().or(body["exh_error"]["code"].as_u64());
        prop_assert!(code.is_some(), "{} {uri}: {status} {body}", request.method);
    }
    Ok(())
}

#[test]
fn any_request_is_answered_below_500_and_errors_in_the_extra_horizon_shape() -> anyhow::Result<()> {
    let cases = std::env::var("VIGIL_FUZZ_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(300);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let env = runtime.block_on(TestEnv::new(vigil_tests::Deployment::Embedded))?;
    let server = runtime.block_on(TestServer::start(&env))?;
    let admin = runtime.block_on(server.admin_token())?;
    let app = vigil_api::app::app(server.state.clone(), vigil_api::edge::Edge::default());
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    let answered = Answered::default();
    let outcome = runner.run(&fuzzed(), |request| {
        runtime.block_on(check(&app, &admin, &request, &answered))
    });
    runtime.block_on(server.stop())?;
    outcome.map_err(|e| anyhow::anyhow!("{e}"))?;
    // The requests reached the handlers: some were carried out, some refused.
    let (success, refused) = (
        answered.success.load(Ordering::Relaxed),
        answered.refused.load(Ordering::Relaxed),
    );
    anyhow::ensure!(
        success > 0 && refused > 0,
        "{success} carried out, {refused} refused"
    );
    Ok(())
}
