//! The one "session ended" event (SPEC §6.7): every cause of a session's end — logout, an
//! admin, refresh-token or code reuse, a password change or reset, MFA turned on, a disabled
//! or deleted user, a deleted client, withdrawn consent — calls [`sessions_ended`] with the
//! sessions its store call ended, inside the same transaction, so what follows an end
//! (the revocation feed's entry, the back-channel logouts to deliver) commits with it or
//! not at all.

use crate::store::sessions::Ended;
use crate::store::DbConnection;

/// Acts on sessions that just ended; call it right after the store call that ended them,
/// in its transaction.
pub fn sessions_ended(
    conn: &mut DbConnection,
    ended: &[Ended],
    now: i64,
) -> crate::error::Result<()> {
    crate::revocation_feed::record_sessions(conn, ended, now)?;
    crate::backchannel::enqueue(conn, ended, now)?;
    Ok(())
}
