//! Every status change with its time, kept for the end of a run: the job summary's steps
//! and durations, traffic weights over time, and `--json` output.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde::Serialize;

use crate::ports::{RehearsalEvent, Reporter, StatusEvent};

#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    /// Seconds since the run started.
    pub at: f64,
    #[serde(flatten)]
    pub event: StatusEvent,
}

/// A cloneable handle: give one to the engine (through a Fanout) and keep one to read.
#[derive(Clone)]
pub struct Timeline {
    entries: Arc<Mutex<Vec<Entry>>>,
    notices: Arc<Mutex<Vec<String>>>,
    rehearsals: Arc<Mutex<Vec<RehearsalEvent>>>,
    started: Instant,
}

impl Default for Timeline {
    fn default() -> Self {
        Self {
            entries: Default::default(),
            notices: Default::default(),
            rehearsals: Default::default(),
            started: Instant::now(),
        }
    }
}

impl Timeline {
    pub fn entries(&self) -> Vec<Entry> {
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// The rollback rehearsals that passed in this run.
    pub fn rehearsals(&self) -> Vec<RehearsalEvent> {
        self.rehearsals
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    pub fn notices(&self) -> Vec<String> {
        self.notices
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

impl Reporter for Timeline {
    fn status(&self, event: &StatusEvent) {
        let at = self.started.elapsed().as_secs_f64();
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(Entry {
                at,
                event: event.clone(),
            });
    }

    fn notice(&self, message: &str) {
        self.notices
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(message.to_string());
    }

    fn rehearsed(&self, event: &RehearsalEvent) {
        self.rehearsals
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(event.clone());
    }
}
