//! The one "session ended" event (SPEC §6.7): every cause of a session's end — logout, an
//! admin, refresh-token or code reuse, a password change or reset, MFA turned on, a disabled
//! or deleted user, a deleted client, withdrawn consent — calls [`sessions_ended`] with the
//! sessions its store call ended, inside the same transaction, so what follows an end
//! (the revocation feed's entry, the back-channel logouts to deliver) commits with it or
//! not at all. It is also where ended sessions are counted (`tessera_revocations_total`), so
//! that no cause goes uncounted: the counter moves before the commit, so a transaction that
//! fails after this call (the database lost mid-way) may count sessions that did not end.

use crate::metrics::Metrics;
use crate::store::sessions::Ended;
use crate::store::DbConnection;

/// Acts on sessions that just ended; call it right after the store call that ended them,
/// in its transaction.
pub fn sessions_ended(
    conn: &mut DbConnection,
    metrics: &Metrics,
    ended: &[Ended],
    now: i64,
) -> crate::error::Result<()> {
    metrics.revocations.inc_by(ended.len() as u64);
    crate::revocation_feed::record_sessions(conn, ended, now)?;
    crate::backchannel::enqueue(conn, ended, now)?;
    Ok(())
}
