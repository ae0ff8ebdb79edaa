//! A causal session's calls: plan (capture the position, wait on a replica), then run through
//! the call engine; a statement a replica refused as a write counts as the session's write.

use futures_core::future::BoxFuture;
use futures_core::stream::BoxStream;
use futures_util::{FutureExt, StreamExt};

use crate::backend::Backend;
use crate::call::{error_stream, Owned, Step};
use crate::router::{Call, RoutingPool};

use super::Session;

/// `fetch_optional` through a causal session: plan (capture, wait), then run.
pub(crate) fn session_optional<'e, DB: Backend>(
    session: Session<DB>,
    pool: &'e RoutingPool<DB>,
    base: Call,
    owned: Owned<DB>,
) -> BoxFuture<'e, Result<Option<DB::Row>, sqlx::Error>> {
    async move {
        let (call, analysis) = session.plan(owned.sql_str(), base).await?;
        let result = pool.run_optional(call, owned).await;
        if analysis.was_refused() {
            // A replica refused it as a write: it ran on the primary, and wrote there.
            session.wrote_elsewhere();
        }
        result
    }
    .boxed()
}

/// `fetch_many` through a causal session: plan (capture, wait), then run.
pub(crate) fn session_many<'e, DB: Backend>(
    session: Session<DB>,
    pool: &'e RoutingPool<DB>,
    base: Call,
    owned: Owned<DB>,
) -> BoxStream<'e, Result<Step<DB>, sqlx::Error>> {
    let after = session.clone();
    let planned = futures_util::stream::once(async move {
        match session.plan(owned.sql_str(), base).await {
            Ok((call, analysis)) => (pool.run_many(call, owned), Some(analysis)),
            Err(e) => (error_stream(e), None),
        }
    });
    planned
        .flat_map(move |(steps, analysis)| {
            let after = after.clone();
            // When the steps end: a statement a replica refused ran, and wrote, on the primary.
            let end = futures_util::stream::poll_fn(move |_| {
                if analysis.as_ref().is_some_and(|a| a.was_refused()) {
                    after.wrote_elsewhere();
                }
                std::task::Poll::Ready(None)
            });
            steps.chain(end)
        })
        .boxed()
}
