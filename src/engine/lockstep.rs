//! A train's promote: every member's shift in lockstep. Each step is written and read back
//! on every member before the next; the holds and the bake watch every member at once;
//! any failure moves every member back (those carrying traffic first).

use std::collections::BTreeMap;
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::future::join_all;
use futures_util::stream::FuturesUnordered;

use super::alarms::AlarmWatch;
use super::plan::{Step, steps};
use super::promote::{Fallback, Shift, Start, resume, start};
use super::train::{Member, MemberOutcome, Train, TrainOutcome, conclude, named};
use super::{EngineError, Gate, Lease};
use crate::ports::{Cloud, Release, Status, Weights};
use crate::version::Version;

/// One member's part in the shift.
struct Leg<'t, 'a, C: Cloud> {
    member: &'t Member<'a, C>,
    lease: &'t Lease,
    shift: Shift,
    fallback: Fallback,
    alarms: AlarmWatch,
    all: Vec<Step>,
    from: Option<Version>,
    /// Weight on the new slot as last set (or as found, resuming).
    weight: u8,
    /// Its shift began (recorded Shifting): a failure now moves it back and records so.
    started: bool,
}

/// A worker's part: rolled in place once every member is ready, before the shift.
struct WorkerLeg<'t, 'a, C: Cloud> {
    member: &'t Member<'a, C>,
    lease: &'t Lease,
    release: Release,
    /// The task definition it ran before the train (what a failure rolls it back to).
    before: Option<String>,
    desired: u32,
    from: Option<Version>,
    /// Its `[validation] service_alarms` (a worker's only signal beyond ECS's rollout),
    /// watched in every hold of the train and through its own bake.
    alarms: AlarmWatch,
    /// Its roll began: a failure now rolls it back and records so.
    started: bool,
}

/// How a member came out of the preparation.
enum Ready<'t, 'a, C: Cloud> {
    Leg(Box<Leg<'t, 'a, C>>),
    Worker(Box<WorkerLeg<'t, 'a, C>>),
    /// Already live and promoted: nothing to shift.
    Already(MemberOutcome),
    /// Refused or not ready; `moved`: its traffic had already left the old slot.
    Refused(EngineError, Option<Version>),
}

/// The train's steps: every percent any member's strategy has, each held as long as the
/// longest member holds it (no member moves faster than its own strategy allows).
pub(super) fn merge(all: &[Vec<Step>]) -> Vec<Step> {
    let mut by: BTreeMap<u8, Duration> = BTreeMap::new();
    for step in all.iter().flatten() {
        let hold = by.entry(step.percent).or_default();
        *hold = (*hold).max(step.hold);
    }
    by.into_iter()
        .map(|(percent, hold)| Step { percent, hold })
        .collect()
}

impl<C: Cloud> Train<'_, C> {
    pub(super) async fn promote_locked(
        &self,
        leases: &[Lease],
        versions: &[Version],
        from: Option<&[Option<Version>]>,
        started: tokio::time::Instant,
    ) -> TrainOutcome {
        let prepared = join_all(
            self.members()
                .iter()
                .zip(leases)
                .zip(versions)
                .enumerate()
                .map(|(i, ((m, lease), version))| {
                    let known = from.and_then(|f| f[i].clone());
                    prepare(m, lease, version, known)
                }),
        )
        .await;
        let mut legs = Vec::new();
        let mut workers = Vec::new();
        let mut done = Vec::new();
        let mut refused = Vec::new();
        for (m, ready) in self.members().iter().zip(prepared) {
            match ready {
                Ready::Leg(leg) => legs.push(*leg),
                Ready::Worker(w) => workers.push(*w),
                Ready::Already(outcome) => done.push(outcome),
                Ready::Refused(e, from) => refused.push((m.service.clone(), e, from)),
            }
        }
        let id = one_train_id(
            legs.iter()
                .map(|l| &l.shift.release)
                .chain(workers.iter().map(|w| &w.release)),
        );
        let result = if let Some((service, e, _)) = refused.first() {
            Err((service.clone(), e.clone()))
        } else {
            // Workers roll once every web member is ready to shift, and before it does:
            // a worker ECS fails costs the train nothing in production traffic.
            match roll_workers(&mut workers).await {
                Ok(()) => {
                    let rolled = tokio::time::Instant::now();
                    match shift_all(&mut legs, &workers).await {
                        Ok(()) => bake_workers(&workers, rolled).await,
                        Err(e) => Err(e),
                    }
                }
                Err(e) => Err(e),
            }
        };
        let mut errors = Vec::new();
        let mut members = done;
        for (service, e, from) in refused {
            members.push(MemberOutcome {
                service: service.clone(),
                from,
                to: None,
                status: Status::Failed,
                detail: e.to_string(),
                seconds: started.elapsed().as_secs(),
            });
            errors.push(named(&service, e));
        }
        match result {
            Ok(()) => {
                let (web, workers) =
                    futures_util::join!(finish(&legs, started), finish_workers(&workers, started));
                members.extend(web.into_iter().chain(workers).map(|(m, e)| {
                    errors.extend(e);
                    m
                }));
            }
            Err((culprit, e)) => {
                let ends = abort(&legs, &workers, &culprit, &e, started).await;
                // Each error once: the culprit may be a refused member (quoted above) or
                // stranded by the same error it failed with (its lock lost mid-bake).
                let first = named(&culprit, e);
                if !quoted(&errors, &first) {
                    errors.insert(0, first);
                }
                for (m, err) in ends {
                    if let Some(err) = err.filter(|_| m.status == Status::RollbackFailed) {
                        let err = named(&m.service, err);
                        if !quoted(&errors, &err) {
                            errors.push(err);
                        }
                    }
                    members.push(m);
                }
            }
        }
        members.sort_by(|a, b| a.service.cmp(&b.service));
        TrainOutcome {
            id,
            ..conclude(members, errors, Status::Promoted)
        }
    }
}

/// Whether `errors` already says what `err` says.
fn quoted(errors: &[EngineError], err: &EngineError) -> bool {
    let text = err.to_string();
    errors.iter().any(|e| e.to_string() == text)
}

/// The train run that staged these releases, when they all name the same one.
fn one_train_id<'r>(mut releases: impl Iterator<Item = &'r Release>) -> Option<String> {
    let first = releases.next()?.train_id.clone();
    (!first.is_empty() && releases.all(|r| r.train_id == first)).then_some(first)
}

/// Read one member and decide its shift (the single-service `start`); point its test
/// listener at the new slot, check it is ready and its alarms quiet.
async fn prepare<'t, 'a, C: Cloud>(
    m: &'t Member<'a, C>,
    lease: &'t Lease,
    version: &Version,
    known_from: Option<Version>,
) -> Ready<'t, 'a, C> {
    let eng = &m.engine;
    if eng.is_worker() {
        return prepare_worker(m, lease, version, known_from).await;
    }
    let observed = match eng.observe_locked(lease).await {
        Ok(o) => o,
        Err(e) => return Ready::Refused(e, known_from),
    };
    let from = known_from.or_else(|| {
        observed
            .weights
            .live()
            .and_then(|s| observed.slot(s).version().cloned())
    });
    let all = match steps(&eng.settings.strategy) {
        Ok(s) => s,
        Err(e) => return Ready::Refused(e, from),
    };
    let shift = match start(&observed, version, all.clone()) {
        Start::Shift(shift) => {
            if let Err(e) = eng.staged_by_this_train(&shift.release, &shift.new.to_string()) {
                return Ready::Refused(e, from);
            }
            *shift
        }
        Start::Already(slot) => {
            return Ready::Already(MemberOutcome {
                service: m.service.clone(),
                from: from.clone(),
                to: Some(version.clone()),
                status: Status::Promoted,
                detail: format!("already live on {slot}"),
                seconds: 0,
            });
        }
        Start::Refuse { repair, error } => {
            if repair && let Err(e) = eng.repair_shift(lease, &observed).await {
                return Ready::Refused(e, from);
            }
            return Ready::Refused(error, from);
        }
    };
    let fallback = Fallback::of(&observed, shift.new.other(), shift.weight);
    let ready = async {
        if observed.test_listener != Some(shift.new) {
            eng.aim_test_listener(lease, shift.new, "point the test listener at the new slot")
                .await?;
        }
        if let Err(state) = eng.shift_ready(&observed, &shift).await? {
            return Err(EngineError::failed(
                "Shifting",
                format!("{version} on {} is not healthy: {state}", shift.new),
            ));
        }
        let first = shift.steps.first().map_or(100, |s| s.percent);
        eng.watch_alarms(Gate::Traffic(shift.new))
            .await?
            .map_err(|reason| EngineError::failed(Status::Shifting(first), reason))
    };
    match ready.await {
        Ok(alarms) => Ready::Leg(Box::new(Leg {
            member: m,
            lease,
            weight: shift.weight,
            shift,
            fallback,
            alarms,
            all,
            from,
            started: false,
        })),
        Err(e) => Ready::Refused(e, from),
    }
}

/// A worker's part: its staged release, and what it runs now to come back to. A train
/// that died after rolling it finds it on the release already: rolled, the previous good
/// release as the way back.
async fn prepare_worker<'t, 'a, C: Cloud>(
    m: &'t Member<'a, C>,
    lease: &'t Lease,
    version: &Version,
    known_from: Option<Version>,
) -> Ready<'t, 'a, C> {
    let eng = &m.engine;
    let state = match eng.observe_worker(lease).await {
        Ok(s) => s,
        Err(e) => return Ready::Refused(e, known_from),
    };
    let from = known_from.or_else(|| state.version());
    if let Some(running) = state.running()
        && &running.version == version
        && running.status == Status::Promoted
    {
        return Ready::Already(MemberOutcome {
            service: m.service.clone(),
            from,
            to: Some(version.clone()),
            status: Status::Promoted,
            detail: "already running it".into(),
            seconds: 0,
        });
    }
    let release = match state
        .staged(version)
        .and_then(|r| eng.staged_by_this_train(r, "its service").map(|()| r))
    {
        Ok(r) => r.clone(),
        Err(e) => return Ready::Refused(e, from),
    };
    let alarms = match eng
        .watch_alarms(Gate::Traffic(super::worker::SERVICE))
        .await
    {
        Ok(Ok(alarms)) => alarms,
        Ok(Err(reason)) => {
            return Ready::Refused(EngineError::failed(Status::Shifting(100), reason), from);
        }
        Err(e) => return Ready::Refused(e, from),
    };
    let on_it = state.running().map(|r| &r.task_definition) == Some(&release.task_definition);
    let before = if on_it {
        state.previous_good().map(|r| r.task_definition.clone())
    } else {
        state.service.task_definition.as_ref().map(|t| t.id.clone())
    };
    Ready::Worker(Box::new(WorkerLeg {
        member: m,
        lease,
        release,
        before,
        desired: state.service.desired,
        from,
        alarms,
        started: on_it,
    }))
}

/// Every worker rolled in place, concurrently, each until ECS completes its rollout. Err
/// names the first (in lock order) that failed.
async fn roll_workers<C: Cloud>(
    workers: &mut [WorkerLeg<'_, '_, C>],
) -> Result<(), (String, EngineError)> {
    // Even where the record fails: it may have applied, and rolling back is always safe.
    workers.iter_mut().for_each(|w| w.started = true);
    let results = join_all(workers.iter().map(|w| async move {
        let eng = &w.member.engine;
        eng.record(w.lease, &w.release, Status::Shifting(100))
            .await?;
        eng.report(
            Status::Shifting(100),
            Some(&w.release.version),
            None,
            format!(
                "worker: rolling {} in place, in a train",
                w.release.task_definition
            ),
        );
        eng.roll_worker(
            w.lease,
            "roll the worker",
            &w.release.task_definition,
            w.desired,
        )
        .await?;
        eng.record(w.lease, &w.release, Status::Baking).await?;
        eng.report(
            Status::Baking,
            Some(&w.release.version),
            None,
            "worker: rolled out; bakes with the train".into(),
        );
        Ok(())
    }))
    .await;
    first_failed(workers.iter().map(|w| w.member.service.as_str()), results)
}

/// Every worker's own bake, counted from its roll (the web members' shift and bake have
/// passed since), then a check that each still runs its release, rolled out.
async fn bake_workers<C: Cloud>(
    workers: &[WorkerLeg<'_, '_, C>],
    rolled: tokio::time::Instant,
) -> Result<(), (String, EngineError)> {
    let bake = workers
        .iter()
        .filter_map(|w| {
            steps(&w.member.engine.settings.strategy)
                .ok()?
                .last()
                .map(|s| s.hold)
        })
        .max()
        .unwrap_or_default();
    let rest = bake.saturating_sub(rolled.elapsed());
    if !rest.is_zero() {
        let watched = workers.iter().map(|w| (w.member, &w.alarms));
        hold(watched, rest, Status::Baking).await?;
    }
    let results = join_all(workers.iter().map(|w| {
        w.member
            .engine
            .verify_worker(&w.release.task_definition, w.desired)
    }))
    .await;
    first_failed(workers.iter().map(|w| w.member.service.as_str()), results)
}

/// The first member (in lock order) whose result is an error, named.
fn first_failed<'m>(
    services: impl Iterator<Item = &'m str>,
    results: Vec<Result<(), EngineError>>,
) -> Result<(), (String, EngineError)> {
    for (service, r) in services.zip(results) {
        r.map_err(|e| (service.to_string(), e))?;
    }
    Ok(())
}

/// The lockstep: every step on every member, read back, then one hold watching them all.
/// Err names the first member that failed.
async fn shift_all<C: Cloud>(
    legs: &mut [Leg<'_, '_, C>],
    workers: &[WorkerLeg<'_, '_, C>],
) -> Result<(), (String, EngineError)> {
    let Some(lowest) = legs.iter().map(|l| l.weight).min() else {
        return Ok(());
    };
    let plan = resume(
        merge(&legs.iter().map(|l| l.all.clone()).collect::<Vec<_>>()),
        lowest,
    );
    let first = plan.first().map_or(100, |s| s.percent);
    let recorded = each(legs, |leg| async move {
        let eng = &leg.member.engine;
        eng.record(leg.lease, &leg.shift.release, Status::Shifting(first))
            .await
    })
    .await;
    // Even where the record failed: it may have applied, and moving back is always safe.
    legs.iter_mut().for_each(|l| l.started = true);
    recorded?;
    for step in &plan {
        if let Some(leg) = legs.first() {
            leg.member
                .engine
                .check_cancel()
                .map_err(|e| (leg.member.service.clone(), e))?;
        }
        let p = step.percent;
        let results = join_all(legs.iter().map(|leg| async move {
            if leg.weight > p {
                return Ok(());
            }
            let (eng, new) = (&leg.member.engine, leg.shift.new);
            let version = &leg.shift.release.version;
            eng.report(
                Status::Shifting(p),
                Some(version),
                Some(new),
                leg.alarms.noted(format!("{p}% on {new}, in a train")),
            );
            eng.set_weights(leg.lease, Weights::split(new, p), Some(&leg.alarms))
                .await
        }))
        .await;
        let mut failed = None;
        for (leg, r) in legs.iter_mut().zip(results) {
            // A failed write may still have applied: count it as moved, so it goes back first.
            leg.weight = leg.weight.max(p);
            if let Err(e) = r
                && failed.is_none()
            {
                failed = Some((leg.member.service.clone(), e));
            }
        }
        if let Some(f) = failed {
            return Err(f);
        }
        if p == 100 {
            each(legs, |leg| async move {
                let eng = &leg.member.engine;
                eng.record(leg.lease, &leg.shift.release, Status::Baking)
                    .await?;
                eng.report(
                    Status::Baking,
                    Some(&leg.shift.release.version),
                    Some(leg.shift.new),
                    format!("{}s, with the whole train", step.hold.as_secs()),
                );
                Ok(())
            })
            .await?;
        }
        // One hold for the train, ended by the first member whose alarms or probes fail
        // (the workers', rolled already, too).
        let during = if p == 100 {
            Status::Baking
        } else {
            Status::Shifting(p)
        };
        let watched = legs
            .iter()
            .map(|l| (l.member, &l.alarms))
            .chain(workers.iter().map(|w| (w.member, &w.alarms)));
        hold(watched, step.hold, during).await?;
    }
    each(legs, |leg| async move {
        leg.member
            .engine
            .verify_live(leg.shift.new, &leg.shift.release)
            .await
    })
    .await
}

/// Watch every member's alarms (and probes) for `time`; the first that fails ends it.
async fn hold<'m, 'a: 'm, C: Cloud + 'a>(
    watched: impl Iterator<Item = (&'m Member<'a, C>, &'m AlarmWatch)>,
    time: Duration,
    during: Status,
) -> Result<(), (String, EngineError)> {
    let mut watches: FuturesUnordered<_> = watched
        .map(|(m, alarms)| async move {
            let r = m.engine.watch(alarms, time).await;
            (m.service.clone(), r)
        })
        .collect();
    while let Some((service, r)) = watches.next().await {
        match r {
            Ok(Ok(())) => {}
            Ok(Err(reason)) => return Err((service, EngineError::failed(during, reason))),
            Err(e) => return Err((service, e)),
        }
    }
    Ok(())
}

/// `work` on every leg at once; the first member (in lock order) that failed, if any.
async fn each<'l, 't, 'a, C, F, Fut>(
    legs: &'l [Leg<'t, 'a, C>],
    work: F,
) -> Result<(), (String, EngineError)>
where
    C: Cloud,
    F: Fn(&'l Leg<'t, 'a, C>) -> Fut,
    Fut: std::future::Future<Output = Result<(), EngineError>>,
{
    let results = join_all(legs.iter().map(&work)).await;
    first_failed(legs.iter().map(|l| l.member.service.as_str()), results)
}

/// Every member promoted: recorded, reported, its old slot scaled down if the policy says.
async fn finish<C: Cloud>(
    legs: &[Leg<'_, '_, C>],
    started: tokio::time::Instant,
) -> Vec<(MemberOutcome, Option<EngineError>)> {
    join_all(legs.iter().map(|leg| async move {
        let eng = &leg.member.engine;
        let (new, version) = (leg.shift.new, &leg.shift.release.version);
        let mut error = eng
            .record(leg.lease, &leg.shift.release, Status::Promoted)
            .await
            .err();
        eng.report(
            Status::Promoted,
            Some(version),
            Some(new),
            format!("100% on {new}, bake passed with the whole train"),
        );
        if error.is_none()
            && eng.settings.old_slot.policy == crate::config::settings::OldSlotPolicy::ScaleToZero
        {
            error = eng.scale_down_old(leg.lease, new.other()).await.err();
        }
        let outcome = MemberOutcome {
            service: leg.member.service.clone(),
            from: leg.from.clone(),
            to: Some(version.clone()),
            status: Status::Promoted,
            detail: format!("100% on {new}"),
            seconds: started.elapsed().as_secs(),
        };
        (outcome, error.map(|e| named(&leg.member.service, e)))
    }))
    .await
}

/// The train failed in `culprit`: every member back on its old slot, those carrying
/// traffic first (concurrently, with the workers, which run the new release in place),
/// then the rest. A member whose lock is lost is left to whoever took it, and counted
/// stranded if it had moved.
async fn abort<C: Cloud>(
    legs: &[Leg<'_, '_, C>],
    workers: &[WorkerLeg<'_, '_, C>],
    culprit: &str,
    error: &EngineError,
    started: tokio::time::Instant,
) -> Vec<(MemberOutcome, Option<EngineError>)> {
    let back = |leg| back_one(leg, culprit, error, started);
    let (moved, still): (Vec<_>, Vec<_>) = legs.iter().partition(|l| l.weight > 0);
    let (mut ends, unrolled) = futures_util::join!(
        join_all(moved.into_iter().map(back)),
        join_all(
            workers
                .iter()
                .map(|w| unroll_worker(w, culprit, error, started))
        )
    );
    ends.extend(unrolled);
    ends.extend(join_all(still.into_iter().map(back)).await);
    ends
}

/// Why a member of a failed train ends: its own error, or the culprit's.
fn failure_reason(service: &str, culprit: &str, error: &EngineError) -> String {
    if service == culprit {
        error.to_string()
    } else {
        format!("the train failed in {culprit}: {error}")
    }
}

/// A worker of a failed train back on the task definition it ran before (or reported
/// untouched when its roll never began).
async fn unroll_worker<C: Cloud>(
    w: &WorkerLeg<'_, '_, C>,
    culprit: &str,
    error: &EngineError,
    started: tokio::time::Instant,
) -> (MemberOutcome, Option<EngineError>) {
    let service = &w.member.service;
    let eng = &w.member.engine;
    let reason = failure_reason(service, culprit, error);
    let version = &w.release.version;
    let end = |status, detail: String, err| {
        let outcome = MemberOutcome {
            service: service.clone(),
            from: w.from.clone(),
            to: Some(version.clone()),
            status,
            detail,
            seconds: started.elapsed().as_secs(),
        };
        (outcome, err)
    };
    let culprit_error = (service == culprit).then(|| error.clone());
    if !w.started {
        let detail = format!("{reason}; the worker was not rolled");
        eng.report(Status::Failed, Some(version), None, detail.clone());
        return end(Status::Failed, detail, culprit_error);
    }
    if let Some(e @ EngineError::LockLost { .. }) = culprit_error {
        return end(Status::RollbackFailed, e.to_string(), Some(e));
    }
    let eng = eng.uncancellable();
    eng.report(
        Status::RollingBack,
        Some(version),
        None,
        format!("{reason}; the worker rolls back in place"),
    );
    let _ = eng.record(w.lease, &w.release, Status::RollingBack).await;
    let back = match &w.before {
        Some(td) => {
            eng.roll_worker(w.lease, "roll the worker back", td, w.desired)
                .await
        }
        None => Err(EngineError::Usage(
            "the worker ran no task definition before the train".into(),
        )),
    };
    match back {
        Ok(()) => {
            let detail = format!(
                "{reason}; the worker is back on {}",
                w.before.as_deref().unwrap_or("-")
            );
            let _ = eng.record(w.lease, &w.release, Status::RolledBack).await;
            eng.report(Status::RolledBack, Some(version), None, detail.clone());
            let err = EngineError::RolledBack {
                slot: super::worker::SERVICE,
                reason: detail.clone(),
            };
            end(Status::RolledBack, detail, Some(err))
        }
        Err(e) => {
            let err = EngineError::RollbackFailed {
                reason: format!("{reason}; the worker did not roll back: {e}"),
            };
            eng.report(Status::RollbackFailed, Some(version), None, err.to_string());
            let _ = eng
                .record(w.lease, &w.release, Status::RollbackFailed)
                .await;
            end(Status::RollbackFailed, err.to_string(), Some(err))
        }
    }
}

/// Every worker promoted with the train: recorded and reported.
async fn finish_workers<C: Cloud>(
    workers: &[WorkerLeg<'_, '_, C>],
    started: tokio::time::Instant,
) -> Vec<(MemberOutcome, Option<EngineError>)> {
    join_all(workers.iter().map(|w| async move {
        let eng = &w.member.engine;
        let error = eng
            .record(w.lease, &w.release, Status::Promoted)
            .await
            .err();
        eng.report(
            Status::Promoted,
            Some(&w.release.version),
            None,
            "worker: rolled in place, bake passed with the whole train".into(),
        );
        let outcome = MemberOutcome {
            service: w.member.service.clone(),
            from: w.from.clone(),
            to: Some(w.release.version.clone()),
            status: Status::Promoted,
            detail: "rolled in place".into(),
            seconds: started.elapsed().as_secs(),
        };
        (outcome, error.map(|e| named(&w.member.service, e)))
    }))
    .await
}

/// One member of a failed train back on its old slot (or reported untouched).
async fn back_one<C: Cloud>(
    leg: &Leg<'_, '_, C>,
    culprit: &str,
    error: &EngineError,
    started: tokio::time::Instant,
) -> (MemberOutcome, Option<EngineError>) {
    let reason = failure_reason(&leg.member.service, culprit, error);
    let culprit_error = (leg.member.service == culprit).then(|| error.clone());
    let eng = &leg.member.engine;
    if !leg.started {
        // Never moved and nothing recorded: the staged release stays awaiting
        // approval, to be promoted again with the whole train.
        let detail = format!("{reason}; production traffic was not moved");
        let (version, new) = (&leg.shift.release.version, leg.shift.new);
        eng.report(Status::Failed, Some(version), Some(new), detail.clone());
        let outcome = MemberOutcome {
            service: leg.member.service.clone(),
            from: leg.from.clone(),
            to: Some(version.clone()),
            status: Status::Failed,
            detail,
            seconds: started.elapsed().as_secs(),
        };
        return (outcome, culprit_error);
    }
    let end = match culprit_error {
        // Its own rollback failed already, or its lock is gone: nothing to redo.
        Some(e @ (EngineError::RollbackFailed { .. } | EngineError::LockLost { .. })) => e,
        _ => {
            eng.fall_back(leg.lease, &leg.shift.release, &leg.fallback, reason)
                .await
        }
    };
    let status = match &end {
        EngineError::RolledBack { .. } => Status::RolledBack,
        EngineError::LockLost { .. } if leg.weight == 0 => Status::Failed,
        _ => Status::RollbackFailed,
    };
    let outcome = MemberOutcome {
        service: leg.member.service.clone(),
        from: leg.from.clone(),
        to: Some(leg.shift.release.version.clone()),
        status,
        detail: end.to_string(),
        seconds: started.elapsed().as_secs(),
    };
    (outcome, Some(end))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn steps(list: &[(u8, u64)]) -> Vec<Step> {
        list.iter()
            .map(|&(percent, secs)| Step {
                percent,
                hold: Duration::from_secs(secs),
            })
            .collect()
    }

    #[test]
    fn a_train_takes_every_members_steps_and_the_longest_hold_of_each() {
        let canary = steps(&[(10, 120), (100, 180)]);
        let linear = steps(&[(25, 60), (50, 60), (100, 300)]);
        let train = steps(&[(10, 120), (25, 60), (50, 60), (100, 300)]);
        assert_eq!(merge(&[canary, linear]), train);
        assert_eq!(merge(&[steps(&[(100, 5)])]), steps(&[(100, 5)]));
    }
}
