//! Traces leave over OTLP when a collector is configured: a collector written for this test
//! receives the spans of a real `vigil serve`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use tokio::net::TcpListener;
use tonic::{Request, Response, Status};
use vigil_tests::{Deployment, TestEnv};

use crate::cli::{Serving, bootstrap};

#[derive(Default, Clone)]
struct Collector {
    spans: Arc<Mutex<Vec<String>>>,
}

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        let names = request
            .into_inner()
            .resource_spans
            .into_iter()
            .flat_map(|resource| resource.scope_spans)
            .flat_map(|scope| scope.spans)
            .map(|span| span.name);
        if let Ok(mut spans) = self.spans.lock() {
            spans.extend(names);
        }
        Ok(Response::new(ExportTraceServiceResponse {
            partial_success: None,
        }))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_of_requests_and_commands_reach_an_otlp_collector() -> anyhow::Result<()> {
    let collector = Collector::default();
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let endpoint = format!("http://{}", listener.local_addr()?);
    let server = tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(collector.clone()))
            .serve_with_incoming(tokio_stream_of(listener)),
    );

    let env = TestEnv::new(Deployment::Embedded).await?;
    let credentials = bootstrap(&env)?;
    let serving =
        Serving::start(&env, &[("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str())]).await?;
    let response = reqwest::Client::new()
        .post(format!(
            "http://127.0.0.1:{}/auth/v2/oauth2/tokens",
            serving.http
        ))
        .json(&serde_json::json!({
            "grant_type": "password",
            "username": "admin@example.com",
            "password": "correct horse battery",
            "client_id": credentials["client_id"],
            "client_secret": credentials["client_secret"],
        }))
        .send()
        .await?;
    anyhow::ensure!(response.status().is_success(), "login failed");
    // Stopping flushes the exporter.
    let (status, logs) = serving.terminate()?;
    anyhow::ensure!(status.success(), "{logs}");
    for _ in 0..50 {
        let spans = collector
            .spans
            .lock()
            .map(|s| s.clone())
            .unwrap_or_default();
        if spans.iter().any(|s| s == "request") && spans.iter().any(|s| s == "command") {
            server.abort();
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    anyhow::bail!(
        "no request and command spans arrived: {:?}",
        collector.spans.lock().map(|s| s.clone())
    )
}

fn tokio_stream_of(listener: TcpListener) -> tokio_stream::wrappers::TcpListenerStream {
    tokio_stream::wrappers::TcpListenerStream::new(listener)
}
