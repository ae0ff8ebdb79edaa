//! The AST rules: walks a parsed statement and decides whether it is provably a pure read.
//!
//! A statement is a pure read only if it is a query (or a schema `SHOW`/`DESCRIBE`/`EXPLAIN`
//! of a read) and nothing anywhere in its tree locks, writes, selects `INTO`, modifies data in
//! a `WITH`, or calls a side-effect function. Everything else names the reason it is not.

use std::collections::HashSet;
use std::ops::ControlFlow;
use std::sync::Arc;

use sqlparser::ast::{
    Expr, ObjectName, ObjectNamePart, Query, Select, SetExpr, Statement, TableFactor, Visit,
    Visitor,
};

use super::functions::SESSION_VARIABLES;
use crate::route::{Reason, Verdict};

/// Function knowledge used by the walk.
#[derive(Debug, Clone)]
pub(crate) struct FunctionRules {
    pub side_effect: HashSet<Box<str>>,
    pub pure: HashSet<Box<str>>,
}

/// What the walk learned, beyond the verdict, for telemetry.
#[derive(Debug, Default)]
pub(crate) struct Facts {
    /// The one table the statement touches, when there is exactly one.
    pub collection: Option<Box<str>>,
}

pub(crate) fn classify(stmt: &Statement, rules: &FunctionRules, facts: &mut Facts) -> Verdict {
    match stmt {
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
        Statement::ExplainTable { .. }
        | Statement::ShowTables { .. }
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
        | Statement::ShowVariables { .. }
        | Statement::ShowStatus { .. }
        | Statement::ShowProcessList { .. } => {
            let _ = walk(stmt, rules, facts);
            Verdict::Read
        }
        Statement::ShowVariable { variable } => show_variable(variable),
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

/// `SHOW <words>` forms that sqlparser does not model. `SHOW` never writes, so these are
/// reads, except two kinds that only one server or session can answer: what the previous
/// statement of this session left behind (warnings, errors, profiles) and the replication role
/// (`SHOW MASTER STATUS` on a replica describes the wrong server). Those go to the primary.
const SESSION_SHOWS: &[&str] = &["WARNINGS", "ERRORS", "COUNT", "PROFILE", "PROFILES"];
const ROLE_SHOWS: &[&str] = &["MASTER", "SLAVE", "REPLICA", "BINARY", "BINLOG", "RELAYLOG"];

fn show_variable(words: &[sqlparser::ast::Ident]) -> Verdict {
    let first = words
        .first()
        .map(|w| w.value.to_ascii_uppercase())
        .unwrap_or_default();
    if SESSION_SHOWS.contains(&first.as_str()) {
        Verdict::Primary(Reason::SessionVariable(format!("SHOW {first}").into()))
    } else if ROLE_SHOWS.contains(&first.as_str()) || first.is_empty() {
        Verdict::Primary(Reason::ServerState("SHOW"))
    } else {
        Verdict::Read
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
    };
    let verdict = match stmt.visit(&mut check) {
        ControlFlow::Break(reason) => Verdict::Primary(reason),
        ControlFlow::Continue(()) if check.unknown.is_empty() => Verdict::Read,
        ControlFlow::Continue(()) => Verdict::ReadUnknownFunction(check.unknown.into()),
    };
    if let [only] = check.relations.as_slice() {
        facts.collection = Some(only.to_string().into_boxed_str());
    }
    verdict
}

struct ReadCheck<'a> {
    rules: &'a FunctionRules,
    statements: usize,
    unknown: Vec<Arc<str>>,
    relations: Vec<ObjectName>,
}

/// The unqualified, lower-case name of a function (`pg_catalog.NextVal` -> `nextval`).
fn function_name(name: &ObjectName) -> String {
    match name.0.last() {
        Some(ObjectNamePart::Identifier(ident)) => ident.value.to_ascii_lowercase(),
        Some(other) => other.to_string().to_ascii_lowercase(),
        None => String::new(),
    }
}

impl ReadCheck<'_> {
    fn function(&mut self, name: &ObjectName) -> ControlFlow<Reason> {
        let lower = function_name(name);
        if self.rules.side_effect.contains(lower.as_str()) {
            return ControlFlow::Break(Reason::SideEffectFunction(lower.into()));
        }
        if !self.rules.pure.contains(lower.as_str()) && !self.unknown.iter().any(|u| **u == *lower)
        {
            self.unknown.push(lower.into());
        }
        ControlFlow::Continue(())
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
        let var = var.rsplit('.').next().unwrap_or(var).to_ascii_lowercase();
        if SESSION_VARIABLES.contains(&var.as_str()) {
            ControlFlow::Break(Reason::SessionVariable(format!("@@{var}").into()))
        } else {
            ControlFlow::Continue(())
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
        ControlFlow::Continue(())
    }

    fn pre_visit_select(&mut self, select: &Select) -> ControlFlow<Reason> {
        if select.into.is_some() {
            return ControlFlow::Break(Reason::SelectInto);
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_relation(&mut self, relation: &ObjectName) -> ControlFlow<Reason> {
        if self.relations.len() < 2 && !self.relations.contains(relation) {
            self.relations.push(relation.clone());
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_table_factor(&mut self, factor: &TableFactor) -> ControlFlow<Reason> {
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
            Expr::Function(f) => self.function(&f.name),
            Expr::Identifier(ident) => self.variable(&ident.value),
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

fn modifies(body: &SetExpr) -> bool {
    match body {
        SetExpr::Insert(_) | SetExpr::Update(_) | SetExpr::Delete(_) | SetExpr::Merge(_) => true,
        SetExpr::SetOperation { left, right, .. } => modifies(left) || modifies(right),
        _ => false,
    }
}
