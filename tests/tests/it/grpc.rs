//! The `vigil.v1.EventLog` gRPC service: auditors read the log with the same bearer tokens.

use std::time::Duration;

use futures::StreamExt;
use tonic::Code;
use tonic::metadata::MetadataValue;
use vigil_api::grpc::proto::SubscribeRequest;
use vigil_api::grpc::proto::event_log_client::EventLogClient;
use vigil_tests::{ADMIN_EMAIL, TestEnv, TestServer};

use crate::in_both_deployments;

fn request(
    token: Option<&str>,
    body: SubscribeRequest,
) -> anyhow::Result<tonic::Request<SubscribeRequest>> {
    let mut request = tonic::Request::new(body);
    if let Some(token) = token {
        let value: MetadataValue<_> = format!("Bearer {token}").parse()?;
        request.metadata_mut().insert("authorization", value);
    }
    Ok(request)
}

in_both_deployments! {
    async fn auditors_stream_the_log_from_a_position_with_filters(deployment: Deployment) {
        let env = TestEnv::new(deployment).await?;
        let server = TestServer::start(&env).await?;
        let token = server.admin_token().await?;
        let mut client = EventLogClient::connect(format!("http://{}", server.grpc)).await?;

        let users = SubscribeRequest {
            from_position: 0,
            stream_kinds: vec!["user".into()],
            ..Default::default()
        };
        let mut stream = client.subscribe(request(Some(&token), users)?).await?.into_inner();
        let first = tokio::time::timeout(Duration::from_secs(10), stream.next()).await?.ok_or_else(|| anyhow::anyhow!("no commit"))??;
        assert_eq!(first.stream, format!("user-{}", server.admin.user_id));
        assert_eq!(first.version, 1);
        assert_eq!(first.events[0].r#type, "user.registered");
        let data: serde_json::Value = serde_json::from_str(&first.events[0].data_json)?;
        assert_eq!(data["email"], ADMIN_EMAIL);
        assert_eq!(first.prev_hash, vec![0; 32]);
        assert_eq!(first.hash.len(), 32);
        assert_eq!(first.actor.map(|a| a.via), Some("cli".into()));

        // From a later position, with an event-type filter: the login made above.
        let sessions = SubscribeRequest {
            from_position: first.position,
            event_types: vec!["session.started".into()],
            ..Default::default()
        };
        let mut stream = client.subscribe(request(Some(&token), sessions)?).await?.into_inner();
        let login = tokio::time::timeout(Duration::from_secs(10), stream.next()).await?.ok_or_else(|| anyhow::anyhow!("no commit"))??;
        assert!(login.position > first.position);
        assert!(login.stream.starts_with("session-"));
        assert_eq!(login.actor.map(|a| a.user_id), Some(server.admin.user_id.to_string()));
        Ok(())
    }
}

in_both_deployments! {
    async fn the_log_is_closed_to_callers_without_the_permission(deployment: Deployment) {
        let env = TestEnv::new(deployment).await?;
        let server = TestServer::start(&env).await?;
        let mut client = EventLogClient::connect(format!("http://{}", server.grpc)).await?;
        let anonymous = client.subscribe(request(None, SubscribeRequest::default())?).await;
        assert_eq!(anonymous.err().map(|s| s.code()), Some(Code::Unauthenticated));
        let unknown = client
            .subscribe(request(Some("0000000000000000000000000000000000000000"), SubscribeRequest::default())?)
            .await;
        assert_eq!(unknown.err().map(|s| s.code()), Some(Code::Unauthenticated));
        Ok(())
    }
}

in_both_deployments! {
    async fn a_graceful_shutdown_ends_open_subscriptions(deployment: Deployment) {
        let env = TestEnv::new(deployment).await?;
        let server = TestServer::start(&env).await?;
        let token = server.admin_token().await?;
        let mut client = EventLogClient::connect(format!("http://{}", server.grpc)).await?;
        let mut stream = client.subscribe(request(Some(&token), SubscribeRequest::default())?).await?.into_inner();
        assert!(stream.next().await.is_some());
        tokio::time::timeout(Duration::from_secs(10), server.stop()).await??;
        Ok(())
    }
}

in_both_deployments! {
    /// A secret's type keeps it in the log: an OIDC provider's client secret reaches auditors as
    /// `[redacted]`, beside its hint.
    async fn renderings_of_the_log_carry_no_secrets(deployment: Deployment) {
        let env = TestEnv::new(deployment).await?;
        let server = TestServer::start(&env).await?;
        let token = server.admin_token().await?;
        let idp = vigil_tests::oidc::TestOidcProvider::start("vigil-client", "the provider's secret YF3X").await?;
        let settings = idp.settings("test-idp", "https://app.example.com/callback");
        let (status, body) = server.call(reqwest::Method::POST, "/auth/v2/oidc/providers", Some(&token), Some(settings)).await?;
        assert_eq!(status, reqwest::StatusCode::OK, "{body}");

        let mut client = EventLogClient::connect(format!("http://{}", server.grpc)).await?;
        let providers = SubscribeRequest {
            from_position: 0,
            event_types: vec!["oidc_provider.created".into()],
            ..Default::default()
        };
        let mut stream = client.subscribe(request(Some(&token), providers)?).await?.into_inner();
        let created = tokio::time::timeout(Duration::from_secs(10), stream.next()).await?.ok_or_else(|| anyhow::anyhow!("no commit"))??;
        let data: serde_json::Value = serde_json::from_str(&created.events[0].data_json)?;
        assert_eq!(data["client_secret"], "[redacted]", "{data}");
        assert_eq!(data["client_secret_hint"], "YF3X", "{data}");
        Ok(())
    }
}
