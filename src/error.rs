//! The crate's one error type. Every variant names the condition and what to do about it.

use std::time::Duration;

/// Everything that can go wrong in rwsplit.
///
/// Statement execution through the [`sqlx::Executor`] impls reports `sqlx::Error`, as sqlx
/// requires; conditions that rwsplit itself detects there (for example a primary that is down)
/// travel inside [`sqlx::Error::Configuration`] as this type and can be recovered with
/// [`Error::from_sqlx`].
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

    /// The primary cannot be reached; writes fail fast instead of hanging.
    #[error("the primary is unavailable (last error: {last_error}); writes fail until it is back, reads continue on healthy replicas")]
    PrimaryUnavailable {
        /// The last connection error seen on the primary, without credentials.
        last_error: String,
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

    /// A causal token could not be parsed.
    #[error("malformed consistency token: {0}; pass the exact string returned by `CausalToken::to_string()`")]
    MalformedToken(&'static str),

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

    /// A causal wait did not reach the required position in time.
    #[error("replica did not reach the session's position within {0:?}")]
    CausalWaitTimeout(Duration),
}

impl Error {
    /// Extracts an rwsplit error carried inside a `sqlx::Error` returned by an executor call.
    pub fn from_sqlx(err: &sqlx::Error) -> Option<&Error> {
        match err {
            sqlx::Error::Configuration(inner) => inner.downcast_ref::<Error>(),
            _ => None,
        }
    }

    pub(crate) fn into_sqlx(self) -> sqlx::Error {
        match self {
            Error::Database(e) => e,
            other => sqlx::Error::Configuration(Box::new(other)),
        }
    }
}

/// Result alias for rwsplit calls.
pub type Result<T, E = Error> = std::result::Result<T, E>;
