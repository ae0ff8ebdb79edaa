//! Function knowledge as data: which functions have side effects or read session state (always
//! the primary) and which built-ins are known to be pure (safe on a replica), per dialect.
//!
//! Names are lower case and unqualified (`pg_catalog.nextval` matches `nextval`). Anything in
//! neither list is "unknown" and follows the [`UnknownFunctionPolicy`](crate::UnknownFunctionPolicy).

use super::Dialect;

/// Side effects, locks, sequences and session state shared by every dialect.
const SIDE_EFFECT_COMMON: &[&str] = &["last_insert_id", "row_count", "found_rows"];

const SIDE_EFFECT_MYSQL: &[&str] = &[
    // named locks
    "get_lock",
    "release_lock",
    "release_all_locks",
    "is_free_lock",
    "is_used_lock",
    // MariaDB sequences
    "nextval",
    "setval",
    "lastval",
    // replication waits and positions
    "master_pos_wait",
    "source_pos_wait",
    "master_gtid_wait",
    "wait_for_executed_gtid_set",
    "wait_until_sql_thread_after_gtids",
    // holds a connection (or a CPU) on purpose: the caller chose the server, and a replica
    // attempt that long would be taken for a hung replica
    "sleep",
    "benchmark",
    // server- or connection-specific state
    "connection_id",
    "uuid_short",
    "load_file",
    "ps_current_thread_id",
    "ps_thread_id",
];

const SIDE_EFFECT_POSTGRES: &[&str] = &[
    // holds a connection on purpose: the caller chose the server, and a replica attempt that
    // long would be taken for a hung replica (MySQL's `sleep` likewise)
    "pg_sleep",
    // sequences
    "nextval",
    "setval",
    "currval",
    "lastval",
    // advisory locks
    "pg_advisory_lock",
    "pg_advisory_lock_shared",
    "pg_advisory_unlock",
    "pg_advisory_unlock_shared",
    "pg_advisory_unlock_all",
    "pg_advisory_xact_lock",
    "pg_advisory_xact_lock_shared",
    "pg_try_advisory_lock",
    "pg_try_advisory_lock_shared",
    "pg_try_advisory_xact_lock",
    "pg_try_advisory_xact_lock_shared",
    // session and transaction state
    "set_config",
    "setseed",
    "txid_current",
    "txid_current_if_assigned",
    "pg_current_xact_id",
    "pg_current_xact_id_if_assigned",
    "pg_export_snapshot",
    "pg_notify",
    // the session's own state: a replica connection answers for itself, not for the session
    // that ran the writes and SETs
    "current_setting",
    "pg_backend_pid",
    "pg_current_snapshot",
    "txid_current_snapshot",
    "pg_my_temp_schema",
    "pg_is_other_temp_schema",
    "pg_listening_channels",
    "pg_notification_queue_usage",
    "pg_trigger_depth",
    "pg_cursor",
    "pg_prepared_statement",
    "pg_show_all_settings",
    "pg_stat_get_snapshot_timestamp",
    // primary-only (fail during recovery)
    "pg_walfile_name",
    "pg_walfile_name_offset",
    // server control
    "pg_terminate_backend",
    "pg_cancel_backend",
    "pg_reload_conf",
    "pg_rotate_logfile",
    "pg_switch_wal",
    "pg_promote",
    "pg_backup_start",
    "pg_backup_stop",
    "pg_create_restore_point",
    "pg_create_physical_replication_slot",
    "pg_create_logical_replication_slot",
    "pg_drop_replication_slot",
    "pg_replication_slot_advance",
    "pg_copy_physical_replication_slot",
    "pg_copy_logical_replication_slot",
    "pg_logical_emit_message",
    "pg_logical_slot_get_changes",
    "pg_logical_slot_get_binary_changes",
    "pg_stat_reset",
    "pg_stat_reset_shared",
    "pg_stat_reset_single_table_counters",
    "pg_stat_reset_single_function_counters",
    "pg_stat_reset_slru",
    "pg_stat_reset_replication_slot",
    "pg_stat_statements_reset",
    // primary-only positions (they fail on a standby)
    "pg_current_wal_lsn",
    "pg_current_wal_insert_lsn",
    "pg_current_wal_flush_lsn",
    // large objects
    "lo_create",
    "lo_creat",
    "lo_import",
    "lo_export",
    "lo_unlink",
    "lo_put",
    "lo_from_bytea",
    "lo_truncate",
    "lo_truncate64",
    "lowrite",
    "lo_open",
    // extensions that write elsewhere
    "dblink_exec",
    "dblink_send_query",
    // built-ins that run what their arguments name, whatever their declared volatility (so a
    // catalog lookup, which goes by the declaration, must not clear them): SQL text
    // (`ts_rewrite(q, 'SELECT ...')`, `ts_stat`, `query_to_xml`), a relation named in a string
    // (`table_to_xml('app.v', ..)` runs the view)
    "ts_rewrite",
    "ts_stat",
    "query_to_xml",
    "query_to_xmlschema",
    "query_to_xml_and_xmlschema",
    "cursor_to_xml",
    "cursor_to_xmlschema",
    "table_to_xml",
    "table_to_xmlschema",
    "table_to_xml_and_xmlschema",
    "schema_to_xml",
    "schema_to_xmlschema",
    "schema_to_xml_and_xmlschema",
    "database_to_xml",
    "database_to_xmlschema",
    "database_to_xml_and_xmlschema",
];

/// PostgreSQL type input functions that take the type to make as an argument, so a direct call
/// runs that type's input, a domain's `CHECK` included (`record_in('(7)', 'app.t'::regtype,
/// -1)`): a direct call goes to the primary. They are kept out of [`side_effect`], which the
/// catalog lookup also reads: every domain, composite, array and range type has one of them as
/// its input function, and is judged by its own checks and columns instead.
const TYPE_INPUT_CALLS_POSTGRES: &[&str] = &[
    "record_in",
    "array_in",
    "domain_in",
    "range_in",
    "multirange_in",
];

/// Names that send a direct call to the primary on top of [`side_effect`] (not given to the
/// catalog lookup).
pub(crate) fn unsafe_direct_calls(dialect: Dialect) -> &'static [&'static str] {
    match dialect {
        Dialect::Postgres => TYPE_INPUT_CALLS_POSTGRES,
        _ => &[],
    }
}

const SIDE_EFFECT_SQLITE: &[&str] = &["last_insert_rowid", "changes", "total_changes"];

/// Aggregates, window functions and scalar built-ins common to the dialects.
const PURE_COMMON: &[&str] = &[
    "abs",
    "acos",
    "asin",
    "atan",
    "atan2",
    "avg",
    "ceil",
    "ceiling",
    "char_length",
    "character_length",
    "coalesce",
    "concat",
    "concat_ws",
    "cos",
    "cot",
    "count",
    "cume_dist",
    "current_date",
    "current_time",
    "current_timestamp",
    "current_user",
    "degrees",
    "dense_rank",
    "exp",
    "first_value",
    "floor",
    "greatest",
    "lag",
    "last_value",
    "lead",
    "least",
    "length",
    "ln",
    "log",
    "log10",
    "lower",
    "ltrim",
    "max",
    "md5",
    "min",
    "mod",
    "nth_value",
    "ntile",
    "nullif",
    "octet_length",
    "percent_rank",
    "pi",
    "position",
    "power",
    "radians",
    "rank",
    "replace",
    "reverse",
    "round",
    "row_number",
    "rtrim",
    "sign",
    "sin",
    "sqrt",
    "substr",
    "substring",
    "sum",
    "tan",
    "trim",
    "upper",
    "lpad",
    "rpad",
    "left",
    "right",
    "repeat",
    "now",
    "localtime",
    "localtimestamp",
    "stddev",
    "stddev_pop",
    "stddev_samp",
    "variance",
    "var_pop",
    "var_samp",
    "bit_and",
    "bit_or",
    "bit_xor",
    "cast",
    "convert",
    "extract",
    "session_user",
];

const PURE_MYSQL: &[&str] = &[
    "adddate",
    "addtime",
    "aes_decrypt",
    "aes_encrypt",
    "ascii",
    "bin",
    "bit_count",
    "bit_length",
    "char",
    "charset",
    "coercibility",
    "collation",
    "compress",
    "conv",
    "convert_tz",
    "crc32",
    "curdate",
    "curtime",
    "database",
    "date",
    "date_add",
    "date_format",
    "date_sub",
    "datediff",
    "day",
    "dayname",
    "dayofmonth",
    "dayofweek",
    "dayofyear",
    "elt",
    "export_set",
    "field",
    "find_in_set",
    "format",
    "from_base64",
    "from_days",
    "from_unixtime",
    "get_format",
    "group_concat",
    "hex",
    "hour",
    "if",
    "ifnull",
    "inet_aton",
    "inet_ntoa",
    "inet6_aton",
    "inet6_ntoa",
    "insert",
    "instr",
    "is_ipv4",
    "is_ipv6",
    "isnull",
    "json_array_append",
    "json_array_insert",
    "json_arrayagg",
    "json_contains",
    "json_contains_path",
    "json_depth",
    "json_extract",
    "json_insert",
    "json_keys",
    "json_length",
    "json_merge_patch",
    "json_merge_preserve",
    "json_objectagg",
    "json_overlaps",
    "json_pretty",
    "json_quote",
    "json_remove",
    "json_replace",
    "json_search",
    "json_set",
    "json_type",
    "json_unquote",
    "json_valid",
    "json_value",
    "last_day",
    "lcase",
    "locate",
    "log2",
    "make_set",
    "makedate",
    "maketime",
    "microsecond",
    "mid",
    "minute",
    "month",
    "monthname",
    "oct",
    "ord",
    "period_add",
    "period_diff",
    "pow",
    "quarter",
    "quote",
    "rand",
    "regexp_instr",
    "regexp_replace",
    "regexp_substr",
    "schema",
    "sec_to_time",
    "second",
    "sha",
    "sha1",
    "sha2",
    "soundex",
    "space",
    "std",
    "str_to_date",
    "strcmp",
    "subdate",
    "substring_index",
    "subtime",
    "sysdate",
    "system_user",
    "time",
    "time_format",
    "time_to_sec",
    "timediff",
    "timestamp",
    "timestampadd",
    "timestampdiff",
    "to_base64",
    "to_days",
    "to_seconds",
    "truncate",
    "ucase",
    "uncompress",
    "uncompressed_length",
    "unhex",
    "unix_timestamp",
    "user",
    "utc_date",
    "utc_time",
    "utc_timestamp",
    "uuid",
    "values",
    "version",
    "week",
    "weekday",
    "weekofyear",
    "weight_string",
    "year",
    "yearweek",
    "st_astext",
    "st_geomfromtext",
    "st_distance",
    "st_x",
    "st_y",
    "match",
    "char_length",
    // the standard JSON constructors (PostgreSQL 15 has no `json_array`; its `json_object` is in
    // the generated list)
    "json_array",
    "json_object",
];

const PURE_POSTGRES: &[&str] = &[
    "age",
    "array_agg",
    "array_append",
    "array_cat",
    "array_dims",
    "array_fill",
    "array_length",
    "array_lower",
    "array_ndims",
    "array_position",
    "array_positions",
    "array_prepend",
    "array_remove",
    "array_replace",
    "array_to_json",
    "array_to_string",
    "array_upper",
    "ascii",
    "bool_and",
    "bool_or",
    "btrim",
    "cardinality",
    "cbrt",
    "chr",
    "clock_timestamp",
    "col_description",
    "corr",
    "covar_pop",
    "covar_samp",
    "current_database",
    "current_schema",
    "current_schemas",
    "date_bin",
    "date_part",
    "date_trunc",
    "decode",
    "encode",
    "every",
    "factorial",
    "format",
    "format_type",
    "gcd",
    "gen_random_uuid",
    "generate_series",
    "generate_subscripts",
    "has_column_privilege",
    "has_database_privilege",
    "has_schema_privilege",
    "has_table_privilege",
    "host",
    "inet_client_addr",
    "inet_client_port",
    "inet_server_addr",
    "inet_server_port",
    "initcap",
    "isfinite",
    "json_agg",
    "json_array_elements",
    "json_array_elements_text",
    "json_array_length",
    "json_build_array",
    "json_build_object",
    "json_each",
    "json_each_text",
    "json_extract_path",
    "json_extract_path_text",
    "json_object_agg",
    "json_object_keys",
    "json_populate_record",
    "json_strip_nulls",
    "json_to_record",
    "json_to_recordset",
    "json_typeof",
    "jsonb_agg",
    "jsonb_array_elements",
    "jsonb_array_elements_text",
    "jsonb_array_length",
    "jsonb_build_array",
    "jsonb_build_object",
    "jsonb_each",
    "jsonb_each_text",
    "jsonb_extract_path",
    "jsonb_extract_path_text",
    "jsonb_insert",
    "jsonb_object",
    "jsonb_object_agg",
    "jsonb_object_keys",
    "jsonb_path_exists",
    "jsonb_path_match",
    "jsonb_path_query",
    "jsonb_path_query_array",
    "jsonb_path_query_first",
    "jsonb_populate_record",
    "jsonb_pretty",
    "jsonb_set",
    "jsonb_set_lax",
    "jsonb_strip_nulls",
    "jsonb_to_record",
    "jsonb_to_recordset",
    "jsonb_typeof",
    "justify_days",
    "justify_hours",
    "justify_interval",
    "lcm",
    "make_date",
    "make_interval",
    "make_time",
    "make_timestamp",
    "make_timestamptz",
    "mode",
    "num_nonnulls",
    "num_nulls",
    "obj_description",
    "overlay",
    "percentile_cont",
    "percentile_disc",
    "pg_column_size",
    "pg_database_size",
    "pg_get_constraintdef",
    "pg_get_expr",
    "pg_get_functiondef",
    "pg_get_indexdef",
    "pg_get_viewdef",
    "pg_has_role",
    "pg_indexes_size",
    "pg_is_in_recovery",
    "pg_is_wal_replay_paused",
    "pg_last_wal_receive_lsn",
    "pg_last_wal_replay_lsn",
    "pg_last_xact_replay_timestamp",
    "pg_postmaster_start_time",
    "pg_relation_size",
    "pg_size_bytes",
    "pg_size_pretty",
    "pg_table_size",
    "pg_tablespace_size",
    "pg_total_relation_size",
    "pg_typeof",
    "pg_wal_lsn_diff",
    "plainto_tsquery",
    "phraseto_tsquery",
    "quote_ident",
    "quote_literal",
    "quote_nullable",
    "regexp_count",
    "regexp_instr",
    "regexp_like",
    "regexp_match",
    "regexp_matches",
    "regexp_replace",
    "regexp_split_to_array",
    "regexp_split_to_table",
    "regexp_substr",
    "regr_slope",
    "regr_intercept",
    "row_to_json",
    "scale",
    "sha224",
    "sha256",
    "sha384",
    "sha512",
    "split_part",
    "starts_with",
    "statement_timestamp",
    "string_agg",
    "string_to_array",
    "strpos",
    "timeofday",
    "to_ascii",
    "to_char",
    "to_date",
    "to_hex",
    "to_json",
    "to_jsonb",
    "to_number",
    "to_timestamp",
    "to_tsquery",
    "to_tsvector",
    "transaction_timestamp",
    "translate",
    "trunc",
    "ts_headline",
    "ts_rank",
    "ts_rank_cd",
    "unnest",
    "version",
    "websearch_to_tsquery",
    "width_bucket",
    "xmlagg",
    "array",
    "jsonb_exists",
    "row",
    "coalesce",
    "int4",
    "int8",
    "text",
    "numeric",
    "date",
    "timezone",
    "bit_length",
    "lower_inc",
    "upper_inc",
    "isempty",
    "range_merge",
    "int4range",
    "int8range",
    "numrange",
    "tsrange",
    "tstzrange",
    "daterange",
    "bool",
    "float8",
    "float4",
    "pg_get_userbyid",
    "obj_description",
    "current_role",
    "user",
    "pg_get_serial_sequence",
    "pg_encoding_to_char",
    "to_regclass",
    "format_type",
    "pg_relation_filenode",
    "least",
    "greatest",
    "div",
    "setweight",
    "json_object",
    "jsonb_array_length",
    // volatile, and harmless on a replica (`setseed` is the side effect)
    "random",
];

const PURE_SQLITE: &[&str] = &[
    "char",
    "date",
    "datetime",
    "format",
    "glob",
    "group_concat",
    "hex",
    "ifnull",
    "iif",
    "instr",
    "json",
    "json_array",
    "json_array_length",
    "json_each",
    "json_extract",
    "json_group_array",
    "json_group_object",
    "json_insert",
    "json_object",
    "json_patch",
    "json_quote",
    "json_remove",
    "json_replace",
    "json_set",
    "json_tree",
    "json_type",
    "json_valid",
    "julianday",
    "like",
    "likelihood",
    "likely",
    "printf",
    "quote",
    "randomblob",
    "sqlite_version",
    "strftime",
    "string_agg",
    "time",
    "total",
    "typeof",
    "unhex",
    "unicode",
    "unixepoch",
    "unlikely",
    "zeroblob",
    "timediff",
    "concat",
    "octet_length",
];

/// MySQL/MariaDB built-ins added from the server documentation (MariaDB has no catalog of
/// built-in functions to generate this from, so it is curated by hand).
const PURE_MYSQL_MORE: &[&str] = &[
    // spatial functions native in both MariaDB 10.11 and MySQL 8 (MySQL 8.0 removed the
    // unprefixed aliases such as `Contains`, `X` or `Within`, so those are not listed)
    "st_area",
    "st_asbinary",
    "st_asgeojson",
    "st_aswkb",
    "st_aswkt",
    "st_buffer",
    "st_centroid",
    "st_contains",
    "st_convexhull",
    "st_crosses",
    "st_difference",
    "st_dimension",
    "st_disjoint",
    "st_distance_sphere",
    "st_endpoint",
    "st_envelope",
    "st_equals",
    "st_exteriorring",
    "st_geomcollfromtext",
    "st_geometryn",
    "st_geometrytype",
    "st_geomfromgeojson",
    "st_geomfromwkb",
    "st_interiorringn",
    "st_intersection",
    "st_intersects",
    "st_isclosed",
    "st_isempty",
    "st_issimple",
    "st_length",
    "st_linefromtext",
    "st_numgeometries",
    "st_numinteriorrings",
    "st_numpoints",
    "st_overlaps",
    "st_pointfromtext",
    "st_pointn",
    "st_polyfromtext",
    "st_srid",
    "st_startpoint",
    "st_symdifference",
    "st_touches",
    "st_union",
    "st_within",
    "json_arrayagg",
    "json_objectagg",
    "json_merge_preserve",
    "mod",
    "div",
    "extract",
    "period_add",
    "uncompressed_length",
    "random_bytes",
    "sha2",
    "lpad",
    "rpad",
    "unix_timestamp",
    "mbrcontains",
    "mbrdisjoint",
    "mbrequals",
    "mbrintersects",
    "mbroverlaps",
    "mbrtouches",
    "mbrwithin",
];

/// Name prefixes of PostgreSQL functions that read one backend's or transaction's statistics
/// (indexed by the session's own snapshot of backends): the session's state.
const SIDE_EFFECT_PREFIXES_POSTGRES: &[&str] = &["pg_stat_get_backend_", "pg_stat_get_xact_"];

/// The arities at which a name is a native function.
type NativeAt = fn(usize) -> bool;

/// MySQL/MariaDB geometry constructors, native only at some arities: at any other, a bare call
/// reaches the default database's stored function of that name (`point(1)`: MariaDB says
/// "FUNCTION db.point does not exist" when there is none). Checked by the servers in the suite
/// like the pure lists.
const NATIVE_AT_ARITY_MYSQL: &[(&str, NativeAt)] = &[
    ("point", |n| n == 2),
    ("linestring", |n| n >= 1),
    ("polygon", |n| n >= 1),
    ("multipoint", |n| n >= 1),
    ("multilinestring", |n| n >= 1),
    ("multipolygon", |n| n >= 1),
    ("geometrycollection", |n| n >= 1),
];

/// Is `name` (lower case, unqualified) a native function of the dialect when called with
/// `arity` arguments, though not at every arity (so it is on no pure list)?
pub(crate) fn native_at_arity(dialect: Dialect, name: &str, arity: usize) -> bool {
    dialect == Dialect::MySql
        && NATIVE_AT_ARITY_MYSQL
            .iter()
            .any(|(n, native)| *n == name && native(arity))
}

/// Side-effect name prefixes for a dialect (they win over every pure list).
pub(crate) fn side_effect_prefixes(dialect: Dialect) -> &'static [&'static str] {
    match dialect {
        Dialect::Postgres => SIDE_EFFECT_PREFIXES_POSTGRES,
        _ => &[],
    }
}

/// PostgreSQL's own list: `pg_catalog` functions the server marks `IMMUTABLE` or `STABLE`
/// (generated by `scripts/gen-pg-functions.sh`).
const PG_CATALOG_FUNCTIONS: &str = include_str!("data/pg_functions.txt");

/// PostgreSQL's built-in operator names (generated by `scripts/gen-pg-functions.sh`).
const PG_CATALOG_OPERATORS: &str = include_str!("data/pg_operators.txt");

/// The entries of a generated list: one per line; a comment line starts with `# ` (a hash
/// and a space: operators `#`, `##`, `#-`, `#>`, `#>>` are entries, and were once read as
/// comments, which left them out of the built-in operators).
fn data_lines(text: &'static str) -> impl Iterator<Item = &'static str> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("# "))
}

/// Built-in operators of a dialect, when it has user-definable ones (PostgreSQL).
pub(crate) fn builtin_operators(dialect: Dialect) -> Option<impl Iterator<Item = &'static str>> {
    (dialect == Dialect::Postgres).then(|| data_lines(PG_CATALOG_OPERATORS))
}

/// The built-in side-effect list for a dialect.
pub(crate) fn side_effect(dialect: Dialect) -> impl Iterator<Item = &'static str> {
    let specific: &[&str] = match dialect {
        Dialect::MySql => SIDE_EFFECT_MYSQL,
        Dialect::Postgres => SIDE_EFFECT_POSTGRES,
        Dialect::Sqlite => SIDE_EFFECT_SQLITE,
    };
    SIDE_EFFECT_COMMON.iter().chain(specific).copied()
}

/// The built-in list of known-pure functions for a dialect.
pub(crate) fn pure(dialect: Dialect) -> impl Iterator<Item = &'static str> {
    let specific: &[&str] = match dialect {
        Dialect::MySql => PURE_MYSQL,
        Dialect::Postgres => PURE_POSTGRES,
        Dialect::Sqlite => PURE_SQLITE,
    };
    let more: &[&str] = match dialect {
        Dialect::MySql => PURE_MYSQL_MORE,
        _ => &[],
    };
    let generated = match dialect {
        Dialect::Postgres => PG_CATALOG_FUNCTIONS,
        _ => "",
    };
    PURE_COMMON
        .iter()
        .chain(specific)
        .chain(more)
        .copied()
        .chain(data_lines(generated))
}

/// Session variables (`@@name`) that only the writing connection can answer.
pub(crate) const SESSION_VARIABLES: &[&str] = &[
    "last_insert_id",
    "identity",
    "insert_id",
    "last_gtid",
    "warning_count",
    "error_count",
    "rowcount",
    "gtid_executed",
    "session_track_gtids",
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::route::Target;
    use crate::Classifier;
    use std::collections::HashSet;

    fn target(dialect: Dialect, sql: &str) -> Target {
        Classifier::new(dialect).decide(sql).target
    }

    /// Names the adversarial run on the real servers found reaching a user function: a bare
    /// name the server has no native function of calls the default database's stored function
    /// (MySQL, MariaDB) or a user function on `search_path` (PostgreSQL); built-ins that read a
    /// relation named in a string or run a type's input (and a domain's `CHECK`); and calls that
    /// hold the connection on purpose.
    #[test]
    fn names_a_user_function_can_answer_stay_on_the_primary() {
        for sql in [
            "SELECT random()",
            "SELECT regexp_like('a', 'b')",
            "SELECT any_value(1)",
            "SELECT is_uuid('x')",
            "SELECT point(1)",
            "SELECT point(1, 2, 3)",
            "SELECT polygon()",
            "SELECT `point`(1, 2)",
            "SELECT LineString(POINT(1, 1), `point`(1, 2))",
            "SELECT x(p) FROM t",
            "SELECT contains(a, b) FROM t",
            "SELECT st_not_a_builtin(1)",
            "SELECT json_table(1)",
            "SELECT nvl(a, 1) FROM t",
            "SELECT BENCHMARK(1000, 1)",
            "SELECT pg_sleep(1)",
            // A backquoted name, or a comment before its `(`, is the stored function's.
            "SELECT `count`('x')",
            "SELECT `Now`()",
            "SELECT id, `left`(v, 1) FROM t",
            "SELECT count/**/('x')",
            "SELECT now/* x */()",
            "SELECT count -- c\n('x')",
            "SELECT count#c\n('x')",
            "SELECT `count`/**/('x')",
        ] {
            assert_eq!(target(Dialect::MySql, sql), Target::Primary, "{sql}");
        }
        for sql in [
            "SELECT uuid_generate_v4()",
            "SELECT random_normal()",
            "SELECT any_value(1)",
            "SELECT json_array(1)",
            "SELECT table_to_xml('app.v', true, false, '')",
            "SELECT table_to_xml_and_xmlschema('v', true, false, '')",
            "SELECT schema_to_xml('app', true, false, '')",
            "SELECT database_to_xml(true, false, '')",
            "SELECT record_in('(7)', 'app.t'::regtype, -1)",
            "SELECT array_in('{8}', 'app.d'::regtype, -1)",
            "SELECT domain_in('5', 'app.d'::regtype, -1)",
            "SELECT pg_sleep(1)",
            "VALUES (pg_sleep(1))",
            "SELECT ts_rewrite('a'::tsquery, 'SELECT ''a''::tsquery, ''b''::tsquery')",
            "SELECT pg_catalog.table_to_xml('app.v', true, false, '')",
        ] {
            assert_eq!(target(Dialect::Postgres, sql), Target::Primary, "{sql}");
        }
        // What stays: built-ins both servers have, and PostgreSQL's own `random`.
        for sql in [
            "SELECT abs(1), json_array(1), json_object('a', 1)",
            "SELECT ST_Distance(a, b), ST_X(p), st_astext(p) FROM t",
            "SELECT substr(s, 1, 2), count(*) FROM t GROUP BY 1",
            // whitespace keeps a grammar function the server's own under IGNORE_SPACE (sqlx
            // sets it); a comment elsewhere changes nothing
            "SELECT count (*), now() /* x */ FROM t",
            "SELECT ST_Distance(POINT(0, 0), POINT(3, 4))",
            "SELECT ST_AsText(LineString(Point(0, 0), Point(1, 1)))",
        ] {
            assert_eq!(target(Dialect::MySql, sql), Target::Replica, "{sql}");
        }
        for sql in [
            "SELECT random(), lower(s), coalesce(a, 1), greatest(a, 2) FROM t",
            "SELECT pg_relation_size('t'), to_char(now(), 'YYYY')",
        ] {
            assert_eq!(target(Dialect::Postgres, sql), Target::Replica, "{sql}");
        }
    }

    #[test]
    fn lists_are_lower_case_and_disjoint() {
        for d in [Dialect::MySql, Dialect::Postgres, Dialect::Sqlite] {
            let side: HashSet<_> = side_effect(d).collect();
            for name in pure(d).chain(side.iter().copied()) {
                assert_eq!(name, name.to_ascii_lowercase(), "{name}");
            }
            for name in pure(d) {
                if side_effect_prefixes(d).iter().any(|p| name.starts_with(p)) {
                    continue;
                }
                if d == Dialect::Postgres && PG_CATALOG_FUNCTIONS.lines().any(|l| l == name) {
                    continue; // the generated list is filtered at build time
                }
                assert!(
                    !side.contains(name),
                    "{name} is both pure and side-effect in {d:?}"
                );
            }
        }
    }
}

/// The lists checked by the servers themselves (run by `cargo test` with the test servers'
/// URLs set, as `scripts/test.sh` does; under `CI=true` a missing URL fails).
#[cfg(all(test, any(feature = "mysql", feature = "postgres")))]
mod servers {
    use super::*;

    fn url(var: &str) -> Option<String> {
        match std::env::var(var) {
            Ok(v) if !v.is_empty() => Some(v),
            _ => {
                assert_ne!(
                    std::env::var("CI").as_deref(),
                    Ok("true"),
                    "{var} is not set under CI=true: run the suite with scripts/test.sh"
                );
                eprintln!("skipping: {var} not set");
                None
            }
        }
    }

    /// Every name MySQL's lists call pure is a native function of MariaDB at every arity from
    /// 0 to 4: called bare, it never reaches a stored function of the default database
    /// (error 1305 "FUNCTION db.f does not exist", or 1630, is what a call that would reach
    /// one says when there is none). A name the server parses as syntax (error 1064) cannot
    /// be a stored function's call either.
    #[cfg(feature = "mysql")]
    #[tokio::test]
    async fn mariadb_resolves_every_pure_name_to_its_own_function() {
        use sqlx::mysql::MySqlDatabaseError;
        use sqlx::{AssertSqlSafe, Executor};
        let Some(url) = url("RWSPLIT_MYSQL_PRIMARY") else {
            return;
        };
        let pool = sqlx::MySqlPool::connect(&url).await.expect("connect");
        // The check itself works: a name nobody defined reaches the stored functions (1305),
        // so a default database is selected and the error is the one looked for.
        let control = pool
            .execute("SELECT rwsplit_no_such_function_anywhere(1)")
            .await
            .expect_err("no such function");
        assert_eq!(
            control
                .as_database_error()
                .and_then(|d| d.try_downcast_ref::<MySqlDatabaseError>())
                .map(MySqlDatabaseError::number),
            Some(1305),
            "{control}"
        );
        let mut reaches_stored = Vec::new();
        let mut names: Vec<&str> = pure(Dialect::MySql).collect();
        names.sort_unstable();
        names.dedup();
        names.extend(NATIVE_AT_ARITY_MYSQL.iter().map(|(n, _)| *n));
        for name in names {
            for arity in 0..5 {
                if NATIVE_AT_ARITY_MYSQL.iter().any(|(n, _)| *n == name)
                    && !native_at_arity(Dialect::MySql, name, arity)
                {
                    continue;
                }
                let args = vec!["1"; arity].join(", ");
                let sql = format!("SELECT {name}({args})");
                if let Err(e) = pool.execute(AssertSqlSafe(sql.clone())).await {
                    let number = e
                        .as_database_error()
                        .and_then(|d| d.try_downcast_ref::<MySqlDatabaseError>())
                        .map(MySqlDatabaseError::number);
                    if matches!(number, Some(1305 | 1630)) {
                        reaches_stored.push(sql);
                    }
                }
            }
        }
        pool.close().await;
        assert!(
            reaches_stored.is_empty(),
            "pure names that reach a stored function: {reaches_stored:?}"
        );
    }

    /// Every name PostgreSQL's lists call pure is a `pg_catalog` function, or a keyword the
    /// grammar reads as syntax (`coalesce`, `current_date`: never a function call); and none
    /// has an overload that takes `cstring` or `internal` (type input, which runs a domain's
    /// `CHECK`) or maps a relation named in a string to XML.
    #[cfg(feature = "postgres")]
    #[tokio::test]
    async fn postgres_has_every_pure_name_in_its_catalog() {
        use sqlx::Row;
        let Some(url) = url("RWSPLIT_PG_PRIMARY") else {
            return;
        };
        let pool = sqlx::PgPool::connect(&url).await.expect("connect");
        let mut names: Vec<String> = pure(Dialect::Postgres).map(str::to_string).collect();
        names.sort_unstable();
        names.dedup();
        let rows = sqlx::query(
            "SELECT n,
                EXISTS (SELECT 1 FROM pg_proc WHERE proname = n
                    AND pronamespace = 'pg_catalog'::regnamespace) AS builtin,
                EXISTS (SELECT 1 FROM pg_get_keywords() WHERE word = n
                    AND catcode IN ('C', 'R')) AS syntax,
                EXISTS (SELECT 1 FROM pg_proc WHERE proname = n
                    AND pronamespace = 'pg_catalog'::regnamespace
                    AND ('cstring'::regtype = ANY (proargtypes::oid[])
                      OR 'internal'::regtype = ANY (proargtypes::oid[]))) AS input,
                n ~ '^(table|schema|database|query|cursor)_to_xml'
                    OR n IN ('ts_rewrite', 'ts_stat') AS xml
             FROM unnest($1::text[]) AS n",
        )
        .bind(&names)
        .fetch_all(&pool)
        .await
        .expect("catalog");
        pool.close().await;
        assert_eq!(rows.len(), names.len());
        let mut wrong = Vec::new();
        for row in rows {
            let name: String = row.get(0);
            let (builtin, syntax, input, xml): (bool, bool, bool, bool) =
                (row.get(1), row.get(2), row.get(3), row.get(4));
            if !(builtin || syntax) || input || xml {
                wrong.push(name);
            }
        }
        assert!(
            wrong.is_empty(),
            "pure names PostgreSQL does not vouch for: {wrong:?}"
        );
    }
}
