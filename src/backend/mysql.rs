//! MySQL 8 and MariaDB: `SHOW REPLICA STATUS` (column names in both spellings), `@@read_only`,
//! and an optional pt-heartbeat style table for sub-second lag.

use std::time::Duration;

use futures_core::future::BoxFuture;
use futures_util::FutureExt;
use sqlx::mysql::{MySqlDatabaseError, MySqlRow};
use sqlx::{AssertSqlSafe, MySql, Pool, Row, SqlSafeStr};

use super::checksum::{run_plan, Checksum, Checksums, Plan, Side};
use super::{
    backend_executors, network_server_info, Backend, ErrorClass, PrimaryProbe, ReplicaProbe,
    Sealed, Waited,
};
use crate::classify::names::{render, Name};
use crate::classify::Dialect;
use crate::error::Error;
use crate::position::Position;

/// Shortest wait asked of the server, in seconds: MySQL reads a timeout of 0 as "no timeout"
/// (and MariaDB as "do not wait"), so a zero `Duration` must not become 0.
const MIN_WAIT_SECONDS: f64 = 0.001;

impl Sealed for MySql {}

impl Backend for MySql {
    const DIALECT: Dialect = Dialect::MySql;
    const SYSTEM: &'static str = "mysql";
    backend_executors!();

    network_server_info!();

    fn probe_replica<'a>(
        conn: &'a mut sqlx::MySqlConnection,
        heartbeat: Option<&'a str>,
    ) -> BoxFuture<'a, Result<ReplicaProbe, sqlx::Error>> {
        async move {
            let (read_only, version): (i64, String) =
                sqlx::query_as("SELECT CAST(@@global.read_only AS SIGNED), VERSION()")
                    .fetch_one(&mut *conn)
                    .await?;
            let applied = if is_mariadb(&version) {
                "SELECT CAST(@@gtid_slave_pos AS CHAR)"
            } else {
                "SELECT CAST(@@global.gtid_executed AS CHAR)"
            };
            let applied: Option<String> = sqlx::query_scalar(applied).fetch_one(&mut *conn).await?;
            let status = sqlx::query("SHOW REPLICA STATUS")
                .fetch_optional(&mut *conn)
                .await?;
            let mut probe = ReplicaProbe {
                writable: read_only == 0,
                position: applied.and_then(|a| position(is_mariadb(&version), &a)),
                ..ReplicaProbe::default()
            };
            if let Some(row) = status {
                probe.receiving = text(&row, &["Replica_IO_Running", "Slave_IO_Running"])
                    .as_deref()
                    == Some("Yes");
                probe.applying = text(&row, &["Replica_SQL_Running", "Slave_SQL_Running"])
                    .as_deref()
                    == Some("Yes");
                // Whole seconds, truncated on both clocks: a reported N means up to N + 1 s.
                probe.lag = number(&row, &["Seconds_Behind_Source", "Seconds_Behind_Master"])
                    .map(|s| Duration::from_secs(s.max(0) as u64));
                probe.lag_rounding = Duration::from_secs(1);
                // MariaDB: applied everything received (read after the applied position, so
                // equal means caught up when the status was read): nothing to round.
                let received = text(&row, &["Gtid_IO_Pos"]).and_then(|t| position(true, &t));
                let caught_up = match (&probe.position, &received) {
                    (Some(applied), Some(received)) if is_mariadb(&version) => {
                        applied.covers(received) == Some(true)
                    }
                    _ => false,
                };
                if caught_up && probe.lag.is_some() {
                    probe.lag = Some(Duration::ZERO);
                    probe.lag_rounding = Duration::ZERO;
                }
            }
            if let (Some(table), true) = (heartbeat, probe.applying) {
                let sql = format!(
                    "SELECT CAST(TIMESTAMPDIFF(MICROSECOND, ts, UTC_TIMESTAMP(6)) AS SIGNED) \
                     FROM {table} WHERE id = 1"
                );
                // A heartbeat that cannot be read (a lock, a dropped table) leaves the
                // server's own lag in place.
                let us: Result<Option<i64>, _> = sqlx::query_scalar(AssertSqlSafe(sql))
                    .fetch_optional(&mut *conn)
                    .await;
                if let Ok(Some(us)) = us {
                    probe.lag = Some(Duration::from_micros(us.max(0) as u64));
                    probe.lag_rounding = Duration::ZERO;
                }
            }
            Ok(probe)
        }
        .boxed()
    }

    fn error_code(err: &dyn sqlx::error::DatabaseError) -> Option<String> {
        err.try_downcast_ref::<MySqlDatabaseError>()
            .map(|e| e.number().to_string())
            .or_else(|| err.code().map(|c| c.into_owned()))
    }

    /// | MySQL/MariaDB error | class |
    /// |---|---|
    /// | 1040 too many connections, 1044/1045 access denied, 1049 unknown database, 1129/1130 host blocked or not allowed, 1053 server shutdown in progress | `ServerDown` |
    /// | 1927 connection killed, 1152/1184 aborted connection, 2006 gone away, 2013 lost connection, SQLSTATE 08S01 | `ConnectionLost` |
    /// | 1290 `--read-only` prevents the statement, 1836 read-only mode, 1792 read-only transaction | `ReadOnly` |
    /// | anything else (1153 packet too large, syntax, constraints, ...) | `Statement` |
    fn error_class(err: &dyn sqlx::error::DatabaseError) -> ErrorClass {
        match err
            .try_downcast_ref::<MySqlDatabaseError>()
            .map(|e| e.number())
        {
            Some(1040 | 1044 | 1045 | 1049 | 1053 | 1129 | 1130) => ErrorClass::ServerDown,
            Some(1927 | 1152 | 1184 | 2006 | 2013) => ErrorClass::ConnectionLost,
            Some(1290 | 1836 | 1792) => ErrorClass::ReadOnly,
            _ if err.code().as_deref() == Some("08S01") => ErrorClass::ConnectionLost,
            _ => ErrorClass::Statement,
        }
    }

    fn server_facts<'a>(
        pool: &'a Pool<Self>,
    ) -> BoxFuture<'a, Result<Option<super::ServerFacts>, sqlx::Error>> {
        async move {
            let (id, host, port, read_only, max): (i64, String, i64, i64, i64) = sqlx::query_as(
                "SELECT CAST(@@server_id AS SIGNED), @@hostname, CAST(@@port AS SIGNED), \
                 CAST(@@global.read_only AS SIGNED), CAST(@@max_connections AS SIGNED)",
            )
            .fetch_one(pool)
            .await?;
            let version: String = sqlx::query_scalar("SELECT VERSION()")
                .fetch_one(pool)
                .await?;
            let mariadb = is_mariadb(&version);
            let super_read_only = !mariadb
                && sqlx::query_scalar::<_, i64>("SELECT CAST(@@global.super_read_only AS SIGNED)")
                    .fetch_one(pool)
                    .await?
                    == 1;
            let grants: Vec<Vec<u8>> = sqlx::query_scalar("SHOW GRANTS").fetch_all(pool).await?;
            let grants: Vec<String> = grants
                .iter()
                .map(|g| String::from_utf8_lossy(g).into_owned())
                .collect();
            Ok(Some(super::ServerFacts {
                identity: format!("{host}:{port}#{id}"),
                writable: read_only == 0,
                max_connections: u32::try_from(max).ok(),
                bypasses_read_only: bypass_privilege(&grants, mariadb, super_read_only),
            }))
        }
        .boxed()
    }

    fn detect_system<'a>(
        pool: &'a Pool<Self>,
    ) -> BoxFuture<'a, Result<Option<&'static str>, sqlx::Error>> {
        async move {
            let version: String = sqlx::query_scalar("SELECT VERSION()")
                .fetch_one(pool)
                .await?;
            Ok(Some(if is_mariadb(&version) {
                "mariadb"
            } else {
                "mysql"
            }))
        }
        .boxed()
    }

    fn position_on<'a>(
        conn: &'a mut sqlx::MySqlConnection,
        system: &'a str,
    ) -> BoxFuture<'a, Result<Option<Position>, sqlx::Error>> {
        async move {
            let sql = if system == "mariadb" {
                "SELECT CAST(@@gtid_binlog_pos AS CHAR)"
            } else {
                "SELECT CAST(@@global.gtid_executed AS CHAR)"
            };
            let text: Option<String> = sqlx::query_scalar(sql).fetch_one(&mut *conn).await?;
            Ok(text.and_then(|t| position(system == "mariadb", &t)))
        }
        .boxed()
    }

    fn wait_on<'a>(
        conn: &'a mut sqlx::MySqlConnection,
        _system: &'a str,
        position: &'a Position,
        timeout: Duration,
    ) -> BoxFuture<'a, Result<Waited, sqlx::Error>> {
        async move {
            // MariaDB: 0 reached, -1 timed out. MySQL: 0 reached, 1 timed out. NULL: the
            // server cannot wait (GTIDs off).
            let sql = match position {
                Position::MariaDb(_) => "SELECT CAST(MASTER_GTID_WAIT(?, ?) AS SIGNED)",
                Position::MySql(_) => "SELECT CAST(WAIT_FOR_EXECUTED_GTID_SET(?, ?) AS SIGNED)",
                Position::Lsn(_) | Position::PgLsn { .. } => {
                    return Ok(Waited::Unable("not a GTID position"))
                }
            };
            // The timeout goes in fractional seconds, which both servers honour: MariaDB's
            // MASTER_GTID_WAIT documents it, and MySQL 8 reads WAIT_FOR_EXECUTED_GTID_SET's
            // timeout as a real number (`val_real()`, a nanosecond deadline; only MySQL 5.7,
            // which rwsplit does not support, read an integer). The drift check's old copy
            // rounded it up to whole seconds, at least one: harmless for its 30 s, but it would
            // stretch a causal read's wait (default 200 ms) to a full second before the
            // fallback to the primary. Floored at a millisecond: 0 means "no timeout" to MySQL.
            let seconds = timeout.as_secs_f64().max(MIN_WAIT_SECONDS);
            let r: Option<i64> = sqlx::query_scalar(sql)
                .bind(position.server_text())
                .bind(seconds)
                .fetch_one(&mut *conn)
                .await?;
            Ok(match r {
                Some(0) => Waited::Reached,
                Some(_) => Waited::TimedOut,
                None => Waited::Unable("cannot wait for the primary's GTID position"),
            })
        }
        .boxed()
    }

    fn function_volatility<'a>(
        pool: &'a Pool<Self>,
        names: &'a [std::sync::Arc<str>],
    ) -> BoxFuture<'a, Result<Vec<(String, bool)>, sqlx::Error>> {
        async move {
            let asked: Vec<(&str, Option<String>, String)> = names
                .iter()
                .filter_map(|key| match Name::parse(key, Dialect::MySql) {
                    Some(Name::Function { schema, name }) => Some((&**key, schema, name)),
                    // Not a name any lookup can answer: left out, so unsafe.
                    _ => None,
                })
                .collect();
            if asked.is_empty() {
                return Ok(Vec::new());
            }
            let database: Option<String> = sqlx::query_scalar("SELECT DATABASE()")
                .fetch_one(pool)
                .await?;
            let routines = stored_functions(pool).await?;
            let (side_effect, _) = crate::classify::builtin_side_effects(Dialect::MySql);
            let unsafe_names = unsafe_functions(&routines, &side_effect);
            Ok(asked
                .into_iter()
                .filter_map(|(key, schema, name)| {
                    // A bare name is the default database's function (MySQL resolves an
                    // unqualified stored function there); names compare without case.
                    let schema = schema.or_else(|| database.clone())?;
                    let found = routines
                        .iter()
                        .filter(|r| r.name == name && r.schema == schema.to_ascii_lowercase())
                        .count();
                    (found > 0).then(|| (key.to_string(), unsafe_names.contains(&name)))
                })
                .collect())
        }
        .boxed()
    }

    /// No shadowed built-ins: MySQL and MariaDB call the built-in for a bare built-in name
    /// (a stored function of that name is reached only qualified). No user types either.
    fn unsafe_objects<'a>(
        pool: &'a Pool<Self>,
        side_effect: &'a [String],
        _prefixes: &'a [String],
    ) -> BoxFuture<'a, Result<super::UnsafeObjects, sqlx::Error>> {
        async move {
            let routines = stored_functions(pool).await?;
            let views: Vec<(String, String, Option<String>)> = sqlx::query_as(
                "SELECT CAST(TABLE_SCHEMA AS CHAR), CAST(TABLE_NAME AS CHAR), \
                 CAST(VIEW_DEFINITION AS CHAR) FROM information_schema.VIEWS \
                 WHERE TABLE_SCHEMA NOT IN ('information_schema', 'mysql', 'performance_schema', 'sys') \
                 LIMIT 20000",
            )
            .fetch_all(pool)
            .await?;
            let unsafe_functions = unsafe_functions(&routines, side_effect);
            let views: Vec<Routine> = views
                .into_iter()
                .map(|(schema, name, definition)| Routine {
                    schema: schema.to_ascii_lowercase(),
                    name: name.to_ascii_lowercase(),
                    // A definition this login may not see is judged unsafe.
                    declared_unsafe: definition.as_deref().is_none_or(str::is_empty),
                    body: definition.map(|d| Body::scan(&d)),
                })
                .collect();
            let relations = unsafe_views(&views, &routines, &unsafe_functions, side_effect)
                .into_iter()
                .flat_map(|(schema, name)| {
                    [
                        render(&[&schema, &name], Dialect::MySql),
                        render(&[&name], Dialect::MySql),
                    ]
                })
                .collect();
            Ok((relations, Vec::new(), Vec::new()))
        }
        .boxed()
    }

    fn probe_primary<'a>(
        conn: &'a mut sqlx::MySqlConnection,
        heartbeat: Option<&'a str>,
    ) -> BoxFuture<'a, Result<PrimaryProbe, sqlx::Error>> {
        async move {
            let (read_only, version): (i64, String) =
                sqlx::query_as("SELECT CAST(@@global.read_only AS SIGNED), VERSION()")
                    .fetch_one(&mut *conn)
                    .await?;
            if let (Some(table), 0) = (heartbeat, read_only) {
                // The server answered: that is the probe. The beat is best effort, and must not
                // wait long behind an application's lock on the heartbeat table (a lock there
                // is not an outage): a short lock wait, and a failed beat is skipped.
                let bound = if is_mariadb(&version) {
                    "SET STATEMENT max_statement_time = 0.1 FOR "
                } else {
                    ""
                };
                let beat = format!(
                    "SET SESSION innodb_lock_wait_timeout = 1; \
                     CREATE TABLE IF NOT EXISTS {table} (id INT PRIMARY KEY, ts DATETIME(6) NOT NULL); \
                     {bound}INSERT INTO {table} (id, ts) VALUES (1, UTC_TIMESTAMP(6)) \
                     ON DUPLICATE KEY UPDATE ts = VALUES(ts)"
                );
                let _ = sqlx::raw_sql(AssertSqlSafe(beat)).execute(&mut *conn).await;
            }
            let system = if is_mariadb(&version) { "mariadb" } else { "mysql" };
            Ok(PrimaryProbe {
                writable: read_only == 0,
                system: Some(system),
                cluster: None,
            })
        }
        .boxed()
    }
}

/// The global privilege in `SHOW GRANTS` output that lets a login write on a read-only
/// server, if any. Only the privilege's name is returned: grant lines can carry password
/// hashes, which must never reach a log.
fn bypass_privilege(
    grants: &[String],
    mariadb: bool,
    super_read_only: bool,
) -> Option<&'static str> {
    if super_read_only {
        return None;
    }
    let bypassing: &[&'static str] = if mariadb {
        &[
            "ALL PRIVILEGES",
            "SUPER",
            "READ_ONLY ADMIN",
            "READ ONLY ADMIN",
        ]
    } else {
        &["ALL PRIVILEGES", "SUPER", "CONNECTION_ADMIN"]
    };
    grants.iter().find_map(|g| {
        let g = g.to_ascii_uppercase();
        let (list, _) = g.strip_prefix("GRANT ")?.split_once(" ON *.* ")?;
        list.split(',')
            .map(str::trim)
            .find_map(|p| bypassing.iter().copied().find(|b| *b == p))
    })
}

fn is_mariadb(version: &str) -> bool {
    version.to_ascii_lowercase().contains("mariadb")
}

// The catalog lookups of `crate::volatility` (README, "Asking the catalog"): stored functions
// and views from `information_schema`, judged by their declarations and by the text of their
// bodies; a body this login may not read makes the routine unsafe.

/// A stored function or a view, names folded to lower case (lookups compare without case:
/// an over-approximation, never a miss).
struct Routine {
    schema: String,
    name: String,
    /// Declared `NOT DETERMINISTIC` or `MODIFIES SQL DATA`, or a body (for a view: a
    /// definition) this login cannot read: `information_schema` shows a routine's body only to
    /// its definer or to a login that may read `mysql.proc` (MariaDB 10.11: `SELECT` on
    /// `mysql.proc`; MySQL 8: `SHOW_ROUTINE` or global `SELECT`).
    declared_unsafe: bool,
    /// What the body's text shows, when this login may read it.
    body: Option<Body>,
}

/// Every stored function the login can see (at most 10,000); one whose body it may not read
/// is judged unsafe.
async fn stored_functions(pool: &Pool<MySql>) -> Result<Vec<Routine>, sqlx::Error> {
    let rows: Vec<(String, String, String, String, Option<String>)> = sqlx::query_as(
        "SELECT CAST(ROUTINE_SCHEMA AS CHAR), CAST(ROUTINE_NAME AS CHAR), \
         CAST(IS_DETERMINISTIC AS CHAR), CAST(SQL_DATA_ACCESS AS CHAR), \
         CAST(ROUTINE_DEFINITION AS CHAR) FROM information_schema.ROUTINES \
         WHERE ROUTINE_TYPE = 'FUNCTION' LIMIT 10000",
    )
    .fetch_all(pool)
    .await?;
    // Parameters are local variables: a body may assign them.
    let parameters: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT CAST(SPECIFIC_SCHEMA AS CHAR), CAST(SPECIFIC_NAME AS CHAR), \
         CAST(PARAMETER_NAME AS CHAR) FROM information_schema.PARAMETERS \
         WHERE ROUTINE_TYPE = 'FUNCTION' AND PARAMETER_NAME IS NOT NULL LIMIT 100000",
    )
    .fetch_all(pool)
    .await?;
    // The session's system variables: a body that assigns one changes the replica's session.
    let system: std::collections::HashSet<String> = sqlx::query_scalar::<_, String>(
        "SELECT CAST(LOWER(VARIABLE_NAME) AS CHAR) FROM information_schema.SESSION_VARIABLES",
    )
    .fetch_all(pool)
    .await?
    .into_iter()
    .collect();
    let mut by_routine: std::collections::HashMap<(String, String), Vec<String>> =
        std::collections::HashMap::new();
    for (schema, name, parameter) in parameters {
        by_routine
            .entry((schema.to_ascii_lowercase(), name.to_ascii_lowercase()))
            .or_default()
            .push(parameter.to_lowercase());
    }
    Ok(rows
        .into_iter()
        .map(|(schema, name, deterministic, access, body)| {
            let key = (schema.to_ascii_lowercase(), name.to_ascii_lowercase());
            let parameters = by_routine.get(&key).map_or(&[][..], Vec::as_slice);
            stored_function(
                &schema,
                &name,
                &deterministic,
                &access,
                body.as_deref(),
                parameters,
                &system,
            )
        })
        .collect())
}

/// A stored function from its `information_schema.ROUTINES` row: unsafe when declared
/// `NOT DETERMINISTIC` or `MODIFIES SQL DATA`, or when its body cannot be read (`NULL` or empty
/// for a login that is not its definer and may not read `mysql.proc`). A body this login may
/// not read is unknown, and unknown is unsafe: a function declared `DETERMINISTIC READS SQL
/// DATA` may still take a lock or set a variable, which a read-only replica does not refuse.
/// A body that assigns a system variable of the session (`system`, or a name it neither
/// declares nor takes as a parameter: `parameters`, lower case) is unsafe too
/// (`SET time_zone = ...`).
fn stored_function(
    schema: &str,
    name: &str,
    deterministic: &str,
    access: &str,
    body: Option<&str>,
    parameters: &[String],
    system: &std::collections::HashSet<String>,
) -> Routine {
    let body = body.filter(|b| !b.is_empty()).map(Body::scan);
    Routine {
        schema: schema.to_ascii_lowercase(),
        name: name.to_ascii_lowercase(),
        declared_unsafe: !deterministic.eq_ignore_ascii_case("YES")
            || access.eq_ignore_ascii_case("MODIFIES SQL DATA")
            || body
                .as_ref()
                .is_none_or(|b| b.sets_session_state(parameters, system)),
        body,
    }
}

/// A call qualified by a database to a function this login cannot see (no grant on that
/// database, or no such function): unknown, so unsafe.
fn calls_unseen(body: &Body, routines: &[Routine]) -> bool {
    body.qualified_calls.iter().any(|(schema, name)| {
        !routines
            .iter()
            .any(|r| &r.schema == schema && &r.name == name)
    })
}

/// Statement words that write, lock, or change session or server state: a body that holds one
/// (outside a call of the function of the same name, like `REPLACE(...)`) is unsafe, whatever
/// it declares. Words in literals and comments count too (safe side).
const UNSAFE_WORDS: &[&str] = &[
    "insert",
    "update",
    "delete",
    "replace",
    "call",
    "truncate",
    "create",
    "drop",
    "alter",
    "rename",
    "grant",
    "revoke",
    "lock",
    // MySQL 8's `FOR SHARE` (its `FOR UPDATE` is caught by `update`): a view that locks rows
    "share",
    "unlock",
    "flush",
    "kill",
    "purge",
    "reset",
    "install",
    "uninstall",
    "shutdown",
    "prepare",
    "execute",
    "commit",
    "rollback",
    "savepoint",
    "xa",
    "session",
    "global",
    "persist",
    "persist_only",
    "outfile",
    "dumpfile",
    "load",
    "binlog",
    "sql_log_bin",
    // The caller's diagnostics area: `GET DIAGNOSTICS v = ROW_COUNT`, Oracle's
    // `SQL%ROWCOUNT`.
    "diagnostics",
    "rowcount",
];

/// The words of a body or view definition: the names it calls and whether it holds an unsafe
/// statement word or a variable (`@x`, `@@x`).
#[derive(Debug, Default, PartialEq)]
struct Body {
    calls: Vec<String>,
    /// Calls qualified by a database (`` `db`.`f`( ``): stored functions, never built-ins.
    qualified_calls: Vec<(String, String)>,
    words: Vec<String>,
    unsafe_statement: bool,
    /// Names a `DECLARE` makes local.
    declared: Vec<String>,
    /// Names a `SET` (or `:=`) assigns: a local variable or parameter, or else a system
    /// variable of the session (which a read-only replica lets a function change); `true` when
    /// the name follows `CHARACTER SET` / `CHAR SET` (a character set's name, in a type).
    set_targets: Vec<(String, bool)>,
    /// Names followed by `=`: assigned or compared. One that is a session variable of the
    /// server may be assigned, so it is judged like a `SET` target of that name.
    compared: Vec<String>,
}

/// Words after `SET` that change the session whatever is declared: `SET LOCAL x`, `SET NAMES`,
/// `SET CHARACTER SET`, `SET TRANSACTION`, `SET STATEMENT ... FOR`, `SET PASSWORD`,
/// `SET ROLE`, `SET DEFAULT ROLE`.
const SET_KEYWORDS: &[&str] = &[
    "local",
    "session",
    "global",
    "names",
    "character",
    "char",
    "charset",
    "transaction",
    "statement",
    "password",
    "role",
    "default",
];

/// What MariaDB reads as a blank: ASCII whitespace and the vertical tab, which
/// `u8::is_ascii_whitespace` leaves out.
fn blank(b: u8) -> bool {
    b.is_ascii_whitespace() || b == 0x0b
}

/// Skips what the server reads as nothing between two words: whitespace, backticks, comments
/// (`/* */`, `-- ` and `#` to the end of the line). The openers of executable comments
/// (`/*!`, `/*!NNNNN`, `/*M!`, `/*M!NNNNN`) are skipped but not their content, which the server
/// runs. Returns the index of the next byte that is none of these.
fn skip_gap(bytes: &[u8], mut j: usize) -> usize {
    loop {
        match bytes.get(j) {
            // Backticks, and double quotes: an identifier's quotes under `ANSI_QUOTES` or
            // Oracle mode (`"get_lock"(...)`), a string otherwise (taking it for a gap only
            // finds more calls).
            Some(b'`' | b'"') => j += 1,
            Some(&b) if blank(b) => j += 1,
            // Line comments, to the end of the line: `#`, and `--` before a blank or control.
            Some(b'#') => j = line_end(bytes, j),
            Some(b'-')
                if bytes.get(j + 1) == Some(&b'-')
                    && bytes
                        .get(j + 2)
                        .is_none_or(|&b| blank(b) || b.is_ascii_control()) =>
            {
                j = line_end(bytes, j);
            }
            Some(b'/') if bytes.get(j + 1) == Some(&b'*') => {
                let executable = match (bytes.get(j + 2), bytes.get(j + 3)) {
                    (Some(b'!'), _) => Some(j + 3),
                    (Some(b'm'), Some(b'!')) => Some(j + 4),
                    _ => None,
                };
                match executable {
                    Some(mut k) => {
                        while bytes.get(k).is_some_and(u8::is_ascii_digit) {
                            k += 1;
                        }
                        j = k;
                    }
                    None => {
                        j += 2;
                        while j < bytes.len()
                            && !(bytes[j] == b'*' && bytes.get(j + 1) == Some(&b'/'))
                        {
                            j += 1;
                        }
                        j = (j + 2).min(bytes.len());
                    }
                }
            }
            // The end of an executable comment: its content was read as code.
            Some(b'*') if bytes.get(j + 1) == Some(&b'/') => j += 2,
            _ => return j,
        }
    }
}

/// The index of the newline that ends the line holding `j` (or the end of `bytes`).
fn line_end(bytes: &[u8], j: usize) -> usize {
    bytes[j..]
        .iter()
        .position(|&b| b == b'\n')
        .map_or(bytes.len(), |k| j + k)
}

/// The database that qualifies the word starting at `start` (`` `db`.`f` ``, `db.f`), if any.
fn qualifier(text: &str, start: usize) -> Option<&str> {
    let gap = |c: char| c == '`' || c == '"' || c.is_whitespace() || c == '\u{b}';
    let before = text[..start].trim_end_matches(gap);
    let before = before.strip_suffix('.')?;
    let before = before.trim_end_matches(gap);
    let from = before
        .rfind(|c: char| !(c.is_alphanumeric() || c == '_' || c == '$'))
        .map_or(0, |k| {
            k + before[k..].chars().next().map_or(1, char::len_utf8)
        });
    let schema = &before[from..];
    (!schema.is_empty()).then_some(schema)
}

impl Body {
    /// Every byte is read as before (words in literals and comments count: the safe side);
    /// only the look-ahead after a word skips comments ([`skip_gap`]), so that a call written
    /// `f/**/(x)` or split by a line comment is still a call.
    fn scan(text: &str) -> Body {
        let text = text.to_lowercase();
        let bytes = text.as_bytes();
        let mut body = Body {
            unsafe_statement: text.contains('@'),
            ..Body::default()
        };
        let word_byte = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b == b'$' || b >= 0x80;
        let mut previous: Option<&str> = None;
        // Inside a `SET` (or `DECLARE`): the name after each comma is a target (or a declared
        // name), until the `;`. Commas in literals, comments and calls count too: a name
        // taken for a target that is not one only keeps a function on the primary.
        let (mut in_set, mut expect_target, mut charset) = (false, false, false);
        let (mut in_declare, mut expect_declared) = (false, false);
        let mut i = 0;
        while i < bytes.len() {
            let b = bytes[i];
            if !word_byte(b) {
                match b {
                    b';' => {
                        (in_set, expect_target) = (false, false);
                        (in_declare, expect_declared) = (false, false);
                    }
                    b',' => {
                        expect_target |= in_set;
                        expect_declared |= in_declare;
                        charset = false;
                    }
                    _ => {}
                }
                i += 1;
                continue;
            }
            let start = i;
            while i < bytes.len() && word_byte(bytes[i]) {
                i += 1;
            }
            let word = &text[start..i];
            let j = skip_gap(bytes, i);
            if bytes.get(j) == Some(&b'(') {
                body.calls.push(word.to_string());
                if let Some(schema) = qualifier(&text, start) {
                    body.qualified_calls
                        .push((schema.to_string(), word.to_string()));
                }
            } else if UNSAFE_WORDS.contains(&word) {
                body.unsafe_statement = true;
            }
            // Sequences: `NEXT VALUE FOR s`, `PREVIOUS VALUE FOR s` (the session's last value),
            // and Oracle mode's functions.
            if matches!(word, "next" | "previous") && text[j..].starts_with("value") {
                body.unsafe_statement = true;
            }
            if matches!(word, "nextval" | "lastval" | "setval") {
                body.unsafe_statement = true;
            }
            if expect_target {
                body.set_targets.push((word.to_string(), charset));
                expect_target = false;
            }
            // Oracle mode assigns without `SET`: `x := 1`.
            if bytes.get(j) == Some(&b':') && bytes.get(j + 1) == Some(&b'=') {
                body.set_targets.push((word.to_string(), false));
            }
            // Any name followed by `=` may be assigned, whatever a comment or a literal did
            // to the tracking of `SET` above (`SET /* a */ time_zone = ...`,
            // `SET a = ';', time_zone = ...`): judged against the server's session variables
            // only (a comparison `x = 1` of a local is not an assignment to worry about).
            if bytes.get(j) == Some(&b'=') {
                body.compared.push(word.to_string());
            }
            if expect_declared {
                body.declared.push(word.to_string());
                expect_declared = false;
            }
            // `SET(...)` is a column type; any other `SET` assigns. After `CHARACTER` / `CHAR`
            // it names a character set (the target is then judged by name only).
            if word == "set" && bytes.get(j) != Some(&b'(') {
                charset = matches!(previous, Some("character" | "char"));
                (in_set, expect_target) = (true, true);
            }
            if word == "declare" {
                (in_declare, expect_declared) = (true, true);
            }
            body.words.push(word.to_string());
            previous = Some(word);
        }
        body
    }

    /// Assigns a system variable of the session: a name in `system` (the server's session
    /// variables, whatever this body declares: declarations are not read by block), a `SET`
    /// keyword ([`SET_KEYWORDS`]), or a name neither declared here nor one of `parameters`
    /// (a character set's name after `CHARACTER SET` excepted).
    fn sets_session_state(
        &self,
        parameters: &[String],
        system: &std::collections::HashSet<String>,
    ) -> bool {
        self.set_targets.iter().any(|(t, charset)| {
            system.contains(t)
                || SET_KEYWORDS.contains(&t.as_str())
                || (!charset && !self.declared.contains(t) && !parameters.contains(t))
        }) || self.compared.iter().any(|w| system.contains(w))
    }
}

/// Names of the stored functions that may write or keep state: declared so, or whose visible
/// body holds an unsafe word, calls a side-effect built-in, or calls an unsafe function (by
/// name, in any database: the safe side).
fn unsafe_functions(
    routines: &[Routine],
    side_effect: &[String],
) -> std::collections::HashSet<String> {
    let mut unsafe_names: std::collections::HashSet<String> = routines
        .iter()
        .filter(|r| {
            r.declared_unsafe
                || r.body.as_ref().is_some_and(|b| {
                    b.unsafe_statement
                        || b.calls.iter().any(|c| side_effect.contains(c))
                        || b.words.iter().any(|w| SESSION_WORDS.contains(&w.as_str()))
                        || calls_unseen(b, routines)
                })
        })
        .map(|r| r.name.clone())
        .collect();
    loop {
        let before = unsafe_names.len();
        for r in routines {
            if !unsafe_names.contains(&r.name)
                && r.body
                    .as_ref()
                    .is_some_and(|b| b.calls.iter().any(|c| unsafe_names.contains(c)))
            {
                unsafe_names.insert(r.name.clone());
            }
        }
        if unsafe_names.len() == before {
            return unsafe_names;
        }
    }
}

/// Relations (and schemas) of one session's or one server's state: a view over them answers
/// for the replica's session, not the application's.
const SESSION_WORDS: &[&str] = &[
    "performance_schema",
    "sys",
    "session_variables",
    "session_status",
    "user_variables",
    "user_variables_by_thread",
    "session_connect_attrs",
    "session_account_connect_attrs",
];

/// The views whose definition calls an unsafe function, a side-effect built-in or a function
/// of another database this login cannot see (`routines`: the ones it can), holds a variable
/// or an unsafe word, reads session state, cannot be read, or names an unsafe view (views over
/// views).
fn unsafe_views(
    views: &[Routine],
    routines: &[Routine],
    unsafe_functions: &std::collections::HashSet<String>,
    side_effect: &[String],
) -> Vec<(String, String)> {
    let mut bad: Vec<bool> = views
        .iter()
        .map(|v| {
            v.declared_unsafe
                || v.body.as_ref().is_some_and(|b| {
                    b.unsafe_statement
                        || b.words.iter().any(|w| SESSION_WORDS.contains(&w.as_str()))
                        || b.calls
                            .iter()
                            .any(|c| unsafe_functions.contains(c) || side_effect.contains(c))
                        || calls_unseen(b, routines)
                })
        })
        .collect();
    loop {
        let names: std::collections::HashSet<&str> = views
            .iter()
            .zip(&bad)
            .filter(|(_, b)| **b)
            .map(|(v, _)| v.name.as_str())
            .collect();
        let mut changed = false;
        for (v, b) in views.iter().zip(bad.iter_mut()) {
            if !*b
                && v.body
                    .as_ref()
                    .is_some_and(|body| body.words.iter().any(|w| names.contains(w.as_str())))
            {
                *b = true;
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    views
        .iter()
        .zip(bad)
        .filter(|(_, b)| *b)
        .map(|(v, _)| (v.schema.clone(), v.name.clone()))
        .collect()
}

/// Parses a GTID position as the server family writes it.
fn position(mariadb: bool, text: &str) -> Option<Position> {
    if mariadb {
        Position::parse_mariadb(text)
    } else {
        (!text.trim().is_empty()).then(|| Position::MySql(text.replace(['\n', ' '], "")))
    }
}

/// The first of `names` present in the row, as text.
fn text(row: &MySqlRow, names: &[&str]) -> Option<String> {
    names.iter().find_map(|n| {
        row.try_get::<Option<String>, _>(*n)
            .ok()
            .flatten()
            .or_else(|| {
                row.try_get::<Option<Vec<u8>>, _>(*n)
                    .ok()
                    .flatten()
                    .map(|b| String::from_utf8_lossy(&b).into_owned())
            })
    })
}

/// The first of `names` present in the row, as a number (`None` for SQL NULL).
fn number(row: &MySqlRow, names: &[&str]) -> Option<i64> {
    names.iter().find_map(|n| {
        row.try_get::<Option<i64>, _>(*n)
            .ok()
            .flatten()
            .or_else(|| {
                row.try_get::<Option<u64>, _>(*n)
                    .ok()
                    .flatten()
                    .map(|v| v as i64)
            })
            .or_else(|| text(row, &[n]).and_then(|t| t.trim().parse().ok()))
    })
}

// The drift check's statements (see `checksum.rs`).

/// `ident` in backticks, backticks doubled (column names come from the server verbatim).
fn quote(ident: &str) -> String {
    format!("`{}`", ident.replace('`', "``"))
}

impl Checksums for MySql {
    const INTEGER_TYPES: &'static [&'static str] =
        &["tinyint", "smallint", "mediumint", "int", "bigint"];

    async fn columns(
        primary: &mut Side<Self>,
        schema: Option<&str>,
        table: &str,
    ) -> Result<Vec<(String, String)>, Error> {
        if primary.system == "mysql" {
            let mode: String =
                sqlx::query_scalar("SELECT CONVERT(@@global.gtid_mode USING utf8mb4)")
                    .fetch_one(&mut *primary.conn)
                    .await?;
            if !mode.eq_ignore_ascii_case("ON") {
                let why = "gtid_mode is not ON: the check needs a GTID position to wait for";
                return Err(Error::InvalidOption {
                    option: "primary",
                    why,
                });
            }
        }
        let query = sqlx::query_as(
            "SELECT CONVERT(COLUMN_NAME USING utf8mb4), CONVERT(DATA_TYPE USING utf8mb4) \
             FROM information_schema.COLUMNS \
             WHERE TABLE_SCHEMA = COALESCE(?, DATABASE()) AND TABLE_NAME = ? \
             ORDER BY ORDINAL_POSITION",
        );
        let query = query.bind(schema).bind(table);
        Ok(query.fetch_all(&mut *primary.conn).await?)
    }

    fn plan(schema: Option<&str>, table: &str, key: &str, columns: &[&str]) -> Plan {
        let table = match schema {
            Some(schema) => format!("{}.{}", quote(schema), quote(table)),
            None => quote(table),
        };
        let key = quote(key);
        let columns: Vec<String> = columns.iter().map(|c| quote(c)).collect();
        let values: Vec<String> = columns
            .iter()
            .map(|c| format!("CAST({c} AS BINARY)"))
            .collect();
        let nulls: Vec<String> = columns.iter().map(|c| format!("ISNULL({c})")).collect();
        let row = format!(
            "CONCAT_WS('#', {}, CONCAT({}))",
            values.join(", "),
            nulls.join(", ")
        );
        // Every name in these statements is validated or quoted above.
        let boundary = format!(
            "SELECT CAST({key} AS SIGNED) FROM {table} WHERE {key} >= ? \
             ORDER BY {key} LIMIT 1 OFFSET ?"
        );
        let checksum = format!(
            "SELECT COUNT(*), CAST(BIT_XOR(CAST(CONV(SUBSTRING(MD5({row}), 1, 16), 16, 10) \
             AS UNSIGNED)) AS SIGNED) FROM {table} WHERE {key} BETWEEN ? AND ?"
        );
        Plan {
            boundary: AssertSqlSafe(boundary).into_sql_str(),
            checksum: AssertSqlSafe(checksum).into_sql_str(),
        }
    }

    run_plan!();
}

#[cfg(test)]
mod tests {
    use super::{
        bypass_privilege, calls_unseen, stored_function, unsafe_functions, unsafe_views, Body,
        Routine,
    };

    fn routine(name: &str, declared_unsafe: bool, body: Option<&str>) -> Routine {
        Routine {
            schema: "app".into(),
            name: name.into(),
            declared_unsafe,
            body: body.map(Body::scan),
        }
    }

    #[test]
    fn bodies_are_judged_by_their_words() {
        let b = Body::scan("RETURN REPLACE(`a`, 'x', 'y') + Insert (a, 1, 1, 'z')");
        assert!(!b.unsafe_statement, "{b:?}");
        assert_eq!(b.calls, ["replace", "insert"]);
        for text in [
            "BEGIN INSERT INTO t VALUES (1); RETURN 1; END",
            "BEGIN UPDATE t SET a = 1; RETURN 1; END",
            "BEGIN SET @x = 1; RETURN 1; END",
            "RETURN @@session.last_insert_id",
            "BEGIN SET SESSION sql_mode = ''; RETURN 1; END",
            "BEGIN CALL p(); RETURN 1; END",
            "RETURN (SELECT a FROM t FOR UPDATE)",
            "BEGIN SELECT 1 INTO OUTFILE '/tmp/x'; RETURN 1; END",
        ] {
            assert!(Body::scan(text).unsafe_statement, "{text}");
        }
        let safe = "BEGIN DECLARE i INT DEFAULT 0; DECLARE CONTINUE HANDLER FOR NOT FOUND \
                    SET i = 1; WHILE i < 3 DO SET i = i + 1; END WHILE; \
                    RETURN (SELECT COUNT(*) FROM t WHERE updated_at > NOW()); END";
        assert!(!Body::scan(safe).unsafe_statement);
    }

    #[test]
    fn calls_split_by_comments_are_calls() {
        for text in [
            "RETURN app.lockf/**/(7)",
            "RETURN GET_LOCK/**/('x', 0)",
            "RETURN lockf -- a comment\n(8)",
            "RETURN lockf # a comment\n(8)",
            "RETURN lockf/*!50000 (*/ 8)",
            "RETURN `lockf` /*M!(*/ 8)",
        ] {
            let b = Body::scan(text);
            assert!(
                b.calls.iter().any(|c| c == "lockf" || c == "get_lock"),
                "{text}: {:?}",
                b.calls
            );
        }
        // `--` without a blank is not a comment: what follows is read as is.
        assert!(!Body::scan("RETURN f --1").calls.contains(&"f".to_string()));
    }

    #[test]
    fn qualified_calls_name_their_database() {
        let b = Body::scan("select `app`.`f`(1) AS `x`, other . g (2), h(3) from `app`.`t`");
        assert_eq!(
            b.qualified_calls,
            vec![
                ("app".to_string(), "f".to_string()),
                ("other".to_string(), "g".to_string())
            ]
        );
        let seen = [routine("f", false, Some("RETURN 1"))];
        assert!(calls_unseen(&Body::scan("select `priv`.`hid`()"), &seen));
        assert!(!calls_unseen(&Body::scan("select `app`.`f`()"), &seen));
    }

    #[test]
    fn sequences_and_session_variables_in_a_body_are_unsafe() {
        for text in [
            "RETURN NEXT VALUE FOR s",
            "RETURN NEXT /* x */ VALUE FOR s",
            "RETURN PREVIOUS VALUE FOR s",
            "RETURN NEXTVAL(s)",
            "RETURN s.nextval",
            "RETURN LASTVAL(s)",
        ] {
            assert!(Body::scan(text).unsafe_statement, "{text}");
        }
        let declared =
            "BEGIN DECLARE a, b INT DEFAULT 0; DECLARE c VARCHAR(5) CHARACTER SET utf8; \
                        SET a = 1, b = a + 1; SET c = 'x'; SET p = 2; RETURN a + b; END";
        let params = ["p".to_string()];
        let system: std::collections::HashSet<String> = ["time_zone", "max_join_size", "sql_mode"]
            .map(String::from)
            .into();
        assert!(!Body::scan(declared).sets_session_state(&params, &system));
        assert!(
            Body::scan(declared).sets_session_state(&[], &system),
            "p is not a parameter"
        );
        for text in [
            "BEGIN SET time_zone = '+05:00'; RETURN 1; END",
            "BEGIN DECLARE a INT; SET a = 1, max_join_size = 5; RETURN a; END",
            "BEGIN SET NAMES latin1; RETURN 1; END",
        ] {
            assert!(
                Body::scan(text).sets_session_state(&params, &system),
                "{text}"
            );
        }
        // From a second attack on the replica: each of these changed the replica's session.
        for text in [
            // A declaration in an inner block does not make an outer SET local.
            "BEGIN BEGIN DECLARE time_zone INT DEFAULT 0; END; SET time_zone = '+05:00'; RETURN 1; END",
            // A `declare` in a comment declares nothing.
            "BEGIN /* declare local */ SET LOCAL time_zone = '+08:00'; RETURN 1; END",
            "BEGIN /* declare names */ SET NAMES latin1; RETURN 1; END",
            "BEGIN /* declare character */ SET CHARACTER SET latin1; RETURN 1; END",
            // A parenthesis in a literal before the SET.
            "BEGIN IF '(' <> ')(' THEN SET time_zone = '+06:00'; END IF; RETURN 1; END",
            // `character` in a comment before SET.
            "BEGIN /* character */ SET time_zone = '+07:00'; RETURN 1; END",
            // Oracle mode assigns without SET.
            "AS BEGIN time_zone := '+09:00'; RETURN 7; END",
            // A second target after a comma inside a literal's parenthesis.
            "BEGIN DECLARE a INT; SET a = LENGTH('('), time_zone = '+01:00'; RETURN a; END",
            // From a third attack: a comment or a literal that misleads the SET tracking.
            "BEGIN DECLARE a INT; SET /* a */ time_zone = '+05:00'; RETURN 1; END",
            "BEGIN DECLARE a VARCHAR(5); SET a = ';', time_zone = '+07:00'; RETURN 1; END",
        ] {
            assert!(Body::scan(text).sets_session_state(&params, &system), "{text}");
        }
        // Also from the third attack: the caller's diagnostics area.
        for text in [
            "BEGIN DECLARE v INT; GET DIAGNOSTICS v = ROW_COUNT; RETURN v; END",
            "AS BEGIN RETURN SQL%ROWCOUNT; END",
        ] {
            assert!(Body::scan(text).unsafe_statement, "{text}");
        }
        // Double-quoted names (ANSI_QUOTES, Oracle mode) are still calls.
        let b = Body::scan("RETURN \"get_lock\"('x', 0) + \"app\".\"w\"()");
        assert!(b.calls.contains(&"get_lock".to_string()), "{:?}", b.calls);
        assert_eq!(
            b.qualified_calls,
            vec![("app".to_string(), "w".to_string())]
        );
        // The vertical tab is a blank to MariaDB.
        let b = Body::scan("RETURN GET_LOCK\u{b}('x', 0) + NEXT\u{b}VALUE FOR s");
        assert!(b.calls.contains(&"get_lock".to_string()), "{:?}", b.calls);
        assert!(b.unsafe_statement);
        // A column type named SET, a character set in a declaration: no assignment.
        let typed = "BEGIN DECLARE c SET('a', 'b'); DECLARE d VARCHAR(5) CHARACTER SET utf8mb4; \
                     RETURN 1; END";
        assert!(!Body::scan(typed).sets_session_state(&params, &system));
        // FETCH NEXT FROM a cursor is not a sequence.
        assert!(!Body::scan("BEGIN FETCH NEXT FROM c INTO a; RETURN a; END").unsafe_statement);
        let f = stored_function(
            "app",
            "f",
            "YES",
            "NO SQL",
            Some("BEGIN SET time_zone = '+05:00'; RETURN 1; END"),
            &[],
            &Default::default(),
        );
        assert!(f.declared_unsafe);
    }

    #[test]
    fn a_function_whose_body_cannot_be_read_is_unsafe() {
        let hidden = stored_function(
            "App",
            "F",
            "YES",
            "READS SQL DATA",
            None,
            &[],
            &Default::default(),
        );
        assert!(hidden.declared_unsafe);
        assert_eq!((hidden.schema.as_str(), hidden.name.as_str()), ("app", "f"));
        assert!(
            stored_function(
                "app",
                "f",
                "YES",
                "NO SQL",
                Some(""),
                &[],
                &Default::default()
            )
            .declared_unsafe
        );
        let seen = stored_function(
            "app",
            "f",
            "YES",
            "READS SQL DATA",
            Some("RETURN 1"),
            &[],
            &Default::default(),
        );
        assert!(!seen.declared_unsafe);
        assert!(
            stored_function(
                "app",
                "f",
                "NO",
                "NO SQL",
                Some("RETURN 1"),
                &[],
                &Default::default()
            )
            .declared_unsafe
        );
        assert!(
            stored_function(
                "app",
                "f",
                "YES",
                "MODIFIES SQL DATA",
                Some("RETURN 1"),
                &[],
                &Default::default(),
            )
            .declared_unsafe
        );
        let bad = unsafe_functions(&[hidden], &[]);
        assert!(bad.contains("f"), "{bad:?}");
    }

    #[test]
    fn unsafe_functions_and_views_follow_what_they_call() {
        let side_effect = vec!["get_lock".to_string()];
        let routines = [
            routine("declared", true, None),
            routine("hidden", false, None),
            routine("calls_declared", false, Some("RETURN `app`.`declared`(1)")),
            routine("calls_caller", false, Some("RETURN calls_declared (2)")),
            routine("locks", false, Some("RETURN GET_LOCK('a', 0)")),
            routine("pure", false, Some("RETURN x + 1")),
            // Session tables answer for the replica's session, in a body as in a view.
            routine(
                "session",
                false,
                Some("RETURN (SELECT VARIABLE_VALUE FROM information_schema.SESSION_VARIABLES LIMIT 1)"),
            ),
        ];
        let bad = unsafe_functions(&routines, &side_effect);
        let mut bad: Vec<&str> = bad.iter().map(String::as_str).collect();
        bad.sort_unstable();
        assert_eq!(
            bad,
            [
                "calls_caller",
                "calls_declared",
                "declared",
                "locks",
                "session"
            ]
        );
        let unsafe_names = unsafe_functions(&routines, &side_effect);
        let views = [
            routine("v_pure", false, Some("select `app`.`pure`(1) AS `x`")),
            routine(
                "v_bad",
                false,
                Some("select `app`.`calls_caller`(1) AS `x`"),
            ),
            routine(
                "v_over",
                false,
                Some("select `v`.`x` AS `x` from `app`.`v_bad` `v`"),
            ),
            routine("v_lock", false, Some("select get_lock('a',0) AS `x`")),
            routine("v_hidden", true, None),
            routine(
                "v_session",
                false,
                Some("select `VARIABLE_NAME` from `information_schema`.`USER_VARIABLES`"),
            ),
        ];
        let bad: Vec<String> = unsafe_views(&views, &routines, &unsafe_names, &side_effect)
            .into_iter()
            .map(|(_, name)| name)
            .collect();
        assert_eq!(bad, ["v_bad", "v_over", "v_lock", "v_hidden", "v_session"]);
    }

    #[test]
    fn grants_that_bypass_read_only_are_named_without_the_grant_line() {
        let g = |lines: &[&str]| lines.iter().map(|l| l.to_string()).collect::<Vec<_>>();
        let admin = g(&["GRANT ALL PRIVILEGES ON *.* TO `a`@`%` IDENTIFIED BY PASSWORD '*AB'"]);
        assert_eq!(
            bypass_privilege(&admin, true, false),
            Some("ALL PRIVILEGES")
        );
        let app = g(&[
            "GRANT USAGE ON *.* TO `app`@`%` IDENTIFIED BY PASSWORD '*AB'",
            "GRANT ALL PRIVILEGES ON `app`.* TO `app`@`%`",
            "GRANT SLAVE MONITOR, BINLOG MONITOR ON *.* TO `app`@`%`",
        ]);
        assert_eq!(
            bypass_privilege(&app, true, false),
            None,
            "rights on its own database"
        );
        let ro = g(&["GRANT SELECT, READ_ONLY ADMIN ON *.* TO `x`@`%`"]);
        assert_eq!(bypass_privilege(&ro, true, false), Some("READ_ONLY ADMIN"));
        let mysql = g(&[
            "GRANT SELECT ON *.* TO `x`@`%`",
            "GRANT CONNECTION_ADMIN ON *.* TO `x`@`%`",
        ]);
        assert_eq!(
            bypass_privilege(&mysql, false, false),
            Some("CONNECTION_ADMIN")
        );
        assert_eq!(
            bypass_privilege(&mysql, false, true),
            None,
            "super_read_only holds"
        );
        let super_ = g(&["GRANT SUPER ON *.* TO `x`@`%`"]);
        assert_eq!(bypass_privilege(&super_, false, false), Some("SUPER"));
    }
}
