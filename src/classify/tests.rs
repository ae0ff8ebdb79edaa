//! One small test per rule. `r` = replica, `p(reason label)` = primary for that reason.

use super::*;
use crate::route::Target;

fn label(dialect: Dialect, sql: &str) -> (Target, &'static str) {
    let d = Classifier::new(dialect).decide(sql);
    (d.target, d.reason.label())
}

fn replica(dialect: Dialect, sql: &str) {
    assert_eq!(label(dialect, sql), (Target::Replica, "pure_read"), "{sql}");
}

fn primary(dialect: Dialect, sql: &str, reason: &str) {
    assert_eq!(
        label(dialect, sql),
        (Target::Primary, reason_static(reason)),
        "{sql}"
    );
}

fn reason_static(s: &str) -> &'static str {
    Box::leak(s.to_string().into_boxed_str())
}

const M: Dialect = Dialect::MySql;
const P: Dialect = Dialect::Postgres;
const S: Dialect = Dialect::Sqlite;

#[test]
fn plain_reads_go_to_replicas() {
    for d in [M, P, S] {
        replica(d, "SELECT 1");
        replica(d, "select id, name from users where id = 7");
        replica(
            d,
            "SELECT count(*) FROM orders o JOIN users u ON u.id = o.user_id",
        );
        replica(d, "WITH t AS (SELECT 1 AS x) SELECT x FROM t");
        replica(d, "SELECT * FROM a UNION ALL SELECT * FROM b");
        replica(d, "  \n /* leading */ SELECT 1");
    }
    replica(
        M,
        "SELECT * FROM users WHERE id IN (SELECT user_id FROM orders) LIMIT 10",
    );
    replica(P, "SELECT * FROM users WHERE id = $1");
    replica(M, "SELECT * FROM users WHERE id = ?");
    replica(S, "SELECT * FROM users WHERE id = ?1");
}

#[test]
fn write_keywords_in_literals_comments_and_identifiers_do_not_matter() {
    replica(M, "SELECT 'DELETE FROM users' AS s");
    replica(M, "SELECT /* UPDATE users SET x = 1 */ 1");
    replica(M, "SELECT `update`, `delete` FROM t");
    replica(
        M,
        "SELECT 'FOR UPDATE', 'LOCK IN SHARE MODE', 'x := 1', 'INTO @v'",
    );
    replica(
        P,
        "SELECT \"update\" FROM t WHERE note = 'FOR NO KEY UPDATE'",
    );
    replica(P, "SELECT 'nextval(''s'')'");
    replica(M, "SELECT 1 -- FOR UPDATE");
    replica(M, "SELECT 'it\\'s FOR UPDATE'");
    // Under NO_BACKSLASH_ESCAPES the string ends at the backslash and `FOR UPDATE` is SQL.
    primary(M, "SELECT 'a\\' FOR UPDATE -- '", "lexical_ambiguity");
}

#[test]
fn writes_go_to_primary() {
    for d in [M, P, S] {
        primary(d, "INSERT INTO t (a) VALUES (1)", "write");
        primary(d, "UPDATE t SET a = 1 WHERE id = 2", "write");
        primary(d, "DELETE FROM t WHERE id = 2", "write");
        primary(d, "CREATE TABLE t2 (id INT)", "write");
        primary(d, "DROP TABLE t", "write");
    }
    primary(M, "REPLACE INTO t VALUES (1)", "write");
    primary(M, "INSERT INTO t SELECT * FROM u", "write");
    primary(
        P,
        "MERGE INTO t USING u ON t.id = u.id WHEN MATCHED THEN DELETE",
        "write",
    );
}

#[test]
fn locking_reads_go_to_primary() {
    primary(M, "SELECT * FROM t WHERE id = 1 FOR UPDATE", "locking_read");
    primary(M, "SELECT * FROM t FOR SHARE", "locking_read");
    primary(M, "SELECT * FROM t LOCK IN SHARE MODE", "locking_read");
    primary(M, "SELECT * FROM t FOR UPDATE SKIP LOCKED", "locking_read");
    primary(
        M,
        "SELECT * FROM (SELECT * FROM t FOR UPDATE) x",
        "locking_read",
    );
    primary(
        M,
        "SELECT * FROM t WHERE id IN (SELECT id FROM u LOCK IN SHARE MODE)",
        "locking_read",
    );
    primary(P, "SELECT * FROM t FOR NO KEY UPDATE", "locking_read");
    primary(P, "SELECT * FROM t FOR KEY SHARE NOWAIT", "locking_read");
    primary(
        P,
        "WITH x AS (SELECT * FROM t FOR UPDATE) SELECT * FROM x",
        "locking_read",
    );
    primary(M, "LOCK TABLES t READ", "locking_read");
}

#[test]
fn side_effect_functions_go_to_primary_anywhere_in_the_tree() {
    for sql in [
        "SELECT GET_LOCK('a', 10)",
        "select release_lock('a')",
        "SELECT LAST_INSERT_ID()",
        "SELECT FOUND_ROWS()",
        "SELECT ROW_COUNT()",
        "SELECT NEXTVAL(s1)",
        "SELECT * FROM t WHERE id = (SELECT is_used_lock('x'))",
        "SELECT CASE WHEN 1 THEN Get_Lock('a', 0) END",
    ] {
        primary(M, sql, "side_effect_function");
    }
    for sql in [
        "SELECT nextval('s1')",
        "SELECT pg_catalog.nextval('s1')",
        "SELECT pg_advisory_lock(1)",
        "SELECT pg_try_advisory_xact_lock(1)",
        "SELECT set_config('a.b', 'c', false)",
        "SELECT * FROM t WHERE id = currval('s')",
        "SELECT txid_current()",
        "SELECT pg_notify('c', 'x')",
    ] {
        primary(P, sql, "side_effect_function");
    }
    primary(S, "SELECT last_insert_rowid()", "side_effect_function");
}

#[test]
fn session_variables_of_the_writer_go_to_primary() {
    primary(M, "SELECT @@last_insert_id", "session_variable");
    primary(M, "SELECT @@session.last_gtid", "session_variable");
    replica(M, "SELECT @@server_id");
    primary(M, "SELECT @user_var", "session_variable");
    primary(
        M,
        "SELECT id FROM users WHERE id = @uid",
        "session_variable",
    );
    primary(
        M,
        "SELECT SQL_CALC_FOUND_ROWS id FROM users LIMIT 2",
        "session_variable",
    );
}

#[test]
fn into_assignment_and_ctes() {
    primary(M, "SELECT id INTO @v FROM t LIMIT 1", "select_into");
    assert_eq!(
        label(M, "SELECT id FROM t LIMIT 1 INTO @v").0,
        Target::Primary
    );
    assert_eq!(
        label(M, "SELECT * FROM t INTO OUTFILE '/tmp/x'").0,
        Target::Primary
    );
    primary(P, "SELECT * INTO new_table FROM t", "select_into");
    primary(M, "SELECT @x := 1", "variable_assignment");
    primary(
        P,
        "WITH d AS (DELETE FROM t WHERE id = 1 RETURNING *) SELECT * FROM d",
        "data_modifying_cte",
    );
    primary(
        P,
        "WITH i AS (INSERT INTO t (a) VALUES (1) RETURNING id) SELECT id FROM i",
        "data_modifying_cte",
    );
}

#[test]
fn multi_statements_session_control_and_garbage() {
    primary(M, "SELECT 1; SELECT 2", "multi_statement");
    primary(M, "SELECT 1; DELETE FROM t", "multi_statement");
    replica(M, "SELECT 1;");
    for sql in [
        "SET @a = 1",
        "SET NAMES utf8mb4",
        "USE db",
        "BEGIN",
        "START TRANSACTION",
        "COMMIT",
    ] {
        primary(M, sql, "session_control");
    }
    primary(P, "LISTEN chan", "session_control");
    primary(P, "DISCARD ALL", "session_control");
    for sql in [
        "",
        "   ",
        ";",
        "SELEC * FORM x",
        "SELECT 'unterminated",
        "SELECT * FROM t WHERE",
    ] {
        primary(M, sql, "unparseable");
    }
}

#[test]
fn executable_comments_are_not_comments_on_mysql() {
    // sqlparser reads the body of `/*! */` as SQL, as the server does; either way the
    // statement must not reach a replica.
    for sql in [
        "SELECT * FROM t /*!50000 FOR UPDATE */",
        "SELECT 1 /*! , GET_LOCK('a', 0) */",
        "SELECT * FROM t /*!99999 LOCK IN SHARE MODE */",
        "SELECT id FROM users WHERE id = 1 /*M! FOR UPDATE */",
        "SELECT id FROM users /*M!100600 FOR UPDATE SKIP LOCKED */",
    ] {
        assert_eq!(label(M, sql).0, Target::Primary, "{sql}");
    }
}

#[test]
fn show_and_explain() {
    replica(M, "SHOW TABLES");
    replica(M, "SHOW COLUMNS FROM users");
    replica(M, "DESCRIBE users");
    replica(M, "EXPLAIN SELECT * FROM users");
    primary(M, "EXPLAIN DELETE FROM users", "write");
    // Session counters of the connection that asks.
    primary(M, "SHOW STATUS", "session_variable");
    replica(M, "SHOW VARIABLES LIKE 'read_only'");
    replica(M, "SHOW INDEX FROM users");
    primary(M, "SHOW WARNINGS", "session_variable");
    primary(M, "SHOW MASTER STATUS", "server_state");
}

/// Found by an adversarial test on the real replicas: every PostgreSQL `SHOW` reads a setting
/// as this session sees it (`SET search_path`, `SET ROLE`), so none may go to a replica.
#[test]
fn postgres_show_reads_the_session_settings() {
    for sql in [
        "SHOW search_path",
        "SHOW \"search_path\"",
        "show Search_Path",
        "SHOW ALL",
        "SHOW application_name",
        "SHOW transaction_isolation",
        "SHOW TRANSACTION ISOLATION LEVEL",
        "SHOW role",
        "SHOW SESSION AUTHORIZATION",
        "SHOW TIME ZONE",
        "SHOW work_mem",
        "SHOW server_version",
        "SHOW app.user_id",
        "SHOW tables",
        "SHOW DATABASES",
        "SHOW COLUMNS FROM users",
    ] {
        primary(P, sql, "session_variable");
    }
}

/// MariaDB `LOCAL` means `SESSION`; `GLOBAL` reads the server's values and stays on a replica.
#[test]
fn mariadb_show_local_is_the_session() {
    for sql in [
        "SHOW LOCAL VARIABLES",
        "SHOW LOCAL STATUS",
        "show local variables like 'sql_mode'",
        "SHOW LOCAL STATUS LIKE 'Com_select'",
        "SHOW SESSION VARIABLES LIKE 'sql_mode'",
        "SHOW VARIABLES LIKE 'time_zone'",
        "SHOW VARIABLES LIKE 'read%'",
        "SHOW VARIABLES WHERE Variable_name = 'read_only'",
    ] {
        primary(M, sql, "session_variable");
    }
    replica(M, "SHOW GLOBAL VARIABLES");
    replica(M, "SHOW GLOBAL STATUS");
    replica(M, "SHOW GLOBAL VARIABLES LIKE 'sql_mode'");
    replica(M, "SHOW VARIABLES LIKE 'READ_ONLY'");
    replica(M, "SHOW STATUS LIKE 'Uptime'");
}

/// The replication role of whoever answers, in every spelling MariaDB accepts.
#[test]
fn mariadb_replication_status_goes_to_the_primary() {
    for sql in [
        "SHOW SLAVE STATUS",
        "SHOW ALL SLAVES STATUS",
        "show all slaves status",
        "SHOW ALL REPLICAS STATUS",
        "SHOW REPLICA STATUS",
        "SHOW SLAVE \"name\" STATUS",
        "SHOW SLAVE '' STATUS",
        "SHOW REPLICA 'name' STATUS",
        "SHOW SLAVE HOSTS",
    ] {
        primary(M, sql, "server_state");
    }
}

/// A system variable read without `GLOBAL` is this session's value (`@@in_transaction`,
/// `@@timestamp`, `@@sql_mode` after a `SET`): only the primary's connection has it. A bare
/// `@@x` of a variable without a session value reads the global one, like `@@global.x`.
#[test]
fn mariadb_system_variables_without_global_scope_go_to_the_primary() {
    for sql in [
        "SELECT @@in_transaction",
        "SELECT @@timestamp",
        "SELECT @@IN_TRANSACTION",
        "SELECT @@session.in_transaction",
        "SELECT @@SESSION.In_Transaction",
        "SELECT @@local.timestamp",
        "SELECT @@LOCAL.Timestamp",
        "SELECT @@session.`timestamp`",
        "SELECT @@SESSION . in_transaction",
        "SELECT @@sql_mode",
        "SELECT @@time_zone, @@version",
        "SELECT @@session.server_id",
        "SELECT @@session.version",
        "SELECT @@hot_cache.key_buffer_size",
        "SELECT id FROM users WHERE @@in_transaction = 0",
        "SELECT @@global.last_insert_id",
    ] {
        primary(M, sql, "session_variable");
    }
    // Not parsed by sqlparser; the primary either way.
    assert_eq!(label(M, "SELECT @@`in_transaction`").0, Target::Primary);
    for sql in [
        "SELECT @@GLOBAL.sql_mode",
        "SELECT @@global.version, @@Global.read_only",
        "SELECT @@global . time_zone",
        "SELECT @@global.hot_cache.key_buffer_size",
        "SELECT @@version, @@version_comment",
        "SELECT @@server_id",
        "SELECT CAST(@@server_id AS SIGNED)",
    ] {
        replica(M, sql);
    }
}

#[test]
fn hints_in_comments() {
    let c = Classifier::new(M);
    let d = c.decide("/* rwsplit:primary */ SELECT 1");
    assert_eq!(
        (d.target, d.reason.label()),
        (Target::Primary, "hint_comment")
    );
    let d = c.decide("SELECT 1 -- rwsplit:primary");
    assert_eq!(d.target, Target::Primary);
    let d = c.decide("/* rwsplit:replica */ UPDATE t SET a = 1");
    assert_eq!((d.target, d.reason.label()), (Target::Primary, "write"));
    let d = c.decide("/* rwsplit:nonsense */ SELECT 1");
    assert_eq!(d.target, Target::Replica);
    let d = c.decide("SELECT '/* rwsplit:primary */'");
    assert_eq!(d.target, Target::Replica);
}

#[test]
fn unknown_functions_follow_the_policy_and_user_lists() {
    primary(M, "SELECT my_func(1)", "unknown_function");
    let lenient = ClassifierOptions::new(M)
        .unknown_functions(UnknownFunctionPolicy::Replica)
        .build();
    assert_eq!(lenient.decide("SELECT my_func(1)").target, Target::Replica);
    let custom = ClassifierOptions::new(M)
        .pure_function("MY_FUNC")
        .side_effect_function("audit_log")
        .pure_function("get_lock")
        .build();
    assert_eq!(custom.decide("SELECT my_func(1)").target, Target::Replica);
    let d = custom.decide("SELECT Audit_Log('x')");
    assert_eq!(d.reason, Reason::SideEffectFunction("audit_log".into()));
    assert_eq!(
        custom.decide("SELECT get_lock('a', 1)").target,
        Target::Primary
    );
}

#[test]
fn deep_nesting_and_huge_input_go_to_primary_without_overflow() {
    let deep = format!("SELECT {}1{}", "(".repeat(10_000), ")".repeat(10_000));
    primary(M, &deep, "unparseable");
    primary(P, &deep, "unparseable");
    let small = ClassifierOptions::new(M).max_statement_bytes(16).build();
    let d = small.decide("SELECT * FROM users WHERE id = 1");
    assert_eq!(d.reason, Reason::TooLarge);
}

#[test]
fn cache_hits_and_bounded_memory() {
    let c = ClassifierOptions::new(M).cache_bytes(64 * 1024).build();
    c.analyze("SELECT 1");
    c.analyze("SELECT 1");
    let stats = c.cache_stats();
    assert_eq!((stats.hits, stats.misses), (1, 1));
    for i in 0..5_000 {
        c.analyze(&format!("SELECT * FROM users WHERE id = {i}"));
    }
    let stats = c.cache_stats();
    assert!(stats.bytes <= 64 * 1024, "{stats:?}");
    assert!(stats.entries < 5_000, "{stats:?}");
}

#[test]
fn telemetry_facts() {
    let c = Classifier::new(M);
    let a = c.analyze("SELECT name FROM users WHERE id = 1");
    assert_eq!((a.operation(), a.collection()), ("SELECT", Some("users")));
    let a = c.analyze("UPDATE orders SET total = 1");
    assert_eq!(a.operation(), "UPDATE");
    let a = c.analyze("SELECT * FROM a JOIN b ON a.id = b.id");
    assert_eq!(a.collection(), None);
}

#[test]
fn lexical_ambiguity_goes_to_primary() {
    for sql in [
        "SELECT * FROM t WHERE id = 1 --\u{00A0}x\nFOR UPDATE",
        "SELECT * FROM t WHERE id = 1 --\u{3000}\nFOR UPDATE",
        "SELECT 1 /* a /* b */ , GET_LOCK('x', 0) -- */",
        "SELECT\u{2028}1",
        "SELECT 1\u{000B}",
    ] {
        primary(M, sql, "lexical_ambiguity");
    }
    primary(
        M,
        "SELECT 1 /*!50000 /* x */ , GET_LOCK('a', 0) */",
        "executable_comment",
    );
    primary(M, "SELECT 1 /*M!100000 FOR UPDATE */", "executable_comment");
    primary(
        P,
        "SELECT 1 /* /* */ , pg_advisory_lock(1) -- */",
        "lexical_ambiguity",
    );
    primary(
        P,
        "SELECT 1 -- x\r, pg_advisory_lock(1)",
        "lexical_ambiguity",
    );
    primary(
        P,
        "SELECT 'a\\' , pg_advisory_lock(1) -- '",
        "lexical_ambiguity",
    );
    replica(P, "SELECT $$it's$$, E'it\\'s'");
}

#[test]
fn reads_report_the_relations_they_name() {
    let relations = |d: Dialect, sql: &str| -> Vec<String> {
        Classifier::new(d)
            .analyze(sql)
            .relations
            .iter()
            .map(|r| r.to_string())
            .collect()
    };
    assert_eq!(
        relations(
            P,
            "SELECT * FROM app.v JOIN \"Odd\".\"T\" ON true, w WHERE x IN (SELECT y FROM v2)"
        ),
        ["app.v", "\"Odd\".\"T\"", "w", "v2"]
    );
    assert_eq!(relations(P, "TABLE ONLY app.v"), ["app.v"]);
    assert_eq!(relations(P, "TABLE \"V\""), ["\"V\""]);
    assert_eq!(
        relations(M, "SELECT * FROM App.V, `x.y`"),
        ["app.v", "`x.y`"]
    );
    assert!(
        relations(M, "DELETE FROM v").is_empty(),
        "writes carry none"
    );
    assert!(relations(P, "SELECT 1").is_empty());
}

#[test]
fn reads_report_the_user_types_they_cast_to() {
    let types = |d: Dialect, sql: &str| -> Vec<String> {
        Classifier::new(d)
            .analyze(sql)
            .types
            .iter()
            .map(|r| r.to_string())
            .collect()
    };
    assert_eq!(
        types(
            P,
            "SELECT 1::App.D, CAST(x AS \"Odd\".\"T\"), '{1}'::d2[][], ARRAY[1]::app.d \
             FROM t WHERE y IN (SELECT z::int::mood FROM u)"
        ),
        ["app.d", "\"Odd\".\"T\"", "d2", "mood"]
    );
    // PostgreSQL reads `name 'text'` as a literal of type `name` (sqlparser as an alias).
    assert_eq!(types(P, "SELECT app.d '5', \"D\" '6'"), ["app.d", "\"D\""]);
    assert!(types(P, "SELECT 1::int, 'x'::text, now()::date, '1'::numeric(3)").is_empty());
    assert!(
        types(P, "DELETE FROM t WHERE x = 1::d").is_empty(),
        "writes carry none"
    );
    assert!(types(M, "SELECT CAST(x AS CHAR), CAST(y AS SIGNED)").is_empty());
}

#[test]
fn reads_report_keyword_named_types_and_column_definition_types() {
    let types = |sql: &str| -> Vec<String> {
        Classifier::new(P)
            .analyze(sql)
            .types
            .iter()
            .map(|r| r.to_string())
            .collect()
    };
    // sqlparser reads these as its own types; PostgreSQL has none of them, so they name the
    // user's type (a domain `datetime` in `search_path`).
    assert_eq!(
        types(
            "SELECT 1::datetime, CAST(2 AS string), tinyint '3', '{4}'::int64[], 5::double, \
             6::nvarchar(3), 7::double precision, 8::timestamptz, 9::timestamp(3) with time zone"
        ),
        ["datetime", "string", "tinyint", "int64", "double", "nvarchar"]
    );
    // Column definition lists convert each value to its column's type.
    assert_eq!(
        types(
            "SELECT * FROM jsonb_to_record('{}') AS x(a app.d, b int), \
             XMLTABLE('/r' PASSING '<r/>' COLUMNS c app.e PATH 'c', n FOR ORDINALITY) AS t"
        ),
        ["app.d", "app.e"]
    );
}

#[test]
fn qualified_functions_are_user_functions() {
    for (d, sql, name) in [
        (M, "SELECT app.lower(name) FROM users", "app.lower"),
        (M, "SELECT mydb.log(1)", "mydb.log"),
        (M, "SELECT `app`.`concat`('a')", "app.concat"),
        (P, "SELECT public.lower(name) FROM users", "public.lower"),
        (P, "SELECT app.now()", "app.now"),
        (P, "SELECT \"Lower\"('x')", "\"Lower\""),
        // Names are reported as the server folds them, quoted where needed, so the catalog
        // lookup asks for exactly the object the server would call.
        (
            P,
            "SELECT \"PG_CATALOG\".lower('x')",
            "\"PG_CATALOG\".lower",
        ),
        (P, "SELECT \"App\".\"F\"(1), App.F(2)", "\"App\".\"F\""),
        (P, "SELECT \"a.b\"(1)", "\"a.b\""),
        (P, "SELECT db.app.f(1)", "db.app.f"),
        (M, "SELECT `my db`.`F`(1)", "`my db`.f"),
        (M, "SELECT App.F(1)", "app.f"),
    ] {
        assert_eq!(
            Classifier::new(d).decide(sql).reason,
            Reason::UnknownFunction(name.into()),
            "{sql}"
        );
    }
    replica(P, "SELECT pg_catalog.lower('X'), \"lower\"('y')");
    primary(M, "SELECT app.get_lock('a', 1)", "side_effect_function");
    let lenient = ClassifierOptions::new(P)
        .unknown_functions(UnknownFunctionPolicy::Replica)
        .build();
    assert_eq!(
        lenient.decide("SELECT app.lower('x')").target,
        Target::Replica
    );
}

#[test]
fn user_operators_follow_the_unknown_function_policy() {
    for (sql, name) in [
        ("SELECT 1 ##> 2", "operator(##>)"),
        ("SELECT a OPERATOR(app.%%>) b FROM t", "operator(app.%%>)"),
        ("SELECT a OPERATOR(public.+) b FROM t", "operator(public.+)"),
        // Symbols sqlparser parses as its own operators but PostgreSQL has no built-in of:
        // only a user operator can be one (an attack defined `public.<=>` with a locking
        // function, and the read reached the standby).
        ("SELECT a <=> b FROM t", "operator(<=>)"),
        ("SELECT 5 !", "operator(!)"),
    ] {
        assert_eq!(
            Classifier::new(P).decide(sql).reason,
            Reason::UnknownFunction(name.into()),
            "{sql}"
        );
    }
    for sql in [
        "SELECT 1 ##> 2",
        "SELECT a OPERATOR(app.%%>) b FROM t",
        "SELECT a OPERATOR(public.+) b FROM t",
    ] {
        primary(P, sql, "unknown_function");
    }
    replica(
        P,
        "SELECT a OPERATOR(pg_catalog.+) b, c @> d, e <-> f, g ~~* h FROM t",
    );
    replica(P, "SELECT '{1}'::int[] && '{1,2}'::int[]");
    // The `#` family is built in (it was read as comments in the generated list), and
    // keyword operators are the grammar's own.
    replica(
        P,
        "SELECT a # b, j #> '{a}', j #>> '{a}', j #- '{a}', p ## q FROM t WHERE x AND y OR NOT z",
    );
}

#[test]
fn sequences_and_session_state_go_to_primary() {
    for sql in [
        "SELECT s1.nextval",
        "SELECT s1.NEXTVAL FROM dual",
        "SELECT app.s1.currval",
        "SELECT NEXT VALUE FOR s1",
        "SELECT PREVIOUS VALUE FOR s1",
        "SELECT NEXTVAL(app.s1)",
    ] {
        assert_eq!(label(M, sql).0, Target::Primary, "{sql}");
    }
    for sql in [
        "SHOW VARIABLES LIKE 'last_insert_id'",
        "SHOW SESSION VARIABLES LIKE 'last%'",
        "SHOW VARIABLES",
        "SHOW SESSION STATUS",
        "SHOW STATUS LIKE 'Last_query_cost'",
        "SELECT * FROM information_schema.session_variables",
        "SELECT variable_value FROM INFORMATION_SCHEMA.SESSION_STATUS",
        "SELECT * FROM information_schema.user_variables",
        "SELECT * FROM performance_schema.status_by_thread",
        "SELECT * FROM sys.session",
    ] {
        primary(M, sql, "session_variable");
    }
    replica(M, "SHOW VARIABLES LIKE 'read_only'");
    replica(M, "SHOW GLOBAL STATUS");
    replica(M, "SHOW STATUS LIKE 'Threads_connected'");
    for sql in [
        "SELECT * FROM pg_settings",
        "SELECT * FROM pg_prepared_statements",
        "SELECT * FROM pg_temp.scratch",
        "SHOW app.user_id",
        "SELECT * FROM pg_stat_xact_user_tables",
    ] {
        primary(P, sql, "session_variable");
    }
    for sql in [
        "SELECT pg_backend_pid()",
        "SELECT current_setting('app.user_id')",
        "SELECT current_setting('work_mem')",
        "SELECT current_setting('search_path')",
        "SELECT pg_stat_get_backend_pid(1)",
        "SELECT pg_stat_get_xact_tuples_inserted(1)",
        "SELECT pg_trigger_depth()",
    ] {
        primary(P, sql, "side_effect_function");
    }
}

#[test]
fn catalog_generated_builtins_are_pure() {
    for sql in [
        "SELECT string_to_table('a,b', ',')",
        "SELECT to_regtype('int4'), sind(30), cosd(60), atan2d(1, 1)",
        "SELECT has_table_privilege('users', 'select'), pg_get_viewdef('v'::regclass)",
        "SELECT point(1, 2) <-> point(4, 6)",
    ] {
        replica(P, sql);
    }
    replica(
        M,
        "SELECT ST_AsText(ST_Buffer(ST_GeomFromText('POINT(1 1)'), 1))",
    );
}

#[test]
fn unparsed_but_provable_reads() {
    replica(M, "SHOW CREATE DATABASE rwsplit_test");
    replica(M, "SHOW PROCEDURE STATUS WHERE Db = 'rwsplit_test'");
    replica(M, "DESCRIBE users email");
    replica(P, "TABLE users");
    replica(P, "TABLE ONLY app.products");
    assert_eq!(
        label(M, "SHOW PROCEDURE STATUS WHERE Db = GET_LOCK('a', 0)").0,
        Target::Primary
    );
    assert_eq!(
        label(M, "SHOW FUNCTION STATUS WHERE Db = @x").0,
        Target::Primary
    );
    assert_eq!(
        label(M, "SHOW CREATE TABLE t; DELETE FROM t").0,
        Target::Primary
    );
}

/// Found by the fuzzer: sqlparser reads `@@;comment` as one variable name, the server as `@@`,
/// `;` and a second statement.
#[test]
fn mysql_variable_sigils_followed_by_a_non_name_character_are_ambiguous() {
    let c = Classifier::new(Dialect::MySql);
    for sql in [
        "SELECT @@;comment",
        "SELECT @;DELETE FROM t",
        "SELECT @@ ;x",
        "SELECT @",
    ] {
        let d = c.decide(sql);
        assert_eq!(d.target, Target::Primary, "{sql}: {d:?}");
    }
    for sql in [
        "SELECT @@version",
        "SELECT @x",
        "SELECT @@session.sql_mode",
        "SELECT @'a b'",
    ] {
        let d = c.decide(sql);
        assert_ne!(d.reason, Reason::LexicalAmbiguity, "{sql}: {d:?}");
    }
}

/// The per-thread front answers only with the shared cache's current analysis: after another
/// thread's insertion replaced a statement's analysis (two threads that first saw it at once
/// both insert one), a thread whose front held the old one gets the new one, and sees what was
/// learned on it (found by a cold review: fronts kept their own copies, so a replica's refusal
/// learned on one thread's copy was not seen by another thread, nor by a session resumed there).
#[test]
fn every_thread_uses_the_shared_analysis_of_a_statement() {
    use std::sync::mpsc::channel;
    let c = Classifier::new(M);
    let sql = "SELECT v FROM front_t WHERE id = ?";
    let (to_worker, worker_rx) = channel::<()>();
    let (to_main, main_rx) = channel::<Arc<Analysis>>();
    let worker = {
        let c = c.clone();
        std::thread::spawn(move || {
            // A miss (inserted), then a shared hit that fills this thread's front, then a
            // front hit.
            let first = c.analyze(sql);
            let again = c.analyze(sql);
            assert!(Arc::ptr_eq(&first, &again));
            let slot = front::slot(sql);
            let generation = c.0.generation.load(Ordering::Acquire);
            assert!(
                front::get(c.0.id, generation, slot, sql).is_some(),
                "the front is filled"
            );
            to_main.send(again).unwrap();
            worker_rx.recv().unwrap();
            to_main.send(c.analyze(sql)).unwrap();
        })
    };
    let old = main_rx.recv().unwrap();
    // The statement leaves the shared cache (as an eviction takes it), and another thread's
    // analysis of it takes its place.
    c.0.cache.as_ref().unwrap().remove(sql);
    let fresh = c.store(sql, Arc::new(c.analyze_uncached(sql)));
    fresh.refused();
    to_worker.send(()).unwrap();
    let seen = main_rx.recv().unwrap();
    worker.join().unwrap();
    assert!(!Arc::ptr_eq(&old, &fresh));
    assert!(
        Arc::ptr_eq(&seen, &fresh),
        "the worker's front answered with its old copy"
    );
    assert!(seen.was_refused());
}

/// A statement the shared cache does not keep (its budget is too small) is kept nowhere: the
/// front holds only what the shared cache holds, and the counters say so.
#[test]
fn a_budget_too_small_for_a_statement_keeps_it_nowhere() {
    let c = ClassifierOptions::new(M).cache_bytes(64).build();
    for _ in 0..3 {
        c.analyze("SELECT 1");
    }
    let stats = c.cache_stats();
    assert_eq!(
        (stats.hits, stats.misses, stats.entries),
        (0, 3, 0),
        "{stats:?}"
    );
    // With room, the second and third are hits (the third from the front).
    let c = Classifier::new(M);
    for _ in 0..3 {
        c.analyze("SELECT 1");
    }
    let stats = c.cache_stats();
    assert_eq!(
        (stats.hits, stats.misses, stats.entries),
        (2, 1, 1),
        "{stats:?}"
    );
}

/// Two threads that miss a statement at once both parse it; the first to put its analysis in
/// the shared cache wins, and the other gets the winner's (found by a cold review: the second
/// replaced the first, and a refusal already learned on the first was forgotten).
#[test]
fn the_first_analysis_put_in_the_cache_stays() {
    let c = Classifier::new(M);
    let sql = "SELECT v FROM race_t WHERE id = ?";
    let first = c.store(sql, Arc::new(c.analyze_uncached(sql)));
    first.refused();
    let second = c.store(sql, Arc::new(c.analyze_uncached(sql)));
    assert!(Arc::ptr_eq(&first, &second));
    assert!(c.analyze(sql).was_refused());
}

/// An entry's weight does not change once cached: the sanitized text, filled in later, is
/// counted from the start (found by a cold review: it was not, so entries left the cache
/// weighing more than they came in, and the cache grew past its budget).
#[test]
fn an_entry_weighs_the_same_before_and_after_its_sanitized_text() {
    let c = Classifier::new(M);
    let sql = "SELECT v FROM t WHERE id = 42 AND name = 'ada'";
    let a = c.analyze(sql);
    let key: Box<str> = sql.into();
    let before = EntryWeight.weight(&key, &a);
    a.sanitized(|| c.sanitize(sql));
    assert!(a.sanitized.get().is_some());
    assert_eq!(EntryWeight.weight(&key, &a), before);
    // And the budget holds while new statements arrive and their texts are sanitized.
    let small = ClassifierOptions::new(M).cache_bytes(256 * 1024).build();
    for i in 0..20_000 {
        let sql = format!("SELECT v FROM t WHERE id = {i} AND name = 'n{i}'");
        small.analyze(&sql).sanitized(|| small.sanitize(&sql));
    }
    let stats = small.cache_stats();
    assert!(stats.bytes <= 256 * 1024 + 4096, "{stats:?}");
    let real: u64 = small
        .0
        .cache
        .as_ref()
        .unwrap()
        .iter()
        .map(|(k, v)| EntryWeight.weight(&k, &v))
        .sum();
    assert!(
        real <= 256 * 1024 + 4096,
        "entries weigh {real} in all: {stats:?}"
    );
}

/// Forms that call a comparison operator without writing its symbol record the symbol among
/// the built-in names, so that a user operator sharing it (the catalog snapshot of
/// `function_volatility`) sends the read to the primary, as for a written `=`.
#[test]
fn implicit_comparisons_record_their_operator() {
    let c = Classifier::new(Dialect::Postgres);
    for (sql, symbols) in [
        ("SELECT 5 IN ('x'::text)", &["operator(=)"][..]),
        ("SELECT 5 NOT IN ('x'::text)", &["operator(<>)"]),
        (
            "SELECT id FROM t WHERE id IN (SELECT id FROM u)",
            &["operator(=)"],
        ),
        (
            "SELECT id FROM t WHERE id NOT IN (SELECT id FROM u)",
            &["operator(=)"],
        ),
        ("SELECT NULLIF(5, 'x'::text)", &["operator(=)"]),
        ("SELECT CASE 5 WHEN 'x'::text THEN 1 END", &["operator(=)"]),
        ("SELECT 5 IS DISTINCT FROM 'x'::text", &["operator(=)"]),
        (
            "SELECT 5 BETWEEN 'a'::text AND 'b'::text",
            &["operator(>=)", "operator(<=)"],
        ),
        ("SELECT 5 LIKE 'x'::text", &["operator(~~)"]),
        ("SELECT 5 NOT ILIKE 'x'::text", &["operator(!~~*)"]),
        ("SELECT 5 = ANY(ARRAY['x'::text])", &["operator(=)"]),
    ] {
        let analysis = c.analyze(sql);
        for symbol in symbols {
            assert!(
                analysis.builtins.iter().any(|b| &**b == *symbol),
                "{sql}: {symbol} not in {:?}",
                analysis.builtins
            );
        }
    }
}

/// Session and server state the second adversarial round found on a replica.
#[test]
fn more_session_and_server_state_goes_to_the_primary() {
    for (sql, label) in [
        ("SELECT @`x`", "session_variable"),
        ("SELECT id FROM t WHERE v = @`name`", "session_variable"),
        (
            "SELECT * FROM information_schema.ENABLED_ROLES",
            "session_variable",
        ),
        ("SHOW EXPLAIN FOR 1", "server_state"),
        ("SHOW ANALYZE FOR 1", "server_state"),
        ("SHOW PROCESSLIST", "server_state"),
        ("SHOW FULL PROCESSLIST", "server_state"),
    ] {
        let d = Classifier::new(Dialect::MySql).decide(sql);
        assert_eq!(
            (d.target, d.reason.label()),
            (Target::Primary, label),
            "{sql}"
        );
    }
}
