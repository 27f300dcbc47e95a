//! Accounts: registration, profile updates, passwords and deletion (`/users/v1/register`,
//! `/users/v1/{id}`, `/users/v1/password`, `/users/v1/confirm_password`,
//! `/users/v1/email_available`, `/users/v1/password_policy`).

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use vigil_commands::secrets;
use vigil_commands::users::bulk::BulkJobError;
use vigil_commands::users::user::{self, AccountError, NewAccount};
use vigil_domain::actor::{Actor, Via};
use vigil_domain::aggregate::Aggregate;
use vigil_domain::error::ExhCode;
use vigil_domain::id::{Id, StreamId};
use vigil_domain::password::PasswordPolicy;
use vigil_domain::users::bulk::BulkChange;
use vigil_domain::users::settings::{self, Settings, SettingsCommand};
use vigil_domain::users::user::{ProfileChanges, User, UserCommand};
use vigil_domain::users::verification::{Mode, Proof, Purpose};
use vigil_domain::value::Email;

use super::global_roles::bulk;
use super::rendered_user;
use crate::error::ApiError;
use crate::extract::{Caller, JsonBody, RequestContext, Rql, parse_id};
use crate::routes::required_filter;
use crate::state::{AppState, UsersService};
use crate::views::RawJson;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/register", post(register))
        .route("/email_available", get(email_available))
        .route(
            "/password_policy",
            get(password_policy).put(set_password_policy),
        )
        .route("/authenticate", post(authenticate))
        .route("/password", put(change_password))
        .route("/confirm_password", post(confirm_password))
        .route("/activation", get(request_activation).post(activate))
        .route(
            "/forgot_password",
            get(request_password_reset).post(reset_password),
        )
        .route("/{id}", put(update).delete(remove))
        .route("/{id}/email", put(change_email))
        .route(
            "/{id}/profile_image",
            put(set_profile_image).delete(remove_profile_image),
        )
        .route(
            "/{id}/reset_failed_login_attempts",
            post(reset_failed_login_attempts),
        )
}

impl From<AccountError> for ApiError {
    fn from(error: AccountError) -> Self {
        match error {
            AccountError::Command(command) => command.into(),
            AccountError::Login(login) => login.into(),
            AccountError::ResetRequest(request) => request.into(),
            AccountError::Secret(secret) => ApiError::internal(secret),
            AccountError::Attempt(attempt) => attempt.into(),
        }
    }
}

impl From<BulkJobError> for ApiError {
    fn from(error: BulkJobError) -> Self {
        match error {
            BulkJobError::Job(job) => job.into(),
            BulkJobError::Account(account) => account.into(),
        }
    }
}

#[derive(Deserialize)]
struct Registration {
    first_name: String,
    last_name: String,
    email: String,
    password: String,
    phone_number: Option<String>,
    language: String,
    time_zone: Option<String>,
    activation_mode: Option<String>,
}

/// How codes are mailed in `mode`: as a hash (the default), as a pin code (when the verification
/// settings enable them, checked by the command), or not at all (`manual`).
fn mailed(state: &UsersService, mode: Option<&str>) -> Result<Option<Mode>, ApiError> {
    let mode = match mode.unwrap_or("hash") {
        "manual" => return Ok(None),
        "hash" => Mode::Hash,
        "pin_code" => Mode::PinCode,
        other => {
            return Err(ApiError::new(
                ExhCode::FieldFormat,
                format!("mode must be hash, pin_code or manual, not {other}"),
            ));
        }
    };
    if !state.sends_mail {
        return Err(ApiError::new(
            ExhCode::IllegalState,
            "This deployment sends no mail (no SMTP server is configured); use activation_mode manual",
        ));
    }
    Ok(Some(mode))
}

/// `POST /users/v1/register`: anyone may create an account; in the `hash` mode an activation code
/// is mailed to it.
async fn register(
    State(state): State<UsersService>,
    context: RequestContext,
    body: JsonBody<Registration>,
) -> Result<RawJson, ApiError> {
    let form = body.read()?;
    let activation = mailed(&state, form.activation_mode.as_deref())?;
    let account = NewAccount {
        email: form.email,
        password: form.password,
        first_name: form.first_name,
        last_name: form.last_name,
        phone_number: form.phone_number,
        language: form.language,
        time_zone: form.time_zone,
        activated: false,
        activation,
    };
    let meta = context.meta(anonymous(&context));
    let (id, outcome) = user::register(&state.bus, &state.ids, account, &meta).await?;
    state.settle(outcome.position).await?;
    rendered_user(&state, id).await
}

#[derive(Deserialize)]
struct EmailQuery {
    email: Option<String>,
}

/// `GET /users/v1/email_available?email=`.
async fn email_available(
    State(state): State<UsersService>,
    Query(query): Query<EmailQuery>,
) -> Result<Json<Value>, ApiError> {
    let email = query
        .email
        .ok_or_else(|| ApiError::new(ExhCode::MissingRequiredFields, "email is required"))?;
    let email = Email::parse(&email)
        .map_err(|_| ApiError::new(ExhCode::FieldFormat, "email is not a valid email address"))?;
    let taken = vigil_commands::auth::session::user_by_email(&state.bus, &email)
        .await?
        .is_some();
    Ok(Json(json!({"email_available": !taken})))
}

/// `GET /users/v1/password_policy`.
async fn password_policy(
    State(state): State<UsersService>,
) -> Result<Json<PasswordPolicy>, ApiError> {
    Ok(Json(user::password_policy(&state.bus).await?))
}

#[derive(Deserialize)]
struct PolicyChanges {
    minimum_length: Option<usize>,
    maximum_length: Option<usize>,
    upper_case_required: Option<bool>,
    lower_case_required: Option<bool>,
    symbol_required: Option<bool>,
    number_required: Option<bool>,
}

/// `PUT /users/v1/password_policy`: changes the given rules; answers the policy now in force.
async fn set_password_policy(
    State(state): State<UsersService>,
    caller: Caller,
    body: JsonBody<PolicyChanges>,
) -> Result<Json<PasswordPolicy>, ApiError> {
    caller.require("UPDATE_PASSWORD_POLICY")?;
    let changes = body.read()?;
    let current = user::password_policy(&state.bus).await?;
    let policy = PasswordPolicy {
        minimum_length: changes.minimum_length.unwrap_or(current.minimum_length),
        maximum_length: changes.maximum_length.unwrap_or(current.maximum_length),
        upper_case_required: changes
            .upper_case_required
            .unwrap_or(current.upper_case_required),
        lower_case_required: changes
            .lower_case_required
            .unwrap_or(current.lower_case_required),
        symbol_required: changes.symbol_required.unwrap_or(current.symbol_required),
        number_required: changes.number_required.unwrap_or(current.number_required),
    };
    state
        .bus
        .execute::<Settings>(
            &settings::stream(),
            &SettingsCommand::SetPasswordPolicy(policy),
            &caller.meta(),
        )
        .await?;
    Ok(Json(policy))
}

#[derive(Deserialize)]
struct PasswordChange {
    old_password: String,
    new_password: String,
}

/// `PUT /users/v1/password`: the caller changes their own password.
async fn change_password(
    State(state): State<UsersService>,
    caller: Caller,
    body: JsonBody<PasswordChange>,
) -> Result<RawJson, ApiError> {
    let PasswordChange {
        old_password,
        new_password,
    } = body.read()?;
    let outcome = user::change_password(
        &state.bus,
        caller.user_id,
        old_password,
        new_password,
        caller.login,
        &caller.meta(),
    )
    .await?;
    state.settle(outcome.position).await?;
    rendered_user(&state, caller.user_id).await
}

#[derive(Deserialize)]
struct PasswordConfirmation {
    password: String,
}

/// `POST /users/v1/confirm_password`: whether the caller knows their password.
async fn confirm_password(
    State(state): State<UsersService>,
    caller: Caller,
    body: JsonBody<PasswordConfirmation>,
) -> Result<StatusCode, ApiError> {
    let PasswordConfirmation { password } = body.read()?;
    if user::confirm_password(&state.bus, caller.user_id, password, &caller.meta()).await? {
        Ok(StatusCode::OK)
    } else {
        Err(ApiError::new(
            ExhCode::Password,
            "The password is incorrect",
        ))
    }
}

#[derive(Deserialize)]
struct ProfileUpdate {
    first_name: Option<String>,
    last_name: Option<String>,
    #[serde(default, deserialize_with = "present")]
    phone_number: Option<Option<String>>,
    language: Option<String>,
    time_zone: Option<String>,
}

/// A field that is present (even as `null`) becomes `Some`.
fn present<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(deserializer).map(Some)
}

fn user_stream(id: Id) -> StreamId {
    StreamId::of(User::KIND, id)
}

/// `PUT /users/v1/{id}`: oneself, or anyone with `UPDATE_USER`.
async fn update(
    State(state): State<UsersService>,
    caller: Caller,
    Path(id): Path<String>,
    body: JsonBody<ProfileUpdate>,
) -> Result<RawJson, ApiError> {
    let id = own_or(&caller, &id, "UPDATE_USER")?;
    let update = body.read()?;
    let changes = ProfileChanges {
        first_name: update.first_name,
        last_name: update.last_name,
        phone_number: update.phone_number,
        language: update.language,
        time_zone: update.time_zone,
    };
    let outcome = state
        .bus
        .execute::<User>(
            &user_stream(id),
            &UserCommand::Update(changes),
            &caller.meta(),
        )
        .await?;
    state.settle(outcome.position).await?;
    rendered_user(&state, id).await
}

/// `DELETE /users/v1/{id}`: oneself, or anyone with `DELETE_USER`. Logs the user out everywhere.
async fn remove(
    State(state): State<UsersService>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id = own_or(&caller, &id, "DELETE_USER")?;
    let outcome = user::delete(&state.bus, id, &caller.meta()).await?;
    state.settle(outcome.position).await?;
    Ok(Json(json!({"affectedRecords": 1})))
}

/// `POST /users/v1/{id}/reset_failed_login_attempts`: lifts a lock or freeze on the user's logins.
async fn reset_failed_login_attempts(
    State(state): State<UsersService>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    caller.require("RESET_FAILED_LOGIN_ATTEMPTS")?;
    let id = parse_id(&id)?;
    let cleared = user::clear_failed_logins(&state.bus, id, true, &caller.meta()).await?;
    if let Some(outcome) = &cleared {
        state.settle(outcome.position).await?;
    }
    Ok(Json(
        json!({"affectedRecords": usize::from(cleared.is_some())}),
    ))
}

#[derive(Deserialize)]
struct MailRequest {
    email: Option<String>,
    mode: Option<String>,
}

fn anonymous(context: &RequestContext) -> Actor {
    Actor::anonymous(None, Via::Http, context.client_ip.clone())
}

/// Records a request for a mailed code for `purpose`, when the mode mails at all; false when no
/// account has the address.
async fn request_mail(
    state: &UsersService,
    context: &RequestContext,
    request: MailRequest,
    purpose: Purpose,
) -> Result<bool, ApiError> {
    let email = request
        .email
        .ok_or_else(|| ApiError::new(ExhCode::MissingRequiredFields, "email is required"))?;
    let Some(mode) = mailed(state, request.mode.as_deref())? else {
        return Ok(true);
    };
    let meta = context.meta(anonymous(context));
    // The answer is empty, so nothing waits for the read models: a request for an address with
    // an account costs what one without does (one commit), and its time tells nothing.
    Ok(user::request_verification(&state.bus, &state.ids, &email, purpose, mode, &meta).await?)
}

/// `GET /users/v1/activation?email=&mode=`: mail a new activation code.
async fn request_activation(
    State(state): State<UsersService>,
    context: RequestContext,
    Query(request): Query<MailRequest>,
) -> Result<StatusCode, ApiError> {
    if request_mail(&state, &context, request, Purpose::Activation).await? {
        Ok(StatusCode::OK)
    } else {
        Err(ApiError::new(
            ExhCode::EmailUnknown,
            "No account has this email",
        ))
    }
}

/// `GET /users/v1/forgot_password?email=&mode=`: mail a password-reset code. An address without
/// an account gets the same answer as one with, and no mail.
async fn request_password_reset(
    State(state): State<UsersService>,
    context: RequestContext,
    Query(request): Query<MailRequest>,
) -> Result<StatusCode, ApiError> {
    request_mail(&state, &context, request, Purpose::PasswordReset).await?;
    Ok(StatusCode::OK)
}

/// A mailed code as presented: `{hash}`, or `{email, pin_code}`.
#[derive(Deserialize)]
struct MailedCode {
    hash: Option<String>,
    email: Option<String>,
    pin_code: Option<String>,
}

/// The user a mailed code was sent to for `purpose`, and the code as proof: a hash is looked up
/// by its digest; a pin belongs to the account of the address it comes with.
async fn code_owner(
    state: &UsersService,
    code: MailedCode,
    purpose: Purpose,
) -> Result<(Id, Proof), ApiError> {
    let (unknown_hash, unknown_pin) = match purpose {
        Purpose::Activation => (ExhCode::ActivationUnknown, ExhCode::ActivationUnknown),
        Purpose::PasswordReset => (
            ExhCode::NewPasswordHashUnknown,
            ExhCode::PinCodeRequestUnknown,
        ),
    };
    match code {
        MailedCode {
            hash: Some(hash), ..
        } => {
            let digest = secrets::token_digest(hash.trim());
            let owner = state
                .lookup(|access| access.verification_code(&digest))
                .await?
                .filter(|(_, used_for)| *used_for == purpose)
                .map(|(user, _)| user)
                .ok_or_else(|| ApiError::new(unknown_hash, "The code is unknown or has expired"))?;
            let proof = Proof {
                mode: Mode::Hash,
                digest,
            };
            Ok((owner, proof))
        }
        MailedCode {
            email: Some(email),
            pin_code: Some(pin),
            ..
        } => {
            let unknown = || {
                ApiError::new(
                    unknown_pin,
                    "No pin code was requested for this address, or it has expired",
                )
            };
            let email = Email::parse(&email).map_err(|_| unknown())?;
            let (owner, _) = vigil_commands::auth::session::user_by_email(&state.bus, &email)
                .await?
                .ok_or_else(unknown)?;
            let proof = Proof {
                mode: Mode::PinCode,
                digest: state.vault.pin_digest(owner, &pin),
            };
            Ok((owner, proof))
        }
        _ => Err(ApiError::new(
            ExhCode::MissingRequiredFields,
            "Send the mailed hash, or the email address with the mailed pin_code",
        )),
    }
}

/// `POST /users/v1/activation`: activate an account with the mailed code (`{hash}` or
/// `{email, pin_code}`).
async fn activate(
    State(state): State<UsersService>,
    context: RequestContext,
    body: JsonBody<MailedCode>,
) -> Result<StatusCode, ApiError> {
    let code = body.read()?;
    let (user_id, proof) = code_owner(&state, code, Purpose::Activation).await?;
    let meta = context.meta(anonymous(&context));
    let outcome = user::activate(&state.bus, user_id, proof, &meta).await;
    settled(&state, outcome).await
}

/// Answers a mailed code's use once the read models show it, a refusal that was recorded (a
/// wrong pin) included.
async fn settled(
    state: &UsersService,
    outcome: Result<vigil_commands::flow::Outcome, AccountError>,
) -> Result<StatusCode, ApiError> {
    match outcome {
        Ok(outcome) => {
            state.settle(outcome.position).await?;
            Ok(StatusCode::OK)
        }
        Err(error) => {
            let error = ApiError::from(error);
            if error.code == ExhCode::IncorrectPinCode {
                state.settle(state.bus.log().head().await?).await?;
            }
            Err(error)
        }
    }
}

#[derive(Deserialize)]
struct PasswordResetForm {
    #[serde(flatten)]
    code: MailedCode,
    new_password: String,
}

/// `POST /users/v1/forgot_password`: a new password with the mailed code (`hash`, or `email` and
/// `pin_code`); logs out everywhere.
async fn reset_password(
    State(state): State<UsersService>,
    context: RequestContext,
    body: JsonBody<PasswordResetForm>,
) -> Result<StatusCode, ApiError> {
    let PasswordResetForm { code, new_password } = body.read()?;
    let (user_id, proof) = code_owner(&state, code, Purpose::PasswordReset).await?;
    let meta = context.meta(anonymous(&context));
    let outcome = user::reset_password(&state.bus, user_id, proof, new_password, &meta).await;
    settled(&state, outcome).await
}

#[derive(Deserialize)]
struct Credentials {
    email: String,
    password: String,
}

/// `POST /users/v1/authenticate`: checks an email and password (throttled and counted like a
/// login) and answers the user.
async fn authenticate(
    State(state): State<UsersService>,
    context: RequestContext,
    body: JsonBody<Credentials>,
) -> Result<RawJson, ApiError> {
    let Credentials { email, password } = body.read()?;
    let meta = context.meta(anonymous(&context));
    let user_id =
        vigil_commands::auth::session::verify_credentials(&state.bus, &email, password, &meta)
            .await?;
    state.settle(state.bus.log().head().await?).await?;
    rendered_user(&state, user_id).await
}

#[derive(Deserialize)]
struct EmailChange {
    email: String,
    activation_mode: Option<String>,
}

/// `PUT /users/v1/{id}/email`: oneself, or anyone with `UPDATE_USER_EMAIL`. The account must be
/// activated again (a code is mailed to the new address in the `hash` mode).
async fn change_email(
    State(state): State<UsersService>,
    caller: Caller,
    Path(id): Path<String>,
    body: JsonBody<EmailChange>,
) -> Result<RawJson, ApiError> {
    let id = own_or(&caller, &id, "UPDATE_USER_EMAIL")?;
    let EmailChange {
        email,
        activation_mode,
    } = body.read()?;
    let activation = mailed(&state, activation_mode.as_deref())?;
    let outcome = user::change_email(
        &state.bus,
        &state.ids,
        id,
        &email,
        activation,
        &caller.meta(),
    )
    .await?;
    state.settle(outcome.position).await?;
    rendered_user(&state, id).await
}

#[derive(Deserialize)]
struct ProfileImage {
    hash: String,
}

/// The user `id` names, if it is the caller or the caller holds `permission`: checked before the
/// request body is read, so a caller without the right learns nothing from it.
fn own_or(caller: &Caller, id: &str, permission: &'static str) -> Result<Id, ApiError> {
    let id = parse_id(id)?;
    if id != caller.user_id {
        caller.require(permission)?;
    }
    Ok(id)
}

async fn profile_image(
    state: &UsersService,
    caller: &Caller,
    id: Id,
    hash: Option<String>,
) -> Result<RawJson, ApiError> {
    let outcome = state
        .bus
        .execute::<User>(
            &user_stream(id),
            &UserCommand::SetProfileImage { hash },
            &caller.meta(),
        )
        .await?;
    state.settle(outcome.position).await?;
    rendered_user(state, id).await
}

/// `PUT /users/v1/{id}/profile_image`: own, or `UPDATE_PROFILE_IMAGE`.
async fn set_profile_image(
    State(state): State<UsersService>,
    caller: Caller,
    Path(id): Path<String>,
    body: JsonBody<ProfileImage>,
) -> Result<RawJson, ApiError> {
    let id = own_or(&caller, &id, "UPDATE_PROFILE_IMAGE")?;
    let ProfileImage { hash } = body.read()?;
    profile_image(&state, &caller, id, Some(hash)).await
}

/// `DELETE /users/v1/{id}/profile_image`.
async fn remove_profile_image(
    State(state): State<UsersService>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<RawJson, ApiError> {
    let id = own_or(&caller, &id, "UPDATE_PROFILE_IMAGE")?;
    profile_image(&state, &caller, id, None).await
}

/// `DELETE /users/v1/?<rql>` (deprecated by Extra Horizon, still served): deletes the users the RQL
/// selects — with `DELETE_USER` anyone, without it only oneself.
pub(super) async fn remove_matching(
    State(state): State<UsersService>,
    caller: Caller,
    Rql(query): Rql,
) -> Result<Json<Value>, ApiError> {
    required_filter(&query)?;
    let mut ids = vigil_projections::users::user::matching(
        &state.store,
        &query,
        vigil_projections::users::user::Scope::All,
    )
    .await?;
    if !caller.actor.allows("DELETE_USER") {
        let me = caller.user_id.to_string();
        ids.retain(|id| *id == me);
    }
    bulk(&state, &caller, BulkChange::DeleteUsers, &ids).await
}
