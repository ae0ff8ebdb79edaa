//! Fault injection on the servers started by `scripts/mariadb.sh`: signals to the PIDs in its
//! pid files (never a pattern), `restart` through the script, and replication changes through
//! the admin account. Every test restores what it broke with [`heal`].

#![allow(dead_code)]

use std::process::Command;
use std::time::Duration;

use sqlx::{AssertSqlSafe, MySqlPool};

/// A server of the local cluster: `primary`, `replica1` or `replica2`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Server {
    Primary,
    Replica(u8),
}

impl Server {
    fn script_name(self) -> String {
        match self {
            Server::Primary => "primary".into(),
            Server::Replica(n) => format!("replica{n}"),
        }
    }

    fn env_suffix(self) -> String {
        match self {
            Server::Primary => "PRIMARY".into(),
            Server::Replica(n) => format!("REPLICA_{n}"),
        }
    }

    pub fn pid(self) -> i32 {
        let var = format!("RWSPLIT_MYSQL_{}_PIDFILE", self.env_suffix());
        let file = std::env::var(&var).unwrap_or_else(|_| panic!("{var} not set"));
        std::fs::read_to_string(&file)
            .unwrap_or_else(|e| panic!("read {file}: {e}"))
            .trim()
            .parse()
            .expect("pid file holds a pid")
    }

    pub fn admin_url(self) -> String {
        let var = format!("RWSPLIT_MYSQL_ADMIN_{}", self.env_suffix());
        std::env::var(&var).unwrap_or_else(|_| panic!("{var} not set"))
    }

    pub fn signal(self, signal: &str) {
        let pid = self.pid();
        let ok = Command::new("kill")
            .args([&format!("-{signal}"), &pid.to_string()])
            .status()
            .expect("run kill")
            .success();
        assert!(ok, "kill -{signal} {pid}");
    }

    /// Starts the server again (after SIGKILL), or resumes it (after SIGSTOP).
    pub fn restart(self) {
        let script = std::env::var("RWSPLIT_MYSQL_SCRIPT").expect("RWSPLIT_MYSQL_SCRIPT");
        let out = Command::new(script)
            .args(["restart", &self.script_name()])
            .output()
            .expect("run mariadb.sh restart");
        assert!(
            out.status.success(),
            "restart {}: {}",
            self.script_name(),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    pub async fn admin(self, sql: &str) {
        let pool = MySqlPool::connect(&self.admin_url())
            .await
            .expect("admin connect");
        sqlx::raw_sql(AssertSqlSafe(sql.to_string()))
            .execute(&pool)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        pool.close().await;
    }

    /// Delays replication on this replica by `seconds` (0 lifts it).
    pub async fn delay(self, seconds: u32) {
        self.admin(&format!(
            "STOP SLAVE; CHANGE MASTER TO MASTER_DELAY = {seconds}; START SLAVE"
        ))
        .await;
    }
}

/// Brings every server back: running, resumed, replicating without delay.
pub async fn heal(replicas: u8) {
    Server::Primary.restart();
    for n in 1..=replicas {
        let r = Server::Replica(n);
        r.restart();
        r.admin("STOP SLAVE; CHANGE MASTER TO MASTER_DELAY = 0; START SLAVE")
            .await;
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
}
