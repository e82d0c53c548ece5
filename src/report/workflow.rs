//! GitHub Actions workflow commands: a collapsible `::group::` per phase of a run, and an
//! `::error::` annotation naming the step that failed, so the run page shows where a
//! release stopped without opening the log.
//! <https://docs.github.com/actions/reference/workflow-commands-for-github-actions>

use std::io::Write;
use std::sync::Mutex;

use crate::ports::{Reporter, Status, StatusEvent};

pub struct WorkflowCommands {
    state: Mutex<State>,
    heading: String,
}

struct State {
    out: Box<dyn Write + Send>,
    phase: Option<&'static str>,
}

impl WorkflowCommands {
    /// `heading` names the environment/service, e.g. `production/web`.
    pub fn new(out: Box<dyn Write + Send>, heading: impl Into<String>) -> Self {
        Self {
            state: Mutex::new(State { out, phase: None }),
            heading: heading.into(),
        }
    }

    fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut state)
    }

    /// Open the group for `phase` (closing the one before) unless it is already open.
    pub fn group(&self, phase: &'static str) {
        let heading = &self.heading;
        self.with(|s| {
            if s.phase == Some(phase) {
                return;
            }
            if s.phase.is_some() {
                let _ = writeln!(s.out, "::endgroup::");
            }
            let _ = writeln!(s.out, "::group::{heading}: {phase}");
            s.phase = Some(phase);
        });
    }

    /// Close the open group, if any; call at the end of a run.
    pub fn end(&self) {
        self.with(|s| {
            if s.phase.take().is_some() {
                let _ = writeln!(s.out, "::endgroup::");
            }
        });
    }

    /// An annotation on the run page: `level` is error, warning or notice.
    pub fn annotate(&self, level: &str, title: &str, message: &str) {
        self.end();
        self.with(|s| {
            let _ = writeln!(
                s.out,
                "::{level} title={}::{}",
                escape_property(title),
                escape_data(message)
            );
        });
    }
}

/// The phase a status belongs to; the log is folded by phase, not by every status.
fn phase_of(status: Status) -> &'static str {
    match status {
        Status::Pending => "start",
        Status::Building | Status::Pushing => "build",
        Status::Staging => "stage",
        Status::Validating => "validate",
        Status::AwaitingApproval => "hold for approval",
        Status::Shifting(_) | Status::Baking | Status::Promoted => "shift traffic",
        Status::RollingBack | Status::RolledBack | Status::RollbackFailed => "roll back",
        Status::Failed => "failed",
    }
}

impl Reporter for WorkflowCommands {
    fn status(&self, event: &StatusEvent) {
        let what = event
            .version
            .as_ref()
            .map(|v| format!(" {v}"))
            .unwrap_or_default();
        match event.status {
            Status::Failed | Status::RollbackFailed => self.annotate(
                "error",
                &format!("{}{what}: {}", self.heading, event.status),
                &event.detail,
            ),
            Status::RolledBack => self.annotate(
                "warning",
                &format!("{}{what}: rolled back", self.heading),
                &event.detail,
            ),
            other => self.group(phase_of(other)),
        }
    }

    fn notice(&self, _message: &str) {}
}

/// Workflow-command message escaping (the runner's `EscapeData`).
pub fn escape_data(text: &str) -> String {
    text.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// Property escaping (the runner's `EscapeProperty`): also `:` and `,`.
pub fn escape_property(text: &str) -> String {
    escape_data(text).replace(':', "%3A").replace(',', "%2C")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<Vec<u8>>>);

    impl Write for Sink {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().write(buf)
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn event(status: Status, detail: &str) -> StatusEvent {
        StatusEvent {
            status,
            version: Some(crate::version::Version::parse("v1.2.0").unwrap()),
            slot: None,
            detail: detail.into(),
        }
    }

    #[test]
    fn one_group_per_phase_and_an_error_naming_the_step() {
        let sink = Sink::default();
        let w = WorkflowCommands::new(Box::new(sink.clone()), "production/web");
        for (status, detail) in [
            (Status::Staging, "green"),
            (Status::Validating, "probe 1"),
            (Status::Validating, "probe 2"),
            (Status::Failed, "probe /health: 500\nlast line"),
        ] {
            w.status(&event(status, detail));
        }
        w.end();
        let text = String::from_utf8(sink.0.lock().unwrap().clone()).unwrap();
        assert_eq!(
            text,
            "::group::production/web: stage\n::endgroup::\n::group::production/web: validate\n::endgroup::\n::error title=production/web v1.2.0%3A Failed::probe /health: 500%0Alast line\n"
        );
    }
}
