//! The composition root: the `vigil` binary's commands, configuration, the HTTP routers (one per
//! Extra Horizon service and version), the authentication extractor, error mapping and the gRPC
//! services. No business rules live here.
//!
//! Layout:
//! - [`cli`]: `vigil serve | bootstrap | rebuild` and the storage flags.
//! - [`server`], [`app`]: serving HTTP and gRPC, the router and its layers.
//! - [`routes`]: one module per service (`auth_v2`, `users_v1`).
//! - [`extract`], [`oauth1`], [`error`]: the caller (bearer tokens and OAuth1 signatures), request
//!   bodies, RQL; Extra Horizon errors.
//! - [`grpc`]: the `vigil.v1.EventLog` service.
//! - [`state`], [`views`] (rendered views kept while current), [`telemetry`].

pub mod app;
pub mod cli;
pub mod edge;
pub mod error;
pub mod extract;
pub mod gateway;
pub mod grpc;
pub mod oauth1;
pub mod routes;
pub mod server;
pub mod state;
pub mod telemetry;
pub mod views;
