//! # rwsplit
//!
//! One sqlx pool over a primary and its read replicas, routed in-process: every statement is
//! classified with `sqlparser` in the backend's dialect, and only a statement that is provably
//! a pure read may go to a replica. Writes, locking reads (`FOR UPDATE`, `LOCK IN SHARE MODE`),
//! side-effect calls (`GET_LOCK`, `nextval`), `SELECT ... INTO`, data-modifying `WITH`,
//! multi-statements and anything that does not parse go to the primary. Transactions are
//! pinned to the primary.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use rwsplit::{Reason, Target};
//!
//! // The embedded default: SQLite in WAL mode, one writer ("primary") and read-only readers.
//! let dir = std::env::temp_dir().join(format!("rwsplit-doc-{}", std::process::id()));
//! std::fs::create_dir_all(&dir)?;
//! let pool = rwsplit::sqlite::open(dir.join("doc.db"), 2).await?.build()?;
//!
//! // Existing sqlx code keeps working: `&pool` is a `sqlx::Executor`.
//! sqlx::query("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)").execute(&pool).await?;
//! sqlx::query("INSERT INTO t (v) VALUES (?)").bind("x").execute(&pool).await?;
//! let n: i64 = sqlx::query_scalar("SELECT count(*) FROM t").fetch_one(&pool).await?;
//! assert_eq!(n, 1);
//!
//! // Ask where a statement goes and why.
//! let d = pool.explain("SELECT v FROM t WHERE id = 1");
//! assert_eq!((d.target, d.reason), (Target::Replica, Reason::PureRead));
//! let d = pool.explain("SELECT v FROM t WHERE id = 1 FOR UPDATE");
//! assert_eq!((d.target, d.reason), (Target::Primary, Reason::LockingRead));
//! # pool.close().await;
//! # std::fs::remove_dir_all(&dir)?;
//! # Ok(())
//! # }
//! ```
//!
//! With MySQL/MariaDB or PostgreSQL, wrap the pools you already have:
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! # #[cfg(feature = "mysql")] {
//! let primary = sqlx::MySqlPool::connect("mysql://app:pw@primary/app").await?;
//! let replica = sqlx::MySqlPool::connect("mysql://app:pw@replica1/app").await?;
//! let pool = rwsplit::RoutingPool::builder(primary).replica("replica1", replica).build()?;
//! let rows = sqlx::query("SELECT id FROM users").fetch_all(&pool).await?;
//! # }
//! # Ok(()) }
//! ```
//!
//! ## Hints and their precedence
//! A per-call handle ([`RoutingPool::primary`], [`RoutingPool::replica`]) beats a task
//! [`scope`], which beats a `/* rwsplit:primary */` or `/* rwsplit:replica */` comment, which
//! beats the classifier. A replica hint never sends anything but a read to a replica.
//!
//! ## Features
//! `sqlite` (default), `mysql` (MySQL 8 and MariaDB), `postgres`: the backends. `serde`:
//! `Serialize`/`Deserialize` for [`CausalToken`], as its base64url string.
#![forbid(unsafe_code)]
#![deny(missing_docs, missing_debug_implementations)]

// The layers, bottom to top (no module names one above it; `tests/layers.rs` checks it):
// plain types      error, position, options, route
// knowledge        classify, backend, volatility
// state            topology, status, telemetry (observes; never changes a route)
// decision         plan (every routing rule, one pure function), router (the shared pool
//                  state, and the inputs of the plan)
// execution        call (the hand-written call future and its retry policy)
// scopes           consistency (sessions), transaction
// surface          executor, pool, checks, catch_up, sqlite, layer; drift (beside, on
//                  backend only)
mod error;
mod options;
mod position;
mod route;

mod backend;
mod classify;
mod volatility;

mod status;
mod telemetry;
mod topology;

mod plan;
mod router;

mod call;

mod consistency;
mod transaction;

mod catch_up;
mod checks;
#[cfg(any(feature = "mysql", feature = "postgres"))]
pub mod drift;
mod executor;
#[cfg(feature = "tower")]
pub mod layer;
mod pool;
#[cfg(feature = "sqlite")]
pub mod sqlite;

pub use backend::{Backend, ServerFacts, ServerInfo};
pub use checks::ConfigIssue;
pub use classify::{Analysis, CacheStats, Classifier, ClassifierOptions, Dialect};
pub use consistency::{with_consistency, with_session, Session};
pub use error::{Error, Result};
pub use executor::Hinted;
#[cfg(feature = "tower")]
pub use layer::{RejectedToken, SessionLayer, SessionService};
pub use options::{Consistency, Fallback, PoolOptions, QueryText};
pub use pool::RoutingPoolBuilder;
pub use position::{CausalToken, Position, TokenKey};
pub use route::{
    current_consistency, current_scope, scope, Decision, HintSource, Reason, Route, Target,
    UnknownFunctionPolicy,
};
pub use router::RoutingPool;
pub use status::{BreakerState, Role, ServerStatus, Status};
pub use topology::Balance;
pub use transaction::{InTransaction, Transaction};
