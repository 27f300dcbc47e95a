//! How a function's code reaches Vigil's own API: through the same routes as an HTTP request,
//! in process, as the function's execution identity, with the task as the cause of whatever it
//! changes. The API (the composition root) implements [`Gateway`]; the scheduler only calls it.

use futures::future::BoxFuture;
use serde_json::Value;
use vigil_domain::id::Id;

/// One request of a function's code.
#[derive(Debug, Clone)]
pub struct ApiCall {
    /// The function's execution user.
    pub user_id: Id,
    /// What caused it (`task-<id>`, or the API request's id), recorded as the causation of every
    /// commit the request makes.
    pub cause: String,
    pub method: String,
    /// The path and query, such as `/data/v1/readings/documents?eq(data.x,1)`.
    pub path: String,
    pub body: Option<Value>,
}

/// The API's answer: its status and its JSON body (a body that is not JSON, as a string).
#[derive(Debug, Clone, PartialEq)]
pub struct ApiAnswer {
    pub status: u16,
    pub body: Value,
}

/// Vigil's API, as a function's code calls it.
pub trait Gateway: Send + Sync {
    fn call(&self, call: ApiCall) -> BoxFuture<'_, ApiAnswer>;
}
