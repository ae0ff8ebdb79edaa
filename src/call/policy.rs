//! What a call does after an attempt failed: the retry policy as a pure function of what the
//! failure proves about the server ([`crate::backend::judge`]), where the attempt ran, and what
//! the monitor said when it was asked.
//!
//! | failure | on a replica (a read) | on the primary |
//! |---|---|---|
//! | no answer within `replica_timeout` | `Down` | (no watchdog) |
//! | the primary's breaker opened while waiting | | `Down` |
//! | `ServerDown` (refused, login refused, shutting down) | `Down` | `Down` |
//! | `ConnectionLost`, monitor running, not yet asked | `Verify` | `Verify` |
//! | `ConnectionLost`, the probe found the server down | `Down` | `Down` |
//! | `ConnectionLost`, the probe found it up | `Deliver` | `Deliver` |
//! | `ConnectionLost`, no monitor or no verdict in time | `Elsewhere` | `Deliver` |
//! | `ReadOnly` (the server refused a write) | `Primary` | `Hold` (monitor running), else `Deliver` |
//! | `Closed` (sqlx's `PoolClosed`: that pool cannot serve) | `Down` | `Deliver` |
//! | `Pool` (sqlx's `PoolTimedOut`), `Statement` | `Deliver` | `Deliver` |

use crate::backend::ErrorClass;

/// How an attempt failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Failure {
    /// The server returned an error, judged by what it proves.
    Error(ErrorClass),
    /// A replica gave no first answer within `replica_timeout` (counted from the moment a
    /// connection was in hand, so time spent queueing in the application's pool is not).
    NoAnswer,
    /// The primary's breaker opened on evidence while the call was waiting.
    PrimaryDown,
}

/// What the monitor said about the server since the failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Probe {
    /// Not asked yet.
    NotAsked,
    /// A probe on a fresh connection found the server down (its breaker is open).
    Down,
    /// A probe found the server answering: the failure was the statement's own.
    Up,
    /// No verdict in time.
    NoVerdict,
}

/// The next step of a call after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Next {
    /// The error goes to the caller as sqlx returned it.
    Deliver,
    /// Ask the monitor to probe the server now, then decide again with its verdict.
    Verify,
    /// The server is down: its breaker opens; a read runs on another server, a primary call
    /// ends with `PrimaryUnavailable`.
    Down,
    /// Run the read on another server without judging this one (nothing can verify it).
    Elsewhere,
    /// A replica refused the read as a write: it had no effect; run it on the primary and
    /// route that statement there from now on.
    Primary,
    /// The writer refused the write as read-only (a switchover demoted it): it had no effect;
    /// the writer is re-elected and the write waits for the new one, then runs there.
    Hold,
}

/// The retry policy (see the module table).
pub(crate) fn next(failure: Failure, on_replica: bool, monitored: bool, probe: Probe) -> Next {
    match failure {
        Failure::NoAnswer | Failure::PrimaryDown | Failure::Error(ErrorClass::ServerDown) => {
            Next::Down
        }
        Failure::Error(ErrorClass::ConnectionLost) => match probe {
            Probe::NotAsked if monitored => Next::Verify,
            Probe::Down => Next::Down,
            Probe::Up => Next::Deliver,
            _ if on_replica => Next::Elsewhere,
            _ => Next::Deliver,
        },
        Failure::Error(ErrorClass::ReadOnly) if on_replica => Next::Primary,
        Failure::Error(ErrorClass::ReadOnly) if monitored => Next::Hold,
        Failure::Error(ErrorClass::Closed) if on_replica => Next::Down,
        Failure::Error(_) => Next::Deliver,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ErrorClass::*;

    const REPLICA: bool = true;
    const PRIMARY: bool = false;

    #[test]
    fn evidence_marks_the_server_down_wherever_the_attempt_ran() {
        for on in [REPLICA, PRIMARY] {
            for probe in [Probe::NotAsked, Probe::Up, Probe::NoVerdict] {
                assert_eq!(
                    next(Failure::Error(ServerDown), on, true, probe),
                    Next::Down
                );
            }
        }
        assert_eq!(
            next(Failure::NoAnswer, REPLICA, false, Probe::NotAsked),
            Next::Down
        );
        assert_eq!(
            next(Failure::PrimaryDown, PRIMARY, true, Probe::NotAsked),
            Next::Down
        );
    }

    #[test]
    fn a_lost_connection_is_verified_before_anything_is_concluded() {
        let lost = Failure::Error(ConnectionLost);
        assert_eq!(next(lost, REPLICA, true, Probe::NotAsked), Next::Verify);
        assert_eq!(next(lost, PRIMARY, true, Probe::NotAsked), Next::Verify);
        assert_eq!(next(lost, REPLICA, true, Probe::Down), Next::Down);
        assert_eq!(next(lost, PRIMARY, true, Probe::Down), Next::Down);
        // The server is fine: the statement ended its own connection (KILL, oversized packet).
        assert_eq!(next(lost, REPLICA, true, Probe::Up), Next::Deliver);
        assert_eq!(next(lost, PRIMARY, true, Probe::Up), Next::Deliver);
    }

    #[test]
    fn without_a_verdict_a_read_moves_on_and_a_write_reports() {
        let lost = Failure::Error(ConnectionLost);
        assert_eq!(next(lost, REPLICA, false, Probe::NotAsked), Next::Elsewhere);
        assert_eq!(next(lost, REPLICA, true, Probe::NoVerdict), Next::Elsewhere);
        assert_eq!(next(lost, PRIMARY, false, Probe::NotAsked), Next::Deliver);
        assert_eq!(next(lost, PRIMARY, true, Probe::NoVerdict), Next::Deliver);
    }

    #[test]
    fn statement_and_pool_failures_go_back_untouched() {
        for class in [Statement, Pool] {
            for on in [REPLICA, PRIMARY] {
                assert_eq!(
                    next(Failure::Error(class), on, true, Probe::NotAsked),
                    Next::Deliver
                );
            }
        }
    }

    #[test]
    fn a_closed_replica_pool_moves_a_read_and_a_closed_primary_pool_reports() {
        let closed = Failure::Error(Closed);
        assert_eq!(next(closed, REPLICA, true, Probe::NotAsked), Next::Down);
        assert_eq!(next(closed, PRIMARY, true, Probe::NotAsked), Next::Deliver);
    }

    #[test]
    fn a_read_only_refusal_moves_a_read_to_the_primary_and_a_write_to_the_next_writer() {
        assert_eq!(
            next(Failure::Error(ReadOnly), REPLICA, true, Probe::NotAsked),
            Next::Primary
        );
        assert_eq!(
            next(Failure::Error(ReadOnly), PRIMARY, true, Probe::NotAsked),
            Next::Hold
        );
        // Nothing would find a new writer: the caller gets the server's error.
        assert_eq!(
            next(Failure::Error(ReadOnly), PRIMARY, false, Probe::NotAsked),
            Next::Deliver
        );
    }
}
