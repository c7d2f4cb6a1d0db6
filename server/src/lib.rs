//! dealflow: a server for key-account sales development. It keeps customers,
//! communication records and deals in an embedded sled store and drives deals
//! through each branch's stage pipeline over HTTP.
//!
//! # Layout
//! - [`cli`]: the binary's commands (`serve`, `policy`, `backup`, `restore`).
//! - [`config`]: `dealflow serve`'s options and their environment.
//! - [`policy_cli`], [`backup_cli`]: the `policy`, `backup` and `restore`
//!   commands; [`cli_client`]: their HTTP client.
//! - [`server`]: binding, serving, graceful shutdown.
//! - [`telemetry`]: tracing setup (human or JSON logs).
//! - [`api`]: the HTTP boundary: routes, handlers, extractors, the error body,
//!   and serving the web console.
//! - [`console`]: the web console's files (`server/console/`), compiled in.
//! - [`service`]: use cases per resource: validate, authorize, write atomically.
//! - [`pipeline`]: branch pipelines and deal transitions.
//! - [`policy`]: rhai and WebAssembly policies: interface, runtimes, limits.
//! - [`auth`]: tokens and the one authorization matrix.

//! - [`incentive`]: settlement periods, bonus-hook inputs (and, with the
//!   `testing` feature, the native rules tests and benchmarks compare with).
//! - [`accounts`]: key accounts: contact due dates (and, with `testing`,
//!   native Pareto tiering).
//! - [`domain`]: types and rules without I/O (money, ids, stages, records).
//! - [`store`]: the `Store` trait, its sled backend, group commit and the
//!   consistent online backup.
//! - [`metrics`]: Prometheus counters and histograms.
//!
//! Layers depend one way, from `cli` down to `store`: [`layers::LAYERS`]
//! lists them, and its tests fail on a `use` that goes upward or a cycle
//! between the submodules of a module.

pub mod accounts;
pub mod api;
pub mod auth;
pub mod backup_cli;
pub mod cli;
pub mod cli_client;
pub mod config;
pub mod console;
pub mod domain;
pub mod incentive;
pub mod layers;
pub mod metrics;
pub mod pipeline;
pub mod policy;
pub mod policy_cli;

pub mod server;
pub mod service;
pub mod store;
pub mod telemetry;

pub use api::router;
/// The allocator the `dealflow` binary (and its benchmarks) run with:
/// glibc's malloc spent about 40 % of a settlement's time in
/// `malloc_consolidate`, `_int_malloc` and `free` (BENCHMARKS.md).
pub use mimalloc::MiMalloc;
pub use service::Services;
