//! Task-service functions: code that tasks run, addressed by name (`/tasks/v1/functions/{name}`).
//!
//! A function's stream is keyed by its name (`function-<name>`), so a name is unique without a
//! reservation, and a function deleted and created again continues its stream. The code itself
//! (a zip) is not in the log: the log records its SHA-256 and size, and the code is kept once per
//! digest in the blob store.

use serde::{Deserialize, Serialize};

use crate::aggregate::{Aggregate, Ctx};
use crate::error::{DomainError, ExhCode};
use crate::event::events;
use crate::id::{Digest, Id, InvalidStreamId, StreamId};
use crate::value::Sealed;

/// The runtime run in process by Vigil itself.
pub const RHAI: &str = "rhai";
/// Seconds a function may run: Extra Horizon's range and default.
pub const TIME_LIMITS: std::ops::RangeInclusive<u32> = 3..=300;
pub const DEFAULT_TIME_LIMIT: u32 = 30;
/// Megabytes a function may use: Extra Horizon's range and default.
pub const MEMORY_LIMITS: std::ops::RangeInclusive<u32> = 128..=10240;
pub const DEFAULT_MEMORY_LIMIT: u32 = 128;
/// The longest function name (AWS Lambda's).
pub const NAME_CHARS: usize = 64;
/// The most bytes of environment variables, names and values together (AWS Lambda's).
pub const ENVIRONMENT_BYTES: usize = 4096;

/// Who may execute a function directly or call it as an API function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub enum PermissionMode {
    /// Callers holding `EXECUTE_TASK_FUNCTION[:name]` (or `EXECUTE_API_FUNCTION[:name]`).
    PermissionRequired,
    /// Every authenticated user.
    AllUsers,
    /// Anyone, also without a token.
    Public,
}

impl PermissionMode {
    pub fn wire_name(self) -> &'static str {
        match self {
            Self::PermissionRequired => "permissionRequired",
            Self::AllUsers => "allUsers",
            Self::Public => "public",
        }
    }

    pub fn from_wire(name: &str) -> Option<Self> {
        [Self::PermissionRequired, Self::AllUsers, Self::Public]
            .into_iter()
            .find(|mode| mode.wire_name() == name)
    }
}

impl PermissionMode {
    /// Whether `actor` may run the function named `function_name` directly (`EXECUTE_TASK_FUNCTION`)
    /// or as an API function (`EXECUTE_API_FUNCTION`, the `permission` given): anyone in `public`
    /// mode, any user in `allUsers` mode, else who holds the permission for the function.
    pub fn allows(
        self,
        actor: &crate::actor::Actor,
        permission: &str,
        function_name: &str,
    ) -> Result<(), String> {
        let allowed = match self {
            Self::Public => true,
            Self::AllUsers => actor.is_system() || actor.record().user_id.is_some(),
            Self::PermissionRequired => false,
        };
        let scoped = format!("{permission}:{function_name}");
        if allowed || actor.allows(&scoped) {
            Ok(())
        } else {
            Err(scoped)
        }
    }
}

/// Whether a failed run is tried again, and after which errors (by name; none listed: all).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct RetryPolicy {
    pub enabled: bool,
    pub errors_to_retry: Vec<String>,
}

impl RetryPolicy {
    /// Whether an error named `name` is tried again.
    pub fn retries(&self, name: &str) -> bool {
        self.enabled
            && (self.errors_to_retry.is_empty() || self.errors_to_retry.iter().any(|e| e == name))
    }
}

/// One environment variable; its value is sealed with the deployment key, as it often holds
/// credentials.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct EnvironmentVariable {
    pub name: String,
    pub value: Sealed,
}

/// Everything about a function but its name and code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct FunctionSettings {
    pub description: String,
    pub entry_point: String,
    pub runtime: String,
    /// Seconds.
    pub time_limit: u32,
    /// Megabytes.
    pub memory_limit: u32,
    pub environment: Vec<EnvironmentVariable>,
    pub permission_mode: PermissionMode,
    pub default_priority: Option<i64>,
    pub retry_policy: RetryPolicy,
}

/// A function's code: the digest under which the blob store keeps the zip, and its size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct FunctionCode {
    pub digest: Digest,
    pub size: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct FunctionCreated {
    pub name: String,
    pub settings: FunctionSettings,
    pub code: FunctionCode,
}

/// The function's settings, all of them now, and its new code if it changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct FunctionUpdated {
    pub settings: FunctionSettings,
    pub code: Option<FunctionCode>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct FunctionToggled {}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct FunctionDeleted {}

/// A function's execution identity (its execution credentials): the user its code acts as, the
/// role that gives that user its permissions, and the OAuth1 application and token the code
/// signs its API requests with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct ExecutionIdentity {
    pub user_id: Id,
    pub role_id: Id,
    pub application_id: Id,
    pub token_id: Id,
}

/// The function got (new) execution credentials: its identity, and the environment variables
/// that hand them to its code (`API_HOST`, `API_OAUTH_*`), set beside the others.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct FunctionExecutionSet {
    pub identity: ExecutionIdentity,
    pub variables: Vec<EnvironmentVariable>,
}

/// The environment variables of `environment` with `variables` set (replaced or added).
fn with_variables(
    environment: &[EnvironmentVariable],
    variables: &[EnvironmentVariable],
) -> Vec<EnvironmentVariable> {
    let mut merged: Vec<EnvironmentVariable> = environment
        .iter()
        .filter(|kept| variables.iter().all(|set| set.name != kept.name))
        .cloned()
        .collect();
    merged.extend(variables.iter().cloned());
    merged
}

events! {
    pub enum FunctionEvent {
        Created(FunctionCreated) = "function.created",
        Updated(FunctionUpdated) = "function.updated",
        Enabled(FunctionToggled) = "function.enabled",
        Disabled(FunctionToggled) = "function.disabled",
        Deleted(FunctionDeleted) = "function.deleted",
        ExecutionSet(FunctionExecutionSet) = "function.execution_set",
    }
}

/// Changes to a function's settings: what a request gives, the rest kept.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SettingsChange {
    pub description: Option<String>,
    pub entry_point: Option<String>,
    pub runtime: Option<String>,
    pub time_limit: Option<u32>,
    pub memory_limit: Option<u32>,
    pub environment: Option<Vec<EnvironmentVariable>>,
    pub permission_mode: Option<PermissionMode>,
    /// `Some(None)`: no default priority any more.
    pub default_priority: Option<Option<i64>>,
    pub retry_policy: Option<RetryPolicy>,
}

impl SettingsChange {
    /// `settings` with these changes.
    pub fn applied_to(&self, settings: &FunctionSettings) -> FunctionSettings {
        FunctionSettings {
            description: self
                .description
                .clone()
                .unwrap_or_else(|| settings.description.clone()),
            entry_point: self
                .entry_point
                .clone()
                .unwrap_or_else(|| settings.entry_point.clone()),
            runtime: self
                .runtime
                .clone()
                .unwrap_or_else(|| settings.runtime.clone()),
            time_limit: self.time_limit.unwrap_or(settings.time_limit),
            memory_limit: self.memory_limit.unwrap_or(settings.memory_limit),
            environment: self
                .environment
                .clone()
                .unwrap_or_else(|| settings.environment.clone()),
            permission_mode: self.permission_mode.unwrap_or(settings.permission_mode),
            default_priority: self.default_priority.unwrap_or(settings.default_priority),
            retry_policy: self
                .retry_policy
                .clone()
                .unwrap_or_else(|| settings.retry_policy.clone()),
        }
    }

    /// The settings of a new function: these, with Extra Horizon's defaults for the rest.
    pub fn new_settings(&self) -> FunctionSettings {
        self.applied_to(&FunctionSettings {
            description: String::new(),
            entry_point: String::new(),
            runtime: String::new(),
            time_limit: DEFAULT_TIME_LIMIT,
            memory_limit: DEFAULT_MEMORY_LIMIT,
            environment: Vec::new(),
            permission_mode: PermissionMode::PermissionRequired,
            default_priority: None,
            retry_policy: RetryPolicy::default(),
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FunctionCommand {
    Create {
        settings: SettingsChange,
        code: FunctionCode,
    },
    Update {
        settings: SettingsChange,
        code: Option<FunctionCode>,
    },
    Enable,
    Disable,
    Delete,
    /// Gives the function its execution identity and the variables handing it to its code.
    SetExecution(FunctionExecutionSet),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FunctionError {
    #[error("permission {0} is required")]
    NoPermission(&'static str),
    #[error("no function has this name")]
    Unknown,
    #[error("a function with this name exists already")]
    AlreadyExists,
    #[error("{0}")]
    InvalidName(String),
    #[error("{0}")]
    InvalidConfiguration(String),
}

impl DomainError for FunctionError {
    fn exh(&self) -> ExhCode {
        match self {
            Self::NoPermission(_) => ExhCode::NoPermission,
            Self::Unknown => ExhCode::ResourceUnknown,
            Self::AlreadyExists => ExhCode::ResourceAlreadyExists,
            Self::InvalidName(_) => ExhCode::InvalidFunctionName,
            Self::InvalidConfiguration(_) => ExhCode::FunctionConfiguration,
        }
    }
}

/// The stream of the function named `name`, or why the name cannot be one: 1 to 64 letters,
/// digits, `-` or `_` (AWS Lambda's rule).
pub fn stream(name: &str) -> Result<StreamId, FunctionError> {
    let invalid = || {
        FunctionError::InvalidName(format!(
            "A function name is 1 to {NAME_CHARS} letters, digits, `-` or `_`"
        ))
    };
    if name.len() > NAME_CHARS {
        return Err(invalid());
    }
    StreamId::new(Function::KIND, name).map_err(|InvalidStreamId(_)| invalid())
}

/// What an environment variable's value is sealed for: the variable of its function.
pub fn environment_context(function: &str, variable: &str) -> Vec<u8> {
    format!("function {function} environment {variable}").into_bytes()
}

/// Whether a runtime is one Vigil knows: `rhai`, or an AWS Lambda Node.js or Python runtime.
pub fn known_runtime(runtime: &str) -> bool {
    runtime == RHAI || runtime.starts_with("nodejs") || runtime.starts_with("python3")
}

/// Why `settings` cannot be a function's, if they cannot.
fn check(settings: &FunctionSettings) -> Result<(), FunctionError> {
    let invalid = |message: String| Err(FunctionError::InvalidConfiguration(message));
    if settings.entry_point.trim().is_empty() || settings.entry_point.len() > 128 {
        return invalid("`entryPoint` is 1 to 128 characters, such as `index.handler`".into());
    }
    if !known_runtime(&settings.runtime) {
        return invalid(format!(
            "`runtime` {:?} is not supported: use `rhai`, a `nodejs` runtime (`nodejs20.x`) or a `python3` one (`python3.12`)",
            settings.runtime.chars().take(40).collect::<String>()
        ));
    }
    if !TIME_LIMITS.contains(&settings.time_limit) {
        return invalid(format!(
            "`timeLimit` is {} to {} seconds",
            TIME_LIMITS.start(),
            TIME_LIMITS.end()
        ));
    }
    if !MEMORY_LIMITS.contains(&settings.memory_limit) {
        return invalid(format!(
            "`memoryLimit` is {} to {} MB",
            MEMORY_LIMITS.start(),
            MEMORY_LIMITS.end()
        ));
    }
    if settings.description.chars().count() > 1000 {
        return invalid("`description` is at most 1000 characters".into());
    }
    let mut names = std::collections::BTreeSet::new();
    let mut bytes = 0;
    for variable in &settings.environment {
        let well_named = variable
            .name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic())
            && variable
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !well_named || !names.insert(variable.name.as_str()) {
            return invalid(
                "environment variable names start with a letter, hold letters, digits and `_`, and appear once"
                    .into(),
            );
        }
        bytes += variable.name.len() + variable.value.0.len();
    }
    if bytes > ENVIRONMENT_BYTES * 2 {
        return invalid(format!(
            "environment variables are at most {ENVIRONMENT_BYTES} bytes together"
        ));
    }
    if settings.retry_policy.errors_to_retry.len() > 100
        || settings
            .retry_policy
            .errors_to_retry
            .iter()
            .any(|name| name.is_empty() || name.len() > 200)
    {
        return invalid("`retryPolicy.errorsToRetry` lists at most 100 names".into());
    }
    Ok(())
}

/// A function: its settings and code while it exists.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Function {
    pub name: String,
    /// `None` before it is created and after it is deleted.
    pub current: Option<(FunctionSettings, FunctionCode)>,
    pub enabled: bool,
    /// Its execution credentials, once it has been given them.
    pub execution: Option<ExecutionIdentity>,
}

impl Function {
    pub fn exists(&self) -> bool {
        self.current.is_some()
    }
}

impl Aggregate for Function {
    const KIND: &'static str = "function";
    type Command = FunctionCommand;
    type Event = FunctionEvent;
    type Error = FunctionError;

    fn authorize(&self, command: &Self::Command, ctx: &Ctx<'_>) -> Result<(), Self::Error> {
        let permission = match command {
            FunctionCommand::Create { .. } => "CREATE_TASK_FUNCTION",
            FunctionCommand::Update { .. }
            | FunctionCommand::Enable
            | FunctionCommand::Disable
            | FunctionCommand::SetExecution(_) => "UPDATE_TASK_FUNCTION",
            FunctionCommand::Delete => "DELETE_TASK_FUNCTION",
        };
        ctx.actor.require(permission, FunctionError::NoPermission)
    }

    fn handle(
        &self,
        command: &Self::Command,
        ctx: &Ctx<'_>,
    ) -> Result<Vec<Self::Event>, Self::Error> {
        let Some((settings, _)) = &self.current else {
            let FunctionCommand::Create { settings, code } = command else {
                return Err(FunctionError::Unknown);
            };
            let name = ctx.stream.key().to_owned();
            stream(&name)?;
            let settings = settings.new_settings();
            check(&settings)?;
            return Ok(vec![FunctionEvent::Created(FunctionCreated {
                name,
                settings,
                code: *code,
            })]);
        };
        Ok(match command {
            FunctionCommand::Create { .. } => return Err(FunctionError::AlreadyExists),
            FunctionCommand::Update {
                settings: change,
                code,
            } => {
                let settings = change.applied_to(settings);
                check(&settings)?;
                vec![FunctionEvent::Updated(FunctionUpdated {
                    settings,
                    code: *code,
                })]
            }
            FunctionCommand::Enable if self.enabled => vec![],
            FunctionCommand::Enable => vec![FunctionEvent::Enabled(FunctionToggled {})],
            FunctionCommand::Disable if !self.enabled => vec![],
            FunctionCommand::Disable => vec![FunctionEvent::Disabled(FunctionToggled {})],
            FunctionCommand::Delete => vec![FunctionEvent::Deleted(FunctionDeleted {})],
            FunctionCommand::SetExecution(set) => {
                check(&FunctionSettings {
                    environment: with_variables(&settings.environment, &set.variables),
                    ..settings.clone()
                })?;
                vec![FunctionEvent::ExecutionSet(set.clone())]
            }
        })
    }

    fn apply(&mut self, event: &Self::Event) {
        match event {
            FunctionEvent::Created(e) => {
                self.name = e.name.clone();
                self.current = Some((e.settings.clone(), e.code));
                self.enabled = true;
            }
            FunctionEvent::Updated(e) => {
                if let Some((settings, code)) = &mut self.current {
                    *settings = e.settings.clone();
                    if let Some(new) = e.code {
                        *code = new;
                    }
                }
            }
            FunctionEvent::Enabled(_) => self.enabled = true,
            FunctionEvent::Disabled(_) => self.enabled = false,
            FunctionEvent::Deleted(_) => {
                self.current = None;
                self.enabled = false;
                self.execution = None;
            }
            FunctionEvent::ExecutionSet(e) => {
                if let Some((settings, _)) = &mut self.current {
                    settings.environment = with_variables(&settings.environment, &e.variables);
                    self.execution = Some(e.identity);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actor::{Actor, Via};
    use crate::aggregate::testing::{given, id};
    use crate::permission::Permissions;

    fn code(n: u8) -> FunctionCode {
        FunctionCode {
            digest: Digest::from_bytes([n; 32]),
            size: 10,
        }
    }

    fn change() -> SettingsChange {
        SettingsChange {
            entry_point: Some("index.handler".into()),
            runtime: Some(RHAI.into()),
            ..SettingsChange::default()
        }
    }

    fn created() -> FunctionEvent {
        FunctionEvent::Created(FunctionCreated {
            name: "analyze".into(),
            settings: change().new_settings(),
            code: code(1),
        })
    }

    fn on_analyze(events: &[FunctionEvent]) -> crate::aggregate::testing::Given<Function> {
        given::<Function>(events)
    }

    fn when_named(
        name: &str,
        events: &[FunctionEvent],
        command: FunctionCommand,
    ) -> Result<Vec<FunctionEvent>, FunctionError> {
        let stream = StreamId::new(Function::KIND, name).unwrap();
        let actor = Actor::system(Via::Cli);
        let state = Function::fold(events);
        let ctx = Ctx {
            now: crate::aggregate::testing::NOW,
            actor: &actor,
            stream: &stream,
        };
        state
            .authorize(&command, &ctx)
            .and_then(|()| state.handle(&command, &ctx))
    }

    #[test]
    fn a_function_is_created_with_extra_horizons_defaults() {
        let events = when_named(
            "analyze",
            &[],
            FunctionCommand::Create {
                settings: change(),
                code: code(1),
            },
        )
        .unwrap();
        assert_eq!(events, [created()]);
        let FunctionEvent::Created(created) = &events[0] else {
            unreachable!()
        };
        assert_eq!(created.settings.time_limit, 30);
        assert_eq!(created.settings.memory_limit, 128);
        assert_eq!(
            created.settings.permission_mode,
            PermissionMode::PermissionRequired
        );
        assert!(!created.settings.retry_policy.enabled);
        let again = when_named(
            "analyze",
            &[FunctionEvent::Created(created.clone())],
            FunctionCommand::Create {
                settings: change(),
                code: code(2),
            },
        );
        assert_eq!(again, Err(FunctionError::AlreadyExists));
    }

    #[test]
    fn settings_out_of_range_are_refused() {
        for bad in [
            SettingsChange {
                time_limit: Some(2),
                ..change()
            },
            SettingsChange {
                time_limit: Some(301),
                ..change()
            },
            SettingsChange {
                memory_limit: Some(127),
                ..change()
            },
            SettingsChange {
                runtime: Some("java21".into()),
                ..change()
            },
            SettingsChange {
                entry_point: Some(" ".into()),
                ..change()
            },
            SettingsChange {
                environment: Some(vec![
                    EnvironmentVariable {
                        name: "A".into(),
                        value: Sealed(vec![]),
                    },
                    EnvironmentVariable {
                        name: "A".into(),
                        value: Sealed(vec![]),
                    },
                ]),
                ..change()
            },
        ] {
            let refused = when_named(
                "f",
                &[],
                FunctionCommand::Create {
                    settings: bad.clone(),
                    code: code(1),
                },
            );
            assert!(
                matches!(refused, Err(FunctionError::InvalidConfiguration(_))),
                "{bad:?}: {refused:?}"
            );
        }
    }

    #[test]
    fn names_are_letters_digits_dashes_and_underscores() {
        assert!(stream("my-function_2").is_ok());
        for bad in ["", "a.b", "a b", "é", &"x".repeat(65)] {
            assert!(
                matches!(stream(bad), Err(FunctionError::InvalidName(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn an_update_changes_what_it_gives_and_keeps_the_rest() {
        let events = on_analyze(&[created()])
            .when(FunctionCommand::Update {
                settings: SettingsChange {
                    description: Some("classifies".into()),
                    time_limit: Some(60),
                    ..SettingsChange::default()
                },
                code: None,
            })
            .events();
        let FunctionEvent::Updated(updated) = &events[0] else {
            panic!("{events:?}")
        };
        assert_eq!(updated.settings.description, "classifies");
        assert_eq!(updated.settings.time_limit, 60);
        assert_eq!(updated.settings.entry_point, "index.handler");
        assert_eq!(updated.code, None);
    }

    #[test]
    fn enabling_and_disabling_twice_changes_nothing_the_second_time() {
        let disabled = FunctionEvent::Disabled(FunctionToggled {});
        on_analyze(&[created()])
            .when(FunctionCommand::Disable)
            .then(std::slice::from_ref(&disabled));
        on_analyze(&[created(), disabled.clone()])
            .when(FunctionCommand::Disable)
            .then(&[]);
        on_analyze(&[created(), disabled])
            .when(FunctionCommand::Enable)
            .then(&[FunctionEvent::Enabled(FunctionToggled {})]);
        on_analyze(&[created()])
            .when(FunctionCommand::Enable)
            .then(&[]);
    }

    #[test]
    fn a_deleted_function_is_unknown_and_its_name_free_again() {
        let deleted = FunctionEvent::Deleted(FunctionDeleted {});
        on_analyze(&[created(), deleted.clone()])
            .when(FunctionCommand::Disable)
            .then_err(FunctionError::Unknown);
        let state = Function::fold(&[created(), deleted]);
        assert!(!state.exists());
        on_analyze(&[])
            .when(FunctionCommand::Delete)
            .then_err(FunctionError::Unknown);
    }

    #[test]
    fn each_command_needs_its_permission() {
        let nobody = Actor::user(id(1), None, Permissions::default(), Via::Http, None);
        on_analyze(&[created()])
            .by(nobody.clone())
            .when(FunctionCommand::Delete)
            .then_err(FunctionError::NoPermission("DELETE_TASK_FUNCTION"));
        on_analyze(&[created()])
            .by(nobody)
            .when(FunctionCommand::Enable)
            .then_err(FunctionError::NoPermission("UPDATE_TASK_FUNCTION"));
    }

    #[test]
    fn retry_policies_retry_the_errors_they_name_or_all() {
        let all = RetryPolicy {
            enabled: true,
            errors_to_retry: vec![],
        };
        assert!(all.retries("anything"));
        let some = RetryPolicy {
            enabled: true,
            errors_to_retry: vec!["CONNECTION_ERROR".into()],
        };
        assert!(some.retries("CONNECTION_ERROR"));
        assert!(!some.retries("TypeError"));
        assert!(!RetryPolicy::default().retries("CONNECTION_ERROR"));
    }

    fn variable(name: &str, value: u8) -> EnvironmentVariable {
        EnvironmentVariable {
            name: name.into(),
            value: Sealed(vec![value]),
        }
    }

    #[test]
    fn execution_credentials_set_their_variables_beside_the_others_until_deleted() {
        let identity = ExecutionIdentity {
            user_id: id(1),
            role_id: id(2),
            application_id: id(3),
            token_id: id(4),
        };
        let with_own = FunctionEvent::Updated(FunctionUpdated {
            settings: SettingsChange {
                environment: Some(vec![variable("OWN", 1), variable("API_HOST", 1)]),
                ..change()
            }
            .new_settings(),
            code: None,
        });
        let set = FunctionExecutionSet {
            identity,
            variables: vec![variable("API_HOST", 2), variable("API_OAUTH_TOKEN", 3)],
        };
        let history = [created(), with_own];
        let events = when_named(
            "analyze",
            &history,
            FunctionCommand::SetExecution(set.clone()),
        )
        .unwrap();
        assert_eq!(events, [FunctionEvent::ExecutionSet(set.clone())]);
        let mut function = Function::fold(&history);
        function.apply(&events[0]);
        assert_eq!(function.execution, Some(identity));
        let (settings, _) = function.current.clone().unwrap();
        assert_eq!(
            settings.environment,
            [
                variable("OWN", 1),
                variable("API_HOST", 2),
                variable("API_OAUTH_TOKEN", 3)
            ]
        );
        function.apply(&FunctionEvent::Deleted(FunctionDeleted {}));
        assert_eq!(function.execution, None);
        assert_eq!(
            when_named("gone", &[], FunctionCommand::SetExecution(set)),
            Err(FunctionError::Unknown)
        );
    }
}
