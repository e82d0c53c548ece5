//! Signals: the first SIGINT/SIGTERM asks for a safe stop, the second stops at once.

use std::io::Write as _;

use crate::engine::CancelHandle;
use crate::exit::ExitCode;

/// SIGINT or SIGTERM (what a cancelled GitHub run sends) asks the engine to stop at the
/// next safe point; it never leaves traffic split. A second signal (the runner's SIGTERM
/// 7.5 s after its SIGINT, or a second Ctrl-C) means the safe stop is not coming — AWS is
/// not answering — so cutover says what may be left behind and exits before the kill.
pub fn spawn_signal_watch(handle: CancelHandle) {
    tokio::spawn(async move {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let (Ok(mut int), Ok(mut term)) = (
                signal(SignalKind::interrupt()),
                signal(SignalKind::terminate()),
            ) else {
                return;
            };
            let mut next = async || {
                tokio::select! {
                    _ = int.recv() => {}
                    _ = term.recv() => {}
                }
            };
            next().await;
            tracing::warn!("cancel requested: stopping at the next safe point");
            handle.cancel();
            next().await;
            // Straight to stderr: the process ends right after, before any log flush.
            let _ = writeln!(
                std::io::stderr().lock(),
                "error: a second signal before the safe stop finished: stopping now. \
                 Production traffic may be split and the lock is held until it expires; \
                 run `cutover status`, then `cutover rollback` (or `cutover unlock`)."
            );
            std::process::exit(i32::from(ExitCode::RollbackFailed.code()));
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
            tracing::warn!("cancel requested: stopping at the next safe point");
            handle.cancel();
        }
    });
}
