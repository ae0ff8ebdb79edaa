//! PostgreSQL with streaming standbys.

use sqlx::Postgres;

use super::{backend_executors, Backend};
use crate::classify::Dialect;

impl Backend for Postgres {
    const DIALECT: Dialect = Dialect::Postgres;
    backend_executors!();
}
