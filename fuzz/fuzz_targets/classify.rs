//! Fuzz target for the statement classifier.
//!
//! Input: the first byte picks the dialect (`m`/`M` MySQL, `p`/`P` PostgreSQL, `s`/`S` SQLite,
//! any other byte by its value mod 3), the rest is the SQL text (lossy UTF-8).
//!
//! Checks, besides "never panics" (libFuzzer reports a panic as a crash):
//! 1. Suffix oracle: when the text goes to a replica, the same text followed by a fragment that
//!    makes a statement not a pure read (a locking clause, a second statement, `INTO @x` after
//!    a MySQL SELECT; after `SHOW name` only the second statement) must go to the primary. Each
//!    fragment starts with a newline, which ends a trailing `--`/`#` comment, so the fragment
//!    is always SQL and never comment text.
//! 2. Keyword oracle, only for text with no quotes, comments, `$`, backslashes or brackets
//!    (so every word below is an unquoted keyword or identifier, never string or comment
//!    content): a replica decision is wrong when the first word of a statement (at the start or
//!    after `;`, skipping `(`) is a write/session keyword (`INSERT`, `CALL`, `LOCK`, ...), when
//!    a locking clause (`FOR UPDATE`, `LOCK IN SHARE MODE`, ...) appears anywhere, when a
//!    `WITH` query has a data-modifying CTE (`AS (DELETE ...`), or when `EXPLAIN ANALYZE`
//!    (which executes its statement) runs a write. Only leading words count: `SELECT update
//!    FROM t` is a read in PostgreSQL, where UPDATE is a non-reserved keyword. A bare `INTO`
//!    is not checked: sqlparser also takes it for an identifier (`EXPLAIN INTO`,
//!    `EXPLAIN SELECT a+INTO+b`), text that every server rejects, so that is no write.
//!
//! A violation panics with the dialect, the text and both decisions.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use rwsplit::{Classifier, ClassifierOptions, Decision, Dialect, Target};
use sqlparser::ast::Statement;
use sqlparser::dialect::{MySqlDialect, PostgreSqlDialect, SQLiteDialect};
use sqlparser::parser::Parser;

const DIALECTS: [Dialect; 3] = [Dialect::MySql, Dialect::Postgres, Dialect::Sqlite];

/// One classifier per dialect, without the cache: every input is parsed (deterministic
/// coverage, and a cache hit could hide a parse-time panic).
static CLASSIFIERS: LazyLock<[Classifier; 3]> =
    LazyLock::new(|| DIALECTS.map(|d| ClassifierOptions::new(d).cache_bytes(0).build()));

fn dialect_index(selector: u8) -> usize {
    match selector {
        b'm' | b'M' => 0,
        b'p' | b'P' => 1,
        b's' | b'S' => 2,
        other => usize::from(other) % 3,
    }
}

/// True when sqlparser reads the text as `SHOW name ...`: it takes any tokens up to `;` or `=`
/// as the name (`SHOW x INTO y` and `SHOW x @\nFOR UPDATE` parse), so appending a locking
/// clause or INTO leaves it a "read". No server runs such text (no SHOW locks or writes), so
/// after it only a second statement is a write.
fn is_show_variable(dialect: Dialect, sql: &str) -> bool {
    let parser_dialect: &dyn sqlparser::dialect::Dialect = match dialect {
        Dialect::MySql => &MySqlDialect {},
        Dialect::Postgres => &PostgreSqlDialect {},
        _ => &SQLiteDialect {},
    };
    matches!(
        Parser::parse_sql(parser_dialect, sql).as_deref(),
        Ok([Statement::ShowVariable { .. }, ..])
    )
}

/// Fragments that turn any statement into something that is not a pure read.
fn write_suffixes(dialect: Dialect) -> &'static [&'static str] {
    match dialect {
        Dialect::MySql => &["\nFOR UPDATE", "\nLOCK IN SHARE MODE", "\n; DELETE FROM t"],
        Dialect::Postgres => &[
            "\nFOR UPDATE",
            "\nFOR NO KEY UPDATE",
            "\nFOR SHARE",
            "\n; DELETE FROM t",
        ],
        _ => &["\nFOR UPDATE", "\n; DELETE FROM t"],
    }
}

/// First words of statements that are never a pure read, in any of the three dialects.
/// (`SET` is absent: MariaDB's `SET STATEMENT ... FOR SELECT` is a read; so are `DO`, `SHOW`,
/// `EXPLAIN`, `COPY ... TO STDOUT`, `TABLE`, `VALUES`, `WITH`.)
const NEVER_READ_LEADERS: &[&str] = &[
    "INSERT",
    "UPDATE",
    "DELETE",
    "REPLACE",
    "UPSERT",
    "MERGE",
    "CREATE",
    "DROP",
    "ALTER",
    "TRUNCATE",
    "RENAME",
    "GRANT",
    "REVOKE",
    "CALL",
    "LOCK",
    "UNLOCK",
    "LOAD",
    "BEGIN",
    "START",
    "COMMIT",
    "ROLLBACK",
    "ABORT",
    "END",
    "SAVEPOINT",
    "RELEASE",
    "PREPARE",
    "EXECUTE",
    "DEALLOCATE",
    "DECLARE",
    "FETCH",
    "MOVE",
    "CLOSE",
    "XA",
    "HANDLER",
    "KILL",
    "FLUSH",
    "RESET",
    "PURGE",
    "USE",
    "LISTEN",
    "UNLISTEN",
    "NOTIFY",
    "DISCARD",
    "VACUUM",
    "REINDEX",
    "CLUSTER",
    "REFRESH",
    "COMMENT",
    "OPTIMIZE",
    "REPAIR",
    "INSTALL",
    "UNINSTALL",
    "SHUTDOWN",
    "CHECKPOINT",
    "ATTACH",
    "DETACH",
];

/// Statements that `EXPLAIN ANALYZE` executes and that write.
const WRITE_STATEMENTS: &[&str] = &[
    "INSERT", "UPDATE", "DELETE", "REPLACE", "MERGE", "CREATE", "EXECUTE", "DECLARE",
];

/// Statement-starting words that end `EXPLAIN`'s options.
const STATEMENT_STARTS: &[&str] = &[
    "SELECT", "WITH", "TABLE", "VALUES", "INSERT", "UPDATE", "DELETE", "REPLACE", "MERGE",
    "CREATE", "EXECUTE", "DECLARE",
];

const LOCKING_CLAUSES: &[&[&str]] = &[
    &["FOR", "UPDATE"],
    &["FOR", "SHARE"],
    &["FOR", "NO", "KEY", "UPDATE"],
    &["FOR", "KEY", "SHARE"],
    &["LOCK", "IN", "SHARE", "MODE"],
];

/// Text in which every word is an unquoted keyword or identifier.
fn plain(sql: &str) -> bool {
    !sql.contains(['\'', '"', '`', '$', '\\', '#', '[', ']'])
        && !sql.contains("--")
        && !sql.contains("/*")
}

fn is_word_char(c: char) -> bool {
    // Non-ASCII counts as a word character, as in sqlparser's identifiers: `DELETE\u{a0}x` is
    // one identifier there, so it must not look like the keyword `DELETE` here.
    c.is_ascii_alphanumeric() || c == '_' || c == '@' || !c.is_ascii()
}

/// The text as words and single punctuation characters, whitespace dropped.
fn lexemes(sql: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = sql;
    while let Some(c) = rest.chars().next() {
        if c.is_ascii_whitespace() {
            rest = &rest[c.len_utf8()..];
        } else if is_word_char(c) {
            let end = rest.find(|c| !is_word_char(c)).unwrap_or(rest.len());
            out.push(&rest[..end]);
            rest = &rest[end..];
        } else {
            out.push(&rest[..c.len_utf8()]);
            rest = &rest[c.len_utf8()..];
        }
    }
    out
}

fn is(lexeme: &str, word: &str) -> bool {
    lexeme.eq_ignore_ascii_case(word)
}

fn is_any(lexeme: &str, words: &[&str]) -> bool {
    words.iter().any(|w| is(lexeme, w))
}

/// Why a replica decision is wrong for a [`plain`] text split into `lex` by [`lexemes`], if it
/// is; `show`: see [`is_show_variable`].
fn keyword_violation(lex: &[&str], show: bool) -> Option<String> {
    // Leading word of each statement.
    let mut at_start = true;
    for (i, l) in lex.iter().enumerate() {
        match *l {
            ";" => at_start = true,
            "(" => {}
            word => {
                if at_start && is_any(word, NEVER_READ_LEADERS) {
                    return Some(format!("statement starts with {word}"));
                }
                if at_start && is(word, "EXPLAIN") {
                    if let Some(why) = explain_analyze_write(&lex[i + 1..]) {
                        return Some(why);
                    }
                }
                at_start = false;
            }
        }
    }
    // After `SHOW name`, anything but a second statement is junk the server rejects.
    if show {
        return None;
    }
    for i in 0..lex.len() {
        for clause in LOCKING_CLAUSES {
            let here = lex.get(i..i + clause.len());
            if here.is_some_and(|words| words.iter().zip(*clause).all(|(l, w)| is(l, w))) {
                return Some(format!("locking clause {}", clause.join(" ")));
            }
        }
        // `AS (DELETE ...`, `AS MATERIALIZED (UPDATE ...`, `AS NOT MATERIALIZED (INSERT ...`.
        if is(lex[i], "AS") {
            let mut j = i + 1;
            while j < lex.len() && (is(lex[j], "NOT") || is(lex[j], "MATERIALIZED")) {
                j += 1;
            }
            if lex.get(j) == Some(&"(")
                && lex
                    .get(j + 1)
                    .is_some_and(|w| is_any(w, &["INSERT", "UPDATE", "DELETE", "MERGE"]))
            {
                return Some(format!("data-modifying CTE ({})", lex[j + 1]));
            }
        }
    }
    None
}

/// `EXPLAIN [ANALYZE] [(options)] statement`: ANALYZE (not `ANALYZE false/off/0`) executes the
/// statement, so explaining a write that way is a write.
fn explain_analyze_write(after: &[&str]) -> Option<String> {
    let mut analyze = false;
    for (i, l) in after.iter().enumerate() {
        if is(l, "ANALYZE") || is(l, "ANALYSE") {
            let off = after
                .get(i + 1)
                .is_some_and(|n| is_any(n, &["FALSE", "OFF", "0"]));
            analyze |= !off;
        } else if is_any(l, STATEMENT_STARTS) {
            return (analyze && is_any(l, WRITE_STATEMENTS))
                .then(|| format!("EXPLAIN ANALYZE {l}"));
        } else if *l == ";" {
            return None;
        }
    }
    None
}

fn fail(dialect: Dialect, sql: &str, decision: &Decision, why: &str) -> ! {
    panic!(
        "ORACLE VIOLATION ({why})\n  dialect:  {dialect:?}\n  sql:      {sql:?}\n  decision: {decision:?}"
    );
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let index = dialect_index(selector);
    let dialect = DIALECTS[index];
    let classifier = &CLASSIFIERS[index];
    let sql = String::from_utf8_lossy(rest);
    let sql = sql.as_ref();

    let decision = classifier.decide(sql);
    // The telemetry path tokenizes the same untrusted text: it must not panic either.
    let _ = classifier.sanitize(sql);
    if decision.target != Target::Replica {
        return;
    }

    // `INTO @x` makes a MySQL SELECT assign a user variable (a write); after anything else
    // (`SHOW`, `DESCRIBE`, `EXPLAIN SELECT`) it is invalid or inert.
    let show = is_show_variable(dialect, sql);
    let suffixes: Vec<&str> = match classifier.analyze(sql).operation() {
        _ if show => vec!["\n; DELETE FROM t"],
        "SELECT" if dialect == Dialect::MySql => {
            let mut all = write_suffixes(dialect).to_vec();
            all.push("\nINTO @x");
            all
        }
        _ => write_suffixes(dialect).to_vec(),
    };
    for suffix in suffixes {
        let written = format!("{sql}{suffix}");
        let after = classifier.decide(&written);
        if after.target != Target::Primary {
            panic!(
                "ORACLE VIOLATION (suffix {suffix:?} still goes to a replica)\n  dialect:  {dialect:?}\n  sql:      {sql:?}\n  decision: {decision:?}\n  with suffix: {written:?}\n  decision: {after:?}"
            );
        }
    }

    if plain(sql) {
        if let Some(why) = keyword_violation(&lexemes(sql), show) {
            fail(dialect, sql, &decision, &why);
        }
    }
});
