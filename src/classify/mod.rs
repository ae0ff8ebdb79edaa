//! The statement classifier: parses SQL with `sqlparser` in the backend's dialect and decides
//! whether it is provably a pure read. Results are kept in a bounded cache keyed by the SQL
//! text, so a repeated statement costs a hash lookup, and a stream of unique statements
//! (inline literals) cannot grow memory past the cache's byte budget.
//!
//! Layer: knowledge (above the plain types; knows no server).

mod ast;
mod front;
mod functions;
mod lex;
pub(crate) mod names;
mod scan;

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use quick_cache::sync::{Cache, GuardResult};
use quick_cache::Weighter;
use sqlparser::dialect::{MySqlDialect, PostgreSqlDialect, SQLiteDialect};
use sqlparser::parser::Parser;
use sqlparser::tokenizer::Tokenizer;

use crate::route::{decide, Decision, PoolState, Reason, Route, UnknownFunctionPolicy, Verdict};
use ast::FunctionRules;

/// The SQL dialect statements are parsed in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Dialect {
    /// MySQL 8 and MariaDB.
    MySql,
    /// PostgreSQL.
    Postgres,
    /// SQLite.
    Sqlite,
}

impl Dialect {
    fn parser_dialect(self) -> &'static dyn sqlparser::dialect::Dialect {
        match self {
            Dialect::MySql => &MySqlDialect {},
            Dialect::Postgres => &PostgreSqlDialect {},
            Dialect::Sqlite => &SQLiteDialect {},
        }
    }
}

impl std::str::FromStr for Dialect {
    type Err = crate::error::Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "mysql" | "mariadb" => Ok(Dialect::MySql),
            "postgres" | "postgresql" | "pg" => Ok(Dialect::Postgres),
            "sqlite" => Ok(Dialect::Sqlite),
            _ => Err(crate::error::Error::InvalidOption {
                option: "dialect",
                why: "expected mysql, postgres or sqlite",
            }),
        }
    }
}

/// Options of the [`Classifier`]; a consuming builder. Every default is chosen to be safe.
#[derive(Debug, Clone)]
pub struct ClassifierOptions {
    dialect: Dialect,
    extra_side_effect: Vec<String>,
    extra_pure: Vec<String>,
    unknown_functions: UnknownFunctionPolicy,
    cache_bytes: u64,
    max_statement_bytes: usize,
    recursion_limit: usize,
}

impl ClassifierOptions {
    /// Defaults for `dialect`.
    pub fn new(dialect: Dialect) -> Self {
        ClassifierOptions {
            dialect,
            extra_side_effect: Vec::new(),
            extra_pure: Vec::new(),
            unknown_functions: UnknownFunctionPolicy::Primary,
            cache_bytes: 8 * 1024 * 1024,
            max_statement_bytes: 256 * 1024,
            recursion_limit: 64,
        }
    }

    /// Adds a function with side effects (for example a stored function that writes):
    /// any statement calling it goes to the primary. Case-insensitive, unqualified name.
    pub fn side_effect_function(mut self, name: impl Into<String>) -> Self {
        self.extra_side_effect.push(name.into());
        self
    }

    /// Declares a function pure (safe on a replica). Case-insensitive, unqualified name.
    /// A name on the side-effect list stays there: the side-effect list wins.
    pub fn pure_function(mut self, name: impl Into<String>) -> Self {
        self.extra_pure.push(name.into());
        self
    }

    /// Routing of reads that call a function neither list knows. Default:
    /// [`UnknownFunctionPolicy::Primary`].
    pub fn unknown_functions(mut self, policy: UnknownFunctionPolicy) -> Self {
        self.unknown_functions = policy;
        self
    }

    /// Memory budget of the classification cache: each entry's SQL text, analysis and the
    /// cache's own bookkeeping, counted as allocated, so resident memory grows by about this
    /// much and no more. Default: 8 MiB (about 20,000 typical statements). 0 disables it.
    /// Besides it, each thread that routes keeps the last statements it found in the cache
    /// (at most 64 texts of at most 512 bytes, with their analyses: a few tens of KiB) to find
    /// them again without the cache's lock.
    pub fn cache_bytes(mut self, bytes: u64) -> Self {
        self.cache_bytes = bytes;
        self
    }

    /// Statements longer than this are not parsed and go to the primary. Default: 256 KiB,
    /// which bounds the parse cost of untrusted SQL.
    pub fn max_statement_bytes(mut self, bytes: usize) -> Self {
        self.max_statement_bytes = bytes;
        self
    }

    /// Parser nesting limit; deeper statements go to the primary. Default: 64.
    pub fn recursion_limit(mut self, depth: usize) -> Self {
        self.recursion_limit = depth;
        self
    }

    /// The dialect these options parse in.
    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// Builds the classifier.
    pub fn build(self) -> Classifier {
        let lower = |s: &String| s.to_ascii_lowercase().into_boxed_str();
        let side_effect: HashSet<Box<str>> = functions::side_effect(self.dialect)
            .chain(functions::unsafe_direct_calls(self.dialect).iter().copied())
            .map(Box::from)
            .chain(self.extra_side_effect.iter().map(lower))
            .collect();
        let pure: HashSet<Box<str>> = functions::pure(self.dialect)
            .map(Box::from)
            .chain(self.extra_pure.iter().map(lower))
            .filter(|f| !side_effect.contains(f))
            .filter(|f| {
                !functions::side_effect_prefixes(self.dialect)
                    .iter()
                    .any(|p| f.starts_with(p))
            })
            .collect();
        let operators = functions::builtin_operators(self.dialect).map(|ops| ops.collect());
        let cache = (self.cache_bytes > 0).then(|| {
            let estimated = (self.cache_bytes / 512).max(16) as usize;
            Cache::with_weighter(estimated, self.cache_bytes, EntryWeight)
        });
        Classifier(Arc::new(Inner {
            rules: FunctionRules {
                dialect: self.dialect,
                side_effect,
                pure,
                operators,
            },
            cache,
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            generation: AtomicU64::new(0),
            options: self,
        }))
    }
}

/// The classifier's result for one SQL text, shared by every call that sends the same text.
#[derive(Debug, Clone)]
pub struct Analysis {
    pub(crate) verdict: Verdict,
    pub(crate) hint: Option<Route>,
    pub(crate) operation: &'static str,
    pub(crate) collection: Option<Box<str>>,
    pub(crate) summary: Box<str>,
    /// The text with literals replaced, computed the first time a span wants it.
    pub(crate) sanitized: std::sync::OnceLock<Box<str>>,
    /// The relations a read names (canonical names, see `names`), for the catalog's view
    /// check (`crate::volatility`); empty for statements that go to the primary anyway.
    pub(crate) relations: Box<[Arc<str>]>,
    /// The built-in functions a read calls by bare name (PostgreSQL), for the catalog's
    /// check of user functions that may shadow them; empty otherwise.
    pub(crate) builtins: Box<[Arc<str>]>,
    /// The user types a read casts to (PostgreSQL), for the catalog's check of domains,
    /// casts and input functions that may run a volatile function; empty otherwise.
    pub(crate) types: Box<[Arc<str>]>,
    /// Set when a replica refused the statement as a write: it goes to the primary from then
    /// on (learned, kept as long as the analysis stays in the cache).
    pub(crate) refused: std::sync::OnceLock<()>,
}

impl Analysis {
    /// The operation name (`SELECT`, `INSERT`, ...), upper case.
    #[inline]
    pub fn operation(&self) -> &'static str {
        self.operation
    }

    /// The one table the statement touches, when that is unambiguous.
    pub fn collection(&self) -> Option<&str> {
        self.collection.as_deref()
    }

    /// The low-cardinality summary used as span name (`db.query.summary`): the operation and,
    /// when unambiguous, the table, e.g. `SELECT users`.
    #[inline]
    pub fn summary(&self) -> &str {
        &self.summary
    }

    /// A replica refused this statement as a write: route it to the primary from now on.
    pub(crate) fn refused(&self) {
        let _ = self.refused.set(());
    }

    /// Did a replica refuse this statement as a write?
    #[inline]
    pub(crate) fn was_refused(&self) -> bool {
        self.refused.get().is_some()
    }

    /// The sanitized text, computed once by `make`.
    pub(crate) fn sanitized(&self, make: impl FnOnce() -> String) -> &str {
        self.sanitized.get_or_init(|| make().into_boxed_str())
    }

    /// The route hint written in the statement, if any.
    pub fn comment_hint(&self) -> Option<Route> {
        self.hint
    }

    /// True when the statement is provably a pure read.
    pub fn is_pure_read(&self) -> bool {
        self.verdict == Verdict::Read
    }
}

#[derive(Debug, Clone)]
struct EntryWeight;

/// What one heap allocation of `len` bytes really takes from the allocator: its 8-byte header,
/// rounded up to 16 (glibc malloc's granularity).
const fn allocated(len: usize) -> usize {
    (len + 8).div_ceil(16) * 16
}

/// Bytes the cache's own bookkeeping takes per entry (its slot, the hash table entry, and the
/// ghost entry a recently evicted key leaves), measured: with this, resident memory grows by
/// about the configured budget and no more (BENCHMARKS.md, memory).
const CACHE_SLOT_BYTES: usize = 160;

impl Weighter<Box<str>, Arc<Analysis>> for EntryWeight {
    /// The memory an entry holds: the key, the `Arc<Analysis>` (two reference counts and the
    /// value) and the strings it owns, each as allocated, plus the cache's own bookkeeping.
    fn weight(&self, key: &Box<str>, val: &Arc<Analysis>) -> u64 {
        let collection = val.collection.as_ref().map_or(0, |c| allocated(c.len()));
        let names = |list: &[Arc<str>]| {
            if list.is_empty() {
                0
            } else {
                allocated(list.len() * 16)
                    + list.iter().map(|r| allocated(r.len() + 16)).sum::<usize>()
            }
        };
        let relations = names(&val.relations) + names(&val.builtins) + names(&val.types);
        // Room for the sanitized text (no longer than the statement: literals become `?`,
        // comments a space), counted from the start: it is filled in later, the first time a
        // span records it, and an entry's weight must not change once it is in the cache
        // (quick_cache weighs it again when it moves or leaves, so a weight that grew would be
        // subtracted larger than it was added: found by a cold review, the budget no longer
        // bounded the cache).
        let sanitized = allocated(key.len());
        let bytes = allocated(key.len())
            + allocated(std::mem::size_of::<Analysis>() + 16)
            + allocated(val.summary.len())
            + collection
            + relations
            + sanitized
            + CACHE_SLOT_BYTES;
        bytes as u64
    }
}

/// The next classifier's id in the per-thread front cache.
static NEXT_ID: AtomicU64 = AtomicU64::new(0);

struct Inner {
    options: ClassifierOptions,
    rules: FunctionRules,
    cache: Option<Cache<Box<str>, Arc<Analysis>, EntryWeight>>,
    hits: AtomicU64,
    misses: AtomicU64,
    /// This classifier's key in the per-thread [`front`] (never reused).
    id: u64,
    /// Moves with every insertion into the shared cache (and so with every eviction, which
    /// only an insertion causes): a per-thread front entry is valid while it has not moved.
    generation: AtomicU64,
}

/// Classifies SQL statements; cheap to clone (shared state behind an `Arc`).
#[derive(Clone)]
pub struct Classifier(Arc<Inner>);

impl std::fmt::Debug for Classifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let stats = self.cache_stats();
        f.debug_struct("Classifier")
            .field("dialect", &self.0.options.dialect)
            .field("unknown_functions", &self.0.options.unknown_functions)
            .field("cache", &stats)
            .finish()
    }
}

/// A snapshot of the classification cache counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct CacheStats {
    /// Lookups answered from the cache.
    pub hits: u64,
    /// Lookups that parsed.
    pub misses: u64,
    /// Entries held now.
    pub entries: usize,
    /// Bytes (by the cache's weight) held now.
    pub bytes: u64,
}

impl Classifier {
    /// A classifier with default options for `dialect`.
    pub fn new(dialect: Dialect) -> Self {
        ClassifierOptions::new(dialect).build()
    }

    /// The dialect statements are parsed in.
    pub fn dialect(&self) -> Dialect {
        self.0.options.dialect
    }

    /// The unknown-function policy.
    pub fn unknown_functions(&self) -> UnknownFunctionPolicy {
        self.0.options.unknown_functions
    }

    /// The names of the side-effect list (built-in and added, lower case, sorted) and the
    /// side-effect prefixes: what the catalog's view check looks for in view definitions.
    pub(crate) fn side_effect_names(&self) -> (Vec<String>, Vec<String>) {
        let mut names: Vec<String> = self
            .0
            .rules
            .side_effect
            .iter()
            .filter(|n| !functions::unsafe_direct_calls(self.0.options.dialect).contains(&&***n))
            .map(|n| n.to_string())
            .collect();
        names.sort_unstable();
        let prefixes = functions::side_effect_prefixes(self.0.options.dialect)
            .iter()
            .map(|p| p.to_string())
            .collect();
        (names, prefixes)
    }

    /// Classifies `sql`, from the cache when it was seen before.
    #[inline]
    pub fn analyze(&self, sql: &str) -> Arc<Analysis> {
        // Inline: the per-thread front's hit, the common case, costs no call; the rest is
        // `analyze_shared`. The front answers only with what the shared cache holds for `sql`
        // now: its entries are valid while no insertion happened since they were read (see
        // `front`), so every thread sees the same analysis, and what is learned on it.
        if self.0.cache.is_some() && sql.len() <= front::MAX_LEN {
            let generation = self.0.generation.load(Ordering::Acquire);
            let slot = front::slot(sql);
            if let Some(hit) = front::get(self.0.id, generation, slot, sql) {
                self.0.hits.fetch_add(1, Ordering::Relaxed);
                return hit;
            }
            return self.analyze_shared(sql, Some((slot, generation)));
        }
        self.analyze_shared(sql, None)
    }

    /// [`Self::analyze`] past the front (`front`: the slot and generation it was asked with,
    /// when `sql` may be kept there): the shared cache, else a fresh analysis, stored.
    fn analyze_shared(&self, sql: &str, front: Option<(usize, u64)>) -> Arc<Analysis> {
        let Some(cache) = &self.0.cache else {
            self.0.misses.fetch_add(1, Ordering::Relaxed);
            return Arc::new(self.analyze_uncached(sql));
        };
        if let Some(hit) = cache.get(sql) {
            self.0.hits.fetch_add(1, Ordering::Relaxed);
            if let Some((slot, generation)) = front {
                front::put(self.0.id, generation, slot, sql, &hit);
            }
            return hit;
        }
        self.0.misses.fetch_add(1, Ordering::Relaxed);
        let analysis = Arc::new(self.analyze_uncached(sql));
        if sql.len() <= self.0.options.max_statement_bytes {
            return self.store(sql, analysis);
        }
        analysis
    }

    /// Puts `analysis` in the shared cache for `sql`, unless the cache holds one already (a
    /// concurrent thread's, which then wins, so that every thread shares one analysis and what
    /// is learned on it) or another thread is putting its own; returns the one to use. An
    /// insertion may evict others. Every per-thread front entry read before the insertion ends
    /// is invalid after it: the generation moves before (an entry read during the insertion is
    /// invalid at once) and after it (an entry read before it is invalid too).
    fn store(&self, sql: &str, analysis: Arc<Analysis>) -> Arc<Analysis> {
        let Some(cache) = &self.0.cache else {
            return analysis;
        };
        let key: Box<str> = sql.into();
        match cache.get_value_or_guard(&key, Some(std::time::Duration::ZERO)) {
            GuardResult::Value(cached) => cached,
            GuardResult::Guard(guard) => {
                self.0.generation.fetch_add(1, Ordering::AcqRel);
                // An error gives the value back: the placeholder was taken meanwhile.
                let _ = guard.insert(analysis.clone());
                self.0.generation.fetch_add(1, Ordering::Release);
                analysis
            }
            GuardResult::Timeout => analysis,
        }
    }

    /// The decision for `sql` in a pool that has replicas, with no call or scope hint: what
    /// `examples/classify.rs` prints.
    pub fn decide(&self, sql: &str) -> Decision {
        let analysis = self.analyze(sql);
        decide(
            &analysis.verdict,
            analysis.hint,
            None,
            None,
            PoolState {
                has_replicas: true,
                unknown_functions: self.unknown_functions(),
                consistency: crate::options::Consistency::Eventual,
            },
        )
    }

    /// Cache counters.
    pub fn cache_stats(&self) -> CacheStats {
        CacheStats {
            hits: self.0.hits.load(Ordering::Relaxed),
            misses: self.0.misses.load(Ordering::Relaxed),
            entries: self.0.cache.as_ref().map_or(0, |c| c.len()),
            bytes: self.0.cache.as_ref().map_or(0, |c| c.weight()),
        }
    }

    fn analyze_uncached(&self, sql: &str) -> Analysis {
        let opts = &self.0.options;
        let primary = |reason, hint, operation: &'static str| Analysis {
            verdict: Verdict::Primary(reason),
            hint,
            operation,
            collection: None,
            summary: operation.into(),
            relations: Box::default(),
            builtins: Box::default(),
            types: Box::default(),
            sanitized: std::sync::OnceLock::new(),
            refused: std::sync::OnceLock::new(),
        };
        if sql.len() > opts.max_statement_bytes {
            return primary(Reason::TooLarge, None, "UNKNOWN");
        }
        if let Some(reason) = lex::check(sql, opts.dialect) {
            return primary(reason, None, first_word(sql));
        }
        let dialect = opts.dialect.parser_dialect();
        let tokens = match Tokenizer::new(dialect, sql).tokenize_with_location() {
            Ok(tokens) => tokens,
            Err(_) => return primary(Reason::Unparseable, None, "UNKNOWN"),
        };
        let scan = scan::scan(&tokens, opts.dialect);
        if let Some(reason) = scan.primary {
            return primary(reason, scan.hint, scan.first_keyword);
        }
        let mut parser = Parser::new(dialect)
            .with_recursion_limit(opts.recursion_limit)
            .with_tokens_with_locations(tokens);
        let statements = match parser.parse_statements() {
            Ok(statements) => statements,
            Err(_) => {
                if let Some(read) = self.unparsed_read(sql, &scan) {
                    return read;
                }
                return primary(Reason::Unparseable, scan.hint, scan.first_keyword);
            }
        };
        // `parse_statements` stops early at some keywords (an `END` closing a block) and
        // returns what it parsed so far: `SELECT x END; DELETE FROM t` would look like one
        // read. Anything left unparsed makes the statement unparseable (found by fuzzing).
        if parser.peek_token().token != sqlparser::tokenizer::Token::EOF {
            return primary(Reason::Unparseable, scan.hint, scan.first_keyword);
        }
        let stmt = match statements.as_slice() {
            [one] => one,
            [] => return primary(Reason::Unparseable, scan.hint, scan.first_keyword),
            _ => return primary(Reason::MultiStatement, scan.hint, scan.first_keyword),
        };
        let mut facts = ast::Facts::default();
        let mut verdict = ast::classify(stmt, &self.0.rules, &mut facts);
        let is_query = matches!(stmt, sqlparser::ast::Statement::Query(_));
        if is_query && scan.has_into && !matches!(verdict, Verdict::Primary(_)) {
            verdict = Verdict::Primary(Reason::SelectInto);
        }
        let operation = if is_query {
            "SELECT"
        } else {
            scan.first_keyword
        };
        let summary = match &facts.collection {
            Some(c) => format!("{operation} {c}").into_boxed_str(),
            None => operation.into(),
        };
        let (relations, builtins, types) = match verdict {
            Verdict::Primary(_) => (Box::default(), Box::default(), Box::default()),
            _ => (
                facts.relations.into_boxed_slice(),
                facts.builtins.into_boxed_slice(),
                facts.types.into_boxed_slice(),
            ),
        };
        Analysis {
            verdict,
            hint: scan.hint,
            operation,
            collection: facts.collection,
            summary,
            relations,
            builtins,
            types,
            sanitized: std::sync::OnceLock::new(),
            refused: std::sync::OnceLock::new(),
        }
    }

    /// Reads sqlparser cannot parse but whose tokens alone prove them reads: MySQL `SHOW`
    /// forms and `DESCRIBE t col` made of words and literals only (no parentheses, so no
    /// function call; no variables), and PostgreSQL `TABLE [ONLY] name`. Rare text (the
    /// failure path), so it tokenizes again rather than cloning the tokens of every parse.
    fn unparsed_read(&self, sql: &str, scan: &scan::Scan) -> Option<Analysis> {
        use sqlparser::tokenizer::Token;
        if scan.primary.is_some() {
            return None;
        }
        let dialect = self.0.options.dialect;
        let tokens = Tokenizer::new(dialect.parser_dialect(), sql)
            .tokenize()
            .ok()?;
        let sig: Vec<&Token> = tokens
            .iter()
            .filter(|t| !matches!(t, Token::Whitespace(_) | Token::EOF))
            .collect();
        let word = |i: usize| match sig.get(i) {
            Some(Token::Word(w)) if w.quote_style.is_none() => Some(w.value.to_ascii_uppercase()),
            _ => None,
        };
        let plain = |from: usize| {
            sig[from..].iter().all(|t| match t {
                Token::Word(w) => !w.value.starts_with('@'),
                Token::SingleQuotedString(_) | Token::Number(..) | Token::Period => true,
                Token::Eq | Token::Neq | Token::Comma => true,
                _ => false,
            })
        };
        let (operation, ok) = match (dialect, word(0).as_deref()) {
            (Dialect::MySql, Some("SHOW")) => {
                const SAFE: &[&str] = &[
                    "CREATE",
                    "PROCEDURE",
                    "FUNCTION",
                    "TABLE",
                    "ENGINES",
                    "PLUGINS",
                    "INDEX",
                    "INDEXES",
                    "KEYS",
                    "TRIGGERS",
                    "EVENTS",
                    "CHARACTER",
                    "CHARSET",
                    "COLLATION",
                    "DATABASES",
                    "SCHEMAS",
                    "GRANTS",
                    "PRIVILEGES",
                    "FULL",
                    "OPEN",
                    "STORAGE",
                ];
                let second = word(1).unwrap_or_default();
                ("SHOW", SAFE.contains(&second.as_str()) && plain(1))
            }
            (Dialect::MySql, Some("DESCRIBE" | "DESC")) => ("DESCRIBE", sig.len() <= 3 && plain(1)),
            (Dialect::Postgres, Some("TABLE")) => {
                let from = if word(1).as_deref() == Some("ONLY") {
                    2
                } else {
                    1
                };
                let name_only = sig[from..]
                    .iter()
                    .all(|t| matches!(t, Token::Word(_) | Token::Period));
                ("SELECT", sig.len() > from && name_only)
            }
            _ => return None,
        };
        let relations = match (dialect, operation) {
            // `TABLE [ONLY] name`: the relation it reads, for the catalog's view check.
            (Dialect::Postgres, "SELECT") => {
                let parts: Vec<String> = sig
                    .iter()
                    .skip(1)
                    .filter_map(|t| match t {
                        Token::Word(w) if w.quote_style.is_some() => Some(w.value.clone()),
                        Token::Word(w) if w.value.eq_ignore_ascii_case("only") => None,
                        Token::Word(w) => Some(w.value.to_ascii_lowercase()),
                        _ => None,
                    })
                    .collect();
                vec![Arc::from(names::render(&parts, dialect))].into_boxed_slice()
            }
            _ => Box::default(),
        };
        ok.then(|| Analysis {
            verdict: Verdict::Read,
            hint: scan.hint,
            operation,
            collection: None,
            summary: operation.into(),
            relations,
            builtins: Box::default(),
            types: Box::default(),
            sanitized: std::sync::OnceLock::new(),
            refused: std::sync::OnceLock::new(),
        })
    }

    /// `sql` with every literal replaced by `?`, for `db.query.text` of statements that carry
    /// values inline. Text that does not tokenize is replaced whole.
    pub fn sanitize(&self, sql: &str) -> String {
        use sqlparser::tokenizer::{Token, Whitespace};
        let dialect = self.0.options.dialect.parser_dialect();
        let Ok(tokens) = Tokenizer::new(dialect, sql).tokenize() else {
            return "?".into();
        };
        let mut out = String::with_capacity(sql.len());
        for t in tokens {
            match t {
                Token::Number(..)
                | Token::SingleQuotedString(_)
                | Token::DoubleQuotedString(_)
                | Token::NationalStringLiteral(_)
                | Token::EscapedStringLiteral(_)
                | Token::HexStringLiteral(_)
                | Token::DollarQuotedString(_)
                | Token::SingleQuotedByteStringLiteral(_)
                | Token::UnicodeStringLiteral(_) => out.push('?'),
                Token::Whitespace(Whitespace::SingleLineComment { .. })
                | Token::Whitespace(Whitespace::MultiLineComment(_)) => out.push(' '),
                other => out.push_str(&other.to_string()),
            }
        }
        out
    }
}

/// The system relations that hold one session's state (lower case) and the prefix of more:
/// what a view over them answers for the wrong session on a replica.
#[cfg_attr(not(feature = "postgres"), allow(dead_code))] // used by the PostgreSQL backend
pub(crate) fn session_relations() -> (&'static [&'static str], &'static str) {
    (ast::SESSION_RELATIONS, ast::SESSION_RELATION_PREFIX)
}

/// The built-in side-effect names and prefixes of `dialect` (lower case): what a catalog
/// lookup looks for in the bodies of functions it is asked about.
#[cfg_attr(not(any(feature = "mysql", feature = "postgres")), allow(dead_code))] // used by the backends
pub(crate) fn builtin_side_effects(dialect: Dialect) -> (Vec<String>, Vec<String>) {
    (
        functions::side_effect(dialect)
            .map(str::to_string)
            .collect(),
        functions::side_effect_prefixes(dialect)
            .iter()
            .map(|p| p.to_string())
            .collect(),
    )
}

/// The operation name for a statement that is not tokenized: its first word when that is a
/// common statement keyword, else `UNKNOWN` (bounded: never text from the statement).
fn first_word(sql: &str) -> &'static str {
    const KNOWN: &[&str] = &[
        "SELECT", "INSERT", "UPDATE", "DELETE", "REPLACE", "WITH", "SET", "SHOW", "CALL", "DO",
        "CREATE", "ALTER", "DROP", "TRUNCATE", "LOCK", "BEGIN", "COMMIT", "ROLLBACK", "EXPLAIN",
        "VALUES", "TABLE", "COPY", "MERGE",
    ];
    let word = sql
        .trim_start()
        .split(|c: char| !c.is_ascii_alphabetic())
        .next()
        .unwrap_or("");
    KNOWN
        .iter()
        .find(|k| k.eq_ignore_ascii_case(word))
        .copied()
        .unwrap_or("UNKNOWN")
}

#[cfg(test)]
mod tests;
