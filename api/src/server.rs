//! Serving HTTP and gRPC on bound listeners until a shutdown signal, finishing requests in flight:
//! a command acknowledged to a client is already in the log, and none is cut off half-way.

use std::future::Future;
use std::net::SocketAddr;

use axum::ServiceExt;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::state::AppState;

pub async fn run(
    state: AppState,
    http: TcpListener,
    grpc: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let (stop, stopped) = watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        stop.send_replace(true);
    });
    let wait = |mut stopped: watch::Receiver<bool>| async move {
        let _ = stopped.wait_for(|stop| *stop).await;
    };
    tracing::info!(http = %http.local_addr()?, grpc = %grpc.local_addr()?, "serving");
    let app = ServiceExt::<axum::extract::Request>::into_make_service_with_connect_info::<SocketAddr>(
        crate::app::app(state.clone()),
    );
    let http_server = axum::serve(http, app).with_graceful_shutdown(wait(stopped.clone()));
    let grpc_server = tonic::transport::Server::builder()
        .add_service(crate::grpc::service(state, stopped.clone()))
        .serve_with_incoming_shutdown(
            tokio_stream::wrappers::TcpListenerStream::new(grpc),
            wait(stopped),
        );
    let (http_result, grpc_result) = tokio::join!(http_server.into_future(), grpc_server);
    http_result?;
    grpc_result.map_err(std::io::Error::other)
}
