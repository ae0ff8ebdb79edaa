//! [`Owned`]: a query taken apart, so the call engine can route it and (for reads) send it
//! again.

use sqlx::database::Database;
use sqlx::error::BoxDynError;
use sqlx::{Execute, SqlStr};

use crate::backend::Backend;

/// A query taken apart, owned, so it can be routed and (for reads) sent again.
pub(crate) struct Owned<DB: Database> {
    sql: SqlStr,
    /// Boxed: most queries have none, and every future that carries the query moves it.
    statement: Option<Box<DB::Statement>>,
    arguments: Option<DB::Arguments>,
    persistent: bool,
}

impl<DB: Backend> Clone for Owned<DB> {
    #[inline(always)]
    fn clone(&self) -> Self {
        Owned {
            sql: self.sql.clone(),
            statement: self.statement.clone(),
            arguments: self.arguments.clone(),
            persistent: self.persistent,
        }
    }
}

impl<DB: Database> Owned<DB> {
    /// The SQL text.
    #[inline]
    pub(crate) fn sql_str(&self) -> &str {
        self.sql.as_str()
    }

    /// Reads the parts in the order sqlx's own types expect: statement, arguments,
    /// persistence, then the SQL (which consumes the query).
    #[inline(always)]
    pub(crate) fn take<'q, E: Execute<'q, DB>>(mut query: E) -> Result<Self, BoxDynError> {
        let statement = query.statement().cloned().map(Box::new);
        let arguments = query.take_arguments()?;
        let persistent = query.persistent();
        let sql = query.sql();
        Ok(Owned {
            sql,
            statement,
            arguments,
            persistent,
        })
    }
}

impl<'q, DB: Database> Execute<'q, DB> for Owned<DB> {
    #[inline]
    fn sql(self) -> SqlStr {
        self.sql
    }

    #[inline]
    fn statement(&self) -> Option<&DB::Statement> {
        self.statement.as_deref()
    }

    #[inline]
    fn take_arguments(&mut self) -> Result<Option<DB::Arguments>, BoxDynError> {
        Ok(self.arguments.take())
    }

    #[inline]
    fn persistent(&self) -> bool {
        self.persistent
    }
}
