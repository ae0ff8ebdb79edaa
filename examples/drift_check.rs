//! The replica drift check as a command: compares one table between a MySQL/MariaDB primary and
//! a replica and prints the key ranges that differ. Reads only on the replica.
//!
//! ```text
//! cargo run --features mysql --example drift_check -- \
//!     --primary mysql://app:pw@primary/app --replica mysql://app:pw@replica1/app \
//!     --table orders --key id [--chunk 1000] [--wait-timeout 30]
//! ```
//!
//! Exit status: 0 no drift, 1 drift found, 2 error (bad arguments, connection, timeout).

use std::process::ExitCode;
use std::time::Duration;

use rwsplit::drift::{check_table, DriftOptions};
use sqlx::mysql::MySqlPoolOptions;

const USAGE: &str =
    "usage: drift_check --primary URL --replica URL --table [SCHEMA.]TABLE --key COLUMN \
                     [--chunk ROWS] [--wait-timeout SECONDS]";

/// The parsed command line.
struct Args {
    primary: String,
    replica: String,
    options: DriftOptions,
}

/// The arguments, or `None` for `--help`.
fn parse_args() -> Result<Option<Args>, String> {
    let (mut primary, mut replica, mut table, mut key) = (None, None, None, None);
    let (mut chunk, mut wait) = (None, None);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let (name, inline) = match arg.split_once('=') {
            Some((name, value)) => (name.to_string(), Some(value.to_string())),
            None => (arg, None),
        };
        if name == "-h" || name == "--help" {
            return Ok(None);
        }
        let slot = match name.as_str() {
            "--primary" => &mut primary,
            "--replica" => &mut replica,
            "--table" => &mut table,
            "--key" => &mut key,
            "--chunk" => &mut chunk,
            "--wait-timeout" => &mut wait,
            other => return Err(format!("unknown argument `{other}`\n{USAGE}")),
        };
        let value = inline
            .or_else(|| args.next())
            .ok_or_else(|| format!("{name} needs a value\n{USAGE}"))?;
        *slot = Some(value);
    }
    let need =
        |v: Option<String>, name: &str| v.ok_or_else(|| format!("{name} is required\n{USAGE}"));
    let mut options = DriftOptions::new(need(table, "--table")?, need(key, "--key")?);
    if let Some(chunk) = chunk {
        options = options.chunk_rows(
            chunk
                .parse()
                .map_err(|_| format!("--chunk `{chunk}` is not a row count"))?,
        );
    }
    if let Some(wait) = wait {
        let seconds: f64 = wait
            .parse()
            .map_err(|_| format!("--wait-timeout `{wait}` is not a number of seconds"))?;
        options = options.wait_timeout(
            Duration::try_from_secs_f64(seconds)
                .map_err(|_| format!("--wait-timeout `{wait}` is out of range"))?,
        );
    }
    Ok(Some(Args {
        primary: need(primary, "--primary")?,
        replica: need(replica, "--replica")?,
        options,
    }))
}

async fn run(args: Args) -> Result<bool, Box<dyn std::error::Error>> {
    args.options.validate()?;
    let connect = |url: String| {
        MySqlPoolOptions::new()
            .max_connections(1)
            .connect_lazy(&url)
    };
    let primary = connect(args.primary)?;
    let replica = connect(args.replica)?;
    let report = check_table(&primary, &replica, &args.options).await;
    primary.close().await;
    replica.close().await;
    let report = report?;
    println!("{report}");
    Ok(report.is_consistent())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(Some(args)) => args,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    match run(args).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("drift_check: {e}");
            ExitCode::from(2)
        }
    }
}
