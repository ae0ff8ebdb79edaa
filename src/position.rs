//! Replication positions and the portable [`CausalToken`].
//!
//! A position says "everything up to here": a MariaDB GTID list (per replication domain, the
//! highest sequence number), a MySQL GTID set, or a PostgreSQL WAL LSN. A replica at or past a
//! position has applied every write that produced it.
//!
//! Layer: plain types (above `error` only): what backends capture and wait for, what sessions carry.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

use crate::error::Error;

/// A replication position.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Position {
    /// MariaDB GTIDs: for each replication domain, the (server id, sequence number) of the
    /// highest GTID.
    MariaDb(BTreeMap<u32, (u32, u64)>),
    /// A MySQL GTID set (`uuid:1-42,...`), compared by the server itself.
    MySql(String),
    /// A PostgreSQL WAL location, without its timeline (tokens of earlier versions, and
    /// standbys whose timeline is not known): never compared with a [`Position::PgLsn`].
    Lsn(u64),
    /// A PostgreSQL WAL location on a timeline. Locations compare only on the same timeline:
    /// after a promotion, a standby still on the old timeline can be past a location of the
    /// new one without having its writes, so such a read goes to the primary.
    PgLsn {
        /// The timeline (`pg_walfile_name`'s first 8 hex digits on the primary; the WAL
        /// receiver's `received_tli` on a standby).
        timeline: u32,
        /// The WAL location.
        lsn: u64,
    },
}

impl Position {
    /// Parses MariaDB's `@@gtid_binlog_pos` / `@@gtid_slave_pos` / `@@last_gtid` text
    /// (`0-1-42,1-2-7`). Empty text is `None`.
    pub fn parse_mariadb(text: &str) -> Option<Position> {
        let mut map = BTreeMap::new();
        for gtid in text.split(',').map(str::trim).filter(|g| !g.is_empty()) {
            let mut parts = gtid.split('-');
            let domain = parts.next()?.parse().ok()?;
            let server = parts.next()?.parse().ok()?;
            let seq = parts.next()?.parse().ok()?;
            if parts.next().is_some() {
                return None;
            }
            map.insert(domain, (server, seq));
        }
        (!map.is_empty()).then_some(Position::MariaDb(map))
    }

    /// Parses PostgreSQL's `pg_lsn` text (`16/B374D848`).
    pub fn parse_lsn(text: &str) -> Option<Position> {
        let (hi, lo) = text.trim().split_once('/')?;
        let hi = u64::from_str_radix(hi, 16).ok()?;
        let lo = u64::from_str_radix(lo, 16).ok()?;
        (hi <= u64::from(u32::MAX) && lo <= u64::from(u32::MAX))
            .then_some(Position::Lsn((hi << 32) | lo))
    }

    /// The text form the server understands (`0-1-42`, a GTID set, or `16/B374D848`).
    pub fn server_text(&self) -> String {
        match self {
            Position::MariaDb(map) => map
                .iter()
                .map(|(d, (s, n))| format!("{d}-{s}-{n}"))
                .collect::<Vec<_>>()
                .join(","),
            Position::MySql(set) => set.clone(),
            Position::Lsn(lsn) | Position::PgLsn { lsn, .. } => {
                format!("{:X}/{:X}", lsn >> 32, lsn & 0xFFFF_FFFF)
            }
        }
    }

    /// Can these two positions not be compared, by this process or by the server? (PostgreSQL
    /// locations on different or unknown timelines.) A causal read then goes to the primary:
    /// waiting on the replica would compare WAL locations of different histories.
    pub(crate) fn incomparable(&self, other: &Position) -> bool {
        match (self, other) {
            (Position::PgLsn { timeline: a, .. }, Position::PgLsn { timeline: b, .. }) => a != b,
            (Position::Lsn(_), Position::PgLsn { .. })
            | (Position::PgLsn { .. }, Position::Lsn(_)) => true,
            _ => false,
        }
    }

    /// Does `self` (a replica's applied position) include everything in `required`?
    /// `None` when only the server can tell (MySQL GTID sets).
    pub fn covers(&self, required: &Position) -> Option<bool> {
        match (self, required) {
            (Position::MariaDb(have), Position::MariaDb(need)) => Some(
                need.iter()
                    .all(|(domain, (_, seq))| have.get(domain).is_some_and(|(_, s)| s >= seq)),
            ),
            (Position::Lsn(have), Position::Lsn(need)) => Some(have >= need),
            (
                Position::PgLsn {
                    timeline: a,
                    lsn: have,
                },
                Position::PgLsn {
                    timeline: b,
                    lsn: need,
                },
            ) if a == b => Some(have >= need),
            _ => None,
        }
    }

    /// A number that grows with the position, to prefer the most caught-up replica.
    /// `None` when positions of this kind do not order (MySQL GTID sets).
    pub(crate) fn rank(&self) -> Option<u128> {
        match self {
            Position::MariaDb(map) => Some(map.values().map(|(_, seq)| u128::from(*seq)).sum()),
            Position::Lsn(lsn) => Some(u128::from(*lsn)),
            Position::PgLsn { timeline, lsn } => {
                Some((u128::from(*timeline) << 64) | u128::from(*lsn))
            }
            Position::MySql(_) => None,
        }
    }

    /// The least position that covers both (per-domain maximum, larger LSN, set union).
    pub fn merge(&self, other: &Position) -> Position {
        match (self, other) {
            (Position::MariaDb(a), Position::MariaDb(b)) => {
                let mut out = a.clone();
                for (domain, (server, seq)) in b {
                    let e = out.entry(*domain).or_insert((*server, *seq));
                    if *seq > e.1 {
                        *e = (*server, *seq);
                    }
                }
                Position::MariaDb(out)
            }
            (Position::Lsn(a), Position::Lsn(b)) => Position::Lsn(*a.max(b)),
            // A later timeline continues the history of an earlier one.
            (
                Position::PgLsn {
                    timeline: a,
                    lsn: x,
                },
                Position::PgLsn {
                    timeline: b,
                    lsn: y,
                },
            ) => {
                let (timeline, lsn) = (*a, *x).max((*b, *y));
                Position::PgLsn { timeline, lsn }
            }
            (Position::MySql(a), Position::MySql(b)) if a.is_empty() => Position::MySql(b.clone()),
            (Position::MySql(a), Position::MySql(b)) if b.is_empty() || a == b => {
                Position::MySql(a.clone())
            }
            (Position::MySql(a), Position::MySql(b)) => Position::MySql(format!("{a},{b}")),
            // Different kinds cannot come from one cluster; keep the newer one.
            (_, newer) => newer.clone(),
        }
    }
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.server_text())
    }
}

const TOKEN_VERSION: u8 = 1;
/// The version byte of a token that carries a MAC (see [`TokenKey`]).
const SIGNED_VERSION: u8 = 2;
/// Bytes of HMAC-SHA256 a signed token carries (128 bits: forging one takes 2^128 guesses).
const TAG_LEN: usize = 16;

/// A secret that authenticates causal tokens (HMAC-SHA256 over the cluster and the
/// position, truncated to 128 bits). Set it with `PoolOptions::token_key`, the same key on
/// every service that shares tokens; a token that was tampered with, truncated, unsigned, or
/// signed with another key is then refused with [`Error::TokenNotAuthentic`].
///
/// Without a key a token is a plain encoding: a client can edit the position it carries, which
/// can only make its own reads wait and then go to the primary (never read stale data), but
/// lets any client push its reads onto the primary at will.
///
/// `Debug` never shows the key.
#[derive(Clone)]
pub struct TokenKey(std::sync::Arc<[u8]>);

impl TokenKey {
    /// Shortest key accepted, in bytes.
    pub const MIN_LEN: usize = 16;

    /// A key from secret bytes (at least [`TokenKey::MIN_LEN`]; 32 random bytes are
    /// best).
    pub fn new(secret: impl AsRef<[u8]>) -> Result<Self, Error> {
        let secret = secret.as_ref();
        if secret.len() < Self::MIN_LEN {
            return Err(Error::InvalidOption {
                option: "token_key",
                why: "use a secret of at least 16 bytes (32 random bytes are best)",
            });
        }
        Ok(TokenKey(secret.into()))
    }

    fn tag(&self, signed: &[u8]) -> [u8; TAG_LEN] {
        use hmac::{KeyInit, Mac};
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&self.0)
            .expect("HMAC takes keys of any length");
        mac.update(signed);
        let full = mac.finalize().into_bytes();
        let mut tag = [0; TAG_LEN];
        tag.copy_from_slice(&full[..TAG_LEN]);
        tag
    }

    fn verify(&self, signed: &[u8], tag: &[u8]) -> bool {
        use hmac::{KeyInit, Mac};
        let Ok(mut mac) = hmac::Hmac::<sha2::Sha256>::new_from_slice(&self.0) else {
            return false;
        };
        mac.update(signed);
        mac.verify_truncated_left(tag).is_ok()
    }
}

impl fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenKey(<redacted>)")
    }
}
const MAX_TOKEN_LEN: usize = 4096;

/// A session's consistency token: the cluster it belongs to and the highest position its
/// writes produced. Its `Display` form is compact and URL- and cookie-safe (base64url), and
/// parses back with `FromStr`, so a web application can carry it in a cookie or header and
/// another service can continue the session ([`crate::RoutingPool::resume`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CausalToken {
    pub(crate) cluster: u64,
    pub(crate) position: Option<Position>,
    /// The MAC of a signed token, as parsed or as made by [`CausalToken::signed`].
    pub(crate) tag: Option<[u8; TAG_LEN]>,
}

impl CausalToken {
    /// The cluster id (a hash of the configured cluster name, or of the backend and the
    /// cluster's identity: see [`crate::RoutingPool::cluster_id`]).
    pub fn cluster(&self) -> u64 {
        self.cluster
    }

    /// The position, if the session wrote anything.
    pub fn position(&self) -> Option<&Position> {
        self.position.as_ref()
    }

    /// Merges tokens of the same cluster (the highest position of each).
    pub fn merge(&self, other: &CausalToken) -> Result<CausalToken, Error> {
        if self.cluster != other.cluster {
            return Err(Error::ForeignToken {
                token: other.cluster,
                pool: self.cluster,
            });
        }
        let position = match (&self.position, &other.position) {
            (Some(a), Some(b)) => Some(a.merge(b)),
            (a, b) => a.clone().or_else(|| b.clone()),
        };
        Ok(CausalToken {
            cluster: self.cluster,
            position,
            tag: None,
        })
    }

    /// Is this token signed (it carries a MAC, checked by a pool that has the key)?
    pub fn is_signed(&self) -> bool {
        self.tag.is_some()
    }

    /// This token signed with `key`.
    pub(crate) fn signed(mut self, key: &TokenKey) -> Self {
        self.tag = Some(key.tag(&self.encode(SIGNED_VERSION)));
        self
    }

    /// Checks the token's MAC against `key`.
    pub(crate) fn authenticate(&self, key: &TokenKey) -> Result<(), Error> {
        let tag = self
            .tag
            .ok_or(Error::TokenNotAuthentic("the token is not signed"))?;
        if key.verify(&self.encode(SIGNED_VERSION), &tag) {
            Ok(())
        } else {
            Err(Error::TokenNotAuthentic(
                "the signature does not match: tampered with, or signed with another key",
            ))
        }
    }

    /// The token's bytes as sent: the version, the payload, and the tag when signed.
    fn to_bytes(&self) -> Vec<u8> {
        match &self.tag {
            None => self.encode(TOKEN_VERSION),
            Some(tag) => {
                let mut out = self.encode(SIGNED_VERSION);
                out.extend_from_slice(tag);
                out
            }
        }
    }

    fn encode(&self, version: u8) -> Vec<u8> {
        let mut out = vec![version];
        out.extend_from_slice(&self.cluster.to_be_bytes());
        match &self.position {
            None => out.push(0),
            Some(Position::MariaDb(map)) => {
                out.push(1);
                out.push(map.len().min(255) as u8);
                for (d, (s, n)) in map.iter().take(255) {
                    out.extend_from_slice(&d.to_be_bytes());
                    out.extend_from_slice(&s.to_be_bytes());
                    out.extend_from_slice(&n.to_be_bytes());
                }
            }
            Some(Position::MySql(set)) => {
                out.push(2);
                out.extend_from_slice(set.as_bytes());
            }
            Some(Position::Lsn(lsn)) => {
                out.push(3);
                out.extend_from_slice(&lsn.to_be_bytes());
            }
            Some(Position::PgLsn { timeline, lsn }) => {
                out.push(4);
                out.extend_from_slice(&timeline.to_be_bytes());
                out.extend_from_slice(&lsn.to_be_bytes());
            }
        }
        out
    }

    fn decode(bytes: &[u8]) -> Result<CausalToken, Error> {
        let bad = Error::MalformedToken;
        let (&version, rest) = bytes.split_first().ok_or(bad("empty"))?;
        let (rest, tag) = match version {
            TOKEN_VERSION => (rest, None),
            SIGNED_VERSION => {
                let at = rest.len().checked_sub(TAG_LEN).ok_or(bad("truncated"))?;
                let (rest, tag) = rest.split_at(at);
                let mut t = [0; TAG_LEN];
                t.copy_from_slice(tag);
                (rest, Some(t))
            }
            _ => return Err(bad("unknown version")),
        };
        let (cluster, rest) = take::<8>(rest).ok_or(bad("truncated"))?;
        let cluster = u64::from_be_bytes(cluster);
        let (&kind, rest) = rest.split_first().ok_or(bad("truncated"))?;
        let position = match kind {
            0 if rest.is_empty() => None,
            1 => {
                let (&n, mut rest) = rest.split_first().ok_or(bad("truncated"))?;
                let mut map = BTreeMap::new();
                for _ in 0..n {
                    let (d, r) = take::<4>(rest).ok_or(bad("truncated"))?;
                    let (s, r) = take::<4>(r).ok_or(bad("truncated"))?;
                    let (q, r) = take::<8>(r).ok_or(bad("truncated"))?;
                    map.insert(
                        u32::from_be_bytes(d),
                        (u32::from_be_bytes(s), u64::from_be_bytes(q)),
                    );
                    rest = r;
                }
                if !rest.is_empty() || map.is_empty() {
                    return Err(bad("trailing or missing data"));
                }
                Some(Position::MariaDb(map))
            }
            2 => {
                let set = std::str::from_utf8(rest).map_err(|_| bad("not UTF-8"))?;
                let ok = !set.is_empty()
                    && set
                        .chars()
                        .all(|c| c.is_ascii_hexdigit() || ":-,".contains(c));
                if !ok {
                    return Err(bad("not a GTID set"));
                }
                Some(Position::MySql(set.to_string()))
            }
            3 => {
                let (lsn, rest) = take::<8>(rest).ok_or(bad("truncated"))?;
                if !rest.is_empty() {
                    return Err(bad("trailing data"));
                }
                Some(Position::Lsn(u64::from_be_bytes(lsn)))
            }
            4 => {
                let (timeline, rest) = take::<4>(rest).ok_or(bad("truncated"))?;
                let (lsn, rest) = take::<8>(rest).ok_or(bad("truncated"))?;
                if !rest.is_empty() {
                    return Err(bad("trailing data"));
                }
                Some(Position::PgLsn {
                    timeline: u32::from_be_bytes(timeline),
                    lsn: u64::from_be_bytes(lsn),
                })
            }
            _ => return Err(bad("unknown position kind")),
        };
        Ok(CausalToken {
            cluster,
            position,
            tag,
        })
    }
}

fn take<const N: usize>(bytes: &[u8]) -> Option<([u8; N], &[u8])> {
    let head = bytes.get(..N)?;
    Some((head.try_into().ok()?, &bytes[N..]))
}

impl fmt::Display for CausalToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&URL_SAFE_NO_PAD.encode(self.to_bytes()))
    }
}

impl FromStr for CausalToken {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.len() > MAX_TOKEN_LEN {
            return Err(Error::MalformedToken("too long"));
        }
        let bytes = URL_SAFE_NO_PAD
            .decode(s.trim())
            .map_err(|_| Error::MalformedToken("not base64url"))?;
        CausalToken::decode(&bytes)
    }
}

/// As its base64url string (the `Display` form), so a token in JSON is the same text as in a
/// cookie or header.
#[cfg(feature = "serde")]
impl serde::Serialize for CausalToken {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// From its base64url string; a malformed token or one of an unknown version is an error
/// (a token from another cluster is refused later, by [`crate::RoutingPool::resume`]).
#[cfg(feature = "serde")]
impl<'de> serde::Deserialize<'de> for CausalToken {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// A stable 64-bit FNV-1a hash, for cluster ids that every service computes alike.
pub(crate) fn cluster_id(parts: &[&str]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for b in part.bytes().chain(std::iter::once(0)) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(feature = "serde")]
    #[test]
    fn tokens_serialize_as_their_string_and_refuse_garbage() {
        let token = CausalToken {
            cluster: cluster_id(&["mysql", "db1", "3306", "app"]),
            position: Position::parse_mariadb("0-1-42,1-2-7"),
            tag: None,
        };
        let json = serde_json::to_string(&token).unwrap();
        assert_eq!(json, format!("\"{token}\""));
        let back: CausalToken = serde_json::from_str(&json).unwrap();
        assert_eq!(back, token);
        for bad in ["\"not base64!\"", "\"AAAA\"", "42", "null"] {
            let err = serde_json::from_str::<CausalToken>(bad);
            assert!(err.is_err(), "{bad} parsed as {err:?}");
        }
        let long = format!("\"{}\"", "A".repeat(MAX_TOKEN_LEN + 1));
        let err = serde_json::from_str::<CausalToken>(&long).unwrap_err();
        assert!(err.to_string().contains("too long"), "{err}");
    }

    #[test]
    fn mariadb_positions_parse_compare_and_merge() {
        let a = Position::parse_mariadb("0-1-42,1-2-7").unwrap();
        let b = Position::parse_mariadb("0-1-40").unwrap();
        assert_eq!(a.covers(&b), Some(true));
        assert_eq!(b.covers(&a), Some(false));
        assert_eq!(a.server_text(), "0-1-42,1-2-7");
        let c = Position::parse_mariadb("0-3-50").unwrap();
        assert_eq!(a.merge(&c).server_text(), "0-3-50,1-2-7");
        assert_eq!(Position::parse_mariadb(""), None);
        assert_eq!(Position::parse_mariadb("0-1"), None);
        assert_eq!(Position::parse_mariadb("x-1-2"), None);
    }

    #[test]
    fn lsns_compare_only_on_one_timeline() {
        let at = |timeline, lsn| Position::PgLsn { timeline, lsn };
        assert_eq!(at(2, 10).covers(&at(2, 9)), Some(true));
        assert_eq!(at(2, 8).covers(&at(2, 9)), Some(false));
        // A standby still on timeline 1 past a location of timeline 2 lacks its writes.
        assert_eq!(at(1, 100).covers(&at(2, 9)), None);
        assert!(at(1, 100).incomparable(&at(2, 9)));
        assert!(Position::Lsn(100).incomparable(&at(2, 9)), "no timeline");
        assert_eq!(Position::Lsn(100).covers(&at(2, 9)), None);
        assert!(!at(2, 1).incomparable(&at(2, 9)));
        assert_eq!(at(1, 100).merge(&at(2, 9)), at(2, 9), "the later timeline");
        assert_eq!(at(2, 9).merge(&at(2, 12)), at(2, 12));
        assert_eq!(at(2, 9).server_text(), "0/9");
        let token = CausalToken {
            cluster: 7,
            position: Some(at(3, 0x16B3748)),
            tag: None,
        };
        assert_eq!(token.to_string().parse::<CausalToken>().unwrap(), token);
    }

    #[test]
    fn lsn_round_trips() {
        let p = Position::parse_lsn("16/B374D848").unwrap();
        assert_eq!(p.server_text(), "16/B374D848");
        assert_eq!(Position::parse_lsn("0/1").unwrap().covers(&p), Some(false));
        assert_eq!(Position::parse_lsn("nope"), None);
    }

    #[test]
    fn tokens_round_trip_merge_and_reject_garbage() {
        for position in [
            None,
            Position::parse_mariadb("0-1-42,5-2-7"),
            Some(Position::MySql(
                "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5".into(),
            )),
            Position::parse_lsn("0/16B3748"),
        ] {
            let t = CausalToken {
                cluster: 7,
                position,
                tag: None,
            };
            let s = t.to_string();
            assert!(
                s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
                "{s}"
            );
            assert_eq!(s.parse::<CausalToken>().unwrap(), t);
        }
        let a = CausalToken {
            cluster: 1,
            position: Position::parse_mariadb("0-1-5"),
            tag: None,
        };
        let b = CausalToken {
            cluster: 1,
            position: Position::parse_mariadb("0-1-9"),
            tag: None,
        };
        assert_eq!(a.merge(&b).unwrap(), b);
        let foreign = CausalToken {
            cluster: 2,
            position: None,
            tag: None,
        };
        assert!(matches!(a.merge(&foreign), Err(Error::ForeignToken { .. })));
        for bad in ["", "!!!", "AAAA", "AQAAAAAAAAAHCQ", &"A".repeat(5000)] {
            assert!(
                matches!(bad.parse::<CausalToken>(), Err(Error::MalformedToken(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn signed_tokens_verify_and_refuse_tampering_truncation_and_other_keys() {
        let key = TokenKey::new("0123456789abcdef-key").unwrap();
        let other = TokenKey::new("another key, also long").unwrap();
        assert!(TokenKey::new("short").is_err());
        assert_eq!(format!("{key:?}"), "TokenKey(<redacted>)");
        let token = CausalToken {
            cluster: 42,
            position: Position::parse_mariadb("0-1-42"),
            tag: None,
        };
        assert!(token.authenticate(&key).is_err(), "unsigned");
        let signed = token.clone().signed(&key);
        assert!(signed.is_signed());
        let text = signed.to_string();
        let parsed: CausalToken = text.parse().unwrap();
        assert_eq!(parsed, signed);
        assert!(parsed.authenticate(&key).is_ok());
        assert!(parsed.authenticate(&other).is_err(), "another key");
        let bytes = URL_SAFE_NO_PAD.decode(&text).unwrap();
        for i in 1..bytes.len() {
            let mut forged = bytes.clone();
            forged[i] ^= 0x80;
            let forged = URL_SAFE_NO_PAD.encode(&forged);
            let refused = match forged.parse::<CausalToken>() {
                Err(_) => true,
                Ok(t) => t.authenticate(&key).is_err(),
            };
            assert!(refused, "byte {i} flipped");
        }
        let truncated = URL_SAFE_NO_PAD.encode(&bytes[..bytes.len() - 1]);
        let refused = match truncated.parse::<CausalToken>() {
            Err(_) => true,
            Ok(t) => t.authenticate(&key).is_err(),
        };
        assert!(refused, "truncated");
        // An unsigned token of the same position is refused by a keyed pool.
        let plain: CausalToken = token.to_string().parse().unwrap();
        assert!(plain.authenticate(&key).is_err());
    }
}
