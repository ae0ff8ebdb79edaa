//! Property tests of the classifier: no input panics it, and no mutation that makes a read
//! unsafe (a locking clause, a second statement, a side-effect call, an assignment, an INTO)
//! lets the statement reach a replica, in any dialect.

use proptest::prelude::*;
use rwsplit::{Classifier, Dialect, Target};

const DIALECTS: [Dialect; 3] = [Dialect::MySql, Dialect::Postgres, Dialect::Sqlite];

fn reads() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("SELECT id, name FROM users WHERE id = 1".to_string()),
        Just("SELECT count(*) FROM orders o JOIN users u ON u.id = o.user_id".to_string()),
        Just("SELECT * FROM users WHERE id IN (SELECT user_id FROM orders)".to_string()),
        Just("WITH t AS (SELECT 1 AS x) SELECT x FROM t".to_string()),
        Just("SELECT a FROM t UNION SELECT b FROM u".to_string()),
        "[a-z]{1,8}".prop_map(|c| format!("SELECT {c} FROM t{c} WHERE {c} = 'x'")),
    ]
}

/// Fragments that turn a read into something only the primary may run, and where they go.
fn poison() -> impl Strategy<Value = (&'static str, bool)> {
    prop_oneof![
        Just((" FOR UPDATE", true)),
        Just((" FOR SHARE", true)),
        Just((" LOCK IN SHARE MODE", true)),
        Just((" FOR NO KEY UPDATE", true)),
        Just((" FOR KEY SHARE", true)),
        Just(("; DELETE FROM users", true)),
        Just(("; SELECT 1", true)),
        Just((" INTO @v", true)),
        Just((" WHERE last_insert_id() > 0", true)),
        Just(("SELECT get_lock('a', 1), ", false)),
        Just(("SELECT nextval('s'), ", false)),
        Just(("SELECT @x := 1, ", false)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_text_never_panics(sql in "\\PC{0,200}") {
        for d in DIALECTS {
            let _ = Classifier::new(d).decide(&sql);
        }
    }

    #[test]
    fn sql_shaped_noise_never_panics(
        parts in prop::collection::vec(
            prop_oneof![
                Just("SELECT"), Just("FROM"), Just("WHERE"), Just("("), Just(")"), Just("'"),
                Just("\""), Just("`"), Just("/*"), Just("*/"), Just("--"), Just(";"), Just("$1"),
                Just("?"), Just("@"), Just("@@"), Just(":="), Just("FOR"), Just("UPDATE"),
                Just("WITH"), Just("x"), Just("1"), Just(","), Just("\\"), Just("/*!"),
            ],
            0..40,
        )
    ) {
        let sql = parts.join(" ");
        for d in DIALECTS {
            let _ = Classifier::new(d).decide(&sql);
        }
    }

    #[test]
    fn poisoned_reads_never_reach_a_replica(read in reads(), (frag, suffix) in poison()) {
        let sql = if suffix {
            format!("{read}{frag}")
        } else {
            format!("{frag}{}", read.trim_start_matches("SELECT "))
        };
        for d in DIALECTS {
            let decision = Classifier::new(d).decide(&sql);
            prop_assert_eq!(decision.target, Target::Primary, "{:?}: {} ({})", d, sql, decision.reason);
        }
    }

    #[test]
    fn reads_stay_reads_with_comments_around(read in reads(), comment in "[a-zA-Z ]{0,20}") {
        let comment = comment.replace("rwsplit", "");
        let sql = format!("/* {comment} UPDATE */ {read} /* DELETE {comment} */");
        for d in DIALECTS {
            prop_assert_eq!(Classifier::new(d).decide(&sql).target, Target::Replica, "{:?}: {}", d, sql);
        }
    }
}

#[test]
fn ten_thousand_parentheses_neither_overflow_nor_reach_a_replica() {
    for depth in [100, 1_000, 10_000] {
        let deep = format!("SELECT {}1{}", "(".repeat(depth), ")".repeat(depth));
        let unbalanced = format!("SELECT {}", "(".repeat(depth));
        let subqueries = format!("SELECT {}1{}", "(SELECT ".repeat(depth), ")".repeat(depth));
        for d in DIALECTS {
            for sql in [&deep, &unbalanced, &subqueries] {
                assert_eq!(
                    Classifier::new(d).decide(sql).target,
                    Target::Primary,
                    "depth {depth}"
                );
            }
        }
    }
}
