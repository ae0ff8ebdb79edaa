//! PostgreSQL with streaming standbys: `pg_is_in_recovery()` for the role, the WAL receiver and
//! replay state for replication health, and replay lag that stays zero on an idle primary.

use std::time::Duration;

use futures_core::future::BoxFuture;
use futures_util::FutureExt;
use sqlx::{AssertSqlSafe, Pool, Postgres, SqlSafeStr};

use super::checksum::{run_plan, Checksum, Checksums, Plan, Side};
use super::{
    backend_executors, network_server_info, Backend, ErrorClass, PrimaryProbe, ReplicaProbe,
    Sealed, Waited,
};
use crate::classify::names::{render, Name};
use crate::classify::Dialect;
use crate::error::Error;
use crate::position::Position;

/// One round trip: role, receiver, replay and lag. When everything received has been replayed
/// the standby is caught up and lag is zero: `now() - pg_last_xact_replay_timestamp()` alone
/// grows without bound on an idle primary although nothing is missing.
const REPLICA_PROBE: &str = "SELECT \
    NOT pg_is_in_recovery() AND NOT current_setting('default_transaction_read_only')::bool \
      AS writable, \
    EXISTS (SELECT 1 FROM pg_stat_wal_receiver WHERE status = 'streaming') AS receiving, \
    CASE WHEN pg_is_in_recovery() THEN NOT pg_is_wal_replay_paused() ELSE false END AS applying, \
    CASE \
      WHEN NOT pg_is_in_recovery() THEN NULL \
      WHEN pg_last_wal_receive_lsn() IS NOT DISTINCT FROM pg_last_wal_replay_lsn() THEN 0::float8 \
      ELSE GREATEST(0, EXTRACT(EPOCH FROM (clock_timestamp() - pg_last_xact_replay_timestamp())))::float8 \
    END AS lag_seconds, \
    pg_last_wal_replay_lsn()::text AS applied, \
    (SELECT received_tli FROM pg_stat_wal_receiver)::int8 AS timeline";

/// The primary's role (read-only when in recovery, or when `default_transaction_read_only` is
/// on: how a switchover can demote a primary gracefully before stopping it) and its cluster's
/// identity, in one round trip.
const PRIMARY_PROBE: &str = "SELECT \
    pg_is_in_recovery() OR current_setting('default_transaction_read_only')::bool, \
    (SELECT system_identifier::text FROM pg_control_system())";

/// `position` (an LSN) on `timeline`, when known.
fn on_timeline(position: Position, timeline: Option<u32>) -> Position {
    match (position, timeline) {
        (Position::Lsn(lsn), Some(timeline)) => Position::PgLsn { timeline, lsn },
        (position, _) => position,
    }
}

/// The longest pause between two polls of a causal wait.
const MAX_POLL_PAUSE: Duration = Duration::from_millis(16);

impl Sealed for Postgres {}

impl Backend for Postgres {
    const DIALECT: Dialect = Dialect::Postgres;
    const SYSTEM: &'static str = "postgresql";
    backend_executors!();

    network_server_info!();

    fn probe_replica<'a>(
        conn: &'a mut sqlx::PgConnection,
        heartbeat: Option<&'a str>,
    ) -> BoxFuture<'a, Result<ReplicaProbe, sqlx::Error>> {
        async move {
            let (writable, receiving, applying, lag, applied, timeline): (
                bool,
                bool,
                bool,
                Option<f64>,
                Option<String>,
                Option<i64>,
            ) = sqlx::query_as(REPLICA_PROBE).fetch_one(&mut *conn).await?;
            // Without a known timeline (no WAL receiver), the position compares with nothing a
            // session captured: its causal reads go to the primary.
            let timeline = timeline.and_then(|t| u32::try_from(t).ok());
            let position = applied.as_deref().and_then(Position::parse_lsn);
            let mut probe = ReplicaProbe {
                writable,
                receiving,
                applying,
                // Microsecond timestamps: no rounding to add.
                lag: lag.and_then(|s| Duration::try_from_secs_f64(s).ok()),
                lag_rounding: Duration::ZERO,
                position: position.map(|p| on_timeline(p, timeline)),
            };
            if let (Some(table), true) = (heartbeat, applying) {
                // A lock on the heartbeat table replayed from the primary must not hold the
                // probe: a short lock timeout, and the server's own lag when it fails.
                let _ = sqlx::raw_sql("SET lock_timeout = '100ms'")
                    .execute(&mut *conn)
                    .await;
                let sql = format!(
                    "SELECT (EXTRACT(EPOCH FROM (clock_timestamp() - ts)) * 1000000)::int8 \
                     FROM {table} WHERE id = 1"
                );
                let us: Result<Option<i64>, _> = sqlx::query_scalar(AssertSqlSafe(sql))
                    .fetch_optional(&mut *conn)
                    .await;
                if let Ok(Some(us)) = us {
                    probe.lag = Some(Duration::from_micros(us.max(0) as u64));
                }
            }
            Ok(probe)
        }
        .boxed()
    }

    /// | SQLSTATE | class |
    /// |---|---|
    /// | 08001/08004 connection rejected, 28000/28P01 login refused, 3D000 unknown database, 53300 too many connections, 57P03 cannot connect now | `ServerDown` |
    /// | 08000/08003/08006 connection failure, 57P01 terminated by an administrator (also `pg_terminate_backend`), 57P02 crash of another backend | `ConnectionLost` |
    /// | 25006 read-only transaction (a standby) | `ReadOnly` |
    /// | anything else (42501 permission denied, syntax, constraints, ...) | `Statement` |
    fn error_class(err: &dyn sqlx::error::DatabaseError) -> ErrorClass {
        match err.code().as_deref() {
            Some("08001" | "08004" | "28000" | "28P01" | "3D000" | "53300" | "57P03") => {
                ErrorClass::ServerDown
            }
            Some("08000" | "08003" | "08006" | "57P01" | "57P02") => ErrorClass::ConnectionLost,
            Some("25006") => ErrorClass::ReadOnly,
            _ => ErrorClass::Statement,
        }
    }

    fn server_facts<'a>(
        pool: &'a Pool<Self>,
    ) -> BoxFuture<'a, Result<Option<super::ServerFacts>, sqlx::Error>> {
        async move {
            let (identity, in_recovery, max): (String, bool, i32) = sqlx::query_as(
                "SELECT coalesce(host(inet_server_addr()), 'local') || ':' || \
                 coalesce(inet_server_port(), 0)::text || '@' || pg_postmaster_start_time()::text, \
                 pg_is_in_recovery(), current_setting('max_connections')::int",
            )
            .fetch_one(pool)
            .await?;
            Ok(Some(super::ServerFacts {
                identity,
                writable: !in_recovery,
                max_connections: u32::try_from(max).ok(),
                // Nobody writes on a standby in recovery, whatever their privileges.
                bypasses_read_only: None,
            }))
        }
        .boxed()
    }

    fn position_on<'a>(
        conn: &'a mut sqlx::PgConnection,
        _system: &'a str,
    ) -> BoxFuture<'a, Result<Option<Position>, sqlx::Error>> {
        async move {
            // The insert location, not the write location: with asynchronous commit the commit
            // record may still sit in WAL buffers, before `pg_current_wal_lsn()` (the WAL
            // writer flushes and streams it within wal_writer_delay).
            let (lsn, file): (String, String) = sqlx::query_as(
                "SELECT l::text, pg_walfile_name(l) \
                 FROM (SELECT pg_current_wal_insert_lsn() AS l) AS now",
            )
            .fetch_one(&mut *conn)
            .await?;
            // A WAL file name starts with its timeline, 8 hex digits.
            let timeline = file.get(..8).and_then(|t| u32::from_str_radix(t, 16).ok());
            Ok(Position::parse_lsn(&lsn).map(|p| on_timeline(p, timeline)))
        }
        .boxed()
    }

    fn wait_on<'a>(
        conn: &'a mut sqlx::PgConnection,
        _system: &'a str,
        position: &'a Position,
        timeout: Duration,
    ) -> BoxFuture<'a, Result<Waited, sqlx::Error>> {
        async move {
            let deadline = tokio::time::Instant::now() + timeout;
            let target = position.server_text();
            // Only a standby on the position's timeline can reach it.
            let timeline = match position {
                Position::PgLsn { timeline, .. } => i64::from(*timeline),
                _ => return Ok(Waited::Unable("the position has no PostgreSQL timeline")),
            };
            // PostgreSQL 15-17 have no server-side wait for an LSN: poll, backing off
            // exponentially from 1 ms to 16 ms (a 200 ms budget takes at most 17 polls).
            let mut pause = Duration::from_millis(1);
            loop {
                // NULL only on a server that is not a standby (no replay location); a standby
                // on another (or no known) timeline answers false until the wait runs out.
                let reached: Option<bool> = sqlx::query_scalar(
                    "SELECT CASE WHEN pg_last_wal_replay_lsn() IS NULL THEN NULL \
                     ELSE pg_last_wal_replay_lsn() >= $1::pg_lsn \
                     AND coalesce((SELECT received_tli FROM pg_stat_wal_receiver) = $2, false) END",
                )
                .bind(&target)
                .bind(timeline)
                .fetch_one(&mut *conn)
                .await?;
                match reached {
                    Some(true) => return Ok(Waited::Reached),
                    None => {
                        let why = "the server is not a standby (pg_last_wal_replay_lsn() is NULL)";
                        return Ok(Waited::Unable(why));
                    }
                    Some(false) => {}
                }
                let now = tokio::time::Instant::now();
                if now >= deadline {
                    return Ok(Waited::TimedOut);
                }
                tokio::time::sleep(pause.min(deadline - now)).await;
                pause = (pause * 2).min(MAX_POLL_PAUSE);
            }
        }
        .boxed()
    }

    /// The cluster is identified by `system_identifier`, never by an address.
    fn static_cluster_identity(_info: &super::ServerInfo) -> Option<String> {
        None
    }

    fn cluster_identity<'a>(
        conn: &'a mut sqlx::PgConnection,
    ) -> BoxFuture<'a, Result<Option<String>, sqlx::Error>> {
        async move {
            sqlx::query_scalar("SELECT system_identifier::text FROM pg_control_system()")
                .fetch_optional(&mut *conn)
                .await
        }
        .boxed()
    }

    fn function_volatility<'a>(
        pool: &'a Pool<Self>,
        names: &'a [std::sync::Arc<str>],
    ) -> BoxFuture<'a, Result<Vec<(String, bool)>, sqlx::Error>> {
        async move {
            let mut functions = Lookup::default();
            let mut operators = Lookup::default();
            for key in names {
                match Name::parse(key, Dialect::Postgres) {
                    Some(Name::Function { schema, name }) => functions.push(key, schema, name),
                    Some(Name::Operator { schema, name }) => operators.push(key, schema, name),
                    // Not a name any lookup can answer: left out, so unsafe.
                    None => {}
                }
            }
            if functions.keys.is_empty() && operators.keys.is_empty() {
                return Ok(Vec::new());
            }
            let (side_effect, prefixes) = crate::classify::builtin_side_effects(Dialect::Postgres);
            let prefixes = like_prefixes(&prefixes);
            catalog_read(|| {
                sqlx::query_as(FUNCTION_VOLATILITY)
                    .bind(&functions.keys[..])
                    .bind(&functions.schemas[..])
                    .bind(&functions.names[..])
                    .bind(&operators.keys[..])
                    .bind(&operators.schemas[..])
                    .bind(&operators.names[..])
                    .bind(&side_effect[..])
                    .bind(&prefixes[..])
                    .fetch_all(pool)
            })
            .await
        }
        .boxed()
    }

    fn unsafe_objects<'a>(
        pool: &'a Pool<Self>,
        side_effect: &'a [String],
        prefixes: &'a [String],
    ) -> BoxFuture<'a, Result<super::UnsafeObjects, sqlx::Error>> {
        async move {
            let (session, session_prefix) = crate::classify::session_relations();
            let prefixes = like_prefixes(prefixes);
            let session_prefix = like_prefixes(&[session_prefix.to_string()]).concat();
            let rows: Vec<(String, String, String)> = catalog_read(|| {
                sqlx::query_as(UNSAFE_OBJECTS)
                    .bind(side_effect)
                    .bind(&prefixes[..])
                    .bind(session)
                    .bind(session_prefix.as_str())
                    .fetch_all(pool)
            })
            .await?;
            let (mut relations, mut shadowed, mut types) = (Vec::new(), Vec::new(), Vec::new());
            for (kind, schema, name) in rows {
                let list = match kind.as_str() {
                    "r" => &mut relations,
                    "t" => &mut types,
                    _ => {
                        shadowed.push(name);
                        continue;
                    }
                };
                list.push(render(&[&schema, &name], Dialect::Postgres));
                list.push(render(&[&name], Dialect::Postgres));
            }
            Ok((relations, shadowed, types))
        }
        .boxed()
    }

    fn probe_primary<'a>(
        conn: &'a mut sqlx::PgConnection,
        heartbeat: Option<&'a str>,
    ) -> BoxFuture<'a, Result<PrimaryProbe, sqlx::Error>> {
        async move {
            let (in_recovery, cluster): (bool, Option<String>) =
                sqlx::query_as(PRIMARY_PROBE).fetch_one(&mut *conn).await?;
            if let (Some(table), false) = (heartbeat, in_recovery) {
                // The server answered: that is the probe. The beat is best effort, and must not
                // wait behind an application's lock on the heartbeat table (a lock there is not
                // an outage): a short lock timeout, and a failed beat is skipped.
                let beat = format!(
                    "SET lock_timeout = '100ms'; \
                     CREATE TABLE IF NOT EXISTS {table} (id int PRIMARY KEY, ts timestamptz NOT NULL); \
                     INSERT INTO {table} (id, ts) VALUES (1, clock_timestamp()) \
                     ON CONFLICT (id) DO UPDATE SET ts = excluded.ts"
                );
                let _ = sqlx::raw_sql(AssertSqlSafe(beat)).execute(&mut *conn).await;
            }
            Ok(PrimaryProbe {
                writable: !in_recovery,
                system: None,
                cluster,
            })
        }
        .boxed()
    }
}

// The catalog lookups of `crate::volatility` (README, "Asking the catalog").

/// Functions whose call may write or keep state, and the user types whose values run one
/// when made. A function is unsafe when declared `VOLATILE`, one of the side-effect list's
/// `pg_catalog` functions (`$7` by name, `$8` by prefix), or a user function declared
/// `STABLE`/`IMMUTABLE` that calls an unsafe function or uses an unsafe type: by `pg_depend`
/// (argument and result types, and what SQL-standard bodies use) or by its body's text (SQL
/// and PL/pgSQL: any `name(` in it names a function, blanks and comments allowed before the
/// `(` (a look-ahead: no text is skipped, and `/* .. */` spans any text, so nesting only makes
/// more calls), any name a type; unquoted names may hold non-ASCII letters; literals included,
/// matched by name in every schema, as written and ASCII-folded as the server folds it;
/// PostgreSQL records no dependency on its own functions, and none for string bodies) and
/// the text of its parameter defaults (any language). A user type is unsafe when its conversion or making may run an
/// unsafe function: by `pg_depend` (a domain's CHECK constraints and base type, a range's
/// subtype, an array's element type, a composite's or row type's columns, the type's own
/// input functions), a CHECK's text calling one by name, or a cast from or to it whose
/// function is one. Both close over each other (one recursive graph walk). A call the text
/// does not show (dynamic SQL built from pieces, an operator) is not seen.
macro_rules! unsafe_procs {
    ($names:literal, $prefixes:literal) => {
        concat!(
            "user_type(oid) AS ( \
              SELECT t.oid FROM pg_type t \
              WHERE t.typnamespace NOT IN ('pg_catalog'::regnamespace, 'information_schema'::regnamespace)), \
            body_text(oid, src) AS MATERIALIZED ( \
              SELECT p.oid, CASE WHEN p.prolang IN (SELECT oid FROM pg_language WHERE lanname IN ('sql', 'plpgsql')) \
                THEN CASE WHEN p.prosqlbody IS NULL THEN p.prosrc ELSE pg_get_function_sqlbody(p.oid) END \
                ELSE '' END || ' ' || coalesce(pg_get_expr(p.proargdefaults, 0), '') FROM pg_proc p \
              WHERE p.provolatile <> 'v' \
                AND p.pronamespace NOT IN ('pg_catalog'::regnamespace, 'information_schema'::regnamespace)), \
            body_word(oid, nsp, name, call) AS MATERIALIZED ( \
              SELECT b.oid, x.nsp, y.name, false FROM body_text b \
              CROSS JOIN LATERAL regexp_matches(b.src, '(?:\"?([A-Za-z_\\u0080-\\U0010FFFF][A-Za-z0-9_$\\u0080-\\U0010FFFF]*)\"?\\.)?\"?([A-Za-z_\\u0080-\\U0010FFFF][A-Za-z0-9_$\\u0080-\\U0010FFFF]*)\"?', 'g') AS m \
              CROSS JOIN LATERAL (VALUES (m[1]), (translate(m[1], 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz'))) AS x(nsp) \
              CROSS JOIN LATERAL (VALUES (m[2]), (translate(m[2], 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz'))) AS y(name) \
              UNION \
              SELECT b.oid, x.nsp, y.name, true FROM body_text b \
              CROSS JOIN LATERAL regexp_matches(b.src, '(?:\"?([A-Za-z_\\u0080-\\U0010FFFF][A-Za-z0-9_$\\u0080-\\U0010FFFF]*)\"?\\.)?\"?([A-Za-z_\\u0080-\\U0010FFFF][A-Za-z0-9_$\\u0080-\\U0010FFFF]*)\"?(?=(?:\\s|/\\*.*\\*/|--[^\\n]*\\n)*\\()', 'g') AS m \
              CROSS JOIN LATERAL (VALUES (m[1]), (translate(m[1], 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz'))) AS x(nsp) \
              CROSS JOIN LATERAL (VALUES (m[2]), (translate(m[2], 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz'))) AS y(name)), \
            edge(k, oid, rk, roid) AS MATERIALIZED ( \
              SELECT 'p', d.objid, 'p', d.refobjid FROM pg_depend d \
              WHERE d.classid = 'pg_proc'::regclass AND d.refclassid = 'pg_proc'::regclass \
              UNION ALL \
              SELECT 'p', w.oid, 'p', q.oid FROM body_word w JOIN pg_proc q ON q.proname = w.name \
                AND (w.nsp IS NULL OR q.pronamespace IN (SELECT oid FROM pg_namespace WHERE nspname = w.nsp)) \
              WHERE w.call \
              UNION ALL \
              SELECT 'p', w.oid, 't', t.oid FROM body_word w JOIN pg_type t ON t.typname = w.name \
                AND (w.nsp IS NULL OR t.typnamespace IN (SELECT oid FROM pg_namespace WHERE nspname = w.nsp)) \
              WHERE t.oid IN (SELECT oid FROM user_type) \
              UNION ALL \
              SELECT CASE d.classid WHEN 'pg_proc'::regclass THEN 'p' ELSE 't' END, \
                CASE d.classid WHEN 'pg_constraint'::regclass THEN con.contypid \
                  WHEN 'pg_class'::regclass THEN c.reltype ELSE d.objid END, \
                CASE d.refclassid WHEN 'pg_proc'::regclass THEN 'p' ELSE 't' END, d.refobjid \
              FROM pg_depend d \
              LEFT JOIN pg_constraint con ON d.classid = 'pg_constraint'::regclass AND con.oid = d.objid \
              LEFT JOIN pg_class c ON d.classid = 'pg_class'::regclass AND c.oid = d.objid \
              WHERE d.refclassid IN ('pg_proc'::regclass, 'pg_type'::regclass) \
                AND (d.classid IN ('pg_type'::regclass, 'pg_proc'::regclass) \
                     OR (d.classid = 'pg_constraint'::regclass AND con.contypid <> 0) \
                     OR (d.classid = 'pg_class'::regclass AND d.objsubid > 0 AND c.reltype <> 0)) \
                AND NOT (d.classid = 'pg_proc'::regclass AND d.refclassid = 'pg_proc'::regclass) \
              UNION ALL \
              SELECT 't', con.contypid, 'p', q.oid FROM pg_constraint con \
              CROSS JOIN LATERAL regexp_matches(pg_get_constraintdef(con.oid), \
                '(?:\"?([A-Za-z_\\u0080-\\U0010FFFF][A-Za-z0-9_$\\u0080-\\U0010FFFF]*)\"?\\.)?\"?([A-Za-z_\\u0080-\\U0010FFFF][A-Za-z0-9_$\\u0080-\\U0010FFFF]*)\"?(?=(?:\\s|/\\*.*\\*/|--[^\\n]*\\n)*\\()', 'g') AS m \
              JOIN pg_proc q ON q.proname IN (m[2], translate(m[2], 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz')) \
                AND (m[1] IS NULL OR q.pronamespace IN (SELECT oid FROM pg_namespace WHERE nspname IN (m[1], translate(m[1], 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz')))) \
              WHERE con.contypid <> 0 \
              UNION ALL \
              SELECT 't', f.t, 'p', c.castfunc FROM pg_cast c \
              CROSS JOIN LATERAL (VALUES (c.castsource), (c.casttarget)) AS f(t) \
              WHERE c.castfunc <> 0 AND f.t IN (SELECT oid FROM user_type) \
              UNION ALL \
              SELECT 't', t.oid, 'p', f.p FROM pg_type t \
              CROSS JOIN LATERAL (VALUES (t.typinput), (t.typreceive), (t.typmodin)) AS f(p) \
              WHERE t.oid IN (SELECT oid FROM user_type) AND f.p <> 0), \
            unsafe_obj(k, oid) AS ( \
              SELECT 'p', p.oid FROM pg_proc p WHERE p.provolatile = 'v' \
                OR (p.pronamespace = 'pg_catalog'::regnamespace \
                    AND (p.proname = ANY(",
            $names,
            "::text[]) OR p.proname LIKE ANY(",
            $prefixes,
            "::text[]))) \
              UNION \
              SELECT e.k, e.oid FROM edge e JOIN unsafe_obj u ON e.rk = u.k AND e.roid = u.oid), \
            unsafe_proc(oid) AS (SELECT oid FROM unsafe_obj WHERE k = 'p'), \
            unsafe_type(oid) AS ( \
              SELECT oid FROM unsafe_obj WHERE k = 't' AND oid IN (SELECT oid FROM user_type))"
        )
    };
}

/// One row per asked name that exists: unsafe if any match is (every overload of the name:
/// argument types are not resolved; a bare name in every schema, as `search_path` may reach
/// any; a qualified one in its schema only). Operators by `pg_operator.oprcode`. A function
/// name that is also a user type's is unsafe if the type is (`name(x)` is a cast to it when no
/// function matches exactly).
const FUNCTION_VOLATILITY: &str = concat!(
    "WITH RECURSIVE ",
    unsafe_procs!("$7", "$8"),
    ", \
    f(k, nsp, name) AS (SELECT * FROM unnest($1::text[], $2::text[], $3::text[])), \
    o(k, nsp, name) AS (SELECT * FROM unnest($4::text[], $5::text[], $6::text[])) \
    SELECT k, bool_or(is_unsafe) FROM ( \
      SELECT f.k, p.oid IN (SELECT oid FROM unsafe_proc) AS is_unsafe \
      FROM f JOIN pg_proc p ON p.proname = f.name \
      AND (f.nsp IS NULL OR p.pronamespace = (SELECT oid FROM pg_namespace WHERE nspname = f.nsp)) \
      UNION ALL \
      SELECT o.k, p.oid IN (SELECT oid FROM unsafe_proc) \
      FROM o JOIN pg_operator op ON op.oprname = o.name \
      AND (o.nsp IS NULL OR op.oprnamespace = (SELECT oid FROM pg_namespace WHERE nspname = o.nsp)) \
      JOIN pg_proc p ON p.oid = op.oprcode \
      UNION ALL \
      SELECT f.k, t.oid IN (SELECT oid FROM unsafe_type) \
      FROM f JOIN pg_type t ON t.typname = f.name \
      AND (f.nsp IS NULL OR t.typnamespace = (SELECT oid FROM pg_namespace WHERE nspname = f.nsp)) \
    ) AS answers GROUP BY k"
);

/// Relations (outside `pg_catalog` and `information_schema`) whose reading runs an unsafe
/// function: views whose rewrite rule depends on one (directly or through an operator), or
/// whose definition's text calls one by name (PostgreSQL records no dependency on its own
/// functions, so a view over `pg_advisory_lock` shows only in its text), tables whose
/// row-security policy does either, tables whose row type an unsafe function takes as its one
/// argument (`SELECT t.f FROM t` calls `f(t)`), tables with a column of a user type that an
/// unsafe operator or cast takes (`WHERE m = 1` may call a user `=`), views whose `SELECT`
/// rule's query tree has a row mark (a locking clause, `FOR UPDATE` / `FOR NO KEY UPDATE` /
/// `FOR SHARE` / `FOR KEY SHARE`, at any level: a subquery, a sublink or a CTE of the view;
/// `ev_action`'s text holds `:rowMarks ({` for each query with one, `:rowMarks <>` otherwise,
/// and names and literals in it never spell the former: names are escaped, constants are
/// bytes), as reading one locks rows (a standby refuses it), and views over any of those or
/// over a system view of the session's state (`$3` by name, `$4` by pattern: `pg_settings`,
/// `pg_cursors`, ...; the server records no dependencies of its own views); a materialized
/// view runs nothing when read (rows of kind `r`); a view whose rewrite rule depends on an
/// unsafe type is one too. The unsafe types of `unsafe_procs!` (rows of kind `t`). And (rows of kind `f`) the names of
/// `pg_catalog` functions that an unsafe function of another schema shares, and as
/// `operator(sym)` the symbols of operators of other schemas whose function is unsafe.
const UNSAFE_OBJECTS: &str = concat!(
    "WITH RECURSIVE ",
    unsafe_procs!("$1", "$2"),
    ", \
    unsafe_dep(classid, objid) AS ( \
      SELECT d.classid, d.objid FROM pg_depend d \
      WHERE (d.refclassid = 'pg_proc'::regclass AND d.refobjid IN (SELECT oid FROM unsafe_proc)) \
         OR (d.refclassid = 'pg_operator'::regclass AND d.refobjid IN \
             (SELECT op.oid FROM pg_operator op WHERE op.oprcode IN (SELECT oid FROM unsafe_proc))) \
         OR (d.refclassid = 'pg_type'::regclass AND d.refobjid IN (SELECT oid FROM unsafe_type))), \
    user_rel AS ( \
      SELECT c.oid, c.reltype, c.relkind FROM pg_class c \
      WHERE c.relnamespace NOT IN ('pg_catalog'::regnamespace, 'information_schema'::regnamespace)), \
    unsafe_rel(oid) AS ( \
      SELECT r.ev_class FROM pg_rewrite r JOIN unsafe_dep d \
        ON d.classid = 'pg_rewrite'::regclass AND d.objid = r.oid \
      WHERE r.ev_class IN (SELECT oid FROM user_rel WHERE relkind = 'v') \
      UNION \
      SELECT c.oid FROM pg_class c WHERE c.relnamespace = 'pg_catalog'::regnamespace \
        AND (c.relname = ANY($3::text[]) OR c.relname LIKE $4) \
      UNION \
      SELECT pol.polrelid FROM pg_policy pol JOIN unsafe_dep d \
        ON d.classid = 'pg_policy'::regclass AND d.objid = pol.oid \
      UNION \
      SELECT u.oid FROM user_rel u \
      CROSS JOIN LATERAL regexp_matches(pg_get_viewdef(u.oid), '(?:\"?([A-Za-z_\\u0080-\\U0010FFFF][A-Za-z0-9_$\\u0080-\\U0010FFFF]*)\"?\\.)?\"?([A-Za-z_\\u0080-\\U0010FFFF][A-Za-z0-9_$\\u0080-\\U0010FFFF]*)\"?(?=(?:\\s|/\\*.*\\*/|--[^\\n]*\\n)*\\()', 'g') AS m \
      JOIN pg_proc q ON q.proname IN (m[2], translate(m[2], 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz')) \
        AND (m[1] IS NULL OR q.pronamespace IN (SELECT oid FROM pg_namespace WHERE nspname IN (m[1], translate(m[1], 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz')))) \
      WHERE u.relkind = 'v' AND q.oid IN (SELECT oid FROM unsafe_proc) \
      UNION \
      SELECT pol.polrelid FROM pg_policy pol \
      CROSS JOIN LATERAL regexp_matches( \
        coalesce(pg_get_expr(pol.polqual, pol.polrelid), '') || ' ' \
          || coalesce(pg_get_expr(pol.polwithcheck, pol.polrelid), ''), \
        '(?:\"?([A-Za-z_\\u0080-\\U0010FFFF][A-Za-z0-9_$\\u0080-\\U0010FFFF]*)\"?\\.)?\"?([A-Za-z_\\u0080-\\U0010FFFF][A-Za-z0-9_$\\u0080-\\U0010FFFF]*)\"?(?=(?:\\s|/\\*.*\\*/|--[^\\n]*\\n)*\\()', 'g') AS m \
      JOIN pg_proc q ON q.proname IN (m[2], translate(m[2], 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz')) \
        AND (m[1] IS NULL OR q.pronamespace IN (SELECT oid FROM pg_namespace WHERE nspname IN (m[1], translate(m[1], 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz')))) \
      WHERE q.oid IN (SELECT oid FROM unsafe_proc) \
      UNION \
      SELECT u.oid FROM user_rel u JOIN pg_proc p ON p.pronargs = 1 AND p.proargtypes[0] = u.reltype \
      WHERE p.oid IN (SELECT oid FROM unsafe_proc) \
      UNION \
      SELECT a.attrelid FROM pg_attribute a JOIN user_rel u ON u.oid = a.attrelid \
      JOIN pg_type t ON t.oid = a.atttypid \
      WHERE a.attnum > 0 AND NOT a.attisdropped \
        AND t.typnamespace NOT IN ('pg_catalog'::regnamespace, 'information_schema'::regnamespace) \
        AND a.atttypid IN ( \
          SELECT op.oprleft FROM pg_operator op WHERE op.oprcode IN (SELECT oid FROM unsafe_proc) \
          UNION SELECT op.oprright FROM pg_operator op WHERE op.oprcode IN (SELECT oid FROM unsafe_proc) \
          UNION SELECT c.castsource FROM pg_cast c WHERE c.castfunc IN (SELECT oid FROM unsafe_proc)) \
      UNION \
      SELECT r.ev_class FROM pg_rewrite r \
      WHERE r.ev_type = '1' AND strpos(r.ev_action::text, ':rowMarks ({') > 0 \
        AND r.ev_class IN (SELECT oid FROM user_rel WHERE relkind = 'v') \
      UNION \
      SELECT r.ev_class FROM pg_rewrite r \
      JOIN pg_class c ON c.oid = r.ev_class AND c.relkind = 'v' \
      JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.objid = r.oid \
      JOIN unsafe_rel b ON d.refclassid = 'pg_class'::regclass AND d.refobjid = b.oid \
      WHERE r.ev_class <> b.oid) \
    SELECT 'r', n.nspname::text, c.relname::text FROM (SELECT DISTINCT oid FROM unsafe_rel) AS b \
    JOIN pg_class c ON c.oid = b.oid JOIN pg_namespace n ON n.oid = c.relnamespace \
    WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') \
    UNION \
    SELECT 't', n.nspname::text, t.typname::text FROM (SELECT DISTINCT oid FROM unsafe_type) AS u \
    JOIN pg_type t ON t.oid = u.oid JOIN pg_namespace n ON n.oid = t.typnamespace \
    UNION \
    SELECT DISTINCT 'f', '', p.proname::text FROM pg_proc p \
    WHERE p.pronamespace NOT IN ('pg_catalog'::regnamespace, 'information_schema'::regnamespace) \
      AND p.oid IN (SELECT oid FROM unsafe_proc) \
      AND EXISTS (SELECT 1 FROM pg_proc b \
                  WHERE b.pronamespace = 'pg_catalog'::regnamespace AND b.proname = p.proname) \
    UNION \
    SELECT DISTINCT 'f', '', 'operator(' || op.oprname::text || ')' FROM pg_operator op \
    WHERE op.oprnamespace NOT IN ('pg_catalog'::regnamespace, 'information_schema'::regnamespace) \
      AND op.oprcode IN (SELECT oid FROM unsafe_proc)"
);

/// How many times a catalog lookup runs when the server fails it on an object dropped while it
/// read the catalog ([`dropped_meanwhile`]).
const CATALOG_ATTEMPTS: u32 = 5;
/// The pause before the second run of such a lookup; the next pauses grow by as much (0.5 s of
/// pauses in all).
const CATALOG_PAUSE: Duration = Duration::from_millis(50);

/// Runs a catalog lookup again, after a short pause, when the server failed it because an
/// object it read was dropped meanwhile: each new run reads a new snapshot of the catalog,
/// without the dropped object. Any other error, or the last attempt's, is returned (the
/// caller then keeps what it had and asks again later).
async fn catalog_read<T, F, Fut>(mut run: F) -> Result<T, sqlx::Error>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, sqlx::Error>>,
{
    let mut attempt = 1;
    loop {
        match run().await {
            Err(e) if attempt < CATALOG_ATTEMPTS && dropped_meanwhile(&e) => {
                // A pause that lets a burst of DDL (a migration dropping views) end.
                tokio::time::sleep(CATALOG_PAUSE * attempt).await;
                attempt += 1;
            }
            result => return result,
        }
    }
}

/// `pg_get_viewdef` and `pg_get_expr` read an object's current definition, not the query's
/// snapshot of the catalog: when a view, policy or relation the query listed is dropped by the
/// time they read it, they fail with an internal error (`XX000`: "could not open relation with
/// OID", "cache lookup failed"; seen on PostgreSQL 15 with views created and dropped beside the
/// lookup). The locks they take can also meet a `DROP ... CASCADE` taking the same locks in
/// another order, and the server then ends one of the two as a deadlock (`40P01`).
fn dropped_meanwhile(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .and_then(|d| d.code())
        .is_some_and(|code| code == "XX000" || code == "40P01")
}

/// Side-effect prefixes as `LIKE` patterns (`_` escaped).
fn like_prefixes(prefixes: &[String]) -> Vec<String> {
    prefixes
        .iter()
        .map(|p| {
            let escaped = p
                .replace('\\', "\\\\")
                .replace('_', "\\_")
                .replace('%', "\\%");
            format!("{escaped}%")
        })
        .collect()
}

/// The parallel arrays of one kind of name asked of the catalog.
#[derive(Default)]
struct Lookup {
    keys: Vec<String>,
    schemas: Vec<Option<String>>,
    names: Vec<String>,
}

impl Lookup {
    fn push(&mut self, key: &str, schema: Option<String>, name: String) {
        self.keys.push(key.to_string());
        self.schemas.push(schema);
        self.names.push(name);
    }
}

// The drift check's statements (see `checksum.rs`).

/// `ident` in double quotes, quotes doubled (so reserved words and catalog names work).
fn quote(ident: &str) -> String {
    format!("\"{}\"", ident.replace('"', "\"\""))
}

impl Checksums for Postgres {
    const INTEGER_TYPES: &'static [&'static str] = &["smallint", "integer", "bigint"];

    async fn columns(
        primary: &mut Side<Self>,
        schema: Option<&str>,
        table: &str,
    ) -> Result<Vec<(String, String)>, Error> {
        let query = sqlx::query_as(
            "SELECT column_name::text, data_type::text FROM information_schema.columns \
             WHERE table_schema = COALESCE($1, current_schema()) AND table_name = $2 \
             ORDER BY ordinal_position",
        );
        let schema = schema.map(str::to_ascii_lowercase);
        let query = query.bind(schema).bind(table.to_ascii_lowercase());
        Ok(query.fetch_all(&mut *primary.conn).await?)
    }

    fn plan(schema: Option<&str>, table: &str, key: &str, _columns: &[&str]) -> Plan {
        // The validated names fold to lower case, as unquoted names do; the key column is
        // the catalog's spelling. The row's text form covers every column.
        let table = match schema {
            Some(schema) => format!("{}.", quote(&schema.to_ascii_lowercase())),
            None => String::new(),
        } + &quote(&table.to_ascii_lowercase());
        let key = quote(key);
        let boundary = format!(
            "SELECT {key}::int8 FROM {table} WHERE {key} >= $1 ORDER BY {key} LIMIT 1 OFFSET $2"
        );
        let checksum = format!(
            "SELECT count(*), (COALESCE(sum(('x' || substr(md5(ROW(rwsplit_row.*)::text), \
             1, 16))::bit(64)::int8), 0) % 9223372036854775807)::int8 \
             FROM {table} AS rwsplit_row WHERE {key} BETWEEN $1 AND $2"
        );
        Plan {
            boundary: AssertSqlSafe(boundary).into_sql_str(),
            checksum: AssertSqlSafe(checksum).into_sql_str(),
        }
    }

    run_plan!();
}
