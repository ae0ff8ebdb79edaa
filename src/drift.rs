//! Replica drift check: compares one table between the primary and a replica, chunk by chunk,
//! and reports the key ranges whose contents differ. Read-only on the replica.
//!
//! # How a table is compared
//! The table is cut into ranges of its integer key (`chunk_rows` rows each, boundaries read on
//! the primary with `WHERE key >= ? ORDER BY key LIMIT 1 OFFSET chunk_rows - 1`). The first
//! range starts at `i64::MIN` and the last ends at `i64::MAX`, so rows the replica has outside
//! the primary's key range are compared too. For each range:
//!
//! 1. the primary computes a row count and a checksum in one statement (one consistent read);
//! 2. the primary's replication position is read *after* it (MariaDB `@@gtid_binlog_pos`, MySQL
//!    `@@gtid_executed`, PostgreSQL `pg_current_wal_insert_lsn()`), so it covers every
//!    transaction the checksum saw;
//! 3. the replica waits until it has applied that position (`MASTER_GTID_WAIT`,
//!    `WAIT_FOR_EXECUTED_GTID_SET`, or polling `pg_last_wal_replay_lsn()`), bounded by
//!    `wait_timeout`, then computes the same checksum;
//! 4. equal: the range is consistent. Different: the primary computes the checksum again. If it
//!    is unchanged, the range held still on the primary from before the replica's read until
//!    after it, so the difference is drift, not replication in flight ([`KeyRange::confirmed`]).
//!    Either way the range is checked once more from step 1 and reported only if that re-check
//!    differs as well. While the primary keeps changing the range (a busy range, so no
//!    comparison is confirmed) it is compared up to five times before it is reported, with
//!    `confirmed: false`.
//!
//! So replication lag never shows up as drift, and a write to the range while it is compared
//! (or, on MySQL, a commit visible a moment before it enters `@@gtid_executed`) is absorbed
//! by the re-check.
//!
//! The checksum is pt-table-checksum style: MySQL/MariaDB hash each row as
//! `MD5(CONCAT_WS('#', col1, col2, ..., CONCAT(ISNULL(col1), ISNULL(col2), ...)))` over every
//! column in `ORDINAL_POSITION` order (each cast to `BINARY`, so no collation mixing; the
//! `ISNULL` flags tell NULL from empty), take the first 64 bits, and `BIT_XOR` them over the
//! range. PostgreSQL hashes the row's text form (`ROW(t.*)::text`, which quotes empty strings)
//! and sums the 64-bit slices modulo 2^63 - 1. `TIMESTAMP` columns are rendered in the session
//! time zone, so both pools must use the same one.
//!
//! # What touches the replica
//! Plain autocommit `SELECT`s only (a consistent, non-locking read in InnoDB at every isolation
//! level), plus the wait function: no temporary tables, no `FOR UPDATE`, no explicit
//! transaction, no session variables. Like any query, the checksum holds a shared metadata lock
//! on the table for its few milliseconds. One connection is taken from each pool for the check.
//!
//! # Limits
//! The key column must be an integer column (values within `i64`), ideally the primary key or
//! another indexed column: every range is read with `key BETWEEN low AND high`. Identifiers are
//! ASCII letters, digits and `_` (the table may carry one `schema.` prefix); they are quoted in
//! the SQL, and on PostgreSQL folded to lower case first, as unquoted names are.
//!
//! Layer: beside the surface, on `backend` and `error` only (it needs no pool). The
//! statements are the backend's: positions and waits as sessions use them, the catalog and
//! checksum SQL in `backend/checksum.rs` and each backend's file; this module is the method.

use std::fmt;
use std::time::Duration;

use sqlx::Pool;

use crate::backend::{Backend, Checksums, Plan, Side, Waited};
use crate::error::Error;

/// A differing range is compared this many times in all (the first time and one re-check)
/// before it is reported as drift.
const ATTEMPTS: usize = 2;

/// While the primary keeps changing a differing range during every comparison, it is compared
/// up to this many times in all before it is reported as unconfirmed.
const BUSY_ATTEMPTS: usize = 5;

/// What [`check_table`] compares and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DriftOptions {
    table: String,
    key_column: String,
    chunk_rows: u64,
    wait_timeout: Duration,
}

impl DriftOptions {
    /// Options for `table` (`name` or `schema.name`, ASCII letters, digits and `_`; without a
    /// schema, the connection's current database on MySQL or `current_schema()` on PostgreSQL)
    /// cut into ranges by `key_column` (an integer column, ideally the primary key), with the
    /// default chunk size and wait timeout.
    pub fn new(table: impl Into<String>, key_column: impl Into<String>) -> Self {
        DriftOptions {
            table: table.into(),
            key_column: key_column.into(),
            chunk_rows: 1000,
            wait_timeout: Duration::from_secs(30),
        }
    }

    /// Rows per range on the primary. Default 1000: a range is checksummed in a few
    /// milliseconds, so the check never holds a long read on either server, and a differing
    /// range points at a small set of rows.
    pub fn chunk_rows(mut self, rows: u64) -> Self {
        self.chunk_rows = rows;
        self
    }

    /// How long the replica may take to reach the primary's position for one range. Default
    /// 30 s: long enough for a replica with ordinary lag; a replica further behind fails the
    /// check with [`Error::CausalWaitTimeout`] instead of being compared with stale data.
    pub fn wait_timeout(mut self, timeout: Duration) -> Self {
        self.wait_timeout = timeout;
        self
    }

    /// The table checked.
    pub fn get_table(&self) -> &str {
        &self.table
    }

    /// The column the table is cut by.
    pub fn get_key_column(&self) -> &str {
        &self.key_column
    }

    /// The value set by [`DriftOptions::chunk_rows`].
    pub fn get_chunk_rows(&self) -> u64 {
        self.chunk_rows
    }

    /// The value set by [`DriftOptions::wait_timeout`].
    pub fn get_wait_timeout(&self) -> Duration {
        self.wait_timeout
    }

    /// Checks the identifiers and the chunk size without touching a database; [`check_table`]
    /// calls it first.
    pub fn validate(&self) -> Result<(), Error> {
        let (schema, name) = split_table(&self.table);
        if !schema.is_none_or(is_identifier) || !is_identifier(name) {
            return Err(invalid(
                "table",
                "use 1 to 64 ASCII letters, digits and `_`, with an optional `schema.` prefix",
            ));
        }
        if !is_identifier(&self.key_column) {
            return Err(invalid(
                "key_column",
                "use 1 to 64 ASCII letters, digits and `_`",
            ));
        }
        if self.chunk_rows == 0 {
            return Err(invalid("chunk_rows", "must be at least 1"));
        }
        Ok(())
    }
}

/// An [`Error::InvalidOption`].
fn invalid(option: &'static str, why: &'static str) -> Error {
    Error::InvalidOption { option, why }
}

/// `schema.name` split at its only dot; a second dot leaves it in the name (and fails there).
fn split_table(table: &str) -> (Option<&str>, &str) {
    match table.split_once('.') {
        Some((schema, name)) => (Some(schema), name),
        None => (None, table),
    }
}

/// 1 to 64 ASCII letters, digits and underscores: safe to quote into SQL on every backend.
fn is_identifier(s: &str) -> bool {
    (1..=64).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// A key range whose contents differ between the primary and the replica.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct KeyRange {
    /// Lowest key of the range, inclusive (`i64::MIN` for the first range).
    pub low: i64,
    /// Highest key of the range, inclusive (`i64::MAX` for the last range).
    pub high: i64,
    /// Rows in the range on the primary.
    pub primary_rows: u64,
    /// Rows in the range on the replica.
    pub replica_rows: u64,
    /// The primary's checksum of the range was the same before and after the replica's was
    /// computed, in at least one comparison: the difference is drift. `false` means the
    /// primary kept changing the range during every comparison (five of them), so the
    /// difference may be writes still replicating; check again when the range is quieter.
    pub confirmed: bool,
}

impl fmt::Display for KeyRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.low, self.high) {
            (i64::MIN, i64::MAX) => f.write_str("all keys")?,
            (i64::MIN, high) => write!(f, "keys ..={high}")?,
            (low, i64::MAX) => write!(f, "keys {low}..")?,
            (low, high) => write!(f, "keys {low}..={high}")?,
        }
        write!(
            f,
            ": primary {} rows, replica {} rows",
            self.primary_rows, self.replica_rows
        )?;
        if self.primary_rows == self.replica_rows {
            f.write_str(", contents differ")?;
        }
        if !self.confirmed {
            f.write_str(" (unconfirmed: the primary changed the range during every comparison)")?;
        }
        Ok(())
    }
}

/// The outcome of [`check_table`]. `Display` prints a readable summary, one line per
/// differing range.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DriftReport {
    /// The table, as given in the options.
    pub table: String,
    /// The key column, as given in the options.
    pub key_column: String,
    /// Key ranges compared.
    pub chunks_checked: u64,
    /// Rows compared, counted on the primary.
    pub rows_checked: u64,
    /// The ranges whose contents differ, in key order.
    pub differing: Vec<KeyRange>,
}

impl DriftReport {
    /// No range differs.
    pub fn is_consistent(&self) -> bool {
        self.differing.is_empty()
    }
}

impl fmt::Display for DriftReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {} rows in {} key ranges (by {}) compared: ",
            self.table, self.rows_checked, self.chunks_checked, self.key_column
        )?;
        match self.differing.len() {
            0 => return f.write_str("no drift"),
            1 => f.write_str("1 range differs")?,
            n => write!(f, "{n} ranges differ")?,
        }
        for range in &self.differing {
            write!(f, "\n  {range}")?;
        }
        Ok(())
    }
}

/// A database whose tables [`check_table`] can compare: `sqlx::MySql` (MySQL 8 with GTIDs,
/// MariaDB) and `sqlx::Postgres` (streaming standbys), behind the crate features of the same
/// names. Sealed. The replication positions and the waits for them are the backend's own
/// ([`Backend::position_on`], [`Backend::wait_on`]: the same statements as read-your-writes
/// sessions use); the checksum SQL is in this module.
pub trait DriftBackend: Backend + Checksums {}

#[cfg(feature = "mysql")]
impl DriftBackend for sqlx::MySql {}
#[cfg(feature = "postgres")]
impl DriftBackend for sqlx::Postgres {}

/// Compares `opts.table` between `primary` and `replica` range by range (see the module
/// docs) and reports the ranges that differ. Writes nothing and takes no locks on the replica.
///
/// Errors: [`Error::InvalidOption`] for a bad identifier or chunk size, a table that does not
/// exist on the primary, or a key column that is missing or not an integer;
/// [`Error::CausalWaitTimeout`] when the replica does not reach the primary's position within
/// `wait_timeout`; [`Error::Database`] for a failed query (for example a table missing on the
/// replica).
pub async fn check_table<DB: DriftBackend>(
    primary: &Pool<DB>,
    replica: &Pool<DB>,
    opts: &DriftOptions,
) -> Result<DriftReport, Error> {
    opts.validate()?;
    let mut primary = open(primary).await?;
    let plan = plan::<DB>(&mut primary, opts).await?;
    let mut replica = open(replica).await?;
    let mut report = DriftReport {
        table: opts.table.clone(),
        key_column: opts.key_column.clone(),
        chunks_checked: 0,
        rows_checked: 0,
        differing: Vec::new(),
    };
    let mut low = i64::MIN;
    loop {
        let offset = i64::try_from(opts.chunk_rows - 1).unwrap_or(i64::MAX);
        let high = DB::boundary(&mut primary, &plan, low, offset)
            .await?
            .unwrap_or(i64::MAX);
        let (rows, differs) =
            compare_range::<DB>(&mut primary, &mut replica, &plan, (low, high), opts).await?;
        report.chunks_checked += 1;
        report.rows_checked += rows;
        report.differing.extend(differs);
        if high == i64::MAX {
            return Ok(report);
        }
        low = high + 1;
    }
}

/// Takes a connection from `pool` for the whole check, and the server family (MySQL vs
/// MariaDB decides the GTID statements).
async fn open<DB: DriftBackend>(pool: &Pool<DB>) -> Result<Side<DB>, Error> {
    let system = DB::detect_system(pool).await?.unwrap_or(DB::SYSTEM);
    let conn = pool.acquire().await?;
    Ok(Side { conn, system })
}

/// Waits until the replica has applied the primary's position now (nothing to wait for when
/// the primary has none yet), for at most `timeout`.
async fn catch_up<DB: DriftBackend>(
    primary: &mut Side<DB>,
    replica: &mut Side<DB>,
    timeout: Duration,
) -> Result<(), Error> {
    let Some(position) = DB::position_on(&mut primary.conn, primary.system).await? else {
        return Ok(());
    };
    match DB::wait_on(&mut replica.conn, replica.system, &position, timeout).await? {
        Waited::Reached => Ok(()),
        Waited::TimedOut => Err(Error::CausalWaitTimeout(timeout)),
        Waited::Unable(why) => Err(invalid("replica", why)),
    }
}

/// Reads the table's columns on the primary, checks the key column, builds the check's SQL.
async fn plan<DB: DriftBackend>(
    primary: &mut Side<DB>,
    opts: &DriftOptions,
) -> Result<Plan, Error> {
    let (schema, name) = split_table(&opts.table);
    let columns = DB::columns(primary, schema, name).await?;
    if columns.is_empty() {
        let why = "no such table on the primary (without a default schema: `schema.table`)";
        return Err(invalid("table", why));
    }
    let Some((key, key_type)) = columns
        .iter()
        .find(|(column, _)| column.eq_ignore_ascii_case(&opts.key_column))
    else {
        return Err(invalid("key_column", "no such column in the table"));
    };
    if !DB::INTEGER_TYPES.contains(&key_type.to_ascii_lowercase().as_str()) {
        return Err(invalid("key_column", "not an integer column"));
    }
    let names: Vec<&str> = columns.iter().map(|(column, _)| column.as_str()).collect();
    Ok(DB::plan(schema, name, key, &names))
}

/// Compares one range (steps 1-4 of the module docs): the primary's row count, and the range
/// as reported if it still differs after the re-check.
async fn compare_range<DB: DriftBackend>(
    primary: &mut Side<DB>,
    replica: &mut Side<DB>,
    plan: &Plan,
    (low, high): (i64, i64),
    opts: &DriftOptions,
) -> Result<(u64, Option<KeyRange>), Error> {
    let mut confirmed = false;
    let mut attempt = 0;
    let (ours, theirs) = loop {
        attempt += 1;
        let ours = DB::checksum(primary, plan, low, high).await?;
        catch_up::<DB>(primary, replica, opts.wait_timeout).await?;
        let theirs = DB::checksum(replica, plan, low, high).await?;
        if ours == theirs {
            return Ok((ours.0 as u64, None));
        }
        confirmed |= DB::checksum(primary, plan, low, high).await? == ours;
        tracing::debug!(low, high, attempt, confirmed, "drift check: range differs");
        if (confirmed && attempt >= ATTEMPTS) || attempt >= BUSY_ATTEMPTS {
            break (ours, theirs);
        }
    };
    let (primary_rows, replica_rows) = (ours.0 as u64, theirs.0 as u64);
    let range = KeyRange {
        low,
        high,
        primary_rows,
        replica_rows,
        confirmed,
    };
    Ok((primary_rows, Some(range)))
}
