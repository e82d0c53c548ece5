//! What can end an engine command early. `commands::codes` maps each to its exit code.

use crate::ports::{PortError, Slot};
use crate::version::Version;

#[derive(Debug, Clone, thiserror::Error)]
pub enum EngineError {
    #[error(
        "the deploy lock is held by {holder} (taken {age_secs}s ago, expires in {expires_in_secs}s); \
         wait for that run, or run `cutover unlock` if it is dead"
    )]
    LockHeld {
        holder: String,
        age_secs: u64,
        expires_in_secs: u64,
    },
    #[error("lost the deploy lock ({detail}); stopped before the next write")]
    LockLost { detail: String },
    #[error(
        "refusing to promote {asked}: {}; promote exactly the staged version or stage {asked} first",
        staged.as_ref().map_or("nothing is staged".to_string(), |v| format!("the staged release is {v}"))
    )]
    VersionMismatch {
        staged: Option<Version>,
        asked: Version,
    },
    #[error("{0}")]
    Usage(String),
    /// The AWS resources are not wired as service.toml says: refused before any write.
    #[error("wiring: {0}")]
    Miswired(String),
    /// Production traffic was never moved (or is back): the last good release serves.
    #[error("{status_reached} failed: {reason}")]
    Failed {
        status_reached: String,
        reason: String,
    },
    /// A shift failed and traffic is back on the last good release (read back).
    #[error("rolled back to {slot}: {reason}")]
    RolledBack { slot: Slot, reason: String },
    #[error("ROLLBACK FAILED, production may not be on a good release (page a human): {reason}")]
    RollbackFailed { reason: String },
    #[error("cancelled: {detail}")]
    Cancelled { detail: String },
    #[error("{what}: {source}")]
    Port {
        what: String,
        #[source]
        source: PortError,
    },
}

impl EngineError {
    pub(crate) fn failed(status: impl ToString, reason: impl Into<String>) -> Self {
        EngineError::Failed {
            status_reached: status.to_string(),
            reason: reason.into(),
        }
    }
}
