//! The routing-explain tool: reads SQL statements from stdin, one per line (blank lines are
//! ignored), and prints one line per statement: `primary` or `replica`, a tab, and the reason.
//!
//! ```text
//! echo "SELECT * FROM t FOR UPDATE" | cargo run --example classify -- --dialect mysql
//! primary    locking read   (a tab between the two fields)
//! ```

use std::io::{BufRead, Write};

use rwsplit::{Classifier, Dialect};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut dialect = Dialect::MySql;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--dialect" => {
                let value = args
                    .next()
                    .ok_or("--dialect needs mysql, postgres or sqlite")?;
                dialect = value.parse()?;
            }
            other if other.starts_with("--dialect=") => {
                dialect = other["--dialect=".len()..].parse()?;
            }
            "-h" | "--help" => {
                println!("usage: classify [--dialect mysql|postgres|sqlite] < statements.sql");
                return Ok(());
            }
            other => return Err(format!("unknown argument `{other}`; see --help").into()),
        }
    }
    let classifier = Classifier::new(dialect);
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    for line in std::io::stdin().lock().lines() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        writeln!(out, "{}", classifier.decide(&line))?;
    }
    Ok(())
}
