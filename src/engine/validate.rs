//! Validation of a staged slot (probes with consecutive successes, alarms, the optional
//! command) and the watch kept during every shift step and the bake.

use std::time::Duration;

use super::alarms::{AlarmWatch, Gate};
use super::shift::CONSISTENCY;
use super::{Engine, EngineError, Lease, Polling};
use crate::config::settings::Probe;
use crate::ports::{CheckResult, Cloud, ProbeRequest, Slot, VersionEvidence};
use crate::version::Version;

/// How often alarms are read while traffic is on a new release. Alarms fire at any moment,
/// so the reaction lag is up to this interval; 2.5 s keeps the calls within 4x a 15 s
/// poller's rate (see benches/engine_lag.rs).
pub(crate) const WATCH_EVERY: Duration = Duration::from_millis(2500);
/// Reads of the test listener after pointing it before giving up (a second apart).
const TEST_LISTENER_READBACKS: u32 = 10;
/// Probe failures in a row that fail a watch: one failed request is noise, two is a trend.
const WATCH_PROBE_FAILURES: u32 = 2;

impl<C: Cloud> Engine<'_, C> {
    /// Point the test listener at `slot`, read it back, and after a change wait the same
    /// consistency window as production weights before anything probes it: the ALB's
    /// traffic follows a listener change seconds after the change reads back, and a probe
    /// answered by the release it left is no evidence (invariant 12).
    pub(crate) async fn aim_test_listener(
        &self,
        lease: &Lease,
        slot: Slot,
        why: &str,
    ) -> Result<(), EngineError> {
        let read = || self.read("read the test listener", || self.cloud.test_listener());
        if read().await? == Some(slot) {
            return Ok(());
        }
        self.write(lease, why, || self.cloud.point_test_listener(slot))
            .await?;
        let mut seen = None;
        for _ in 0..TEST_LISTENER_READBACKS {
            seen = read().await?;
            if seen == Some(slot) {
                return self.pause(CONSISTENCY).await;
            }
            self.pause(Duration::from_secs(1)).await?;
        }
        Err(EngineError::failed(
            "Validating",
            format!(
                "the test listener still forwards to {} after pointing it at {slot}",
                seen.map_or("nothing".to_string(), |s| s.to_string())
            ),
        ))
    }

    /// Validate the release behind the test listener, on the slot `gate` names (whose alarms
    /// gate it); the whole of it within the deadline. Returns what passed, one line per
    /// check, for the timeline and the job summary.
    pub(crate) async fn validate(
        &self,
        gate: Gate,
        version: &Version,
    ) -> Result<String, EngineError> {
        let deadline = self.settings.deadlines.validate.0;
        match tokio::time::timeout(deadline, self.validate_unbounded(gate, version)).await {
            Ok(Ok(passed)) => Ok(passed),
            Ok(Err(reason)) => Err(reason),
            Err(_) => Err(EngineError::failed(
                "Validating",
                format!("validation did not finish within {}s", deadline.as_secs()),
            )),
        }
    }

    async fn validate_unbounded(
        &self,
        gate: Gate,
        version: &Version,
    ) -> Result<String, EngineError> {
        let fail = |reason: String| EngineError::failed("Validating", reason);
        let v = &self.settings.validation;
        let alarms = self.watch_alarms(gate).await?.map_err(fail)?;
        // The other slot's alarms may be firing (an incident on the live release): say that
        // they were seen and are no gate here (invariant 11).
        if let Some(note) = alarms.take_note() {
            self.reporter.notice(&note);
        }
        let mut passed = Vec::new();
        for probe in &v.probes {
            let attempts = self
                .probe_until_passing(probe, version)
                .await?
                .map_err(fail)?;
            passed.push(format!(
                "probe {} → {}: {} in a row ({attempts} attempts)",
                probe.path, probe.expect_status, probe.consecutive_successes
            ));
        }
        if let Some(argv) = &v.command {
            if let CheckResult::Fail(why) = self
                .cloud
                .run_command(argv, version, v.command_timeout.0)
                .await
            {
                return Err(fail(format!("validation command failed: {why}")));
            }
            passed.push(format!("command {} passed", argv.join(" ")));
        }
        self.alarms_clear(&alarms).await?.map_err(fail)?;
        if !alarms.names().is_empty() {
            passed.push(format!("alarms OK: {}", alarms.names().join(", ")));
        }
        if passed.is_empty() {
            passed.push("no checks configured".into());
        }
        Ok(passed.join("; "))
    }

    /// Ok(attempts used) once the probe passed `consecutive_successes` times in a row.
    async fn probe_until_passing(
        &self,
        probe: &Probe,
        version: &Version,
    ) -> Result<Result<u32, String>, EngineError> {
        let request = probe_request(probe, Some(version));
        let mut streak = 0;
        let mut last = String::new();
        for attempt in 1..=probe.attempts {
            match self.cloud.probe(&request).await {
                CheckResult::Pass => {
                    streak += 1;
                    if streak >= probe.consecutive_successes {
                        return Ok(Ok(attempt));
                    }
                }
                CheckResult::Fail(why) => {
                    streak = 0;
                    last = why;
                }
            }
            if attempt < probe.attempts {
                self.pause(probe.interval.0).await?;
            }
        }
        Ok(Err(format!(
            "probe {} did not pass {} times in a row in {} attempts (last: {last})",
            probe.path, probe.consecutive_successes, probe.attempts
        )))
    }

    pub(crate) fn watch_every(&self) -> Duration {
        match self.polling {
            Polling::Adaptive => WATCH_EVERY,
            Polling::Fixed(every) => every,
        }
    }

    /// Watch the alarms of the slot taking traffic (`alarms`) and the probes for `hold`;
    /// Err(reason) as soon as one fails.
    pub(crate) async fn watch(
        &self,
        alarms: &AlarmWatch,
        hold: Duration,
    ) -> Result<Result<(), String>, EngineError> {
        let end = tokio::time::Instant::now() + hold;
        let probes = &self.settings.validation.probes;
        let mut failures = vec![0u32; probes.len()];
        let mut next_probe = tokio::time::Instant::now();
        loop {
            if let Err(reason) = self.alarms_clear(alarms).await? {
                return Ok(Err(reason));
            }
            let now = tokio::time::Instant::now();
            if now >= next_probe {
                for (probe, failed) in probes.iter().zip(failures.iter_mut()) {
                    // Health during traffic, not evidence of which release answers: the
                    // version was proven before the first shift.
                    match self.cloud.probe(&probe_request(probe, None)).await {
                        CheckResult::Pass => *failed = 0,
                        CheckResult::Fail(why) => {
                            *failed += 1;
                            if *failed >= WATCH_PROBE_FAILURES {
                                return Ok(Err(format!("probe {} failing: {why}", probe.path)));
                            }
                        }
                    }
                }
                let every = probes.iter().map(|p| p.interval.0).min().unwrap_or(hold);
                next_probe = now + every;
            }
            let now = tokio::time::Instant::now();
            if now >= end {
                return Ok(Ok(()));
            }
            self.pause(self.watch_every().min(end - now)).await?;
        }
    }
}

/// The request for `probe`; with `version`, a probe that asks for version evidence only
/// passes when that release answered.
fn probe_request(probe: &Probe, version: Option<&Version>) -> ProbeRequest {
    ProbeRequest {
        expect_version: version
            .filter(|_| probe.expect_version)
            .map(|v| VersionEvidence {
                version: v.clone(),
                header: probe.version_header.clone(),
            }),
        path: probe.path.clone(),
        expect_status: probe.expect_status,
        body_contains: probe.body_contains.clone(),
        timeout: probe.timeout.0,
    }
}
