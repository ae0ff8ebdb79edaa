//! The crate's one error type. Every variant names the condition and what to do about it.
//!
//! Layer: plain types (the bottom; names no other module).

use std::time::Duration;

/// Everything that can go wrong in rwsplit.
///
/// Statement execution through the [`sqlx::Executor`] impls reports `sqlx::Error`, as sqlx
/// requires. Errors that sqlx returns pass through as the same variants (`PoolTimedOut`,
/// `Database`, `Protocol`, ...). Conditions that rwsplit itself detects map to the closest sqlx
/// variant, with this type as the source, recovered with [`Error::from_sqlx`] (or
/// `std::error::Error::source`):
///
/// | rwsplit condition | `sqlx::Error` | `std::io::ErrorKind` |
/// |---|---|---|
/// | [`Error::PrimaryUnavailable`] | `Io` | `NotConnected` |
/// | [`Error::SplitBrain`] | `Io` | `NotConnected` |
/// | [`Error::ReplicaDown`] | `Io` | `NotConnected` |
/// | [`Error::NoEligibleReplica`] | `Io` | `NotConnected` |
/// | [`Error::ReplicaTimeout`] | `Io` | `TimedOut` |
/// | [`Error::CausalWaitTimeout`] | `Io` | `TimedOut` |
/// | [`Error::ReplicaBehind`] | `Io` | `TimedOut` |
/// | [`Error::Database`] | the sqlx error itself | |
/// | any other (configuration, tokens) | `Configuration` | |
///
/// So code that treats `sqlx::Error::Io` as "the database is unreachable, retry later" keeps
/// working, and nothing rwsplit detects at run time shows up as a configuration error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A database call failed.
    #[error(transparent)]
    Database(#[from] sqlx::Error),

    /// Two replicas were given the same name.
    #[error("replica name `{0}` is used twice; give every replica a unique name")]
    DuplicateReplica(String),

    /// A replica name was empty or too long.
    #[error("replica name `{0}` is not valid: use 1 to 64 characters")]
    InvalidReplicaName(String),

    /// A replica was given a weight of zero.
    #[error("replica `{0}` has weight 0; use a weight of at least 1 or leave the replica out")]
    ZeroWeight(String),

    /// A replica pool reaches the primary server itself.
    #[error("replica `{0}` reaches the primary itself; point its pool at a replica")]
    ReplicaIsPrimary(String),

    /// A named replica does not exist in this pool.
    #[error("no replica named `{0}` in this pool; see `RoutingPool::status()` for the names")]
    UnknownReplica(String),

    /// An option was set to a value that cannot work.
    #[error("invalid option `{option}`: {why}")]
    InvalidOption {
        /// The option's name.
        option: &'static str,
        /// What is wrong with the value.
        why: &'static str,
    },

    /// No server takes writes now: the writer cannot be reached, or a switchover or failover
    /// left no writable server within `write_hold` (writes wait that long for the new writer
    /// before this error). Retriable: the writer may be back, or a new one elected, soon.
    ///
    /// A write that ends with this error was not necessarily unapplied: if it had already
    /// reached a writer that then hung or went down (not one that refused the connection or
    /// the write), that server may have committed it. Retry only idempotent writes blindly.
    #[error("the primary is unavailable: {last_error}; writes fail until a writer is back, reads continue on healthy replicas")]
    PrimaryUnavailable {
        /// What is known: the writer's last connection error (without credentials), or each
        /// server's role as last seen when there is no writer.
        last_error: String,
    },

    /// More than one server accepts writes (each confirmed by a probe after the conflict was
    /// seen): a split brain. Writes are refused rather than sent to one of them on a guess;
    /// they work again once all but one are read-only (or down). Nothing was executed.
    #[error("split brain: servers {servers:?} all accept writes; writes are refused until only one does (make the others read-only)")]
    SplitBrain {
        /// The names of the writable servers (`primary` or replica names).
        servers: Vec<String>,
    },
    /// No replica may serve this read and the pool is configured not to fall back.
    #[error("no replica is eligible for this read ({why}); allow primary fallback or raise the lag bound")]
    NoEligibleReplica {
        /// Why every replica was excluded.
        why: &'static str,
    },

    /// The pool's metrics could not be registered (most often: the same names twice).
    #[error(
        "registering metrics failed: {0}; give each pool on a shared registry its own pool label"
    )]
    #[cfg(feature = "metrics")]
    Metrics(#[from] prometheus::Error),

    /// The health monitor's thread could not be started.
    #[error("starting the health monitor's thread failed: {0}; set monitor_interval to zero to run without it")]
    Monitor(std::io::Error),

    /// A causal token could not be parsed.
    #[error("malformed consistency token: {0}; pass the exact string returned by `CausalToken::to_string()`")]
    MalformedToken(&'static str),

    /// A causal token failed authentication against the pool's `token_key`.
    #[error("consistency token refused: {0}; pass tokens exactly as `Session::token()` returned them, and give every service that shares them the same token_key")]
    TokenNotAuthentic(&'static str),

    /// A causal token was produced by another cluster.
    #[error("consistency token belongs to another cluster (token cluster {token:#018x}, this pool {pool:#018x}); do not share tokens across clusters")]
    ForeignToken {
        /// Cluster id carried in the token.
        token: u64,
        /// This pool's cluster id.
        pool: u64,
    },

    /// A read on a replica got no answer within `replica_timeout`: the replica's breaker opened
    /// and the read was retried elsewhere when it could be (this reaches the caller only when
    /// the retry timed out too).
    #[error("replica `{replica}` gave no answer within {after:?} (replica_timeout); it stays out of rotation until a probe succeeds. Raise replica_timeout if reads legitimately take longer")]
    ReplicaTimeout {
        /// The replica's name.
        replica: String,
        /// The bound that passed.
        after: Duration,
    },

    /// A read waited for a connection to a replica whose breaker then opened on evidence that
    /// it is down (it moves to another server when it can; this reaches the caller only when
    /// no copy of the read was left to retry).
    #[error("replica `{replica}` went down while this read waited for a connection to it")]
    ReplicaDown {
        /// The replica's name.
        replica: String,
    },

    /// A replica did not reach the primary's position within the time given to
    /// [`crate::RoutingPool::wait_for_replicas`].
    #[error("replica `{replica}` did not catch up with the primary within {after:?}; check its replication (status()) or wait longer")]
    ReplicaBehind {
        /// The replica's name.
        replica: String,
        /// The time it was given.
        after: Duration,
    },

    /// A causal wait did not reach the required position in time.
    #[error("replica did not reach the session's position within {0:?}")]
    CausalWaitTimeout(Duration),
}

impl Error {
    /// Extracts an rwsplit error carried inside a `sqlx::Error` returned by an executor call.
    pub fn from_sqlx(err: &sqlx::Error) -> Option<&Error> {
        match err {
            sqlx::Error::Configuration(inner) => inner.downcast_ref::<Error>(),
            sqlx::Error::Io(io) => io.get_ref()?.downcast_ref::<Error>(),
            _ => None,
        }
    }

    /// The `sqlx::Error` an executor call returns for this condition (see the table above).
    pub(crate) fn into_sqlx(self) -> sqlx::Error {
        use std::io::{Error as IoError, ErrorKind};
        let io = |kind, e| sqlx::Error::Io(IoError::new(kind, e));
        match self {
            Error::Database(e) => e,
            e @ (Error::PrimaryUnavailable { .. }
            | Error::SplitBrain { .. }
            | Error::ReplicaDown { .. }
            | Error::NoEligibleReplica { .. }) => io(ErrorKind::NotConnected, e),
            e @ (Error::ReplicaTimeout { .. }
            | Error::CausalWaitTimeout(_)
            | Error::ReplicaBehind { .. }) => io(ErrorKind::TimedOut, e),
            other => sqlx::Error::Configuration(Box::new(other)),
        }
    }
}

/// Result alias for rwsplit calls.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use std::io::ErrorKind;
    use std::time::Duration;

    use super::Error;

    /// One row of the mapping table each.
    #[test]
    fn runtime_conditions_keep_sqlx_shape_and_carry_the_typed_error() {
        let rows = [
            (
                Error::PrimaryUnavailable {
                    last_error: "refused".into(),
                },
                Some(ErrorKind::NotConnected),
            ),
            (
                Error::ReplicaDown {
                    replica: "r1".into(),
                },
                Some(ErrorKind::NotConnected),
            ),
            (
                Error::NoEligibleReplica { why: "all lagging" },
                Some(ErrorKind::NotConnected),
            ),
            (
                Error::ReplicaTimeout {
                    replica: "r1".into(),
                    after: Duration::from_secs(1),
                },
                Some(ErrorKind::TimedOut),
            ),
            (
                Error::CausalWaitTimeout(Duration::from_millis(200)),
                Some(ErrorKind::TimedOut),
            ),
            (
                Error::ReplicaBehind {
                    replica: "r1".into(),
                    after: Duration::from_secs(1),
                },
                Some(ErrorKind::TimedOut),
            ),
            (Error::MalformedToken("empty"), None),
        ];
        for (error, kind) in rows {
            let text = error.to_string();
            let sqlx = error.into_sqlx();
            match (&sqlx, kind) {
                (sqlx::Error::Io(io), Some(kind)) => assert_eq!(io.kind(), kind, "{text}"),
                (sqlx::Error::Configuration(_), None) => {}
                (other, kind) => panic!("{text}: {other:?}, wanted {kind:?}"),
            }
            let back = Error::from_sqlx(&sqlx).expect("the typed error travels with it");
            assert_eq!(back.to_string(), text);
            let source = std::error::Error::source(&sqlx).expect("a source");
            assert!(source.to_string().contains(&text) || text.contains(&source.to_string()));
        }
        let passthrough = Error::Database(sqlx::Error::PoolTimedOut).into_sqlx();
        assert!(matches!(passthrough, sqlx::Error::PoolTimedOut));
        assert!(Error::from_sqlx(&passthrough).is_none());
    }
}
