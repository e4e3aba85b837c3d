//! Filtering a large message off its data-path thread.
//!
//! A data-path thread serves every connection it accepted, and the kernel keeps handing it
//! new ones ([`crate::workers`], [`crate::listeners`]). Masking runs at a few hundred MiB/s
//! of CPU, so filtering a 64 MiB answer in place would hold all of those connections for a
//! fraction of a second. A message of at least [`OFF_THREAD_BYTES`] is filtered on the
//! runtime's blocking pool instead while the thread goes on serving; a smaller one is
//! filtered in place, where the hand-over (two cross-thread wake-ups, tens of
//! microseconds) would cost more than the wait it spares (about 0.6 ms of masking at
//! 256 KiB).

use std::sync::Arc;

use super::message_filter::{Applied, MessageFilter};
use crate::mask::MaskReport;

/// Messages this long or longer are filtered off the data-path thread.
pub const OFF_THREAD_BYTES: usize = 256 << 10;

/// [`MessageFilter::apply_joined`] of `payload`, on the blocking pool when it is large;
/// `payload` is handed back with the result.
pub async fn apply<P>(
    filter: &Arc<MessageFilter>,
    payload: P,
    status: u16,
    seam: Option<MaskReport>,
) -> (P, Applied)
where
    P: AsRef<[u8]> + Send + 'static,
{
    if payload.as_ref().len() < OFF_THREAD_BYTES {
        let applied = filter.apply_joined(payload.as_ref(), status, seam.as_ref());
        return (payload, applied);
    }
    let filter = Arc::clone(filter);
    let task = tokio::task::spawn_blocking(move || {
        let applied = filter.apply_joined(payload.as_ref(), status, seam.as_ref());
        (payload, applied)
    });
    match task.await {
        Ok(done) => done,
        // The filter panicked: as if it had run here.
        Err(err) if err.is_panic() => std::panic::resume_unwind(err.into_panic()),
        // Cancelled only when this thread's runtime shuts down, which drops the task
        // awaiting here as well: nothing is released.
        Err(_) => std::future::pending().await,
    }
}
