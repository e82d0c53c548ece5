//! Exit codes: part of cutover's interface, documented in README.md and tested. This
//! module only names them; which error means which code is decided at the edge, in
//! `commands::codes`. It imports nothing from the crate, so no cycle forms around it.

use std::fmt;

/// What a run of cutover ended with, as the process exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitCode {
    /// Everything asked for happened and was verified.
    Ok = 0,
    /// The deploy failed; production traffic is on the last good release (untouched or rolled back).
    Failed = 1,
    /// Bad usage or bad configuration; nothing was changed.
    Usage = 2,
    /// A rollback failed: production may not be on a good release. Page a human.
    RollbackFailed = 3,
    /// The image build or push failed (or the registry refused the credentials); nothing
    /// was deployed and the version tag was not pushed.
    BuildFailed = 4,
    /// Another run holds the lock for this environment/service.
    LockHeld = 5,
    /// Cancelled by a signal at a safe point.
    Cancelled = 130,
}

impl ExitCode {
    pub fn code(self) -> u8 {
        self as u8
    }
}

/// An error that carries the exit code it should end the process with: for the commands
/// themselves (the edge), never for library modules, which have their own typed errors.
#[derive(Debug)]
pub struct Coded {
    pub code: ExitCode,
    pub message: String,
}

impl Coded {
    pub fn new(code: ExitCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

impl fmt::Display for Coded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Coded {}
