//! The AST rules: walks a parsed statement and decides whether it is provably a pure read.
//!
//! A statement is a pure read only if it is a query (or a schema `SHOW`/`DESCRIBE`/`EXPLAIN`
//! of a read) and nothing anywhere in its tree locks, writes, selects `INTO`, modifies data in
//! a `WITH`, or calls a side-effect function. Everything else names the reason it is not.

use std::collections::HashSet;
use std::ops::ControlFlow;
use std::sync::Arc;

use sqlparser::ast::{
    ArrayElemTypeDef, BinaryOperator, DataType, Expr, FunctionArgumentClause, FunctionArguments,
    JsonTableColumn, NamedWindowDefinition, NamedWindowExpr, ObjectName, ObjectNamePart, OrderBy,
    OrderByExpr, OrderByKind, OrderBySort, Query, Select, SelectItem, SetExpr, ShowStatementFilter,
    Statement, TableFactor, Visit, Visitor, WindowType, XmlTableColumnOption,
};

use super::functions::{self, SESSION_VARIABLES};
use super::names;
use super::Dialect;
use crate::route::{Reason, Verdict};

/// Function knowledge used by the walk.
#[derive(Debug, Clone)]
pub(crate) struct FunctionRules {
    pub dialect: Dialect,
    pub side_effect: HashSet<Box<str>>,
    pub pure: HashSet<Box<str>>,
    /// Built-in operators, for dialects with user-defined ones (PostgreSQL).
    pub operators: Option<HashSet<&'static str>>,
}

/// What the walk learned, beyond the verdict, for telemetry.
#[derive(Debug, Default)]
pub(crate) struct Facts {
    /// The one table the statement touches, when there is exactly one.
    pub collection: Option<Box<str>>,
    /// Every relation the statement names (canonical names, see `names`), for the catalog:
    /// a view or table whose reading runs a volatile function keeps the read on the primary.
    pub relations: Vec<Arc<str>>,
    /// The built-in functions (PostgreSQL) a read calls by bare name, for the catalog: an
    /// unsafe user function of the same name may be what the server calls (an overload, or a
    /// schema before `pg_catalog` in `search_path`).
    pub builtins: Vec<Arc<str>>,
    /// The user types (PostgreSQL) a read casts to (`x::d`, `CAST(x AS d)`, `d 'text'`), for
    /// the catalog: a domain whose CHECK calls a volatile function, a user cast or input
    /// function that is volatile, runs it.
    pub types: Vec<Arc<str>>,
}

pub(crate) fn classify(stmt: &Statement, rules: &FunctionRules, facts: &mut Facts) -> Verdict {
    match stmt {
        // PostgreSQL `SHOW name`, `SHOW ALL`, `SHOW SESSION AUTHORIZATION`: every form reads a
        // setting as this session sees it (`SET search_path`, `SET ROLE`, `SET application_name`
        // ...), which a replica's connection answers for itself, not for the session.
        _ if rules.dialect == Dialect::Postgres && is_show(stmt) => {
            Verdict::Primary(Reason::SessionVariable("SHOW".into()))
        }
        Statement::Query(_) => walk(stmt, rules, facts),
        // `COPY ... TO STDOUT` exports rows: a read (of a query that must itself be pure).
        Statement::Copy {
            to: true,
            target: sqlparser::ast::CopyTarget::Stdout,
            ..
        } => match walk(stmt, rules, facts) {
            Verdict::Primary(Reason::DataModifyingCte) => Verdict::Primary(Reason::Write("COPY")),
            other => other,
        },
        Statement::Explain { statement, .. } => match classify(statement, rules, facts) {
            Verdict::Primary(_) => Verdict::Primary(Reason::Write("EXPLAIN")),
            read => read,
        },
        _ if matches!(stmt, Statement::ExplainTable { .. }) || is_schema_show(stmt) => {
            let _ = walk(stmt, rules, facts);
            Verdict::Read
        }
        Statement::ShowVariables { filter, global, .. } => show_variables(*global, filter.as_ref()),
        Statement::ShowStatus { filter, global, .. } => show_status(*global, filter.as_ref()),
        Statement::ShowVariable { variable } => show_variable(variable),
        // This server's threads, not the primary's.
        Statement::ShowProcessList { .. } => Verdict::Primary(Reason::ServerState("SHOW")),
        Statement::Lock(_) | Statement::LockTables { .. } => Verdict::Primary(Reason::LockingRead),
        other => {
            if matches!(
                other,
                Statement::Insert(_) | Statement::Update(_) | Statement::Delete(_)
            ) {
                // Only for the table name, for telemetry: the verdict is "write" regardless.
                let _ = walk(other, rules, facts);
            }
            Verdict::Primary(session_or_write(other))
        }
    }
}

/// Every statement sqlparser parses as a `SHOW` (in PostgreSQL all of them are `SHOW name`).
fn is_show(stmt: &Statement) -> bool {
    is_schema_show(stmt)
        || matches!(
            stmt,
            Statement::ShowVariable { .. }
                | Statement::ShowVariables { .. }
                | Statement::ShowStatus { .. }
                | Statement::ShowProcessList { .. }
        )
}

/// The `SHOW`s of the schema (tables, columns, definitions, ...): reads, in MySQL/MariaDB.
fn is_schema_show(stmt: &Statement) -> bool {
    matches!(
        stmt,
        Statement::ShowTables { .. }
            | Statement::ShowColumns { .. }
            | Statement::ShowCreate { .. }
            | Statement::ShowDatabases { .. }
            | Statement::ShowSchemas { .. }
            | Statement::ShowViews { .. }
            | Statement::ShowFunctions { .. }
            | Statement::ShowCollation { .. }
            | Statement::ShowCharset(_)
            | Statement::ShowObjects(_)
            | Statement::ShowCatalogs { .. }
    )
}

/// `SHOW <words>` forms that sqlparser does not model. `SHOW` never writes, so these are
/// reads, except kinds that only one server or session can answer: what the previous
/// statement of this session left behind (warnings, errors, profiles), this session's
/// variables and counters (MariaDB `SHOW LOCAL VARIABLES|STATUS`, `LOCAL` meaning `SESSION`),
/// and the replication role (`SHOW MASTER STATUS` or `SHOW ALL SLAVES STATUS` on a replica
/// describes the wrong server). Those go to the primary.
const SESSION_SHOWS: &[&str] = &["WARNINGS", "ERRORS", "COUNT", "PROFILE", "PROFILES"];
const ROLE_SHOWS: &[&str] = &[
    "MASTER",
    "SLAVE",
    "SLAVES",
    "REPLICA",
    "REPLICAS",
    "BINARY",
    "BINLOG",
    "RELAYLOG",
    // this server's threads (`SHOW EXPLAIN FOR <thread id>` names one of the primary's)
    "EXPLAIN",
    "ANALYZE",
    "PROCESSLIST",
];

fn show_variable(words: &[sqlparser::ast::Ident]) -> Verdict {
    let word = |i: usize| {
        words
            .get(i)
            .map(|w| w.value.to_ascii_uppercase())
            .unwrap_or_default()
    };
    let (first, second) = (word(0), word(1));
    // MariaDB `SHOW ALL SLAVES STATUS`, `SHOW ALL REPLICAS STATUS` (every source connection).
    let role = if first == "ALL" { &second } else { &first };
    if SESSION_SHOWS.contains(&first.as_str()) {
        Verdict::Primary(Reason::SessionVariable(format!("SHOW {first}").into()))
    } else if first == "LOCAL" && matches!(second.as_str(), "VARIABLES" | "STATUS") {
        Verdict::Primary(Reason::SessionVariable("SHOW SESSION".into()))
    } else if ROLE_SHOWS.contains(&role.as_str()) || first.is_empty() {
        Verdict::Primary(Reason::ServerState("SHOW"))
    } else {
        Verdict::Read
    }
}

/// System variables that have only a global value (checked in MariaDB 10.11's
/// `information_schema.SYSTEM_VARIABLES`), so a bare `@@name` or a `SHOW VARIABLES LIKE
/// 'name'` reads the server's global value, exactly as `@@global.name` does, never a value
/// this session set. `server_id` has a session value in MariaDB, but only `SUPER` or
/// `BINLOG REPLAY` may set it (binlog replay tools): every other session reads the server's.
/// Any other system variable may have been set by this session and goes to the primary.
const GLOBAL_ONLY_VARIABLES: &[&str] = &[
    "basedir",
    "datadir",
    "have_ssl",
    "hostname",
    "license",
    "log_bin",
    "lower_case_table_names",
    "max_connections",
    "pid_file",
    "port",
    "protocol_version",
    "read_only",
    "report_host",
    "report_port",
    "server_id",
    "socket",
    "system_time_zone",
    "version",
    "version_comment",
    "version_compile_machine",
    "version_compile_os",
    "version_malloc_library",
    "version_source_revision",
    "version_ssl_library",
];

/// Status counters that exist only globally, so `SHOW STATUS LIKE` them reads no session.
const GLOBAL_ONLY_STATUS: &[&str] = &[
    "threads_",
    "uptime",
    "innodb_",
    "max_used_",
    "open_",
    "slave_",
    "rpl_",
    "connections",
    "aborted_",
    "wsrep",
];

fn show_session() -> Verdict {
    Verdict::Primary(Reason::SessionVariable("SHOW SESSION".into()))
}

/// `SHOW [SESSION] VARIABLES`: session-scoped unless `GLOBAL`, so it reads this connection's
/// values (the ones it SET) and goes to the primary, unless a `LIKE` filter without `%`
/// names exactly one global-only variable (`SHOW VARIABLES LIKE 'read_only'`), which is what
/// `SHOW GLOBAL VARIABLES LIKE` it reads.
fn show_variables(global: bool, filter: Option<&ShowStatementFilter>) -> Verdict {
    if global {
        return Verdict::Read;
    }
    match filter {
        Some(ShowStatementFilter::Like(pattern))
            if !pattern.contains(['%', '\\'])
                && GLOBAL_ONLY_VARIABLES.contains(&pattern.to_ascii_lowercase().as_str()) =>
        {
            Verdict::Read
        }
        _ => show_session(),
    }
}

/// `SHOW [SESSION] STATUS`: session-scoped unless `GLOBAL`, so it reads this connection's
/// counters and goes to the primary, unless a `LIKE` filter without `%` names a counter with
/// one of the global-only prefixes.
fn show_status(global: bool, filter: Option<&ShowStatementFilter>) -> Verdict {
    if global {
        return Verdict::Read;
    }
    let Some(ShowStatementFilter::Like(pattern)) = filter else {
        return show_session();
    };
    let pattern = pattern.to_ascii_lowercase();
    let literal = !pattern.contains(['%', '\\']);
    if literal && GLOBAL_ONLY_STATUS.iter().any(|p| pattern.starts_with(p)) {
        Verdict::Read
    } else {
        show_session()
    }
}

fn session_or_write(stmt: &Statement) -> Reason {
    let kw = match stmt {
        Statement::Set(_) => "SET",
        Statement::Use(_) => "USE",
        Statement::StartTransaction { .. } => "BEGIN",
        Statement::Commit { .. } => "COMMIT",
        Statement::Rollback { .. } => "ROLLBACK",
        Statement::Savepoint { .. } => "SAVEPOINT",
        Statement::ReleaseSavepoint { .. } => "RELEASE SAVEPOINT",
        Statement::Prepare { .. } => "PREPARE",
        Statement::Execute { .. } => "EXECUTE",
        Statement::Deallocate { .. } => "DEALLOCATE",
        Statement::Discard { .. } => "DISCARD",
        Statement::Reset(_) => "RESET",
        Statement::LISTEN { .. } => "LISTEN",
        Statement::UNLISTEN { .. } => "UNLISTEN",
        Statement::Declare { .. } => "DECLARE",
        Statement::Fetch { .. } => "FETCH",
        Statement::Close { .. } => "CLOSE",
        Statement::Kill { .. } => "KILL",
        Statement::Flush { .. } => "FLUSH",
        Statement::Pragma { .. } => "PRAGMA",
        Statement::UnlockTables => "UNLOCK TABLES",
        Statement::AttachDatabase { .. } => "ATTACH",
        _ => return Reason::Write(write_keyword(stmt)),
    };
    Reason::SessionControl(kw)
}

fn write_keyword(stmt: &Statement) -> &'static str {
    match stmt {
        Statement::Insert(_) => "INSERT",
        Statement::Update(_) => "UPDATE",
        Statement::Delete(_) => "DELETE",
        Statement::Merge(_) => "MERGE",
        Statement::Truncate(_) => "TRUNCATE",
        Statement::Call(_) => "CALL",
        Statement::Copy { .. } => "COPY",
        Statement::LoadData { .. } => "LOAD DATA",
        Statement::Drop { .. } | Statement::DropFunction(_) | Statement::DropTrigger(_) => "DROP",
        Statement::Grant(_) => "GRANT",
        Statement::Revoke(_) => "REVOKE",
        Statement::Comment { .. } => "COMMENT",
        Statement::Vacuum(_) => "VACUUM",
        Statement::Analyze(_) => "ANALYZE",
        Statement::OptimizeTable { .. } => "OPTIMIZE",
        Statement::RenameTable(_) => "RENAME",
        Statement::NOTIFY { .. } => "NOTIFY",
        Statement::CreateTable(_)
        | Statement::CreateView(_)
        | Statement::CreateIndex(_)
        | Statement::CreateFunction(_)
        | Statement::CreateSequence { .. }
        | Statement::CreateSchema { .. }
        | Statement::CreateDatabase { .. }
        | Statement::CreateTrigger(_)
        | Statement::CreateProcedure { .. }
        | Statement::CreateRole(_)
        | Statement::CreateUser(_)
        | Statement::CreateType { .. }
        | Statement::CreateExtension(_)
        | Statement::CreateDomain(_)
        | Statement::CreateVirtualTable { .. } => "CREATE",
        Statement::AlterTable(_)
        | Statement::AlterIndex { .. }
        | Statement::AlterView { .. }
        | Statement::AlterRole { .. }
        | Statement::AlterUser(_)
        | Statement::AlterSchema(_)
        | Statement::AlterType(_) => "ALTER",
        _ => "OTHER",
    }
}

fn walk(stmt: &Statement, rules: &FunctionRules, facts: &mut Facts) -> Verdict {
    let mut check = ReadCheck {
        rules,
        statements: 0,
        unknown: Vec::new(),
        relations: Vec::new(),
        all_relations: std::mem::take(&mut facts.relations),
        builtins: std::mem::take(&mut facts.builtins),
        types: std::mem::take(&mut facts.types),
    };
    let verdict = match stmt.visit(&mut check) {
        ControlFlow::Break(reason) => Verdict::Primary(reason),
        ControlFlow::Continue(()) if check.unknown.is_empty() => Verdict::Read,
        ControlFlow::Continue(()) => Verdict::ReadUnknownFunction(check.unknown.into()),
    };
    if let [only] = check.relations.as_slice() {
        facts.collection = Some(only.to_string().into_boxed_str());
    }
    facts.relations = check.all_relations;
    facts.builtins = check.builtins;
    facts.types = check.types;
    verdict
}

struct ReadCheck<'a> {
    rules: &'a FunctionRules,
    statements: usize,
    unknown: Vec<Arc<str>>,
    relations: Vec<ObjectName>,
    all_relations: Vec<Arc<str>>,
    builtins: Vec<Arc<str>>,
    types: Vec<Arc<str>>,
}

/// PostgreSQL's own types among the spellings sqlparser reads as one of its `DataType`s
/// (lower case, without modifiers): a cast to one of these is not to a user type.
const PG_BUILTIN_TYPES: &[&str] = &[
    "bigint",
    "bit",
    "bool",
    "boolean",
    "box",
    "bytea",
    "char",
    "character",
    "circle",
    "date",
    "dec",
    "decimal",
    "float",
    "float4",
    "float8",
    "int",
    "int2",
    "int4",
    "int8",
    "integer",
    "interval",
    "json",
    "jsonb",
    "line",
    "lseg",
    "numeric",
    "path",
    "point",
    "polygon",
    "real",
    "regclass",
    "smallint",
    "text",
    "time",
    "timestamp",
    "timestamptz",
    "timetz",
    "trigger",
    "tsquery",
    "tsvector",
    "uuid",
    "varbit",
    "varchar",
];

/// The unqualified, lower-case name of a function (`pg_catalog.NextVal` -> `nextval`).
fn function_name(name: &ObjectName) -> String {
    match name.0.last() {
        Some(ObjectNamePart::Identifier(ident)) => ident.value.to_ascii_lowercase(),
        Some(other) => other.to_string().to_ascii_lowercase(),
        None => String::new(),
    }
}

/// Relations that hold one session's state (MariaDB/MySQL `information_schema` session
/// tables, PostgreSQL views of the session's settings, cursors and prepared statements).
pub(crate) const SESSION_RELATIONS: &[&str] = &[
    "session_variables",
    "session_status",
    "user_variables",
    "user_variables_by_thread",
    "session_connect_attrs",
    "session_account_connect_attrs",
    // the roles this session enabled (`SET ROLE`)
    "enabled_roles",
    "pg_settings",
    "pg_prepared_statements",
    "pg_cursors",
];

/// PostgreSQL's per-transaction statistics views (`pg_stat_xact_user_tables`, ...): session
/// state too.
pub(crate) const SESSION_RELATION_PREFIX: &str = "pg_stat_xact_";

/// Schemas whose every table is session or server state: `performance_schema` (per-thread
/// tables), PostgreSQL temporary schemas and `sys` (MySQL/MariaDB views over them).
fn session_schema(schema: &str) -> bool {
    schema.eq_ignore_ascii_case("performance_schema")
        || schema.eq_ignore_ascii_case("sys")
        || schema.to_ascii_lowercase().starts_with("pg_temp")
}

fn part(p: &ObjectNamePart) -> String {
    match p {
        ObjectNamePart::Identifier(ident) => ident.value.clone(),
        other => other.to_string(),
    }
}

impl ReadCheck<'_> {
    fn function(&mut self, name: &ObjectName) -> ControlFlow<Reason> {
        let dialect = self.rules.dialect;
        let pg = dialect == Dialect::Postgres;
        // Each part folded as the server folds it: PostgreSQL keeps a quoted name's case, so
        // `"PG_CATALOG".lower` is not `pg_catalog.lower` and `"Lower"` is not `lower`.
        let parts: Vec<String> = name
            .0
            .iter()
            .map(|p| names::fold_part(p, dialect))
            .collect();
        let builtin_schema = pg && parts.len() == 2 && parts[0] == "pg_catalog";
        // MySQL/MariaDB: a backquoted name (`` `count`(x) ``) is never the grammar's own
        // function: the server calls the default database's stored function of that name.
        let backquoted = dialect == Dialect::MySql
            && name.0.iter().any(|p| match p {
                ObjectNamePart::Identifier(ident) => ident.quote_style.is_some(),
                _ => true,
            });
        let quoted_upper = pg
            && parts
                .last()
                .is_some_and(|p| p.bytes().any(|b| b.is_ascii_uppercase()));
        let lower = function_name(name);
        if self.rules.side_effect.contains(lower.as_str())
            || functions::side_effect_prefixes(self.rules.dialect)
                .iter()
                .any(|p| lower.starts_with(p))
        {
            return ControlFlow::Break(Reason::SideEffectFunction(lower.into()));
        }
        if (parts.len() > 1 && !builtin_schema) || quoted_upper || backquoted {
            // A schema- or database-qualified name is a user function, never the built-in of
            // the same name (`app.lower`), and so is a case-sensitive PostgreSQL name.
            self.unknown_name(names::render(&parts, dialect));
            return ControlFlow::Continue(());
        }
        if !self.rules.pure.contains(lower.as_str()) {
            let last = parts.last().map_or(lower.as_str(), String::as_str);
            self.unknown_name(names::render(&[last], dialect));
        } else if pg && parts.len() == 1 && !self.builtins.iter().any(|b| **b == *lower) {
            // MySQL and MariaDB always call the built-in for a bare built-in name.
            self.builtins.push(lower.into());
        }
        ControlFlow::Continue(())
    }

    /// Records a canonical name the classifier does not know (once).
    fn unknown_name(&mut self, name: String) {
        if !self.unknown.iter().any(|u| **u == *name) {
            self.unknown.push(name.into());
        }
    }

    fn variable(&self, name: &str) -> ControlFlow<Reason> {
        let Some(var) = name.strip_prefix("@@") else {
            // A user variable (`@name`) lives in one connection: the one that set it, which
            // was the primary (`SET @x` and `:=` go there).
            if name.starts_with('@') && name.len() > 1 {
                return ControlFlow::Break(Reason::SessionVariable(name.into()));
            }
            return ControlFlow::Continue(());
        };
        // `@@x`, `@@session.x`, `@@local.x` (any case, `x` possibly backquoted, spaces around
        // the dot) read this session's value, which a replica's connection does not have
        // (`SET time_zone`, `@@in_transaction`, `@@timestamp`); only `@@global.x` reads the
        // server's. A bare `@@x` of a variable that has no session value reads the global one.
        let parts: Vec<String> = var
            .split('.')
            .map(|p| p.trim().to_ascii_lowercase())
            .collect();
        let last = parts.last().map_or("", String::as_str);
        let session = || ControlFlow::Break(Reason::SessionVariable(format!("@@{last}").into()));
        match parts.as_slice() {
            [scope, .., _] if scope == "global" => {
                if SESSION_VARIABLES.contains(&last) {
                    session()
                } else {
                    ControlFlow::Continue(())
                }
            }
            [name] if GLOBAL_ONLY_VARIABLES.contains(&name.as_str()) => ControlFlow::Continue(()),
            _ => session(),
        }
    }
}

impl Visitor for ReadCheck<'_> {
    type Break = Reason;

    fn pre_visit_statement(&mut self, _stmt: &Statement) -> ControlFlow<Reason> {
        self.statements += 1;
        if self.statements > 1 {
            // Only a data-modifying CTE or subquery nests a statement inside a query.
            return ControlFlow::Break(Reason::DataModifyingCte);
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_query(&mut self, query: &Query) -> ControlFlow<Reason> {
        if !query.locks.is_empty() {
            return ControlFlow::Break(Reason::LockingRead);
        }
        if modifies(&query.body) {
            return ControlFlow::Break(Reason::DataModifyingCte);
        }
        if let Some(OrderBy {
            kind: OrderByKind::Expressions(exprs),
            ..
        }) = &query.order_by
        {
            self.order_by(exprs);
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_select(&mut self, select: &Select) -> ControlFlow<Reason> {
        if select.into.is_some() {
            return ControlFlow::Break(Reason::SelectInto);
        }
        if self.rules.dialect == Dialect::Postgres {
            // `SELECT app.d '5'`: sqlparser reads a string alias, PostgreSQL (which has no
            // string aliases) a literal of type `app.d`, made by its input function and CHECK.
            for item in &select.projection {
                if let SelectItem::ExprWithAlias { expr, alias } = item {
                    if alias.quote_style == Some('\'') {
                        self.literal_type(expr);
                    }
                }
            }
        }
        for NamedWindowDefinition(_, window) in &select.named_window {
            if let NamedWindowExpr::WindowSpec(spec) = window {
                self.order_by(&spec.order_by);
            }
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_relation(&mut self, relation: &ObjectName) -> ControlFlow<Reason> {
        let parts: Vec<String> = relation.0.iter().map(part).collect();
        if let Some(last) = parts.last() {
            let last = last.to_ascii_lowercase();
            let qualified_session = parts.len() > 1 && session_schema(&parts[0]);
            if qualified_session
                || SESSION_RELATIONS.contains(&last.as_str())
                || last.starts_with(SESSION_RELATION_PREFIX)
            {
                return ControlFlow::Break(Reason::SessionVariable(last.into()));
            }
        }
        let canonical = names::render(
            &relation
                .0
                .iter()
                .map(|p| names::fold_part(p, self.rules.dialect))
                .collect::<Vec<_>>(),
            self.rules.dialect,
        );
        if !self.all_relations.iter().any(|r| **r == *canonical) {
            self.all_relations.push(canonical.into());
        }
        if self.relations.len() < 2 && !self.relations.contains(relation) {
            self.relations.push(relation.clone());
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_table_factor(&mut self, factor: &TableFactor) -> ControlFlow<Reason> {
        self.column_definition_types(factor);
        match factor {
            TableFactor::Table {
                name,
                args: Some(_),
                ..
            } => self.function(name),
            TableFactor::Function { name, .. } => self.function(name),
            _ => ControlFlow::Continue(()),
        }
    }

    fn pre_visit_expr(&mut self, expr: &Expr) -> ControlFlow<Reason> {
        match expr {
            Expr::Function(f) => {
                self.order_by(&f.within_group);
                if let Some(WindowType::WindowSpec(spec)) = &f.over {
                    self.order_by(&spec.order_by);
                }
                if let FunctionArguments::List(list) = &f.args {
                    for clause in &list.clauses {
                        if let FunctionArgumentClause::OrderBy(exprs) = clause {
                            self.order_by(exprs);
                        }
                    }
                }
                // A one-part name as written: `NULLIF(a, b)` compares with the `=` operator of
                // its arguments' types; `POINT(x, y)` is the native function at this arity (at
                // another, or backquoted, a stored function of the same name would answer).
                if let [ObjectNamePart::Identifier(ident)] = f.name.0.as_slice() {
                    let lower = ident.value.to_ascii_lowercase();
                    if lower == "nullif" {
                        self.builtin_operator("=");
                    }
                    if ident.quote_style.is_none()
                        && functions::native_at_arity(
                            self.rules.dialect,
                            &lower,
                            argument_count(&f.args),
                        )
                    {
                        return ControlFlow::Continue(());
                    }
                }
                // `current_setting(name)` is on the side-effect list whatever the name, like
                // every PostgreSQL `SHOW`: a built-in setting (`search_path`, `work_mem`) may
                // have been SET by this session too.
                self.function(&f.name)
            }
            Expr::BinaryOp { op, .. } => self.operator(op),
            // Forms that call a comparison operator without its symbol in the text: a user
            // operator sharing the symbol may be the one PostgreSQL picks (`5 IN ('x'::text)`
            // calls `=`, `BETWEEN` calls `>=` and `<=`, `LIKE` calls `~~`).
            Expr::InList { negated, .. } => {
                self.builtin_operator(if *negated { "<>" } else { "=" });
                ControlFlow::Continue(())
            }
            // `x NOT IN (SELECT ..)` is `NOT (x = ANY (..))`: `=` either way.
            Expr::InSubquery { .. } | Expr::InUnnest { .. } => {
                self.builtin_operator("=");
                ControlFlow::Continue(())
            }
            Expr::Between { negated, .. } => {
                for symbol in if *negated { ["<", ">"] } else { [">=", "<="] } {
                    self.builtin_operator(symbol);
                }
                ControlFlow::Continue(())
            }
            Expr::Like { negated, .. } => {
                self.builtin_operator(if *negated { "!~~" } else { "~~" });
                ControlFlow::Continue(())
            }
            Expr::ILike { negated, .. } => {
                self.builtin_operator(if *negated { "!~~*" } else { "~~*" });
                ControlFlow::Continue(())
            }
            Expr::SimilarTo { negated, .. } => {
                self.builtin_operator(if *negated { "!~" } else { "~" });
                ControlFlow::Continue(())
            }
            Expr::IsDistinctFrom(..) | Expr::IsNotDistinctFrom(..) => {
                self.builtin_operator("=");
                ControlFlow::Continue(())
            }
            Expr::Case {
                operand: Some(_), ..
            } => {
                self.builtin_operator("=");
                ControlFlow::Continue(())
            }
            Expr::AnyOp { compare_op, .. } | Expr::AllOp { compare_op, .. } => {
                self.operator(compare_op)
            }
            Expr::UnaryOp { op, .. } => {
                self.builtin_operator(&op.to_string());
                ControlFlow::Continue(())
            }
            Expr::Cast { data_type, .. } => {
                self.cast_type(data_type);
                ControlFlow::Continue(())
            }
            Expr::TypedString(typed) => {
                self.cast_type(&typed.data_type);
                ControlFlow::Continue(())
            }
            Expr::CompoundIdentifier(parts)
                if self.rules.dialect == Dialect::MySql
                    && parts.len() > 1
                    && parts.last().is_some_and(|p| {
                        ["nextval", "currval", "lastval"]
                            .iter()
                            .any(|s| p.value.eq_ignore_ascii_case(s))
                    }) =>
            {
                // MariaDB `seq.nextval` / `seq.currval` (Oracle syntax).
                ControlFlow::Break(Reason::SideEffectFunction("nextval".into()))
            }
            Expr::Identifier(ident) => self.variable(&ident.value),
            // MySQL `` @`x` ``: sqlparser reads a user variable with a quoted name as a
            // placeholder `@x`.
            Expr::Value(v) if self.rules.dialect == Dialect::MySql => match &v.value {
                sqlparser::ast::Value::Placeholder(p) if p.starts_with('@') => self.variable(p),
                _ => ControlFlow::Continue(()),
            },
            Expr::CompoundIdentifier(parts) => match parts.first() {
                Some(first) if first.value.starts_with("@@") => {
                    let joined = parts
                        .iter()
                        .map(|p| p.value.as_str())
                        .collect::<Vec<_>>()
                        .join(".");
                    self.variable(&joined)
                }
                _ => ControlFlow::Continue(()),
            },
            _ => ControlFlow::Continue(()),
        }
    }
}

/// How many arguments a call passes (`CURRENT_DATE` without parentheses: none).
fn argument_count(args: &FunctionArguments) -> usize {
    match args {
        FunctionArguments::None => 0,
        FunctionArguments::Subquery(_) => 1,
        FunctionArguments::List(list) => list.args.len(),
    }
}

impl ReadCheck<'_> {
    /// PostgreSQL operators outside the built-in set are user-defined: like unknown functions.
    fn operator(&mut self, op: &BinaryOperator) -> ControlFlow<Reason> {
        match op {
            BinaryOperator::Custom(s) => self.operator_parts(&[s.as_str()], false),
            // sqlparser keeps a quoted schema's quotes: `OPERATOR("App".##>)`.
            BinaryOperator::PGCustomBinaryOperator(parts) => {
                let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
                self.operator_parts(&parts, true)
            }
            // A built-in operator's symbol (`||`, `+`): a user operator of that name in any
            // schema may be the one the server picks.
            op => self.builtin_operator(&op.to_string()),
        }
        ControlFlow::Continue(())
    }

    /// Records a built-in PostgreSQL operator's symbol (as `operator(sym)`, once) among the
    /// built-in names: the catalog snapshot lists the symbols that an unsafe user operator
    /// shares.
    fn builtin_operator(&mut self, symbol: &str) {
        let Some(builtin) = &self.rules.operators else {
            return;
        };
        if !builtin.contains(symbol) {
            // A symbol sqlparser parses as one of its own operators that PostgreSQL does not
            // have built in (`<=>`, `//`, the factorials `!` and `!!` removed in 14): only a
            // user operator can be it, so it follows the unknown-function policy. Keyword
            // operators (`AND`, `OR`, `NOT`, `OVERLAPS`, ...) are the grammar's own.
            if !symbol.is_empty() && !symbol.bytes().any(|b| b.is_ascii_alphabetic()) {
                let name = names::operator(None, symbol, self.rules.dialect);
                self.unknown_name(name);
            }
            return;
        }
        let name = names::operator(None, symbol, self.rules.dialect);
        if !self.builtins.iter().any(|b| **b == *name) {
            self.builtins.push(name.into());
        }
    }

    /// Records a user operator named by `parts` (`[op]` or `[schema, op]`), unless it is a
    /// built-in one. With `quoted_text`, a part is its source text (quotes kept); otherwise a
    /// bare symbol.
    fn operator_parts(&mut self, parts: &[&str], quoted_text: bool) {
        let Some(builtin) = &self.rules.operators else {
            return;
        };
        let dialect = self.rules.dialect;
        let fold = |part: &str| -> String {
            match part.strip_prefix('"').and_then(|p| p.strip_suffix('"')) {
                Some(inner) if quoted_text && !inner.is_empty() => inner.replace("\"\"", "\""),
                _ => part.to_ascii_lowercase(),
            }
        };
        let name = match parts {
            [op] if builtin.contains(op) => {
                let op = op.to_string();
                return self.builtin_operator(&op);
            }
            [schema, op] if fold(schema) == "pg_catalog" && builtin.contains(op) => return,
            [op] => names::operator(None, op, dialect),
            [schema, op] => names::operator(Some(&fold(schema)), op, dialect),
            // Not an operator name PostgreSQL accepts: nothing a lookup can answer.
            _ => format!("operator({})", parts.join(".")),
        };
        self.unknown_name(name);
    }

    /// Records the user type a PostgreSQL cast names (an array's element type), once, by its
    /// canonical name. Built-in types that sqlparser models are not recorded: a user type
    /// is `DataType::Custom`.
    fn cast_type(&mut self, data_type: &DataType) {
        if self.rules.dialect != Dialect::Postgres {
            return;
        }
        let mut ty = data_type;
        // Bounded by the parser's recursion limit, and a loop: no recursion here.
        loop {
            match ty {
                DataType::Array(
                    ArrayElemTypeDef::AngleBracket(inner)
                    | ArrayElemTypeDef::SquareBracket(inner, _)
                    | ArrayElemTypeDef::Parenthesis(inner)
                    | ArrayElemTypeDef::Qualified(inner, _),
                ) => ty = inner,
                DataType::Custom(name, _) => {
                    let parts: Vec<String> = name
                        .0
                        .iter()
                        .map(|p| names::fold_part(p, Dialect::Postgres))
                        .collect();
                    let canonical = names::render(&parts, Dialect::Postgres);
                    if !self.types.iter().any(|t| **t == *canonical) {
                        self.types.push(canonical.into());
                    }
                    return;
                }
                // A type sqlparser models: PostgreSQL has some of these spellings as its
                // own types (`int`, `text`), not others (`datetime`, `string`, `tinyint`),
                // which then name the user's type of that name.
                _ => {
                    let shown = ty.to_string().to_ascii_lowercase();
                    let base = shown.split('(').next().unwrap_or_default().trim();
                    let plain = !base.is_empty()
                        && base.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
                    if plain && !PG_BUILTIN_TYPES.contains(&base) {
                        let canonical = names::render(&[base], Dialect::Postgres);
                        if !self.types.iter().any(|t| **t == *canonical) {
                            self.types.push(canonical.into());
                        }
                    }
                    return;
                }
            }
        }
    }

    /// Records the types of a column definition list (`f() AS x(a app.d)`, `XMLTABLE(...
    /// COLUMNS a app.d ...)`, `JSON_TABLE`): each value is converted to its column's type.
    fn column_definition_types(&mut self, factor: &TableFactor) {
        if self.rules.dialect != Dialect::Postgres {
            return;
        }
        let alias = match factor {
            TableFactor::Table { alias, .. }
            | TableFactor::Derived { alias, .. }
            | TableFactor::TableFunction { alias, .. }
            | TableFactor::Function { alias, .. }
            | TableFactor::UNNEST { alias, .. }
            | TableFactor::JsonTable { alias, .. }
            | TableFactor::OpenJsonTable { alias, .. }
            | TableFactor::XmlTable { alias, .. } => alias.as_ref(),
            _ => None,
        };
        for column in alias.iter().flat_map(|a| &a.columns) {
            if let Some(data_type) = &column.data_type {
                self.cast_type(data_type);
            }
        }
        match factor {
            TableFactor::XmlTable { columns, .. } => {
                for column in columns {
                    if let XmlTableColumnOption::NamedInfo { r#type, .. } = &column.option {
                        self.cast_type(r#type);
                    }
                }
            }
            TableFactor::JsonTable { columns, .. } => {
                // Nested column lists, with a stack: no recursion here.
                let mut pending: Vec<&JsonTableColumn> = columns.iter().collect();
                while let Some(column) = pending.pop() {
                    match column {
                        JsonTableColumn::Named(named) => self.cast_type(&named.r#type),
                        JsonTableColumn::Nested(nested) => pending.extend(&nested.columns),
                        JsonTableColumn::ForOrdinality(_) => {}
                    }
                }
            }
            _ => {}
        }
    }

    /// Records the type named by `expr` in `name 'literal'` (PostgreSQL), when it is a name.
    fn literal_type(&mut self, expr: &Expr) {
        let name = match expr {
            Expr::Identifier(ident) => ObjectName::from(vec![ident.clone()]),
            Expr::CompoundIdentifier(parts) => ObjectName::from(parts.clone()),
            _ => return,
        };
        self.cast_type(&DataType::Custom(name, Vec::new()));
    }

    /// `ORDER BY x USING op` sorts with an operator, which may be a user one.
    fn order_by(&mut self, exprs: &[OrderByExpr]) {
        for e in exprs {
            if let Some(OrderBySort::Using(name)) = &e.options.sort {
                let parts: Vec<String> = name
                    .0
                    .iter()
                    .map(|p| match p {
                        ObjectNamePart::Identifier(i) if i.quote_style.is_some() => {
                            format!("\"{}\"", i.value.replace('"', "\"\""))
                        }
                        ObjectNamePart::Identifier(i) => i.value.clone(),
                        other => other.to_string(),
                    })
                    .collect();
                let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
                self.operator_parts(&parts, true);
            }
        }
    }
}

fn modifies(body: &SetExpr) -> bool {
    match body {
        SetExpr::Insert(_) | SetExpr::Update(_) | SetExpr::Delete(_) | SetExpr::Merge(_) => true,
        SetExpr::SetOperation { left, right, .. } => modifies(left) || modifies(right),
        _ => false,
    }
}
