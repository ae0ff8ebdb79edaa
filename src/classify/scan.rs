//! Token-level checks that run before the parser: route hints in comments, MySQL executable
//! comments, and the locking clauses and assignments that `sqlparser` does not parse
//! (`LOCK IN SHARE MODE`, `FOR NO KEY UPDATE`, `FOR KEY SHARE`, `:=`).
//!
//! Working on tokens, not text, is what keeps string literals, comments and quoted
//! identifiers from fooling the checks: `'LOCK IN SHARE MODE'` is one string token.

use sqlparser::keywords::{Keyword, ALL_KEYWORDS, ALL_KEYWORDS_INDEX};
use sqlparser::tokenizer::{Token, TokenWithSpan, Whitespace};

use super::Dialect;
use crate::route::{Reason, Route};

/// What the token scan found.
#[derive(Debug, Default)]
pub(crate) struct Scan {
    /// A route hint from a `rwsplit:` comment; a primary hint beats a replica hint.
    pub hint: Option<Route>,
    /// A reason that settles the route as primary without parsing.
    pub primary: Option<Reason>,
    /// An unquoted `INTO` appears (only meaningful for a query).
    pub has_into: bool,
    /// The first keyword, upper case (`SELECT`, `INSERT`, ...), or `UNKNOWN`.
    pub first_keyword: &'static str,
}

const HINT_PREFIX: &str = "rwsplit:";

fn comment_hint(text: &str) -> Option<Route> {
    let text = text.trim();
    let value = text.get(..HINT_PREFIX.len())?;
    if !value.eq_ignore_ascii_case(HINT_PREFIX) {
        return None;
    }
    let value = text[HINT_PREFIX.len()..].trim();
    if value.eq_ignore_ascii_case("primary") {
        Some(Route::Primary)
    } else if value.eq_ignore_ascii_case("replica") {
        Some(Route::Replica)
    } else {
        None
    }
}

fn keyword_name(kw: Keyword) -> &'static str {
    ALL_KEYWORDS_INDEX
        .iter()
        .position(|k| *k == kw)
        .map_or("UNKNOWN", |i| ALL_KEYWORDS[i])
}

/// An unquoted word, upper-cased for comparison, or `None` for any other token.
fn word(token: &Token) -> Option<&str> {
    match token {
        Token::Word(w) if w.quote_style.is_none() => Some(w.value.as_str()),
        _ => None,
    }
}

fn is_seq(tokens: &[&Token], at: usize, words: &[&str]) -> bool {
    words.iter().enumerate().all(|(i, want)| {
        tokens
            .get(at + i)
            .and_then(|t| word(t))
            .is_some_and(|w| w.eq_ignore_ascii_case(want))
    })
}

const LOCKING_SEQUENCES: &[&[&str]] = &[
    &["LOCK", "IN", "SHARE", "MODE"],
    &["FOR", "NO", "KEY", "UPDATE"],
    &["FOR", "KEY", "SHARE"],
    &["FOR", "UPDATE"],
    &["FOR", "SHARE"],
];

pub(crate) fn scan(tokens: &[TokenWithSpan], dialect: Dialect) -> Scan {
    let mut out = Scan {
        first_keyword: "UNKNOWN",
        ..Scan::default()
    };
    let mut significant: Vec<&Token> = Vec::with_capacity(tokens.len());
    for t in tokens {
        match &t.token {
            Token::Whitespace(Whitespace::MultiLineComment(text)) => {
                // `/*! ... */` (MySQL) and `/*M! ... */` (MariaDB) bodies are executed by the
                // server; sqlparser reads the first as SQL but the second as a comment.
                if dialect == Dialect::MySql && (text.starts_with('!') || text.starts_with("M!")) {
                    out.primary.get_or_insert(Reason::ExecutableComment);
                }
                merge_hint(&mut out.hint, comment_hint(text));
            }
            Token::Whitespace(Whitespace::SingleLineComment { comment, .. }) => {
                merge_hint(&mut out.hint, comment_hint(comment));
            }
            Token::Whitespace(_) | Token::EOF => {}
            other => significant.push(other),
        }
    }
    if let Some(Token::Word(w)) = significant.first() {
        if w.quote_style.is_none() && w.keyword != Keyword::NoKeyword {
            out.first_keyword = keyword_name(w.keyword);
        }
    }
    for (i, t) in significant.iter().enumerate() {
        if matches!(t, Token::Assignment) {
            out.primary.get_or_insert(Reason::VariableAssignment);
        }
        if word(t).is_some_and(|w| w.eq_ignore_ascii_case("INTO")) {
            out.has_into = true;
        }
        // Sets the session's FOUND_ROWS(), which only this connection can read back.
        if word(t).is_some_and(|w| w.eq_ignore_ascii_case("SQL_CALC_FOUND_ROWS")) {
            out.primary
                .get_or_insert(Reason::SessionVariable("SQL_CALC_FOUND_ROWS".into()));
        }
        if LOCKING_SEQUENCES
            .iter()
            .any(|seq| is_seq(&significant, i, seq))
        {
            out.primary.get_or_insert(Reason::LockingRead);
        }
    }
    out
}

fn merge_hint(hint: &mut Option<Route>, found: Option<Route>) {
    match (*hint, found) {
        (_, None) | (Some(Route::Primary), _) => {}
        (_, Some(r)) => *hint = Some(r),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hint_values() {
        assert_eq!(comment_hint(" rwsplit:primary "), Some(Route::Primary));
        assert_eq!(comment_hint("RWSPLIT: Replica"), Some(Route::Replica));
        assert_eq!(comment_hint("rwsplit:bogus"), None);
        assert_eq!(comment_hint("rw"), None);
        assert_eq!(comment_hint("é rwsplit:primary"), None);
    }

    #[test]
    fn primary_hint_beats_replica_hint() {
        let mut h = None;
        merge_hint(&mut h, Some(Route::Replica));
        merge_hint(&mut h, Some(Route::Primary));
        merge_hint(&mut h, Some(Route::Replica));
        assert_eq!(h, Some(Route::Primary));
    }
}
