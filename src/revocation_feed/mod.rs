//! The revocation feed for offline verifiers (SPEC §6.7): what it records (ended sessions,
//! deny-listed access tokens, keys retired early), in the transaction of the change, and
//! how a page of it is read. The cursor lives in [`cursor`], the shared wait in [`watch`];
//! HTTP is `http::revocations`' business.

pub mod cursor;
pub mod watch;

use crate::error::{Error, Result};
use crate::store::revocations::{self as store, Live, NewRevocation, Revocation};
use crate::store::sessions::Ended;
use crate::store::DbConnection;
use crate::tokens::keyring::LEEWAY_SECS;

/// The most entries one answer holds, and the default.
pub const MAX_PAGE: i64 = 1000;

/// What an entry names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A revoked session: every token with this `sid`.
    Session,
    /// A deny-listed access token: the token with this `jti`.
    Token,
    /// A signing key retired early: every token with this `kid`.
    Key,
}

impl Kind {
    /// The `type` the feed shows, and the stored `kind`.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Session => "session",
            Kind::Token => "token",
            Kind::Key => "key",
        }
    }

    fn parse(text: &str) -> Option<Kind> {
        match text {
            "session" => Some(Kind::Session),
            "token" => Some(Kind::Token),
            "key" => Some(Kind::Key),
            _ => None,
        }
    }
}

/// One entry as a verifier sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    pub kind: Kind,
    /// The `sid`, `jti` or `kid`.
    pub id: String,
    /// Unix seconds.
    pub revoked_at: i64,
    /// Unix seconds: after this no token the entry affects can still be valid.
    pub until: i64,
}

/// A page of the feed and the position after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    pub items: Vec<Item>,
    /// The position after the last item, or the `since` given when nothing is newer.
    pub position: i64,
}

/// The one figure the reader needs from the configuration: the access-token lifetime of
/// clients without one of their own (`TESSERA_ACCESS_TOKEN_TTL`).
#[derive(Debug, Clone, Copy)]
pub struct Lifetimes {
    pub default_access_ttl: i64,
}

impl Lifetimes {
    /// Which entries are live at `now`.
    pub fn live(self, now: i64) -> Live {
        Live {
            now,
            sessions_since: now - self.default_access_ttl - LEEWAY_SECS as i64,
        }
    }

    /// The entry as the feed shows it: a session or key entry lasts the longest access-token
    /// lifetime past its revocation, the default one included.
    fn item(self, row: &Revocation) -> Option<Item> {
        let kind = Kind::parse(&row.kind)?;
        let until = match kind {
            Kind::Token => row.keep_until,
            Kind::Session | Kind::Key => row
                .keep_until
                .max(row.revoked_at + self.default_access_ttl + LEEWAY_SECS as i64),
        };
        Some(Item {
            kind,
            id: row.item_id.clone(),
            revoked_at: row.revoked_at,
            until,
        })
    }

    /// The live entries of `rows` (in order, after `position`) as a page of at most `limit`.
    pub fn page(self, rows: &[Revocation], position: i64, limit: i64, now: i64) -> Page {
        let items: Vec<(i64, Item)> = rows
            .iter()
            .filter(|row| row.seq > position)
            .filter_map(|row| self.item(row).map(|item| (row.seq, item)))
            .filter(|(_, item)| item.until >= now)
            .take(limit.max(0) as usize)
            .collect();
        Page {
            position: items.last().map_or(position, |(seq, _)| *seq),
            items: items.into_iter().map(|(_, item)| item).collect(),
        }
    }
}

/// How long after `now` a session or key entry must be kept, as far as the database knows:
/// the longest access-token lifetime a stored client has, plus the clock-skew allowance.
fn keep_for(conn: &mut DbConnection) -> Result<i64> {
    Ok(store::longest_client_access_ttl(conn)?.unwrap_or(0).max(0) + LEEWAY_SECS as i64)
}

/// Puts the sessions that just ended on the feed. Call it in the transaction that ended
/// them. A session whose last possible access token expired long ago is left out: no token
/// could still carry it.
pub fn record_sessions(conn: &mut DbConnection, ended: &[Ended], now: i64) -> Result<()> {
    if ended.is_empty() {
        return Ok(());
    }
    let keep = keep_for(conn)?;
    let entries: Vec<NewRevocation<'_>> = ended
        .iter()
        .filter(|session| session.expires_at + keep >= now)
        .map(|session| NewRevocation {
            kind: Kind::Session.as_str(),
            item_id: &session.id,
            revoked_at: now,
            keep_until: now + keep,
        })
        .collect();
    Ok(store::append(conn, &entries)?)
}

/// Puts a deny-listed access token on the feed until `keep_until` (its `exp` plus the
/// clock-skew allowance). Call it in the transaction that deny-lists it.
pub fn record_token(conn: &mut DbConnection, jti: &str, keep_until: i64, now: i64) -> Result<()> {
    Ok(store::append(
        conn,
        &[NewRevocation {
            kind: Kind::Token.as_str(),
            item_id: jti,
            revoked_at: now,
            keep_until,
        }],
    )?)
}

/// Puts a signing key retired early on the feed. Call it in the transaction that retires it.
pub fn record_key(conn: &mut DbConnection, kid: &str, now: i64) -> Result<()> {
    let keep = keep_for(conn)?;
    Ok(store::append(
        conn,
        &[NewRevocation {
            kind: Kind::Key.as_str(),
            item_id: kid,
            revoked_at: now,
            keep_until: now + keep,
        }],
    )?)
}

/// A page of live entries after `since` (a position this feed handed out), or from the
/// start. A position past the last one ever handed out is refused: it belongs to another
/// database.
pub fn read(
    conn: &mut DbConnection,
    lifetimes: Lifetimes,
    since: Option<i64>,
    limit: i64,
    now: i64,
) -> Result<Page> {
    let head = store::head(conn)?;
    if since.is_some_and(|since| since > head) {
        return Err(Error::InvalidRequest(
            "`since` is not a cursor of this feed".into(),
        ));
    }
    let position = since.unwrap_or(0);
    let rows = store::after(conn, position, Some(lifetimes.live(now)), limit)?;
    let mut page = lifetimes.page(&rows, position, limit, now);
    if since.is_none() && page.items.is_empty() {
        // Everything up to the head (read first, so committed) has left the feed.
        page.position = head;
    }
    Ok(page)
}

/// Deletes the entries that have left the feed.
pub fn purge(conn: &mut DbConnection, lifetimes: Lifetimes, now: i64) -> Result<usize> {
    Ok(store::purge(conn, lifetimes.live(now))?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(seq: i64, kind: &str, revoked_at: i64, keep_until: i64) -> Revocation {
        Revocation {
            seq,
            kind: kind.into(),
            item_id: format!("id{seq}"),
            revoked_at,
            keep_until,
        }
    }

    const LIFETIMES: Lifetimes = Lifetimes {
        default_access_ttl: 900,
    };

    #[test]
    fn a_session_entry_lasts_the_default_lifetime_when_no_client_sets_a_longer_one() {
        let page = LIFETIMES.page(&[row(1, "session", 1000, 1030)], 0, 10, 1000);
        assert_eq!(page.items[0].until, 1000 + 900 + 30);
        assert_eq!(page.position, 1);
    }

    #[test]
    fn a_token_entry_lasts_until_its_token_expires() {
        let page = LIFETIMES.page(&[row(1, "token", 1000, 1200)], 0, 10, 1000);
        assert_eq!(page.items[0].until, 1200);
    }

    #[test]
    fn expired_entries_are_left_out_and_the_position_stays() {
        let page = LIFETIMES.page(&[row(3, "token", 100, 200)], 2, 10, 1000);
        assert!(page.items.is_empty());
        assert_eq!(page.position, 2);
    }

    #[test]
    fn a_page_holds_at_most_the_limit_and_ends_at_its_last_item() {
        let rows: Vec<_> = (1..=5).map(|i| row(i, "key", 1000, 2000)).collect();
        let page = LIFETIMES.page(&rows, 1, 2, 1000);
        assert_eq!(
            page.items.iter().map(|i| i.id.as_str()).collect::<Vec<_>>(),
            ["id2", "id3"]
        );
        assert_eq!(page.position, 3);
    }
}
