//! Release trains: several services moving as one release. Every member's lock is taken in
//! one order (sorted service names, so two overlapping trains cannot deadlock) and renewed
//! throughout; members stage together; a failure anywhere ends the train for every member.
//! The lockstep shift itself is in `lockstep`; each member runs the single-service engine.

use std::future::Future;
use std::sync::Arc;

use futures_util::future::{LocalBoxFuture, join_all};
use serde::Serialize;

use super::{Engine, EngineError, Lease, StageOutcome, StageRequest};
use crate::ports::{Cloud, Status};
use crate::version::Version;

/// One service of a train: its name (the sort key of the lock order) and its engine.
pub struct Member<'a, C: Cloud> {
    pub service: String,
    pub engine: Engine<'a, C>,
}

/// Several services as one release. A train of one is the single-service engine's path.
pub struct Train<'a, C: Cloud> {
    members: Vec<Member<'a, C>>,
    /// This run's id: what a stage records on every member's entry.
    id: String,
}

/// How one member ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MemberOutcome {
    pub service: String,
    /// What production ran before the train (None: nothing live yet, or not read).
    pub from: Option<Version>,
    /// The release the train took it to (or tried to).
    pub to: Option<Version>,
    pub status: Status,
    pub detail: String,
    /// Seconds from the train's start to this member's end.
    pub seconds: u64,
}

/// How the train ended: one status for the train, one per member (in lock order).
#[derive(Debug, Clone)]
pub struct TrainOutcome {
    pub status: Status,
    pub members: Vec<MemberOutcome>,
    /// Why the train did not reach its goal: what the command's exit code comes from.
    pub error: Option<EngineError>,
    /// The id of the train run whose release this is: a stage's own, or the one the staged
    /// entries a promote moved record. None for a rollback, or members staged apart.
    pub id: Option<String>,
}

impl TrainOutcome {
    /// Members that may not be on a good release (RollbackFailed): a human must look.
    pub fn stranded(&self) -> Vec<&str> {
        self.members
            .iter()
            .filter(|m| m.status == Status::RollbackFailed)
            .map(|m| m.service.as_str())
            .collect()
    }

    /// The train ended before any member did anything (a lock held, a bad request).
    fn early(members: Vec<MemberOutcome>, error: EngineError) -> Self {
        TrainOutcome {
            status: Status::Failed,
            members,
            error: Some(error),
            id: None,
        }
    }

    pub fn into_result(self) -> Result<TrainOutcome, EngineError> {
        match self.error.clone() {
            Some(e) => Err(e),
            None => Ok(self),
        }
    }
}

/// `err` with the member it happened in named, so a train's one error says where.
pub(crate) fn named(service: &str, err: EngineError) -> EngineError {
    let tag = |s: String| format!("{service}: {s}");
    match err {
        EngineError::LockHeld {
            holder,
            age_secs,
            expires_in_secs,
        } => EngineError::LockHeld {
            holder: format!("{holder} (service {service})"),
            age_secs,
            expires_in_secs,
        },
        EngineError::LockLost { detail } => EngineError::LockLost {
            detail: tag(detail),
        },
        EngineError::Usage(s) => EngineError::Usage(tag(s)),
        EngineError::Miswired(s) => EngineError::Miswired(tag(s)),
        EngineError::Failed {
            status_reached,
            reason,
        } => EngineError::Failed {
            status_reached,
            reason: tag(reason),
        },
        EngineError::RolledBack { slot, reason } => EngineError::RolledBack {
            slot,
            reason: tag(reason),
        },
        EngineError::RollbackFailed { reason } => EngineError::RollbackFailed {
            reason: tag(reason),
        },
        EngineError::Cancelled { detail } => EngineError::Cancelled {
            detail: tag(detail),
        },
        EngineError::Port { what, source } => EngineError::Port {
            what: tag(what),
            source,
        },
        e @ EngineError::VersionMismatch { .. } => EngineError::Usage(tag(e.to_string())),
    }
}

impl<'a, C: Cloud> Train<'a, C> {
    /// Members in lock order (sorted by service name). Refuses a service named twice.
    pub fn new(mut members: Vec<Member<'a, C>>) -> Result<Self, EngineError> {
        members.sort_by(|a, b| a.service.cmp(&b.service));
        if let Some(w) = members.windows(2).find(|w| w[0].service == w[1].service) {
            return Err(EngineError::Usage(format!(
                "service {} is named twice in the train; name each service once",
                w[0].service
            )));
        }
        let names: Vec<String> = members.iter().map(|m| m.service.clone()).collect();
        // Random, not derived from the members and tag: a train staged again is another run.
        let id = members.first().map_or_else(String::new, |m| {
            format!("{:08x}", m.engine.cloud.random() as u32)
        });
        let members = members
            .into_iter()
            .map(|m| Member {
                engine: m.engine.with_train(names.clone(), id.clone()),
                service: m.service,
            })
            .collect();
        Ok(Train { members, id })
    }

    /// This run's id (what a stage records on every member's entry).
    pub fn id(&self) -> &str {
        &self.id
    }

    pub(super) fn members(&self) -> &[Member<'a, C>] {
        &self.members
    }

    /// Position of `service` in lock order (requests are matched to members by name).
    fn index(&self, service: &str) -> Option<usize> {
        self.members.iter().position(|m| m.service == service)
    }

    /// Every member's lock in lock order; a refusal releases those already taken.
    /// `recover`: a rollback, which waits out a lock that looks stale.
    async fn lock_all(&self, recover: bool) -> Result<Vec<Lease>, EngineError> {
        let mut leases = Vec::with_capacity(self.members.len());
        for m in &self.members {
            let taken = if recover {
                m.engine.lock_to_recover().await
            } else {
                m.engine.lock().await
            };
            match taken {
                Ok(lease) => leases.push(lease),
                Err(e) => {
                    self.release_all(leases).await;
                    return Err(named(&m.service, e));
                }
            }
        }
        Ok(leases)
    }

    async fn release_all(&self, leases: Vec<Lease>) {
        join_all(
            self.members
                .iter()
                .zip(leases)
                .map(|(m, lease)| lease.release(&m.engine)),
        )
        .await;
    }

    /// Run `work` under every lock, each renewed by its own heartbeat, then release them
    /// all whatever `work` ended with.
    async fn locked<'f, F, Fut>(&'f self, recover: bool, work: F) -> TrainOutcome
    where
        F: FnOnce(Arc<Vec<Lease>>) -> Fut,
        Fut: Future<Output = TrainOutcome> + 'f,
    {
        let leases = match self.lock_all(recover).await {
            Ok(l) => Arc::new(l),
            Err(e) => return TrainOutcome::early(Vec::new(), e),
        };
        let run = work(leases.clone());
        let outcome = hold_all(
            &self.members,
            &leases,
            Box::pin(async move { Ok::<_, EngineError>(run.await) }),
        )
        .await
        .unwrap_or_else(|e| TrainOutcome::early(Vec::new(), e));
        // `work` has ended and dropped its handle: the leases are ours alone again.
        match Arc::try_unwrap(leases) {
            Ok(leases) => self.release_all(leases).await,
            Err(_) => tracing::warn!("train leases still shared; the locks expire on their own"),
        }
        outcome
    }

    /// Stage every member concurrently; all end AwaitingApproval, or the train fails and
    /// members that did validate are marked Failed (a train is promoted whole or not at all).
    pub async fn stage(&self, requests: &[(String, StageRequest)]) -> TrainOutcome {
        let order = match self.order(requests) {
            Ok(o) => o,
            Err(e) => return TrainOutcome::early(Vec::new(), e),
        };
        let started = tokio::time::Instant::now();
        self.locked(false, |leases| async move {
            match self.stage_locked(&leases, &order, started).await {
                Ok(members) => TrainOutcome {
                    status: Status::AwaitingApproval,
                    members,
                    error: None,
                    id: Some(self.id.clone()),
                },
                Err(failed) => failed,
            }
        })
        .await
    }

    /// Stage every member, then promote them together under the same locks.
    pub async fn deploy(&self, requests: &[(String, StageRequest)]) -> TrainOutcome {
        let order = match self.order(requests) {
            Ok(o) => o,
            Err(e) => return TrainOutcome::early(Vec::new(), e),
        };
        let started = tokio::time::Instant::now();
        self.locked(false, |leases| async move {
            let staged = match self.stage_locked(&leases, &order, started).await {
                Ok(members) => members,
                Err(failed) => return failed,
            };
            let versions: Vec<Version> = order.iter().map(|r| r.spec.version.clone()).collect();
            let from: Vec<Option<Version>> = staged.into_iter().map(|m| m.from).collect();
            self.promote_locked(&leases, &versions, Some(&from), started)
                .await
        })
        .await
    }

    /// Promote every member's staged release together (see `lockstep`).
    pub async fn promote(&self, versions: &[(String, Version)]) -> TrainOutcome {
        let mut ordered = vec![None; self.members.len()];
        for (service, version) in versions {
            match self.index(service) {
                Some(i) => ordered[i] = Some(version.clone()),
                None => {
                    return TrainOutcome::early(
                        Vec::new(),
                        EngineError::Usage(format!("{service} is not a member of this train")),
                    );
                }
            }
        }
        let Some(ordered) = ordered.into_iter().collect::<Option<Vec<_>>>() else {
            return TrainOutcome::early(
                Vec::new(),
                EngineError::Usage("every member of the train needs a version".into()),
            );
        };
        let started = tokio::time::Instant::now();
        self.locked(false, |leases| async move {
            self.promote_locked(&leases, &ordered, None, started).await
        })
        .await
    }

    /// Every member back to its previous good release, concurrently, under all the locks.
    /// A member whose rollback fails is named; the others are still rolled back (a
    /// recovery never waits on the member it cannot fix).
    pub async fn rollback(&self) -> TrainOutcome {
        self.rollback_to(None).await
    }

    /// Every member back to `to` (a train's members share its tags: each to its own entry
    /// of that version), concurrently, or to its previous good release without `to`.
    pub async fn rollback_to(&self, to: Option<&Version>) -> TrainOutcome {
        let started = tokio::time::Instant::now();
        self.locked(true, |leases| async move {
            let ends = join_all(self.members.iter().zip(leases.iter()).map(
                |(m, lease)| async move {
                    let from = m.engine.live_version().await;
                    let r = m.engine.rollback_member(lease, to).await;
                    (from, r)
                },
            ))
            .await;
            let mut members = Vec::new();
            let mut errors = Vec::new();
            for (m, (from, r)) in self.members.iter().zip(ends) {
                let (status, to, detail) = match r {
                    Ok(o) => (
                        Status::RolledBack,
                        o.version,
                        format!("{} path, on {}", o.path, o.slot),
                    ),
                    Err(e) => {
                        let status = match e {
                            EngineError::Usage(_) => Status::Failed,
                            _ => Status::RollbackFailed,
                        };
                        let text = e.to_string();
                        errors.push(named(&m.service, e));
                        (status, None, text)
                    }
                };
                members.push(MemberOutcome {
                    service: m.service.clone(),
                    from,
                    to,
                    status,
                    detail,
                    seconds: started.elapsed().as_secs(),
                });
            }
            conclude(members, errors, Status::RolledBack)
        })
        .await
    }

    /// Requests in lock order; every member needs exactly one.
    fn order<'r>(
        &self,
        requests: &'r [(String, StageRequest)],
    ) -> Result<Vec<&'r StageRequest>, EngineError> {
        let mut ordered = vec![None; self.members.len()];
        for (service, request) in requests {
            let i = self.index(service).ok_or_else(|| {
                EngineError::Usage(format!("{service} is not a member of this train"))
            })?;
            ordered[i] = Some(request);
        }
        ordered
            .into_iter()
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| {
                EngineError::Usage("every member of the train needs a release to stage".into())
            })
    }

    async fn stage_locked(
        &self,
        leases: &[Lease],
        requests: &[&StageRequest],
        started: tokio::time::Instant,
    ) -> Result<Vec<MemberOutcome>, TrainOutcome> {
        let results: Vec<Result<Staged, EngineError>> = join_all(
            self.members
                .iter()
                .zip(leases)
                .zip(requests)
                .map(|((m, lease), request)| m.engine.stage_member(lease, request)),
        )
        .await;
        let failed: Vec<&str> = self
            .members
            .iter()
            .zip(&results)
            .filter(|(_, r)| r.is_err())
            .map(|(m, _)| m.service.as_str())
            .collect();
        let culprits = failed.join(", ");
        let mut members = Vec::new();
        let mut errors = Vec::new();
        for (((m, lease), request), r) in self.members.iter().zip(leases).zip(requests).zip(results)
        {
            let to = Some(request.spec.version.clone());
            let outcome = match r {
                Ok(staged) if failed.is_empty() || staged.already_live => MemberOutcome {
                    service: m.service.clone(),
                    detail: staged.checked(),
                    from: staged.from,
                    to,
                    status: if staged.already_live {
                        Status::Promoted
                    } else {
                        Status::AwaitingApproval
                    },
                    seconds: started.elapsed().as_secs(),
                },
                Ok(staged) => {
                    // Validated, but the train failed: recorded Failed so that nobody
                    // promotes half a train; production never moved.
                    let detail = format!(
                        "{}, but the train failed ({culprits} did not stage); production traffic was not moved",
                        staged.checked()
                    );
                    m.engine
                        .report(Status::Failed, to.as_ref(), staged.idle, detail.clone());
                    let _ = m
                        .engine
                        .uncancellable()
                        .record(lease, &staged.release, Status::Failed)
                        .await;
                    MemberOutcome {
                        service: m.service.clone(),
                        from: staged.from,
                        to,
                        status: Status::Failed,
                        detail,
                        seconds: started.elapsed().as_secs(),
                    }
                }
                Err(e) => {
                    let detail = e.to_string();
                    errors.push(named(&m.service, e));
                    MemberOutcome {
                        service: m.service.clone(),
                        from: None,
                        to,
                        status: Status::Failed,
                        detail,
                        seconds: started.elapsed().as_secs(),
                    }
                }
            };
            members.push(outcome);
        }
        if errors.is_empty() {
            return Ok(members);
        }
        Err(conclude(members, errors, Status::AwaitingApproval))
    }
}

/// A member staged, web service or worker alike.
struct Staged {
    release: crate::ports::Release,
    from: Option<Version>,
    already_live: bool,
    /// Where it was checked: the idle slot it validated on (None: a worker, which rolls
    /// in place with the train).
    idle: Option<crate::ports::Slot>,
}

impl Staged {
    fn checked(&self) -> String {
        match self.idle {
            Some(idle) => format!("validated on {idle}"),
            None => "registered; rolls in place with the train".into(),
        }
    }
}

impl<C: Cloud> Engine<'_, C> {
    async fn stage_member(
        &self,
        lease: &Lease,
        request: &StageRequest,
    ) -> Result<Staged, EngineError> {
        if self.is_worker() {
            let w = self.stage_worker(lease, &request.spec).await?;
            return Ok(Staged {
                release: w.release,
                from: w.from,
                already_live: w.already_live,
                idle: None,
            });
        }
        let s: StageOutcome = self.stage_locked(lease, request).await?;
        Ok(Staged {
            release: s.release,
            from: s.from,
            already_live: s.already_live,
            idle: Some(s.plan.idle),
        })
    }

    /// A release staged by a train moves with its whole train (issue 17.3): promoting it
    /// with fewer members (or others) would run production on half a release. `on`: where
    /// it is staged, for the message.
    pub(super) fn staged_by_this_train(
        &self,
        release: &crate::ports::Release,
        on: &str,
    ) -> Result<(), EngineError> {
        let train = &release.train;
        if train.len() > 1 && *train != self.train {
            return Err(EngineError::Usage(format!(
                "{} on {on} was staged as one train of {}: promote the train together \
                 (--service {}), or stage this service again on its own",
                release.version,
                train.join(", "),
                train.join(",")
            )));
        }
        Ok(())
    }

    /// The version production runs (read without the lock), for a member's "from".
    async fn live_version(&self) -> Option<Version> {
        if self.is_worker() {
            let state = self.cloud.read_slot(super::worker::SERVICE).await.ok()?;
            return state.task_definition.map(|t| t.spec.version);
        }
        let o = self.observe().await.ok()?;
        o.weights.live().and_then(|s| o.slot(s).version().cloned())
    }

    /// A train rollback of this member: a web service to its previous good release (or
    /// `to`), a worker to its previous task definition (or `to`'s) in place.
    async fn rollback_member(
        &self,
        lease: &Lease,
        to: Option<&Version>,
    ) -> Result<super::RollbackOutcome, EngineError> {
        if self.is_worker() {
            self.rollback_worker(lease, to).await
        } else {
            self.rollback_locked(lease, to).await
        }
    }
}

/// Nest every lease's `hold` around `work`, so each member's heartbeat renews its lock
/// while the train works (all in this task, as the single-service engine does).
fn hold_all<'f, C: Cloud, T: 'f>(
    members: &'f [Member<'_, C>],
    leases: &'f [Lease],
    work: LocalBoxFuture<'f, Result<T, EngineError>>,
) -> LocalBoxFuture<'f, Result<T, EngineError>> {
    match (members.split_first(), leases.split_first()) {
        (Some((m, members)), Some((lease, leases))) => {
            Box::pin(async move { lease.hold(&m.engine, hold_all(members, leases, work)).await })
        }
        _ => work,
    }
}

/// The train's one status and error from its members' ends: RollbackFailed naming every
/// stranded member above all; else the first member error (a cancel wins over a failure,
/// so the exit code says so); `goal` when nothing failed.
pub(super) fn conclude(
    members: Vec<MemberOutcome>,
    mut errors: Vec<EngineError>,
    goal: Status,
) -> TrainOutcome {
    let stranded: Vec<&str> = members
        .iter()
        .filter(|m| m.status == Status::RollbackFailed)
        .map(|m| m.service.as_str())
        .collect();
    if !stranded.is_empty() {
        let reasons: Vec<String> = errors.iter().map(ToString::to_string).collect();
        let error = EngineError::RollbackFailed {
            reason: format!(
                "train members not back on their release from before the train: {}; {}",
                stranded.join(", "),
                reasons.join("; ")
            ),
        };
        return TrainOutcome {
            status: Status::RollbackFailed,
            members,
            error: Some(error),
            id: None,
        };
    }
    if errors.is_empty() {
        return TrainOutcome {
            status: goal,
            members,
            error: None,
            id: None,
        };
    }
    let moved = members.iter().any(|m| m.status == Status::RolledBack);
    let pick = errors
        .iter()
        .position(|e| matches!(e, EngineError::Cancelled { .. }))
        .unwrap_or(0);
    let error = errors.swap_remove(pick);
    TrainOutcome {
        status: if moved {
            Status::RolledBack
        } else {
            Status::Failed
        },
        members,
        error: Some(error),
        id: None,
    }
}
