//! The canonical text of a function, operator or relation name, as the classifier reports it
//! (in `Reason`s and to the catalog lookup of `crate::volatility`): each part folded the way
//! the server folds it, then written so that it can be split back without ambiguity.
//!
//! Folding: PostgreSQL folds an unquoted identifier to lower case (ASCII only, as a UTF-8
//! server does) and keeps a quoted one as written; MySQL, MariaDB and SQLite compare function
//! names without case, and the catalog lookups of this crate compare database and relation
//! names without case too (an over-approximation: never a miss), so every part is folded to
//! lower case.
//!
//! Writing: a part made of `[a-z_][a-z0-9_$]*` is written bare; any other part (upper case
//! kept by quoting, a dot, a space, a quote, non-ASCII) is quoted with the dialect's
//! identifier quote (`"` or `` ` ``), the quote doubled inside. Parts are joined with `.`.
//! So `app.lower`, `"App".f`, `"a.b"` and `` `my db`.f `` each name one object.

use sqlparser::ast::{Ident, ObjectNamePart};

use super::Dialect;

/// The identifier quote of a dialect's canonical names.
pub(crate) fn quote_char(dialect: Dialect) -> char {
    match dialect {
        Dialect::MySql => '`',
        Dialect::Postgres | Dialect::Sqlite => '"',
    }
}

/// One identifier folded as the server folds it.
pub(crate) fn fold_ident(ident: &Ident, dialect: Dialect) -> String {
    match dialect {
        Dialect::Postgres if ident.quote_style.is_some() => ident.value.clone(),
        _ => ident.value.to_ascii_lowercase(),
    }
}

/// One part of an object name, folded.
pub(crate) fn fold_part(part: &ObjectNamePart, dialect: Dialect) -> String {
    match part {
        ObjectNamePart::Identifier(ident) => fold_ident(ident, dialect),
        // A part sqlparser does not model as an identifier: its text, which no catalog
        // object is likely to match (a miss means volatile for functions).
        other => other.to_string(),
    }
}

/// Is `part` written bare in a canonical name?
fn plain(part: &str) -> bool {
    let mut bytes = part.bytes();
    matches!(bytes.next(), Some(b'a'..=b'z' | b'_'))
        && bytes.all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_' | b'$'))
}

/// Writes one folded part into `out`.
pub(crate) fn push_part(out: &mut String, part: &str, dialect: Dialect) {
    if plain(part) {
        out.push_str(part);
        return;
    }
    let q = quote_char(dialect);
    out.push(q);
    for c in part.chars() {
        if c == q {
            out.push(q);
        }
        out.push(c);
    }
    out.push(q);
}

/// The canonical name of folded `parts`.
pub(crate) fn render<S: AsRef<str>>(parts: &[S], dialect: Dialect) -> String {
    let mut out = String::new();
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            out.push('.');
        }
        push_part(&mut out, part.as_ref(), dialect);
    }
    out
}

/// The folded parts of a canonical name (the inverse of [`render`]); `None` when `name` is
/// not one (an unterminated quote, an empty part).
#[cfg_attr(not(any(feature = "mysql", feature = "postgres")), allow(dead_code))] // used by the backends
pub(crate) fn split(name: &str, dialect: Dialect) -> Option<Vec<String>> {
    let q = quote_char(dialect);
    let mut parts = Vec::new();
    let mut chars = name.chars().peekable();
    loop {
        let mut part = String::new();
        if chars.peek() == Some(&q) {
            chars.next();
            loop {
                match chars.next()? {
                    c if c == q => {
                        if chars.peek() == Some(&q) {
                            chars.next();
                            part.push(q);
                        } else {
                            break;
                        }
                    }
                    c => part.push(c),
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c == '.' {
                    break;
                }
                part.push(c);
                chars.next();
            }
        }
        if part.is_empty() {
            return None;
        }
        parts.push(part);
        match chars.next() {
            None => return Some(parts),
            Some('.') => {}
            Some(_) => return None,
        }
    }
}

/// A user-defined operator's canonical name: `operator(name)` or `operator(schema.name)`.
pub(crate) fn operator(schema: Option<&str>, op: &str, dialect: Dialect) -> String {
    let mut out = String::from("operator(");
    if let Some(schema) = schema {
        push_part(&mut out, schema, dialect);
        out.push('.');
    }
    out.push_str(op);
    out.push(')');
    out
}

/// What a canonical name reported by the classifier designates.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(not(any(feature = "mysql", feature = "postgres")), allow(dead_code))] // used by the backends
pub(crate) enum Name {
    /// A function: its schema (or database) when qualified, and its name, both folded.
    Function {
        /// The schema part, if any (the part before the name; a catalog part before it is
        /// dropped).
        schema: Option<String>,
        /// The function's name.
        name: String,
    },
    /// A user-defined operator (PostgreSQL).
    Operator {
        /// The schema part, if any.
        schema: Option<String>,
        /// The operator's symbol.
        name: String,
    },
}

#[cfg_attr(not(any(feature = "mysql", feature = "postgres")), allow(dead_code))] // used by the backends
impl Name {
    /// Reads a canonical name back. `None` for text no lookup can answer (treated as unknown,
    /// so volatile).
    pub(crate) fn parse(text: &str, dialect: Dialect) -> Option<Name> {
        if let Some(inner) = text
            .strip_prefix("operator(")
            .and_then(|t| t.strip_suffix(')'))
        {
            // Operator symbols never contain a dot or a quote; the schema may be quoted.
            let (schema, op) = match inner.rfind('.') {
                Some(i) => {
                    let schema = split(&inner[..i], dialect)?;
                    let [schema] = <[String; 1]>::try_from(schema).ok()?;
                    (Some(schema), &inner[i + 1..])
                }
                None => (None, inner),
            };
            if op.is_empty() {
                return None;
            }
            return Some(Name::Operator {
                schema,
                name: op.to_string(),
            });
        }
        let mut parts = split(text, dialect)?;
        let name = parts.pop()?;
        let schema = parts.pop();
        // `catalog.schema.f`: PostgreSQL allows the current database as a catalog part.
        if parts.len() > 1 || (parts.len() == 1 && dialect != Dialect::Postgres) {
            return None;
        }
        Some(Name::Function { schema, name })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: Dialect = Dialect::Postgres;
    const M: Dialect = Dialect::MySql;

    #[test]
    fn canonical_names_split_back_exactly() {
        for (parts, d, text) in [
            (vec!["app", "lower"], P, "app.lower"),
            (vec!["App", "f"], P, "\"App\".f"),
            (vec!["a.b"], P, "\"a.b\""),
            (vec!["we\"ird", "x y"], P, "\"we\"\"ird\".\"x y\""),
            (vec!["my db", "f"], M, "`my db`.f"),
            (vec!["tick`", "f"], M, "`tick```.f"),
            (vec!["ümlaut"], P, "\"ümlaut\""),
            (vec!["f$1"], P, "f$1"),
            (vec!["1f"], P, "\"1f\""),
        ] {
            assert_eq!(render(&parts, d), text);
            assert_eq!(split(text, d).unwrap(), parts, "{text}");
        }
        for bad in ["", "a.", ".a", "\"a", "\"a\"b", "a..b"] {
            assert_eq!(split(bad, P), None, "{bad}");
        }
    }

    #[test]
    fn names_parse_as_functions_and_operators() {
        let f = |schema: Option<&str>, name: &str| Name::Function {
            schema: schema.map(str::to_string),
            name: name.to_string(),
        };
        let o = |schema: Option<&str>, name: &str| Name::Operator {
            schema: schema.map(str::to_string),
            name: name.to_string(),
        };
        assert_eq!(Name::parse("my_fn", P), Some(f(None, "my_fn")));
        assert_eq!(Name::parse("app.f", M), Some(f(Some("app"), "f")));
        assert_eq!(Name::parse("db.app.f", P), Some(f(Some("app"), "f")));
        assert_eq!(Name::parse("db.app.f", M), None);
        assert_eq!(Name::parse("a.b.c.d", P), None);
        assert_eq!(Name::parse("operator(##>)", P), Some(o(None, "##>")));
        assert_eq!(
            Name::parse("operator(\"My.S\".%%>)", P),
            Some(o(Some("My.S"), "%%>"))
        );
        assert_eq!(Name::parse("operator()", P), None);
        assert_eq!(
            Name::parse(&operator(Some("a\"b"), "+", P), P),
            Some(o(Some("a\"b"), "+"))
        );
    }
}
