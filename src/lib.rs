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

mod backend;
mod call;
mod catch_up;
mod checks;
mod classify;
mod consistency;
#[cfg(any(feature = "mysql", feature = "postgres"))]
pub mod drift;
mod error;
mod executor;
#[cfg(feature = "tower")]
pub mod layer;
mod options;
mod pool;
mod route;
mod status;
mod telemetry;
mod topology;
mod transaction;
mod volatility;

#[cfg(feature = "sqlite")]
pub use backend::sqlite;
pub use backend::Backend;
pub use checks::{ConfigIssue, ServerFacts};
pub use classify::{Analysis, CacheStats, Classifier, ClassifierOptions, Dialect};
pub use consistency::{with_consistency, with_session, CausalToken, Position, Session, TokenKey};
pub use error::{Error, Result};
pub use executor::Hinted;
#[cfg(feature = "tower")]
pub use layer::{RejectedToken, SessionLayer, SessionService};
pub use options::{Consistency, Fallback, PoolOptions};
pub use pool::{RoutingPool, RoutingPoolBuilder};
pub use route::{
    current_consistency, current_scope, scope, Decision, HintSource, Reason, Route, Target,
    UnknownFunctionPolicy,
};
pub use status::{BreakerState, Role, ServerStatus, Status};
pub use telemetry::{QueryText, ServerInfo};
pub use topology::Balance;
pub use transaction::{InTransaction, Transaction};
