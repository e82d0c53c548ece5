//! BuildKit's progress, as `docker build --progress=plain` shows it: each step (vertex) is
//! numbered when it starts, its output lines follow with the same number, then CACHED,
//! DONE or ERROR. The daemon sends it as base64 protobuf `StatusResponse`s in the build
//! stream's `aux` field (bollard decodes them). A failure names the step that failed and
//! its last lines, like the classic path.

use std::collections::HashMap;

use bollard::moby::buildkit::v1::StatusResponse;
use bollard::models::{BuildInfo, BuildInfoAux, ImageId};
use futures_util::{Stream, StreamExt};

use super::docker::{Tail, failure};

/// A fresh BuildKit session id for one build.
pub fn session_id() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("cutover-{}-{nanos}", std::process::id())
}

/// Logs BuildKit's progress and returns the image id, or the failure explained.
pub async fn follow(
    mut stream: impl Stream<Item = Result<BuildInfo, bollard::errors::Error>> + Unpin,
) -> anyhow::Result<String> {
    let mut progress = Progress::default();
    let mut id: Option<String> = None;
    while let Some(item) = stream.next().await {
        match item {
            Ok(info) => match info.aux {
                Some(BuildInfoAux::BuildKit(status)) => progress.update(&status),
                Some(BuildInfoAux::Default(ImageId { id: Some(image) })) => id = Some(image),
                _ => {
                    // Plain lines (e.g. the daemon's warnings) come as `stream`.
                    if let Some(text) = info.stream.as_deref() {
                        for line in text.lines().map(str::trim_end).filter(|l| !l.is_empty()) {
                            tracing::info!(target: "cutover::image::output", "{line}");
                        }
                    }
                }
            },
            Err(e) => return Err(progress.failure(&e.to_string())),
        }
    }
    id.ok_or_else(|| progress.failure("the daemon reported no image id"))
}

/// What has been seen of each vertex, keyed by its digest.
#[derive(Debug, Default)]
struct Progress {
    vertices: HashMap<String, Vertex>,
    last_started: Option<String>,
    errored: Option<String>,
}

#[derive(Debug, Default)]
struct Vertex {
    number: usize,
    name: String,
    started: bool,
    finished: bool,
    tail: Tail,
}

impl Progress {
    fn vertex(&mut self, digest: &str) -> &mut Vertex {
        let next = self.vertices.len() + 1;
        self.vertices
            .entry(digest.to_string())
            .or_insert_with(|| Vertex {
                number: next,
                ..Default::default()
            })
    }

    fn update(&mut self, status: &StatusResponse) {
        for v in &status.vertexes {
            let vertex = self.vertex(&v.digest);
            if vertex.name.is_empty() {
                vertex.name = v.name.clone();
            }
            let n = vertex.number;
            if !vertex.started && (v.started.is_some() || v.cached) {
                vertex.started = true;
                tracing::info!(target: "cutover::image::output", "#{n} {}", v.name);
                self.last_started = Some(v.digest.clone());
            }
            let vertex = self.vertex(&v.digest);
            if vertex.finished {
                continue;
            }
            if !v.error.is_empty() {
                vertex.finished = true;
                tracing::info!(target: "cutover::image::output", "#{n} ERROR: {}", v.error);
                self.errored.get_or_insert_with(|| v.digest.clone());
            } else if v.cached {
                vertex.finished = true;
                tracing::info!(target: "cutover::image::output", "#{n} CACHED");
            } else if let (Some(start), Some(end)) = (&v.started, &v.completed) {
                vertex.finished = true;
                let secs =
                    (end.seconds - start.seconds) as f64 + f64::from(end.nanos - start.nanos) / 1e9;
                tracing::info!(target: "cutover::image::output", "#{n} DONE {secs:.1}s");
            }
        }
        for log in &status.logs {
            let vertex = self.vertex(&log.vertex);
            let n = vertex.number;
            let text = String::from_utf8_lossy(&log.msg);
            for line in text.lines().map(str::trim_end).filter(|l| !l.is_empty()) {
                tracing::info!(target: "cutover::image::output", "#{n} {line}");
                vertex.tail.push(line);
            }
        }
        for s in &status.statuses {
            if s.completed.is_some() {
                let n = self.vertex(&s.vertex).number;
                tracing::debug!(target: "cutover::image::output", "#{n} {} done", s.id);
            }
        }
        for w in &status.warnings {
            let n = self.vertex(&w.vertex).number;
            let short = String::from_utf8_lossy(&w.short);
            tracing::warn!(target: "cutover::image::output", "#{n} {}", short.trim_end());
        }
    }

    /// The step that reported an error, else the last one that started.
    fn failure(&self, error: &str) -> anyhow::Error {
        let culprit = self.errored.as_ref().or(self.last_started.as_ref());
        match culprit.and_then(|d| self.vertices.get(d)) {
            Some(v) => failure(Some(&v.name), &v.tail, error),
            None => failure(None, &Tail::default(), error),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bollard::moby::buildkit::v1::{Vertex as V, VertexLog};

    fn vertex(digest: &str, name: &str, started: bool, error: &str) -> V {
        V {
            digest: digest.into(),
            name: name.into(),
            started: started.then(Default::default),
            error: error.into(),
            ..Default::default()
        }
    }

    #[test]
    fn the_failure_names_the_step_that_errored_and_its_own_last_lines() {
        let mut p = Progress::default();
        p.update(&StatusResponse {
            vertexes: vec![
                vertex("a", "[1/3] FROM base", true, ""),
                vertex("b", "[2/3] RUN make", true, ""),
            ],
            logs: vec![VertexLog {
                vertex: "b".into(),
                msg: b"compiling\nerror: boom\n".to_vec(),
                ..Default::default()
            }],
            ..Default::default()
        });
        // Another step starts after the failing one reported its error.
        p.update(&StatusResponse {
            vertexes: vec![
                vertex("b", "[2/3] RUN make", true, "exit code: 2"),
                vertex("c", "[3/3] COPY x /", true, ""),
            ],
            ..Default::default()
        });
        let msg = p.failure("Docker stream error: exit code: 2").to_string();
        assert!(
            msg.starts_with("the image build failed at `[2/3] RUN make`: exit code: 2"),
            "{msg}"
        );
        assert!(msg.ends_with("\n  compiling\n  error: boom"), "{msg}");
    }

    #[test]
    fn without_an_errored_step_the_last_started_one_is_blamed() {
        let mut p = Progress::default();
        p.update(&StatusResponse {
            vertexes: vec![
                vertex("a", "[1/2] FROM base", true, ""),
                vertex("b", "[2/2] COPY x /", true, ""),
            ],
            ..Default::default()
        });
        let msg = p.failure("failed to export").to_string();
        assert!(msg.contains("failed at `[2/2] COPY x /`"), "{msg}");
    }
}
