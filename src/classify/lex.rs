//! A server-faithful pre-scan of the raw text, run before `sqlparser` tokenizes it.
//!
//! `sqlparser`'s tokenizer and the server's lexer do not agree on every input: MySQL ends a
//! `--` comment only when an ASCII space or control character follows, sqlparser whenever any
//! Unicode whitespace follows; PostgreSQL nests block comments, sqlparser's PostgreSQL dialect
//! does not; a backslash before a quote ends a string or escapes the quote depending on
//! `NO_BACKSLASH_ESCAPES` / `standard_conforming_strings` / an `E` prefix. Wherever the
//! server's reading and sqlparser's could differ, the classifier would judge a statement
//! the server does not run, so this scan follows each server's comment, quote and whitespace
//! rules and reports any text where two plausible readings part ways. Such a statement goes to
//! the primary ([`Reason::LexicalAmbiguity`]).
//!
//! The scan is deliberately stricter than the servers (fail-safe): it flags
//! * any control character other than TAB, LF and CR (CR inside a line comment only as part
//!   of CRLF), and NUL anywhere;
//! * any non-ASCII whitespace outside string literals, and any other non-ASCII character
//!   outside literals and comments that is not alphanumeric;
//! * a comment opener inside a comment (`/*` in any comment, `--` in a block comment);
//! * MySQL: every executable comment (`/*!`, `/*!NNNNN`, `/*M!`, `/*M!NNNNNN`) — reported as
//!   [`Reason::ExecutableComment`] — and a `--` not followed by an ASCII space, TAB or newline;
//! * a string literal whose end differs with and without backslash escapes (so the result
//!   holds under `NO_BACKSLASH_ESCAPES`, `ANSI_QUOTES`, `standard_conforming_strings` on or
//!   off, and `E''` / `U&''` prefixes), and any unterminated literal, identifier or comment;
//! * PostgreSQL: any `$` that is not a `$n` parameter (dollar quotes, `$` in identifiers), and
//!   `--` or `/*` glued to operator characters (PostgreSQL ends the operator there, sqlparser
//!   reads one custom operator);
//! * a backslash outside literals (MySQL reads `\N` as NULL);
//! * MySQL: `@` or `@@` not followed by a name character or a quote (sqlparser takes the next
//!   character, whatever it is, into the variable's name).
//!
//! It is one pass over the bytes with no allocation.

use super::Dialect;
use crate::route::Reason;

/// Scans `sql`; `Some(reason)` when the statement must go to the primary on lexical grounds.
pub(crate) fn check(sql: &str, dialect: Dialect) -> Option<Reason> {
    let b = sql.as_bytes();
    let first = Mode::parser(dialect);
    let theirs = match scan(b, dialect, first) {
        Ok(sig) => Some(sig),
        // sqlparser fails to tokenize it too (unparseable) unless another reading lexes.
        Err(Found::Invalid) => None,
        Err(found) => return Some(found.reason()),
    };
    if !b.contains(&b'\\') {
        // Without a backslash every reading is the same.
        return None;
    }
    // The server's settings may read backslashes differently: every other reading must either
    // fail to lex (a syntax error on the server, which runs nothing) or agree with ours.
    for &mode in Mode::others(dialect) {
        match scan(b, dialect, mode) {
            Ok(sig) if Some(sig) == theirs => {}
            Ok(_) | Err(Found::Executable | Found::Ambiguous) => {
                return Some(Reason::LexicalAmbiguity)
            }
            Err(Found::Invalid) => {}
        }
    }
    None
}

/// How backslashes inside literals are read: one combination of server settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Mode {
    /// In `'...'` literals without an `E` prefix.
    single: bool,
    /// In `"..."` literals (MySQL strings; identifiers under `ANSI_QUOTES`).
    double: bool,
    /// In PostgreSQL `E'...'` literals.
    e_prefix: bool,
}

impl Mode {
    /// sqlparser's reading, which is also the servers' default one.
    fn parser(dialect: Dialect) -> Mode {
        match dialect {
            Dialect::MySql => Mode {
                single: true,
                double: true,
                e_prefix: true,
            },
            Dialect::Postgres => Mode {
                single: false,
                double: false,
                e_prefix: true,
            },
            Dialect::Sqlite => Mode {
                single: false,
                double: false,
                e_prefix: false,
            },
        }
    }

    /// The other readings a server may use: MySQL `NO_BACKSLASH_ESCAPES` and `ANSI_QUOTES`,
    /// PostgreSQL `standard_conforming_strings = off`.
    fn others(dialect: Dialect) -> &'static [Mode] {
        match dialect {
            Dialect::MySql => &[
                Mode {
                    single: false,
                    double: false,
                    e_prefix: false,
                },
                Mode {
                    single: true,
                    double: false,
                    e_prefix: true,
                },
            ],
            Dialect::Postgres => &[Mode {
                single: true,
                double: false,
                e_prefix: true,
            }],
            Dialect::Sqlite => &[],
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Found {
    /// A MySQL/MariaDB executable comment.
    Executable,
    /// Text two lexers may read differently.
    Ambiguous,
    /// Text this reading cannot lex (an unterminated literal, a stray backslash): the server
    /// would reject the statement under the settings that give this reading.
    Invalid,
}

impl Found {
    fn reason(self) -> Reason {
        match self {
            Found::Executable => Reason::ExecutableComment,
            Found::Ambiguous | Found::Invalid => Reason::LexicalAmbiguity,
        }
    }
}

fn is_ident_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b'$' || c >= 0x80
}

/// PostgreSQL's operator characters.
fn is_pg_operator_byte(c: u8) -> bool {
    matches!(
        c,
        b'+' | b'-'
            | b'*'
            | b'/'
            | b'<'
            | b'>'
            | b'='
            | b'~'
            | b'!'
            | b'@'
            | b'#'
            | b'%'
            | b'^'
            | b'&'
            | b'|'
            | b'`'
            | b'?'
    )
}

/// The character starting at byte `i` (a char boundary) and its length.
fn char_at(b: &[u8], i: usize) -> (char, usize) {
    // `b` comes from a `&str` and `i` is always a char boundary here: decode at most 4 bytes.
    let end = (i + 4).min(b.len());
    let chunk = match std::str::from_utf8(&b[i..end]) {
        Ok(s) => s,
        Err(e) => {
            // A partial character at the end of the window: decode the valid prefix.
            std::str::from_utf8(&b[i..i + e.valid_up_to()]).unwrap_or_default()
        }
    };
    chunk
        .chars()
        .next()
        .map_or(('\u{FFFD}', 1), |c| (c, c.len_utf8()))
}

/// A control character or non-ASCII whitespace, which any comment or the text between tokens
/// must not contain. `i` is a char boundary; returns the width to skip on success.
fn plain_char(b: &[u8], i: usize) -> Result<usize, Found> {
    let c = b[i];
    if c < 0x80 {
        if (c < 0x20 && c != b'\t' && c != b'\n' && c != b'\r') || c == 0x7f {
            return Err(Found::Ambiguous);
        }
        return Ok(1);
    }
    let (ch, len) = char_at(b, i);
    if ch.is_whitespace() || ch.is_control() || is_invisible(ch) {
        return Err(Found::Ambiguous);
    }
    Ok(len)
}

/// Format characters that render as nothing (zero-width space and joiners, BOM, bidi marks):
/// not whitespace to Rust, but no lexer should see them between tokens.
fn is_invisible(ch: char) -> bool {
    matches!(ch, '\u{200B}'..='\u{200F}' | '\u{2028}'..='\u{202E}' | '\u{2060}'..='\u{2064}' | '\u{FEFF}')
}

/// Scans in one reading; the signature is a hash of where each literal and comment ends, so
/// two readings that split the text the same way have the same one.
fn scan(b: &[u8], dialect: Dialect, mode: Mode) -> Result<u64, Found> {
    let mysql = dialect == Dialect::MySql;
    let pg = dialect == Dialect::Postgres;
    let n = b.len();
    let mut i = 0;
    let mut sig: u64 = 0xcbf2_9ce4_8422_2325;
    let mut mark = |at: usize| sig = (sig ^ at as u64).wrapping_mul(0x0000_0100_0000_01b3);
    // MySQL: a name, then a comment, then `(`. The server reads `count/**/(x)` as a call of the
    // default database's stored function `count`, not of its own `COUNT` (only whitespace
    // between a grammar function's name and its `(` keeps it the grammar's, and that only under
    // `IGNORE_SPACE`, which sqlx sets); sqlparser drops the comment and reads `count(x)`.
    let mut after_name = false;
    let mut commented = false;
    while i < n {
        let c = b[i];
        let next = b.get(i + 1).copied();
        let prev_ident = i > 0 && is_ident_byte(b[i - 1]);
        match c {
            b'\'' => {
                let e = pg
                    && i > 0
                    && matches!(b[i - 1], b'E' | b'e')
                    && !(i > 1 && is_ident_byte(b[i - 2]));
                i = literal_end(b, i, b'\'', if e { mode.e_prefix } else { mode.single })?;
                mark(i);
            }
            b'"' => {
                i = literal_end(b, i, b'"', mode.double)?;
                mark(i);
            }
            b'`' if !pg => {
                i = literal_end(b, i, b'`', false)?;
                mark(i);
                (after_name, commented) = (true, false);
                continue;
            }
            b'`' => return Err(Found::Ambiguous),
            b'[' if dialect == Dialect::Sqlite => {
                i = match b[i + 1..].iter().position(|&x| x == b']') {
                    Some(p) => i + 1 + p + 1,
                    None => return Err(Found::Ambiguous),
                };
            }
            b'/' if next == Some(b'*') => {
                if pg && i > 0 && is_pg_operator_byte(b[i - 1]) {
                    return Err(Found::Ambiguous);
                }
                if mysql {
                    let third = b.get(i + 2).copied();
                    let fourth = b.get(i + 3).copied();
                    if third == Some(b'!')
                        || (matches!(third, Some(b'M' | b'm')) && fourth == Some(b'!'))
                    {
                        return Err(Found::Executable);
                    }
                }
                i = block_comment_end(b, i + 2)?;
                mark(i);
                commented |= after_name;
                continue;
            }
            b'-' if next == Some(b'-') => {
                if pg && i > 0 && is_pg_operator_byte(b[i - 1]) {
                    return Err(Found::Ambiguous);
                }
                // MySQL: `--` starts a comment only before whitespace or a control character;
                // sqlparser before any Unicode whitespace. Anything but these is ambiguous.
                if mysql && !matches!(b.get(i + 2), None | Some(b' ' | b'\t' | b'\n' | b'\r')) {
                    return Err(Found::Ambiguous);
                }
                i = line_comment_end(b, i + 2)?;
                mark(i);
                commented |= after_name;
                continue;
            }
            b'#' if mysql => {
                i = line_comment_end(b, i + 1)?;
                mark(i);
                commented |= after_name;
                continue;
            }
            b'$' if pg && !prev_ident && !next.is_some_and(|d| d.is_ascii_digit()) => {
                i = dollar_quote_end(b, i)?;
                mark(i);
            }
            b'$' if pg => {
                if prev_ident {
                    return Err(Found::Ambiguous);
                }
                i += 1;
                while i < n && b[i].is_ascii_digit() {
                    i += 1;
                }
                // `$1abc` or `$1$`: not a plain parameter.
                if i < n && is_ident_byte(b[i]) {
                    return Err(Found::Ambiguous);
                }
            }
            // MySQL variables: sqlparser takes the character after `@@` into the name whatever
            // it is (`@@;x` is one token to it, `@@` `;` `x` to the server), and likewise after
            // `@`. Only a name character, a quote or a second `@` may follow.
            b'@' if mysql => {
                let mut j = i + 1;
                if b.get(j) == Some(&b'@') {
                    j += 1;
                }
                match b.get(j) {
                    Some(&d) if is_ident_byte(d) && d < 0x80 => {}
                    Some(b'\'' | b'"' | b'`') => {}
                    _ => return Err(Found::Ambiguous),
                }
                i = j;
            }
            // MySQL reads `\N` as NULL; any other backslash is a syntax error.
            b'\\' if mysql && next != Some(b'N') => return Err(Found::Invalid),
            b'\\' => return Err(Found::Ambiguous),
            _ if c < 0x80 => {
                plain_char(b, i)?;
                if mysql {
                    match c {
                        b' ' | b'\t' | b'\n' | b'\r' => {}
                        b'(' if after_name && commented => return Err(Found::Ambiguous),
                        _ if is_ident_byte(c) => (after_name, commented) = (true, false),
                        _ => (after_name, commented) = (false, false),
                    }
                }
                i += 1;
                continue;
            }
            _ => {
                let (ch, len) = char_at(b, i);
                if !ch.is_alphanumeric() || is_invisible(ch) {
                    return Err(Found::Ambiguous);
                }
                i += len;
                (after_name, commented) = (true, false);
                continue;
            }
        }
        // Anything else (a literal, a variable, a parameter) ends a name.
        (after_name, commented) = (false, false);
    }
    Ok(sig)
}

/// The index after the PostgreSQL dollar-quoted string opened at `start` (`$$` or `$tag$`).
/// Only plain ASCII tags are accepted; anything else is ambiguous.
fn dollar_quote_end(b: &[u8], start: usize) -> Result<usize, Found> {
    let mut i = start + 1;
    while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
        i += 1;
    }
    if b.get(i) != Some(&b'$') || b.get(start + 1).is_some_and(u8::is_ascii_digit) {
        return Err(Found::Ambiguous);
    }
    let tag = &b[start..=i];
    let body = i + 1;
    match b[body..].windows(tag.len()).position(|w| w == tag) {
        Some(p) if !b[body..body + p].contains(&0) => Ok(body + p + tag.len()),
        _ => Err(Found::Ambiguous),
    }
}

/// The index after the literal opened by `quote` at `start`, reading backslashes as escapes
/// or not. A doubled quote stands for itself. Unterminated: `Invalid` (a lexer error).
fn literal_end(b: &[u8], start: usize, quote: u8, escapes: bool) -> Result<usize, Found> {
    let Some(end) = literal_end_with(b, start, quote, escapes) else {
        return Err(Found::Invalid);
    };
    if b[start + 1..end].contains(&0) {
        return Err(Found::Ambiguous);
    }
    Ok(end)
}

fn literal_end_with(b: &[u8], start: usize, quote: u8, backslash: bool) -> Option<usize> {
    let mut i = start + 1;
    while i < b.len() {
        let c = b[i];
        if backslash && c == b'\\' {
            i += 2;
            continue;
        }
        if c == quote {
            if b.get(i + 1) == Some(&quote) {
                i += 2;
                continue;
            }
            return Some(i + 1);
        }
        i += 1;
    }
    None
}

/// The index after the block comment whose body starts at `i`.
fn block_comment_end(b: &[u8], mut i: usize) -> Result<usize, Found> {
    while i < b.len() {
        match b[i] {
            b'*' if b.get(i + 1) == Some(&b'/') => return Ok(i + 2),
            b'/' if b.get(i + 1) == Some(&b'*') => return Err(Found::Ambiguous),
            b'-' if b.get(i + 1) == Some(&b'-') => return Err(Found::Ambiguous),
            _ => i += plain_char(b, i)?,
        }
    }
    // Unterminated: the tokenizer fails too (unparseable).
    Ok(i)
}

/// The index after the line comment whose body starts at `i` (at its newline or the end).
fn line_comment_end(b: &[u8], mut i: usize) -> Result<usize, Found> {
    while i < b.len() {
        match b[i] {
            b'\n' => return Ok(i + 1),
            // PostgreSQL ends a line comment at CR, MySQL and sqlparser at LF only.
            b'\r' if b.get(i + 1) != Some(&b'\n') => return Err(Found::Ambiguous),
            b'/' if b.get(i + 1) == Some(&b'*') => return Err(Found::Ambiguous),
            _ => i += plain_char(b, i)?,
        }
    }
    Ok(i)
}

#[cfg(test)]
mod tests {
    use super::*;

    const M: Dialect = Dialect::MySql;
    const P: Dialect = Dialect::Postgres;
    const S: Dialect = Dialect::Sqlite;

    fn ok(d: Dialect, sql: &str) {
        assert_eq!(check(sql, d), None, "{d:?}: {sql:?}");
    }

    fn ambiguous(d: Dialect, sql: &str) {
        assert_eq!(
            check(sql, d),
            Some(Reason::LexicalAmbiguity),
            "{d:?}: {sql:?}"
        );
    }

    #[test]
    fn ordinary_statements_pass() {
        for d in [M, P, S] {
            ok(d, "SELECT * FROM users WHERE id = 1");
            ok(
                d,
                "SELECT 'it''s' AS x, \"col\" FROM t -- comment\nWHERE a = 'b'",
            );
            ok(d, "/* rwsplit:primary */ SELECT 1");
            ok(d, "SELECT café, 'naïve ☃' FROM t /* é */");
            ok(d, "SELECT 1\r\n  FROM t\t-- crlf\r\n");
            ok(d, "SELECT '\\\\' AS backslash");
        }
        ok(M, "SELECT * FROM t WHERE id = ? # trailing");
        ok(M, "SELECT `a``b` FROM t --");
        ok(P, "SELECT * FROM t WHERE id = $1 AND b = $12");
        ok(P, "SELECT E'a\\\\b', U&'d\\0061t', B'101', X'ff'");
    }

    #[test]
    fn executable_comments_in_every_form() {
        for sql in [
            "SELECT 1 /*! FOR UPDATE */",
            "SELECT 1 /*!50000 FOR UPDATE */",
            "SELECT 1 /*M! FOR UPDATE */",
            "SELECT 1 /*M!100600 FOR UPDATE */",
            "SELECT 1 /*m!100600 FOR UPDATE */",
            "SELECT 1 /*!99999 /* nested */ , GET_LOCK('a', 0) */",
        ] {
            assert_eq!(check(sql, M), Some(Reason::ExecutableComment), "{sql}");
        }
        // Inside a string it is text.
        ok(M, "SELECT '/*!50000 FOR UPDATE */'");
    }

    #[test]
    fn mysql_double_dash_needs_an_ascii_space() {
        ambiguous(M, "SELECT 1 --\u{00A0}x\nFOR UPDATE");
        ambiguous(M, "SELECT 1 --\u{3000}x");
        ambiguous(M, "SELECT 1--1");
        ok(M, "SELECT 1 -- x\nFROM t");
        ok(M, "SELECT 1 --\tx");
        // PostgreSQL: `--` always starts a comment, but the non-ASCII space is still flagged.
        ambiguous(P, "SELECT 1 --\u{00A0}x");
        ok(P, "SELECT 1 --x");
    }

    #[test]
    fn comment_openers_inside_comments() {
        for d in [M, P, S] {
            ambiguous(d, "SELECT 1 /* /* */ FOR UPDATE */");
            ambiguous(d, "SELECT 1 /* -- */");
            ambiguous(d, "SELECT 1 -- /* x\n");
            assert_eq!(check("SELECT 1 /* unterminated", d), None);
        }
    }

    #[test]
    fn whitespace_and_controls() {
        for d in [M, P, S] {
            for sep in [
                '\u{00A0}', '\u{3000}', '\u{2028}', '\u{0085}', '\u{200B}', '\u{FEFF}', '\u{000B}',
                '\u{000C}', '\0', '\u{7f}',
            ] {
                ambiguous(d, &format!("SELECT{sep}1"));
                ambiguous(d, &format!("SELECT 1 /*{sep}*/"));
            }
            ambiguous(d, "SELECT 1 -- x\rFOR UPDATE");
            ok(d, "SELECT '\u{00A0}\u{3000}\t\u{0b}'");
            ambiguous(d, "SELECT '\0'");
        }
    }

    #[test]
    fn backslash_readings_must_agree() {
        // NO_BACKSLASH_ESCAPES / standard_conforming_strings change where these end.
        ambiguous(M, "SELECT 'a\\' FOR UPDATE -- '");
        ambiguous(M, "SELECT \"a\\\" FOR UPDATE -- \"");
        // An `E` string reads backslashes the same under every setting.
        ok(P, "SELECT E'a\\' FOR UPDATE -- '");
        ambiguous(P, "SELECT 'a\\' FOR UPDATE -- '");
        // Unterminated under NO_BACKSLASH_ESCAPES: a syntax error there, so no other reading.
        ok(M, "SELECT 'it\\'s'");
        ok(P, "SELECT 'a\\' , 'x'");
        ok(M, "SELECT 'a\\nb', 'c\\\\'");
        ambiguous(M, "SELECT \\N");
        assert_eq!(
            check("SELECT 'unterminated", M),
            None,
            "left to the tokenizer"
        );
        ok(M, "SELECT 'a\\''");
    }

    #[test]
    fn postgres_dollars_and_operators() {
        ok(P, "SELECT $$a$$, $tag$ x $$ ' $tag$");
        ambiguous(P, "SELECT $$a");
        ambiguous(P, "SELECT $tag$ a $TAG$");
        ambiguous(P, "SELECT $é$ a $é$");
        ambiguous(P, "SELECT a$1 FROM t");
        ambiguous(P, "SELECT 1 +-- x\n1");
        ambiguous(P, "SELECT 1 @/* x */ 2");
        ambiguous(P, "SELECT `a`");
        ok(P, "SELECT 1 + 2 -- x");
    }

    #[test]
    fn never_panics_on_edges() {
        for d in [M, P, S] {
            for sql in [
                "", "'", "\"", "`", "/", "/*", "-", "--", "$", "E'", "\\", "é", "/*M", "/*M!", "[",
                "#",
            ] {
                let _ = check(sql, d);
            }
        }
    }
}
