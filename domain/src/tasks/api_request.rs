//! API functions' requests (`/tasks/v1/apiRequests`): each call of
//! `/tasks/v1/api/{functionName}/{path}` is recorded once it is answered, with who called, the
//! status it answered, how long it took, why it failed and what the run logged.

use serde::{Deserialize, Serialize};

use crate::aggregate::{Aggregate, Ctx};
use crate::error::{DomainError, ExhCode};
use crate::event::events;
use crate::id::Id;
use crate::tasks::function::PermissionMode;
use crate::tasks::task::{RunError, RunRecord};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct ApiRequestRecorded {
    pub function_name: String,
    pub method: String,
    /// The path after the function's name, with the query string.
    pub path: String,
    pub user_id: Option<Id>,
    pub application_id: Option<Id>,
    pub status_code: u16,
    pub duration_ms: u64,
    pub error: Option<RunError>,
    pub run: RunRecord,
}

events! {
    pub enum ApiRequestEvent {
        Recorded(ApiRequestRecorded) = "api_request.recorded",
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum ApiRequestCommand {
    /// Records a call, made under the function's permission mode.
    Record {
        request: ApiRequestRecorded,
        mode: PermissionMode,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiRequestError {
    #[error("permission {0} is required")]
    NoPermission(String),
    #[error("this request is recorded already")]
    AlreadyRecorded,
}

impl DomainError for ApiRequestError {
    fn exh(&self) -> ExhCode {
        match self {
            Self::NoPermission(_) => ExhCode::NoPermission,
            Self::AlreadyRecorded => ExhCode::ResourceAlreadyExists,
        }
    }
}

/// A recorded request.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ApiRequest {
    pub recorded: Option<ApiRequestRecorded>,
}

impl Aggregate for ApiRequest {
    const KIND: &'static str = "apirequest";
    type Command = ApiRequestCommand;
    type Event = ApiRequestEvent;
    type Error = ApiRequestError;

    fn authorize(&self, command: &Self::Command, ctx: &Ctx<'_>) -> Result<(), Self::Error> {
        let ApiRequestCommand::Record { request, mode } = command;
        mode.allows(ctx.actor, "EXECUTE_API_FUNCTION", &request.function_name)
            .map_err(ApiRequestError::NoPermission)
    }

    fn handle(
        &self,
        command: &Self::Command,
        _: &Ctx<'_>,
    ) -> Result<Vec<Self::Event>, Self::Error> {
        let ApiRequestCommand::Record { request, .. } = command;
        if self.recorded.is_some() {
            return Err(ApiRequestError::AlreadyRecorded);
        }
        Ok(vec![ApiRequestEvent::Recorded(request.clone())])
    }

    fn apply(&mut self, event: &Self::Event) {
        let ApiRequestEvent::Recorded(recorded) = event;
        self.recorded = Some(recorded.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actor::{Actor, Via};
    use crate::aggregate::testing::{given, id};
    use crate::permission::Permissions;

    fn record(mode: PermissionMode) -> ApiRequestCommand {
        ApiRequestCommand::Record {
            request: ApiRequestRecorded {
                function_name: "api".into(),
                method: "GET".into(),
                path: "/x?y=1".into(),
                user_id: None,
                application_id: None,
                status_code: 200,
                duration_ms: 3,
                error: None,
                run: RunRecord::default(),
            },
            mode,
        }
    }

    #[test]
    fn a_request_is_recorded_once_under_its_functions_permission_mode() {
        let anonymous = Actor::anonymous(None, Via::Http, None);
        let recorded = given::<ApiRequest>(&[])
            .by(anonymous.clone())
            .when(record(PermissionMode::Public))
            .events();
        given::<ApiRequest>(&recorded)
            .when(record(PermissionMode::Public))
            .then_err(ApiRequestError::AlreadyRecorded);
        given::<ApiRequest>(&[])
            .by(anonymous)
            .when(record(PermissionMode::AllUsers))
            .then_err(ApiRequestError::NoPermission(
                "EXECUTE_API_FUNCTION:api".into(),
            ));
        let user = Actor::user(id(1), None, Permissions::default(), Via::Http, None);
        given::<ApiRequest>(&[])
            .by(user)
            .when(record(PermissionMode::PermissionRequired))
            .then_err(ApiRequestError::NoPermission(
                "EXECUTE_API_FUNCTION:api".into(),
            ));
    }
}
