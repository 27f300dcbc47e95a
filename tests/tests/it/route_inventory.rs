//! Every mounted route, walked without a token and with the token of a user who holds no
//! permission. The inventory below is checked against the routers' source, so a route added
//! without being classified here fails this test.

use std::collections::BTreeSet;
use std::path::Path;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use vigil_tests::{TestEnv, TestServer};

use crate::http::{code, plain_user, raw_exchange};

/// What a route asks of its caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Guard {
    /// Anyone, without a token.
    Public,
    /// Any authenticated user; what they see or change is their own.
    Authenticated,
    /// A permission, unless the resource is the caller's own (paths here name someone else's).
    Permission,
}

/// `(method, path, guard)`; in the walk `{id}` becomes the administrator's id, or an existing role,
/// application or token of theirs, so every guarded route is asked about someone else's resource.
pub(crate) const INVENTORY: &[(&str, &str, Guard)] = &[
    ("GET", "/auth/v2/health", Guard::Public),
    ("POST", "/auth/v2/oauth2/tokens", Guard::Public),
    ("GET", "/auth/v2/oauth2/tokens", Guard::Authenticated),
    ("DELETE", "/auth/v2/oauth2/tokens/{id}", Guard::Permission),
    ("GET", "/auth/v2/oauth2/refreshTokens", Guard::Authenticated),
    (
        "DELETE",
        "/auth/v2/oauth2/refreshTokens/{id}",
        Guard::Permission,
    ),
    (
        "GET",
        "/auth/v2/oauth2/authorizations",
        Guard::Authenticated,
    ),
    (
        "POST",
        "/auth/v2/oauth2/authorizations",
        Guard::Authenticated,
    ),
    (
        "DELETE",
        "/auth/v2/oauth2/authorizations/{id}",
        Guard::Permission,
    ),
    ("POST", "/auth/v2/oauth1/tokens", Guard::Public),
    ("POST", "/auth/v2/oauth1/tokens/mfa", Guard::Public),
    ("GET", "/auth/v2/oauth1/tokens", Guard::Authenticated),
    ("DELETE", "/auth/v2/oauth1/tokens/{id}", Guard::Permission),
    (
        "POST",
        "/auth/v2/oauth1/ssoTokens/generate",
        Guard::Authenticated,
    ),
    ("POST", "/auth/v2/oauth1/ssoTokens/consume", Guard::Public),
    ("POST", "/auth/v2/confirmPresence", Guard::Authenticated),
    ("GET", "/auth/v2/mfa/users/{id}", Guard::Permission),
    ("POST", "/auth/v2/mfa/users/{id}/enable", Guard::Permission),
    ("POST", "/auth/v2/mfa/users/{id}/disable", Guard::Permission),
    ("POST", "/auth/v2/mfa/users/{id}/methods", Guard::Permission),
    (
        "POST",
        "/auth/v2/mfa/users/{id}/methods/{method}/verification/confirm",
        Guard::Permission,
    ),
    (
        "POST",
        "/auth/v2/mfa/users/{id}/methods/{method}/remove",
        Guard::Permission,
    ),
    ("GET", "/auth/v2/applications", Guard::Authenticated),
    ("POST", "/auth/v2/applications", Guard::Permission),
    ("PUT", "/auth/v2/applications/{id}", Guard::Permission),
    ("DELETE", "/auth/v2/applications/{id}", Guard::Permission),
    (
        "POST",
        "/auth/v2/applications/{id}/versions",
        Guard::Permission,
    ),
    (
        "DELETE",
        "/auth/v2/applications/{id}/versions/{version}",
        Guard::Permission,
    ),
    ("GET", "/users/v1/health", Guard::Public),
    ("GET", "/data/v1/health", Guard::Public),
    ("GET", "/data/v1", Guard::Authenticated),
    ("POST", "/data/v1", Guard::Permission),
    ("PUT", "/data/v1/{schema}", Guard::Permission),
    ("DELETE", "/data/v1/{schema}", Guard::Permission),
    ("POST", "/data/v1/{schema}/disable", Guard::Permission),
    ("POST", "/data/v1/{schema}/enable", Guard::Permission),
    ("POST", "/data/v1/{schema}/properties", Guard::Permission),
    (
        "PUT",
        "/data/v1/{schema}/properties/{path}",
        Guard::Permission,
    ),
    (
        "DELETE",
        "/data/v1/{schema}/properties/{path}",
        Guard::Permission,
    ),
    ("POST", "/data/v1/{schema}/statuses", Guard::Permission),
    (
        "PUT",
        "/data/v1/{schema}/statuses/{name}",
        Guard::Permission,
    ),
    (
        "DELETE",
        "/data/v1/{schema}/statuses/{name}",
        Guard::Permission,
    ),
    (
        "PUT",
        "/data/v1/{schema}/creationTransition",
        Guard::Permission,
    ),
    ("POST", "/data/v1/{schema}/transitions", Guard::Permission),
    (
        "PUT",
        "/data/v1/{schema}/transitions/{id}",
        Guard::Permission,
    ),
    (
        "DELETE",
        "/data/v1/{schema}/transitions/{id}",
        Guard::Permission,
    ),
    ("POST", "/data/v1/{schema}/indexes", Guard::Permission),
    (
        "DELETE",
        "/data/v1/{schema}/indexes/{id}",
        Guard::Permission,
    ),
    ("GET", "/data/v1/{schema}/documents", Guard::Authenticated),
    ("POST", "/data/v1/{schema}/documents", Guard::Authenticated),
    (
        "PUT",
        "/data/v1/{schema}/documents/{id}",
        Guard::Authenticated,
    ),
    (
        "DELETE",
        "/data/v1/{schema}/documents/{id}",
        Guard::Authenticated,
    ),
    (
        "POST",
        "/data/v1/{schema}/documents/{id}/transition",
        Guard::Authenticated,
    ),
    (
        "POST",
        "/data/v1/{schema}/documents/{id}/deleteFields",
        Guard::Authenticated,
    ),
    (
        "POST",
        "/data/v1/{schema}/documents/{id}/linkGroups",
        Guard::Authenticated,
    ),
    (
        "POST",
        "/data/v1/{schema}/documents/{id}/unlinkGroups",
        Guard::Authenticated,
    ),
    (
        "POST",
        "/data/v1/{schema}/documents/{id}/linkUsers",
        Guard::Authenticated,
    ),
    (
        "POST",
        "/data/v1/{schema}/documents/{id}/unlinkUsers",
        Guard::Authenticated,
    ),
    (
        "GET",
        "/data/v1/{schema}/documents/{id}/comments",
        Guard::Authenticated,
    ),
    (
        "POST",
        "/data/v1/{schema}/documents/{id}/comments",
        Guard::Authenticated,
    ),
    (
        "PUT",
        "/data/v1/{schema}/documents/{id}/comments/{comment}",
        Guard::Authenticated,
    ),
    (
        "DELETE",
        "/data/v1/{schema}/documents/{id}/comments/{comment}",
        Guard::Authenticated,
    ),
    (
        "POST",
        "/data/v1/{schema}/documents/{id}/{field}",
        Guard::Authenticated,
    ),
    (
        "PUT",
        "/data/v1/{schema}/documents/{id}/{field}/{element}",
        Guard::Authenticated,
    ),
    (
        "DELETE",
        "/data/v1/{schema}/documents/{id}/{field}/{element}",
        Guard::Authenticated,
    ),
    ("GET", "/users/v1/me", Guard::Authenticated),
    ("GET", "/users/v1", Guard::Authenticated),
    ("DELETE", "/users/v1", Guard::Authenticated),
    ("GET", "/users/v1/{id}", Guard::Permission),
    ("PUT", "/users/v1/{id}", Guard::Permission),
    ("DELETE", "/users/v1/{id}", Guard::Permission),
    ("PUT", "/users/v1/{id}/email", Guard::Permission),
    ("PUT", "/users/v1/{id}/profile_image", Guard::Permission),
    ("DELETE", "/users/v1/{id}/profile_image", Guard::Permission),
    (
        "POST",
        "/users/v1/{id}/reset_failed_login_attempts",
        Guard::Permission,
    ),
    ("POST", "/users/v1/register", Guard::Public),
    ("GET", "/users/v1/email_available", Guard::Public),
    ("GET", "/users/v1/password_policy", Guard::Public),
    ("PUT", "/users/v1/password_policy", Guard::Permission),
    ("POST", "/users/v1/authenticate", Guard::Public),
    ("PUT", "/users/v1/password", Guard::Authenticated),
    ("POST", "/users/v1/confirm_password", Guard::Authenticated),
    ("GET", "/users/v1/activation", Guard::Public),
    ("POST", "/users/v1/activation", Guard::Public),
    ("GET", "/users/v1/forgot_password", Guard::Public),
    ("POST", "/users/v1/forgot_password", Guard::Public),
    ("GET", "/users/v1/permissions", Guard::Public),
    ("POST", "/auth/v2/oidc/providers", Guard::Permission),
    ("GET", "/auth/v2/oidc/providers", Guard::Permission),
    ("PUT", "/auth/v2/oidc/providers/{id}", Guard::Permission),
    ("DELETE", "/auth/v2/oidc/providers/{id}", Guard::Permission),
    (
        "POST",
        "/auth/v2/oidc/providers/{id}/enable",
        Guard::Permission,
    ),
    (
        "POST",
        "/auth/v2/oidc/providers/{id}/disable",
        Guard::Permission,
    ),
    (
        "POST",
        "/auth/v2/oidc/providers/{id}/generateAuthenticationUrl",
        Guard::Public,
    ),
    (
        "POST",
        "/auth/v2/oidc/providers/{id}/oAuth2Login",
        Guard::Public,
    ),
    (
        "POST",
        "/auth/v2/oidc/providers/{id}/link",
        Guard::Authenticated,
    ),
    ("POST", "/auth/v2/oidc/users/{id}/unlink", Guard::Permission),
    ("GET", "/auth/v2/oidc/loginAttempts", Guard::Permission),
    ("GET", "/users/v1/settings/verification", Guard::Permission),
    ("GET", "/users/v1/email_templates", Guard::Permission),
    ("PUT", "/users/v1/email_templates", Guard::Permission),
    ("PUT", "/users/v1/settings/verification", Guard::Permission),
    ("GET", "/users/v1/activation_requests", Guard::Permission),
    (
        "DELETE",
        "/users/v1/activation_requests/{id}",
        Guard::Permission,
    ),
    (
        "GET",
        "/users/v1/forgot_password_requests",
        Guard::Permission,
    ),
    (
        "DELETE",
        "/users/v1/forgot_password_requests/{id}",
        Guard::Permission,
    ),
    ("GET", "/users/v1/roles", Guard::Permission),
    ("POST", "/users/v1/roles", Guard::Permission),
    ("DELETE", "/users/v1/roles", Guard::Permission),
    ("PUT", "/users/v1/roles/{id}", Guard::Permission),
    ("POST", "/users/v1/roles/add_permissions", Guard::Permission),
    (
        "POST",
        "/users/v1/roles/remove_permissions",
        Guard::Permission,
    ),
    ("POST", "/users/v1/add_roles", Guard::Permission),
    ("POST", "/users/v1/remove_roles", Guard::Permission),
    ("GET", "/users/v1/patients", Guard::Authenticated),
    ("GET", "/users/v1/staff", Guard::Authenticated),
    ("GET", "/users/v1/groups/permissions", Guard::Public),
    ("GET", "/users/v1/groups/{group}/roles", Guard::Permission),
    ("POST", "/users/v1/groups/{group}/roles", Guard::Permission),
    (
        "DELETE",
        "/users/v1/groups/{group}/roles",
        Guard::Permission,
    ),
    (
        "PUT",
        "/users/v1/groups/{group}/roles/{role}",
        Guard::Permission,
    ),
    (
        "POST",
        "/users/v1/groups/{group}/roles/add_permissions",
        Guard::Permission,
    ),
    (
        "POST",
        "/users/v1/groups/{group}/roles/remove_permissions",
        Guard::Permission,
    ),
    (
        "POST",
        "/users/v1/groups/{group}/staff/add_roles",
        Guard::Permission,
    ),
    (
        "POST",
        "/users/v1/groups/{group}/staff/remove_roles",
        Guard::Permission,
    ),
    ("POST", "/users/v1/add_to_staff", Guard::Permission),
    ("POST", "/users/v1/remove_from_staff", Guard::Permission),
    (
        "POST",
        "/users/v1/{id}/patient_enlistments",
        Guard::Permission,
    ),
    (
        "DELETE",
        "/users/v1/{id}/patient_enlistments/{group}",
        Guard::Permission,
    ),
    ("GET", "/tasks/v1/health", Guard::Public),
    ("GET", "/tasks/v1", Guard::Permission),
    ("POST", "/tasks/v1", Guard::Permission),
    ("POST", "/tasks/v1/{task_id}/cancel", Guard::Permission),
    ("GET", "/tasks/v1/{task_id}/logs", Guard::Permission),
    ("GET", "/tasks/v1/functions", Guard::Permission),
    ("POST", "/tasks/v1/functions", Guard::Permission),
    ("GET", "/tasks/v1/functions/{name}", Guard::Permission),
    ("PUT", "/tasks/v1/functions/{name}", Guard::Permission),
    ("DELETE", "/tasks/v1/functions/{name}", Guard::Permission),
    (
        "POST",
        "/tasks/v1/functions/{name}/executionCredentials",
        Guard::Permission,
    ),
    (
        "POST",
        "/tasks/v1/functions/{name}/enable",
        Guard::Permission,
    ),
    (
        "POST",
        "/tasks/v1/functions/{name}/disable",
        Guard::Permission,
    ),
    ("GET", "/tasks/v1/schedules", Guard::Permission),
    ("POST", "/tasks/v1/schedules", Guard::Permission),
    (
        "DELETE",
        "/tasks/v1/schedules/{schedule_id}",
        Guard::Permission,
    ),
    // An API function's permission mode says who may call it (`public`: anyone).
    ("GET", "/tasks/v1/api/{name}", Guard::Authenticated),
    ("GET", "/tasks/v1/api/{name}/{*path}", Guard::Authenticated),
    ("POST", "/tasks/v1/api/{name}", Guard::Authenticated),
    ("POST", "/tasks/v1/api/{name}/{*path}", Guard::Authenticated),
    ("PUT", "/tasks/v1/api/{name}", Guard::Authenticated),
    ("PUT", "/tasks/v1/api/{name}/{*path}", Guard::Authenticated),
    ("PATCH", "/tasks/v1/api/{name}", Guard::Authenticated),
    (
        "PATCH",
        "/tasks/v1/api/{name}/{*path}",
        Guard::Authenticated,
    ),
    ("DELETE", "/tasks/v1/api/{name}", Guard::Authenticated),
    (
        "DELETE",
        "/tasks/v1/api/{name}/{*path}",
        Guard::Authenticated,
    ),
    ("GET", "/tasks/v1/apiRequests", Guard::Permission),
    (
        "GET",
        "/tasks/v1/apiRequests/{request_id}/logs",
        Guard::Permission,
    ),
    ("GET", "/dispatchers/v1/health", Guard::Public),
    ("GET", "/dispatchers/v1", Guard::Permission),
    ("POST", "/dispatchers/v1", Guard::Permission),
    ("PUT", "/dispatchers/v1/{dispatcher_id}", Guard::Permission),
    (
        "DELETE",
        "/dispatchers/v1/{dispatcher_id}",
        Guard::Permission,
    ),
    (
        "POST",
        "/dispatchers/v1/{dispatcher_id}/actions",
        Guard::Permission,
    ),
    (
        "PUT",
        "/dispatchers/v1/{dispatcher_id}/actions/{action_id}",
        Guard::Permission,
    ),
    (
        "DELETE",
        "/dispatchers/v1/{dispatcher_id}/actions/{action_id}",
        Guard::Permission,
    ),
    ("GET", "/events/v1/health", Guard::Public),
    ("GET", "/events/v1", Guard::Permission),
    ("POST", "/events/v1", Guard::Permission),
    ("GET", "/events/v1/subscriptions", Guard::Permission),
    ("POST", "/events/v1/subscriptions", Guard::Permission),
    ("GET", "/localizations/v1/health", Guard::Public),
    ("GET", "/localizations/v1", Guard::Authenticated),
    ("POST", "/localizations/v1", Guard::Permission),
    ("PUT", "/localizations/v1", Guard::Permission),
    ("DELETE", "/localizations/v1", Guard::Permission),
    ("POST", "/localizations/v1/request", Guard::Authenticated),
    ("GET", "/localizations/v1/countries", Guard::Authenticated),
    (
        "GET",
        "/localizations/v1/countries/{country}/regions",
        Guard::Authenticated,
    ),
    ("GET", "/localizations/v1/languages", Guard::Authenticated),
    ("GET", "/templates/v2/health", Guard::Public),
    ("GET", "/templates/v2", Guard::Permission),
    ("POST", "/templates/v2", Guard::Permission),
    ("PUT", "/templates/v2/{template}", Guard::Permission),
    ("DELETE", "/templates/v2/{template}", Guard::Permission),
    // Who may resolve is the template's business (`RESOLVE_TEMPLATES:<name>`); an unknown
    // template is unknown to everyone.
    (
        "POST",
        "/templates/v2/{template}/resolve",
        Guard::Authenticated,
    ),
    // Who may execute is the function's permission mode's business (`public`: anyone).
    (
        "POST",
        "/tasks/v1/functions/{name}/execute",
        Guard::Authenticated,
    ),
];

/// The group whose routes are walked; the administrator creates a role in it.
const GROUP: &str = "5e9f0000000000000000000a";

/// The `(method, path)` of every `.route(...)` in the routers' source, with its mount prefix.
fn mounted_routes() -> anyhow::Result<BTreeSet<(String, String)>> {
    let routes = Path::new(env!("CARGO_MANIFEST_DIR")).join("../api/src/routes");
    let mut found = BTreeSet::new();
    for (folder, prefix) in [
        ("auth_v2", "/auth/v2"),
        ("users_v1", "/users/v1"),
        ("data_v1", "/data/v1"),
        ("tasks_v1", "/tasks/v1"),
        ("events_v1", "/events/v1"),
        ("dispatchers_v1", "/dispatchers/v1"),
        ("localizations_v1", "/localizations/v1"),
        ("templates_v2", "/templates/v2"),
    ] {
        for entry in std::fs::read_dir(routes.join(folder))? {
            collect(&std::fs::read_to_string(entry?.path())?, prefix, &mut found);
        }
        // `routes/mod.rs` holds the health route every service mounts.
        collect(
            &std::fs::read_to_string(routes.join("mod.rs"))?,
            prefix,
            &mut found,
        );
    }
    Ok(found)
}

fn collect(source: &str, prefix: &str, found: &mut BTreeSet<(String, String)>) {
    for (start, _) in source.match_indices(".route(") {
        let rest = &source[start + ".route(".len()..];
        let Some(open) = rest.find('"') else { continue };
        let Some(close) = rest[open + 1..].find('"') else {
            continue;
        };
        let path = &rest[open + 1..open + 1 + close];
        // The handler expression runs to the parenthesis that closes `.route(`.
        let mut depth = 1;
        let end = rest
            .char_indices()
            .find(|(_, c)| {
                match c {
                    '(' => depth += 1,
                    ')' => depth -= 1,
                    _ => {}
                }
                depth == 0
            })
            .map_or(rest.len(), |(i, _)| i);
        let handlers = &rest[open + close + 2..end];
        for method in ["get", "post", "put", "delete", "patch"] {
            let called = handlers.match_indices(&format!("{method}(")).any(|(i, _)| {
                i == 0 || !handlers[..i].ends_with(|c: char| c.is_alphanumeric() || c == '_')
            });
            if called {
                let full = format!("{prefix}{}", if path == "/" { "" } else { path });
                found.insert((method.to_uppercase(), full));
            }
        }
    }
}

#[test]
fn every_mounted_route_is_in_the_inventory() -> anyhow::Result<()> {
    let mounted = mounted_routes()?;
    let listed: BTreeSet<(String, String)> = INVENTORY
        .iter()
        .map(|(method, path, _)| ((*method).to_owned(), (*path).to_owned()))
        .collect();
    assert!(mounted.len() > 30, "the source scan found only {mounted:?}");
    let unlisted: Vec<_> = mounted.difference(&listed).collect();
    let gone: Vec<_> = listed.difference(&mounted).collect();
    assert!(
        unlisted.is_empty(),
        "routes missing from the inventory: {unlisted:?}"
    );
    assert!(
        gone.is_empty(),
        "inventory routes no longer mounted: {gone:?}"
    );
    Ok(())
}

/// A body that gets past JSON parsing for the routes that take one.
fn body_for(method: &str) -> Option<Value> {
    (method == "POST" || method == "PUT").then(|| json!({}))
}

/// What the walk puts in the paths: the administrator's own resources, so every guarded route is
/// asked about someone else's (Jane's requests) or acted on by one entitled to (the administrator's).
struct Fixtures {
    admin: String,
    jane: String,
    admin_id: String,
    role: String,
    group_role: String,
    token: String,
    refresh: String,
    application: String,
    version: String,
}

impl Fixtures {
    async fn make(server: &TestServer) -> anyhow::Result<Self> {
        let admin = server.admin_token().await?;
        let id_of = |value: &Value| value["id"].as_str().unwrap_or_default().to_owned();
        let (_, role) = server
            .call(
                Method::POST,
                "/users/v1/roles",
                Some(&admin),
                Some(json!({"name": "Some role"})),
            )
            .await?;
        let (_, group_role) = server
            .call(
                Method::POST,
                &format!("/users/v1/groups/{GROUP}/roles"),
                Some(&admin),
                Some(json!({"name": "Some group role"})),
            )
            .await?;
        let (_, tokens) = server
            .call(Method::GET, "/auth/v2/oauth2/tokens", Some(&admin), None)
            .await?;
        let (_, refresh) = server
            .call(
                Method::GET,
                "/auth/v2/oauth2/refreshTokens",
                Some(&admin),
                None,
            )
            .await?;
        let (_, applications) = server
            .call(Method::GET, "/auth/v2/applications", Some(&admin), None)
            .await?;
        plain_user(server, "jane@example.com").await?;
        let jane = server.login("jane@example.com", "jane's password").await?;
        Ok(Self {
            jane: jane["access_token"].as_str().unwrap_or_default().to_owned(),
            admin_id: server.admin.user_id.to_string(),
            role: id_of(&role),
            group_role: id_of(&group_role),
            token: id_of(&tokens["data"][0]),
            refresh: id_of(&refresh["data"][0]),
            application: id_of(&applications["data"][0]),
            version: id_of(&applications["data"][0]["versions"][0]),
            admin,
        })
    }

    /// The inventory's `path` with its parameters filled in (and the RQL bulk routes require).
    fn concrete(&self, method: &str, path: &str) -> String {
        let id = if path.starts_with("/users/v1/roles") {
            &self.role
        } else if path.starts_with("/auth/v2/oauth2/tokens") {
            &self.token
        } else if path.starts_with("/auth/v2/oauth2/refreshTokens") {
            &self.refresh
        } else if path.starts_with("/auth/v2/applications") {
            &self.application
        } else {
            &self.admin_id
        };
        let concrete = path
            .replace("{id}", id)
            .replace("{version}", &self.version)
            .replace("{group}", GROUP)
            .replace("{method}", GROUP)
            .replace("{role}", &self.group_role)
            .replace("{schema}", "some-schema")
            .replace("{path}", "some.property")
            .replace("{name}", "some-status")
            .replace("{field}", "readings")
            .replace("{element}", GROUP)
            .replace("{country}", "BE")
            .replace("{template}", "some-template");
        if concrete.ends_with("roles") && method != "GET"
            || concrete.contains("_permissions")
            || concrete.ends_with("_roles")
            || (method == "DELETE" && concrete == "/users/v1")
        {
            format!("{concrete}?eq(id,{id})")
        } else {
            concrete
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protected_routes_refuse_missing_tokens_and_missing_permissions() -> anyhow::Result<()> {
    let env = TestEnv::new(vigil_tests::Deployment::Embedded).await?;
    let server = TestServer::start(&env).await?;
    let fixtures = Fixtures::make(&server).await?;
    let (admin, jane) = (&fixtures.admin, &fixtures.jane);

    for (method, path, guard) in INVENTORY {
        let concrete = fixtures.concrete(method, path);
        let method = Method::from_bytes(method.as_bytes())?;
        let (anonymous, body) = server
            .call(method.clone(), &concrete, None, body_for(method.as_str()))
            .await?;
        if *guard == Guard::Public {
            assert_ne!(code(&body), Some(104), "{method} {concrete} is public");
        } else {
            assert_eq!(
                (anonymous, code(&body)),
                (StatusCode::UNAUTHORIZED, Some(104)),
                "{method} {concrete} without a token: {body}"
            );
        }
        if *guard == Guard::Permission {
            let (status, body) = server
                .call(
                    method.clone(),
                    &concrete,
                    Some(jane),
                    body_for(method.as_str()),
                )
                .await?;
            assert_eq!(
                (status, code(&body)),
                (StatusCode::UNAUTHORIZED, Some(10)),
                "{method} {concrete} without the permission: {body}"
            );
        }
    }
    // Nothing was changed on the administrator's behalf by the refused requests.
    let (status, _) = server
        .call(Method::GET, "/users/v1/me", Some(admin), None)
        .await?;
    assert_eq!(status, StatusCode::OK);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_answers_bad_bodies_in_the_extra_horizon_shape() -> anyhow::Result<()> {
    let env = TestEnv::new(vigil_tests::Deployment::Embedded).await?;
    let server = TestServer::start(&env).await?;
    let fixtures = Fixtures::make(&server).await?;
    let oversized = vec![b' '; 11 * 1024 * 1024];
    let client = reqwest::Client::new();
    // Deleting would take the fixtures away from the routes after; their bodies are not read.
    for (method, path, _) in INVENTORY.iter().filter(|(method, ..)| *method != "DELETE") {
        let concrete = fixtures.concrete(method, path);
        let method = Method::from_bytes(method.as_bytes())?;
        let with_body = method == Method::POST || method == Method::PUT;
        let bad = [
            (
                "malformed JSON",
                client
                    .request(method.clone(), server.url(&concrete))
                    .header("content-type", "application/json")
                    .body("{\"a\": [1, "),
            ),
            (
                "a body that is not gzip",
                client
                    .request(method.clone(), server.url(&concrete))
                    .header("content-type", "application/json")
                    .header("content-encoding", "gzip")
                    .body("{}"),
            ),
            (
                "an unknown encoding",
                client
                    .request(method.clone(), server.url(&concrete))
                    .header("content-type", "application/json")
                    .header("content-encoding", "br-unknown")
                    .body("{}"),
            ),
        ];
        for (what, request) in bad {
            let response = request.bearer_auth(&fixtures.admin).send().await?;
            let status = response.status();
            assert!(
                !status.is_server_error(),
                "{method} {concrete} with {what}: {status}"
            );
            if status.is_client_error() {
                let content_type = response
                    .headers()
                    .get("content-type")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_owned();
                assert!(
                    content_type.starts_with("application/json"),
                    "{method} {concrete} with {what}: {content_type}"
                );
                let body: Value = response.json().await?;
                assert!(
                    code(&body).is_some()
                        && body["message"]
                            .as_str()
                            .or(body["description"].as_str())
                            .is_some_and(|m| !m.is_empty()),
                    "{method} {concrete} with {what}: {body}"
                );
            }
        }
        if with_body {
            // Sent raw: the server may answer before it has read it all, and close.
            let mut request = format!(
                "{method} {concrete} HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                fixtures.admin,
                oversized.len()
            )
            .into_bytes();
            request.extend_from_slice(&oversized);
            let answer = raw_exchange(&server, &request).await?;
            let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
            assert!(
                head.starts_with("HTTP/1.1 2") || head.starts_with("HTTP/1.1 4"),
                "{method} {concrete} with a body over 10 MiB: {head}"
            );
            if head.starts_with("HTTP/1.1 4") {
                assert!(
                    head.contains("content-type: application/json"),
                    "{method} {concrete}: {head}"
                );
                let body: Value = serde_json::from_str(body)?;
                assert!(
                    code(&body).is_some(),
                    "{method} {concrete} with a body over 10 MiB: {body}"
                );
            }
        }
    }
    Ok(())
}
