//! The human timeline on stderr: one line per status change, readable by someone who is
//! not an engineer (seed 001), e.g.
//!
//!     +00:42  Validating        v1.1.0 on green   probes 3/3 passed

use std::io::Write;
use std::sync::Mutex;
use std::time::Instant;

use crate::ports::{Reporter, StatusEvent};

pub struct Console {
    out: Mutex<Box<dyn Write + Send>>,
    started: Instant,
}

impl Console {
    pub fn stderr() -> Self {
        Self::new(Box::new(std::io::stderr()))
    }

    pub fn new(out: Box<dyn Write + Send>) -> Self {
        Self {
            out: Mutex::new(out),
            started: Instant::now(),
        }
    }

    fn line(&self, text: &str) {
        let elapsed = self.started.elapsed().as_secs();
        let mut out = self
            .out
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // A closed stderr must not fail the deploy.
        let _ = writeln!(out, "+{:02}:{:02}  {text}", elapsed / 60, elapsed % 60);
    }
}

impl Reporter for Console {
    fn status(&self, event: &StatusEvent) {
        let what = match (&event.version, event.slot) {
            (Some(v), Some(s)) => format!("{v} on {s}"),
            (Some(v), None) => v.to_string(),
            (None, Some(s)) => s.to_string(),
            (None, None) => String::new(),
        };
        self.line(&format!(
            "{:<17} {what:<18} {}",
            event.status.to_string(),
            event.detail
        ));
    }

    fn notice(&self, message: &str) {
        self.line(&format!("{:<17} {message}", "note"));
    }
}
