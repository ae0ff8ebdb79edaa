//! MySQL 8 and MariaDB.

use sqlx::MySql;

use super::{backend_executors, Backend};
use crate::classify::Dialect;

impl Backend for MySql {
    const DIALECT: Dialect = Dialect::MySql;
    backend_executors!();
}
