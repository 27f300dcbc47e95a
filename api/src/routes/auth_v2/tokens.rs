//! `/auth/v2/oauth2/tokens` and `/auth/v2/oauth2/refreshTokens`: listing the current tokens (one's
//! own, or everyone's with a permission) and revoking them. Revoking either token of a login ends
//! the login: both its tokens stop working at once, on every node.

use axum::extract::{Path, State};
use axum::routing::{delete, get};
use axum::{Json, Router};
use serde_json::{Value, json};
use vigil_domain::aggregate::Aggregate;
use vigil_domain::auth::session::{Session, SessionCommand};
use vigil_domain::error::ExhCode;
use vigil_projections::auth::token::{self, TokenKind, TokenRow};

use crate::error::ApiError;
use crate::extract::{Caller, Rql, parse_id};
use crate::routes::rendered_page;
use crate::state::{AppState, AuthService};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/oauth2/tokens", get(list_access))
        .route("/oauth2/tokens/{id}", delete(revoke_access))
        .route("/oauth2/refreshTokens", get(list_refresh))
        .route("/oauth2/refreshTokens/{id}", delete(revoke_refresh))
}

fn token_json(token: &TokenRow) -> Value {
    let mut object = json!({
        "id": token.id,
        "applicationId": token.application_id,
        "userId": token.user_id,
        "expiryTimestamp": token.expiry_timestamp,
        "creationTimestamp": token.creation_timestamp,
        "updateTimestamp": token.update_timestamp,
    });
    if let (Some(refresh), Some(map)) = (&token.refresh_token_id, object.as_object_mut()) {
        map.insert("refreshTokenId".into(), json!(refresh));
    }
    object
}

async fn list(
    state: &AuthService,
    caller: &Caller,
    kind: TokenKind,
    query: &vigil_projections::rql::Query,
) -> Result<Json<Value>, ApiError> {
    let everyone = caller.actor.allows("VIEW_AUTHORIZATIONS")
        || (kind == TokenKind::Refresh && caller.actor.allows("VIEW_OAUTH2_REFRESH_TOKENS"));
    let user = caller.user_id.to_string();
    let of_user = (!everyone).then_some(user.as_str());
    let listed = token::list(&state.store, kind, query, of_user).await?;
    Ok(rendered_page(listed, query, token_json))
}

async fn list_access(
    State(state): State<AuthService>,
    caller: Caller,
    Rql(query): Rql,
) -> Result<Json<Value>, ApiError> {
    list(&state, &caller, TokenKind::Access, &query).await
}

async fn list_refresh(
    State(state): State<AuthService>,
    caller: Caller,
    Rql(query): Rql,
) -> Result<Json<Value>, ApiError> {
    list(&state, &caller, TokenKind::Refresh, &query).await
}

async fn revoke(
    state: &AuthService,
    caller: &Caller,
    kind: TokenKind,
    id: &str,
) -> Result<Json<Value>, ApiError> {
    parse_id(id)?;
    let (session, _) = token::by_id(&state.store, kind, id)
        .await?
        .ok_or_else(|| ApiError::new(ExhCode::ResourceUnknown, "No current token with this id"))?;
    let session = parse_id(&session)?;
    let command = SessionCommand::End {
        through_refresh_token: kind == TokenKind::Refresh,
    };
    let outcome = state
        .bus
        .execute::<Session>(
            &vigil_domain::id::StreamId::of(Session::KIND, session),
            &command,
            &caller.meta(),
        )
        .await?;
    state.settle(outcome.position).await?;
    Ok(Json(json!({"affectedRecords": 1})))
}

async fn revoke_access(
    State(state): State<AuthService>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    revoke(&state, &caller, TokenKind::Access, &id).await
}

async fn revoke_refresh(
    State(state): State<AuthService>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    revoke(&state, &caller, TokenKind::Refresh, &id).await
}
