//! Vigil's integration tests: one binary, every test against the real services, and every
//! deployment-level test in both deployments (embedded SQLite; JetStream + Postgres).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod accounts;
mod applications;
mod authorizations;
mod cli;
mod commands;
mod dispatchers;
mod document_indexes;
mod documents;
mod events;
mod execution;
mod fuzz;
mod groups;
mod grpc;
mod http;
mod lambda;
mod localizations;
mod log_conformance;
mod mfa;
mod oauth1;
mod oidc;
mod projections;
mod reactors;
mod roles;
mod route_inventory;
mod rql_differential;
mod schemas;
mod sdk;
mod tasks;
mod telemetry;
mod verification;

/// Declares `$name` once per deployment: `$name::embedded` and `$name::production`.
#[macro_export]
macro_rules! in_both_deployments {
    ($(#[$meta:meta])* async fn $name:ident($env:ident: Deployment) $body:block) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            async fn run($env: vigil_tests::Deployment) -> anyhow::Result<()> $body

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            $(#[$meta])*
            async fn embedded() -> anyhow::Result<()> {
                run(vigil_tests::Deployment::Embedded).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            $(#[$meta])*
            async fn production() -> anyhow::Result<()> {
                run(vigil_tests::Deployment::Production).await
            }
        }
    };
}
