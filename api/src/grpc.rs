//! gRPC: the `vigil.v1.EventLog` service, authenticated with the same bearer tokens as HTTP.

use std::collections::HashSet;
use std::pin::Pin;

use futures::{Stream, StreamExt};
use tokio::sync::watch;
use tonic::{Request, Response, Status};
use vigil_domain::actor::Via;
use vigil_domain::commit::Recorded;
use vigil_domain::permission::VIEW_EVENT_LOG;

use crate::error::ApiError;
use crate::extract::authenticate;
use crate::state::AppState;

#[allow(clippy::all, clippy::unwrap_used, missing_docs)]
pub mod proto {
    tonic::include_proto!("vigil.v1");
}

use proto::event_log_server::{EventLog, EventLogServer};

pub struct EventLogService {
    state: AppState,
    stopping: watch::Receiver<bool>,
}

/// The service; its subscriptions end when `stopping` turns true, so a graceful shutdown does not
/// wait for auditors' endless streams.
pub fn service(
    state: AppState,
    stopping: watch::Receiver<bool>,
) -> EventLogServer<EventLogService> {
    EventLogServer::new(EventLogService { state, stopping })
}

/// Which commits a subscriber asked for.
struct Filter {
    kinds: HashSet<String>,
    streams: HashSet<String>,
    event_types: HashSet<String>,
}

impl Filter {
    fn matches(&self, recorded: &Recorded) -> bool {
        let commit = &recorded.commit;
        (self.kinds.is_empty() || self.kinds.contains(commit.stream.kind()))
            && (self.streams.is_empty() || self.streams.contains(&commit.stream.to_string()))
            && (self.event_types.is_empty()
                || commit
                    .events
                    .iter()
                    .any(|e| self.event_types.contains(e.wire_name())))
    }
}

fn to_message(recorded: Recorded) -> proto::Commit {
    let commit = recorded.commit;
    let text = |id: Option<vigil_domain::id::Id>| id.map(|id| id.to_string()).unwrap_or_default();
    proto::Commit {
        position: recorded.position,
        stream: commit.stream.to_string(),
        version: commit.version,
        commit_id: commit.commit_id(),
        command_id: commit.command_id,
        recorded_at: commit.recorded_at.millis(),
        actor: Some(proto::Actor {
            user_id: text(commit.actor.user_id),
            application_id: text(commit.actor.application_id),
            via: serde_json::to_value(commit.actor.via)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default(),
            client_ip: commit.actor.client_ip.unwrap_or_default(),
        }),
        correlation_id: commit.correlation_id,
        causation_id: commit.causation_id.unwrap_or_default(),
        reason: commit.reason.unwrap_or_default(),
        prev_hash: commit.prev_hash.as_bytes().to_vec(),
        hash: recorded.hash.as_bytes().to_vec(),
        events: commit
            .events
            .iter()
            .map(|event| proto::Event {
                r#type: event.wire_name().to_owned(),
                schema_version: event.schema_version(),
                data_json: event.data_json().to_string(),
            })
            .collect(),
    }
}

type CommitStream = Pin<Box<dyn Stream<Item = Result<proto::Commit, Status>> + Send>>;

#[tonic::async_trait]
impl EventLog for EventLogService {
    type SubscribeStream = CommitStream;

    async fn subscribe(
        &self,
        request: Request<proto::SubscribeRequest>,
    ) -> Result<Response<Self::SubscribeStream>, Status> {
        let authorization = request
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok());
        let client_ip = request.remote_addr().map(|a| a.ip().to_string());
        let (_, _, actor, _) =
            authenticate(&self.state, authorization, Via::Grpc, client_ip).await?;
        if !actor.allows(VIEW_EVENT_LOG) {
            return Err(ApiError::no_permission(VIEW_EVENT_LOG).into());
        }
        let request = request.into_inner();
        let filter = Filter {
            kinds: request.stream_kinds.into_iter().collect(),
            streams: request.streams.into_iter().collect(),
            event_types: request.event_types.into_iter().collect(),
        };
        let commits = self
            .state
            .bus
            .log()
            .subscribe(request.from_position)
            .take_until({
                let mut stopping = self.stopping.clone();
                async move {
                    let _ = stopping.wait_for(|stop| *stop).await;
                }
            })
            .filter_map(move |item| {
                let message = match item {
                    Ok(recorded) if filter.matches(&recorded) => Some(Ok(to_message(recorded))),
                    Ok(_) => None,
                    Err(error) => Some(Err(Status::from(ApiError::from(error)))),
                };
                std::future::ready(message)
            });
        Ok(Response::new(Box::pin(commits)))
    }
}
