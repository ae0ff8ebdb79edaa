//! Read-your-writes without rewiring: an ambient [`Session`] for a task, so `&pool` inside
//! [`with_session`] behaves as `&session`, and a scope of [`crate::with_consistency`] at
//! `ReadYourWrites` opens a session per pool for its duration.
//!
//! The ambient state is a task-local (like [`crate::scope`]): one lookup per statement through
//! `&pool` when no scope is set, a lock and a pointer comparison when one is.

use std::any::Any;
use std::future::Future;
use std::sync::{Arc, Mutex};

use crate::backend::Backend;
use crate::options::Consistency;
use crate::router::RoutingPool;

use super::Session;

/// A session of some pool, by the pool's identity (see `key`).
type Entry = (usize, Arc<dyn Any + Send + Sync>);

/// The sessions of one ambient scope, by pool.
struct Ambient {
    sessions: Mutex<Vec<Entry>>,
    /// A `ReadYourWrites` scope: a pool used inside gets a session of its own.
    open_any: bool,
}

tokio::task_local! {
    static AMBIENT: Ambient;
}

/// The identity of a pool (its shared state's address).
fn key<DB: Backend>(pool: &RoutingPool<DB>) -> usize {
    Arc::as_ptr(&pool.0) as *const () as usize
}

/// Runs `fut` with `session` as the ambient session: every statement it runs through `&pool`
/// (the session's pool) goes through the session, so reads never return data older than the
/// session's writes, and `pool.begin()` counts as its write. Like [`crate::scope`], it
/// reaches everything `fut` awaits, not tasks it spawns. Scopes nest; the innermost wins.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let dir = std::env::temp_dir().join(format!("rwsplit-doc-ws-{}", std::process::id()));
/// # std::fs::create_dir_all(&dir)?;
/// let pool = rwsplit::sqlite::open(dir.join("ws.db"), 1).await?.build()?;
/// sqlx::query("CREATE TABLE t (v INTEGER)").execute(&pool).await?;
/// // In a web handler: the session comes from the request's token (`pool.resume(..)`).
/// let session = pool.session();
/// rwsplit::with_session(session.clone(), async {
///     // Unchanged code that takes `&pool`:
///     sqlx::query("INSERT INTO t VALUES (1)").execute(&pool).await?;
///     let n: i64 = sqlx::query_scalar("SELECT count(*) FROM t").fetch_one(&pool).await?;
///     assert_eq!(n, 1);
///     Ok::<_, sqlx::Error>(())
/// })
/// .await?;
/// let token = session.token().await?; // carries the write to the next request
/// # let _ = token;
/// # pool.close().await;
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok(())
/// # }
/// ```
pub async fn with_session<DB: Backend, F: Future>(session: Session<DB>, fut: F) -> F::Output {
    let k = key(&session.pool);
    let (mut sessions, open_any) = inherited();
    sessions.retain(|(p, _)| *p != k);
    sessions.push((k, Arc::new(session) as _));
    let ambient = Ambient {
        sessions: Mutex::new(sessions),
        open_any,
    };
    crate::route::entering_scope();
    AMBIENT.scope(ambient, fut).await
}

/// The enclosing scope's sessions (shared, not copied: a session is a handle) and whether it
/// opens sessions for other pools, so that a nested scope for one pool keeps the sessions the
/// outer scopes set for the others (two `SessionLayer`s over two pools, for example).
fn inherited() -> (Vec<Entry>, bool) {
    AMBIENT
        .try_with(|a| {
            let sessions = a.sessions.lock().map(|s| s.clone()).unwrap_or_default();
            (sessions, a.open_any)
        })
        .unwrap_or_default()
}

/// Runs `fut` with a consistency level for every read it executes through a
/// [`crate::RoutingPool`] (for example `Consistency::BoundedStaleness(1s)` for one request).
/// Scopes nest; the innermost wins; a per-call level beats a scope.
///
/// At `ReadYourWrites` the scope is also a causal session for each pool used in it: reads in
/// the scope never return data older than the scope's own writes (as [`with_session`] with a
/// fresh session per pool). Outside such a scope, and without a [`Session`], a read that asks
/// for `ReadYourWrites` (per call) reads from the primary: never older than any write.
pub async fn with_consistency<F: Future>(consistency: Consistency, fut: F) -> F::Output {
    let fut = crate::route::consistency_scope(consistency, fut);
    if consistency == Consistency::ReadYourWrites {
        let ambient = Ambient {
            sessions: Mutex::new(inherited().0),
            open_any: true,
        };
        // `fut` is the consistency scope, which records that a scope was entered before
        // anything inside it runs.
        AMBIENT.scope(ambient, fut).await
    } else {
        fut.await
    }
}

/// The ambient session for `pool`, if the task runs in a scope that has (or opens) one.
/// Inline: until a scope was ever entered, one atomic load and no call.
#[inline]
pub(crate) fn ambient<DB: Backend>(pool: &RoutingPool<DB>) -> Option<Session<DB>> {
    if !crate::route::scopes_entered() {
        return None;
    }
    scoped(pool)
}

/// [`ambient`] once a scope was ever entered: the task-local's lookup.
fn scoped<DB: Backend>(pool: &RoutingPool<DB>) -> Option<Session<DB>> {
    AMBIENT
        .try_with(|a| {
            let k = key(pool);
            let mut sessions = a.sessions.lock().ok()?;
            if let Some((_, s)) = sessions.iter().find(|(p, _)| *p == k) {
                return s.downcast_ref::<Session<DB>>().cloned();
            }
            if !a.open_any {
                return None;
            }
            let session = pool.session();
            sessions.push((k, Arc::new(session.clone())));
            Some(session)
        })
        .ok()
        .flatten()
}
