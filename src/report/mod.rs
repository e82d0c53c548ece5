//! Where status changes go: the console timeline, and (in a GitHub Action run) GitHub
//! deployments, the job summary and Slack. Reporters never fail a run: a reporting error
//! is logged and the deploy goes on.

pub mod console;
pub mod diff;
pub mod github;
mod queue;
pub mod release_notes;
pub mod slack;
pub mod summary;
pub mod timeline;
pub mod workflow;

use crate::ports::{RehearsalEvent, Reporter, StatusEvent};

/// Several reporters as one.
#[derive(Default)]
pub struct Fanout {
    reporters: Vec<Box<dyn Reporter + Send + Sync>>,
}

impl Fanout {
    pub fn with(mut self, reporter: impl Reporter + Send + Sync + 'static) -> Self {
        self.reporters.push(Box::new(reporter));
        self
    }
}

impl Reporter for Fanout {
    fn status(&self, event: &StatusEvent) {
        for r in &self.reporters {
            r.status(event);
        }
    }

    fn notice(&self, message: &str) {
        for r in &self.reporters {
            r.notice(message);
        }
    }

    fn rehearsed(&self, event: &RehearsalEvent) {
        for r in &self.reporters {
            r.rehearsed(event);
        }
    }
}
