//! Serving HTTP and gRPC on bound listeners until a shutdown signal, finishing requests in flight:
//! a command acknowledged to a client is already in the log, and none is cut off half-way.
//!
//! HTTP is served by hyper directly (HTTP/1.1, as Extra Horizon's API), so that the edge's limits
//! hold ([`Edge`]): a request's head must arrive within the read timeout, which also closes idle
//! kept-alive connections, and hyper's own error answers are rewritten into JSON
//! ([`ErrorsInJson`]).

use std::future::Future;
use std::net::SocketAddr;

use axum::ServiceExt;
use axum::extract::Request;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower::Service;

use crate::edge::{Edge, ErrorsInJson};
use crate::state::AppState;

pub async fn run(
    state: AppState,
    http: TcpListener,
    grpc: TcpListener,
    edge: Edge,
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
    let http_server = serve_http(http, state.clone(), edge, wait(stopped.clone()));
    let grpc_server = tonic::transport::Server::builder()
        .add_service(crate::grpc::service(state, stopped.clone()))
        .serve_with_incoming_shutdown(
            tokio_stream::wrappers::TcpListenerStream::new(grpc),
            wait(stopped),
        );
    let (http_result, grpc_result) = tokio::join!(http_server, grpc_server);
    http_result?;
    grpc_result.map_err(std::io::Error::other)
}

/// Accepts HTTP connections until `stop`, then waits for the requests in flight.
async fn serve_http(
    mut listener: TcpListener,
    state: AppState,
    edge: Edge,
    stop: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let mut connections = ServiceExt::<Request>::into_make_service_with_connect_info::<SocketAddr>(
        crate::app::app(state, edge.clone()),
    );
    let mut builder = auto::Builder::new(TokioExecutor::new()).http1_only();
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(edge.read_timeout);
    let graceful = GracefulShutdown::new();
    let mut stop = std::pin::pin!(stop);
    loop {
        let (socket, peer) = tokio::select! {
            // Waits and retries when accepting fails (too many open files, for one).
            accepted = axum::serve::Listener::accept(&mut listener) => accepted,
            () = &mut stop => break,
        };
        let Ok(service) = connections.call(peer).await;
        let connection = builder.serve_connection(
            TokioIo::new(ErrorsInJson::new(socket)),
            TowerToHyperService::new(service),
        );
        let connection = graceful.watch(connection.into_owned());
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, %peer, "connection ended with an error");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}
