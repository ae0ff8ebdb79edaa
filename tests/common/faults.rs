//! Fault injection on the servers started by `scripts/mariadb.sh` and `scripts/postgres.sh`:
//! signals to the PIDs in their pid files (never a pattern), `restart` through the scripts,
//! and replication changes through the admin account. Every test heals what it broke.

#![allow(dead_code)]

use std::process::Command;
use std::time::Duration;

use sqlx::AssertSqlSafe;

/// Which local cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    MariaDb,
    Postgres,
}

/// A server of a local cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Server {
    Primary,
    Replica(u8),
}

impl Kind {
    fn prefix(self) -> &'static str {
        match self {
            Kind::MariaDb => "RWSPLIT_MYSQL",
            Kind::Postgres => "RWSPLIT_PG",
        }
    }

    fn env(self, server: Server, suffix: &str) -> String {
        let name = match (self, server) {
            (_, Server::Primary) => "PRIMARY".to_string(),
            (Kind::MariaDb, Server::Replica(n)) => format!("REPLICA_{n}"),
            (Kind::Postgres, Server::Replica(n)) => format!("STANDBY_{n}"),
        };
        let var = format!("{}_{name}{suffix}", self.prefix());
        std::env::var(&var).unwrap_or_else(|_| panic!("{var} not set"))
    }

    fn admin_url(self, server: Server) -> String {
        let name = match (self, server) {
            (_, Server::Primary) => "PRIMARY".to_string(),
            (Kind::MariaDb, Server::Replica(n)) => format!("REPLICA_{n}"),
            (Kind::Postgres, Server::Replica(n)) => format!("STANDBY_{n}"),
        };
        let var = format!("{}_ADMIN_{name}", self.prefix());
        std::env::var(&var).unwrap_or_else(|_| panic!("{var} not set"))
    }

    pub fn pid(self, server: Server) -> i32 {
        let file = self.env(server, "_PIDFILE");
        std::fs::read_to_string(&file)
            .unwrap_or_else(|e| panic!("read {file}: {e}"))
            .lines()
            .next()
            .and_then(|l| l.trim().parse().ok())
            .expect("pid file starts with a pid")
    }

    /// Signals the server: MariaDB is one process; a PostgreSQL server is its postmaster plus
    /// the backends it forked, which answer open connections on their own, so they are
    /// signalled too (found by parent PID, never by name).
    ///
    /// `STOP` returns only once every thread of every signalled process is stopped: `kill`
    /// returns when the signal is queued, and on a loaded machine a server's threads can go on
    /// answering for a while after that. PostgreSQL's postmaster is stopped before its children
    /// and resumed after them (and stopped before `KILL` reaches all of them at once): while it
    /// is stopped it can neither fork a backend that the list of its children would miss nor
    /// reap one, so every listed child still exists (a backend that exits meanwhile stays a
    /// zombie, which a signal reaches and which answers nothing).
    pub fn signal(self, server: Server, signal: &str) {
        let pid = self.pid(server);
        if self == Kind::MariaDb {
            send(signal, &[pid]);
            if signal == "STOP" {
                wait_stopped(pid);
            }
            return;
        }
        match signal {
            "STOP" => {
                send(signal, &[pid]);
                wait_stopped(pid);
                let children = children(pid);
                send(signal, &children);
                children.iter().for_each(|&c| wait_stopped(c));
            }
            "CONT" => {
                send(signal, &children(pid));
                send(signal, &[pid]);
            }
            // KILL: the postmaster is stopped first, so that the list of its children is
            // complete and each of them still exists (a zombie at worst), then all at once.
            _ => {
                send("STOP", &[pid]);
                wait_stopped(pid);
                let mut pids = vec![pid];
                pids.extend(children(pid));
                send(signal, &pids);
            }
        }
    }

    /// Starts the server again (after SIGKILL), or resumes it (after SIGSTOP).
    pub fn restart(self, server: Server) {
        let script = std::env::var(format!("{}_SCRIPT", self.prefix())).expect("script path");
        let name = match (self, server) {
            (_, Server::Primary) => "primary".to_string(),
            (Kind::MariaDb, Server::Replica(n)) => format!("replica{n}"),
            (Kind::Postgres, Server::Replica(n)) => format!("standby{n}"),
        };
        let out = Command::new(script)
            .args(["restart", &name])
            .output()
            .expect("run the server script");
        assert!(
            out.status.success(),
            "restart {name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Runs admin statements, one at a time, on a server.
    pub async fn admin(self, server: Server, statements: &[&str]) {
        let url = self.admin_url(server);
        match self {
            Kind::MariaDb => {
                #[cfg(feature = "mysql")]
                {
                    let pool = sqlx::MySqlPool::connect(&url).await.expect("admin connect");
                    for sql in statements {
                        sqlx::raw_sql(AssertSqlSafe(sql.to_string()))
                            .execute(&pool)
                            .await
                            .unwrap_or_else(|e| panic!("{sql}: {e}"));
                    }
                    pool.close().await;
                }
            }
            Kind::Postgres => {
                #[cfg(feature = "postgres")]
                {
                    let pool = sqlx::PgPool::connect(&url).await.expect("admin connect");
                    for sql in statements {
                        sqlx::raw_sql(AssertSqlSafe(sql.to_string()))
                            .execute(&pool)
                            .await
                            .unwrap_or_else(|e| panic!("{sql}: {e}"));
                    }
                    pool.close().await;
                }
            }
        }
        let _ = url;
    }

    /// Delays applying replication on a replica by `seconds` (0 lifts it).
    pub async fn delay(self, replica: Server, seconds: u32) {
        match self {
            Kind::MariaDb => {
                let change = format!("CHANGE MASTER TO MASTER_DELAY = {seconds}");
                self.admin(replica, &["STOP SLAVE", &change, "START SLAVE"])
                    .await
            }
            Kind::Postgres => {
                let set = format!("ALTER SYSTEM SET recovery_min_apply_delay = '{seconds}s'");
                self.admin(replica, &[&set, "SELECT pg_reload_conf()"])
                    .await
            }
        }
    }

    /// Stops applying replication on a replica (the apply thread / WAL replay).
    pub async fn stop_replication(self, replica: Server) {
        match self {
            Kind::MariaDb => self.admin(replica, &["STOP SLAVE"]).await,
            Kind::Postgres => self.admin(replica, &["SELECT pg_wal_replay_pause()"]).await,
        }
    }

    pub async fn start_replication(self, replica: Server) {
        match self {
            Kind::MariaDb => self.admin(replica, &["START SLAVE"]).await,
            Kind::Postgres => {
                self.admin(replica, &["SELECT pg_wal_replay_resume()"])
                    .await
            }
        }
    }

    /// Brings every server back: running, resumed, replicating without delay.
    pub async fn heal(self, replicas: u8) {
        self.restart(Server::Primary);
        for n in 1..=replicas {
            let r = Server::Replica(n);
            self.restart(r);
            self.delay(r, 0).await;
            if self == Kind::Postgres {
                self.admin(r, &["SELECT pg_wal_replay_resume()"]).await;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Heals a cluster when dropped: every server running and resumed (SIGCONT after SIGSTOP, the
/// script's `restart` after SIGKILL), replicating without delay ([`Kind::heal`]). A fault test
/// holds one from the moment it breaks something, so a failing assertion never leaves the
/// servers broken for the next test. `drop` cannot await: the healing runs on a thread of its
/// own with its own runtime, and the guard waits for it.
#[must_use = "the cluster is healed when the guard is dropped"]
pub struct Heal {
    kind: Kind,
    replicas: u8,
}

impl Heal {
    pub fn new(kind: Kind, replicas: u8) -> Self {
        Self { kind, replicas }
    }
}

impl Drop for Heal {
    fn drop(&mut self) {
        let (kind, replicas) = (self.kind, self.replicas);
        let healed = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime");
            rt.block_on(kind.heal(replicas));
        })
        .join();
        // A heal that fails during a test's own panic must not abort the process (a panic in
        // `drop` while unwinding); otherwise it fails the test.
        if healed.is_err() && !std::thread::panicking() {
            panic!("healing the {kind:?} cluster failed");
        }
    }
}

/// The processes `pid` forked that it has not reaped.
fn children(pid: i32) -> Vec<i32> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

/// Sends `signal` to `pids` (if any) with `kill`, which must succeed.
fn send(signal: &str, pids: &[i32]) {
    if pids.is_empty() {
        return;
    }
    let mut args = vec![format!("-{signal}")];
    args.extend(pids.iter().map(|p| p.to_string()));
    let ok = Command::new("kill")
        .args(&args)
        .status()
        .expect("run kill")
        .success();
    assert!(ok, "kill {args:?}");
}

/// Waits until every thread of `pid` is stopped (state `T` in `/proc/PID/task/*/stat`), for at
/// most 30 s. A process or thread that has exited (or is a zombie) counts as stopped: it answers
/// nothing either.
fn wait_stopped(pid: i32) {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let running = running_threads(pid);
        if running.is_empty() {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "process {pid}: threads {running:?} still run 30 s after SIGSTOP"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// The threads of `pid` whose state is not stopped.
fn running_threads(pid: i32) -> Vec<String> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    tasks
        .filter_map(Result::ok)
        .filter(|task| {
            let stat = std::fs::read_to_string(task.path().join("stat")).unwrap_or_default();
            // The state follows the command name, which is in parentheses and may hold any
            // character: read it after the last ')'.
            let state = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.trim_start().chars().next());
            matches!(state, Some(s) if !matches!(s, 'T' | 't' | 'Z' | 'X'))
        })
        .map(|task| task.file_name().to_string_lossy().into_owned())
        .collect()
}
