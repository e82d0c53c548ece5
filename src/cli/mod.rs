//! Command-line surface: clap types only. Everything here is converted into the plain
//! request structs of [`crate::commands`]; no clap type reaches the library.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

mod action;

pub use action::ActionArgs;

use crate::commands::{
    BuildRequest, CleanupRequest, InitRequest, PromoteRequest, ReleaseRequest, RenderRequest,
    Request, RollbackRequest, SimulateRequest, StatusRequest, Target, Verb,
};
use crate::config::settings::StrategyKind;
use crate::image::PrebuiltImage;
use crate::version::Version;

/// Tag-to-traffic blue/green deploys for AWS ECS.
#[derive(Debug, Parser)]
#[command(name = "cutover", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    /// Folder holding environments/ and services/.
    #[arg(
        long,
        global = true,
        env = "CUTOVER_CONFIG_DIR",
        default_value = "deploy"
    )]
    pub config_dir: PathBuf,

    /// More log output (-v info, -vv debug, -vvv trace). CUTOVER_LOG / RUST_LOG override.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Scaffold a deploy/ folder with one environment and one service.
    Init(InitArgs),
    /// Compile a service's task definition and settings into build/<env>/<service>/.
    Render(RenderArgs),
    /// Show what a deploy would do, with its expected duration; changes nothing.
    Plan(PlanArgs),
    /// What a deploy would change against the live slot: task definition, settings, image.
    Diff(PlanArgs),
    /// Build the image for a tag and push it to ECR (skipped when ECR already has it).
    Build(BuildArgs),
    /// Roll a version onto the idle slot and validate it; production traffic stays put.
    Stage(StageArgs),
    /// Shift production traffic to the staged release, exactly the version named.
    Promote(PromoteArgs),
    /// Return production traffic to the previous release, or to --to <version>.
    Rollback(RollbackArgs),
    /// Build (or take --image), stage, and promote when the environment needs no approval.
    Deploy(DeployArgs),
    /// Live slot, weights, staged release, lock holder and recent history.
    Status(StatusArgs),
    /// Run this service's settings through seeded fault scenarios in virtual time: phase
    /// durations, longest split, outcomes, broken invariants. No AWS call.
    Simulate(SimulateArgs),
    /// Preflight: check that everything the service config names exists and is wired.
    Verify(TargetArgs),
    /// Break the deploy lock of an environment/service.
    Unlock(TargetArgs),
    /// List task definitions, images and an expired lock nothing references; --apply removes them.
    Cleanup(CleanupArgs),
    /// The GitHub Action's entry point: reads action.yml's inputs from INPUT_* variables.
    Action(ActionArgs),
}

#[derive(Debug, Args)]
pub struct TargetArgs {
    /// Environment: a folder under <config-dir>/environments/.
    #[arg(short, long, env = "CUTOVER_ENV")]
    pub env: String,
    /// Service: a folder under <config-dir>/services/.
    #[arg(short, long, env = "CUTOVER_SERVICE")]
    pub service: String,
}

#[derive(Debug, Args)]
pub struct TagArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// The release: v1.2.3, 1.2.3 or refs/tags/v1.2.3 (default: the pushed tag in GITHUB_REF).
    #[arg(short, long, env = "GITHUB_REF")]
    pub tag: String,
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Name of the environment to scaffold.
    #[arg(short, long, env = "CUTOVER_ENV", default_value = "production")]
    pub env: String,
    /// Name of the service to scaffold.
    #[arg(short, long, env = "CUTOVER_SERVICE", default_value = "web")]
    pub service: String,
    /// Fill service.toml from `terraform output -json` of terraform/examples/complete.
    #[arg(long, env = "CUTOVER_FROM_TERRAFORM", value_name = "FILE")]
    pub from_terraform: Option<PathBuf>,
    /// Scaffold a worker: a service with no load balancer, run as this one ECS service and
    /// rolled in place with its train (`[worker]` instead of slots and traffic).
    #[arg(long, value_name = "ECS_SERVICE")]
    pub worker: Option<String>,
}

#[derive(Debug, Args)]
pub struct RenderArgs {
    #[command(flatten)]
    pub tag: TagArgs,
    /// The image to render into the task definition (repo@sha256:… in a real deploy).
    #[arg(long, env = "CUTOVER_IMAGE")]
    pub image: String,
    /// The commit being deployed (default: GITHUB_SHA, else `unknown`).
    #[arg(long, env = "GITHUB_SHA", default_value = "unknown")]
    pub git_sha: String,
    /// Where compiled files go; the service lands in <build-root>/<env>/<service>/.
    #[arg(long, env = "CUTOVER_BUILD_ROOT", default_value = "build")]
    pub build_root: PathBuf,
}

#[derive(Debug, Args)]
pub struct BuildArgs {
    #[command(flatten)]
    pub tag: TagArgs,
    /// Rebuild and re-push even when a mutable repository holds the tag with other content.
    #[arg(long, env = "CUTOVER_FORCE_REBUILD")]
    pub force_rebuild: bool,
    /// The commit being built (default: GITHUB_SHA, else `git rev-parse HEAD`).
    #[arg(long, env = "GITHUB_SHA")]
    pub git_sha: Option<String>,
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    #[command(flatten)]
    pub tag: TagArgs,
    /// Plan for this pre-built image (repo@sha256:…); default: what the registry has for the tag.
    #[arg(long, env = "CUTOVER_IMAGE")]
    pub image: Option<String>,
}

#[derive(Debug, Args)]
pub struct StageArgs {
    #[command(flatten)]
    pub tag: TagArgs,
    /// Deploy this pre-built image (repo@sha256:…) instead of building.
    #[arg(long, env = "CUTOVER_IMAGE")]
    pub image: Option<String>,
    /// Print the plan and its expected duration; change nothing.
    #[arg(long, env = "CUTOVER_DRY_RUN")]
    pub dry_run: bool,
    /// The commit being built (default: GITHUB_SHA, else `git rev-parse HEAD`).
    #[arg(long, env = "GITHUB_SHA")]
    pub git_sha: Option<String>,
    /// Rebuild and re-push even when a mutable repository holds the tag with other content.
    #[arg(long, env = "CUTOVER_FORCE_REBUILD")]
    pub force_rebuild: bool,
    /// Override the service's strategy for this run: all-at-once, canary or linear.
    #[arg(long, env = "CUTOVER_STRATEGY", value_enum)]
    pub strategy: Option<StrategyKind>,
}

#[derive(Debug, Args)]
pub struct DeployArgs {
    #[command(flatten)]
    pub stage: StageArgs,
    #[command(flatten)]
    pub rules: RuleArgs,
}

/// `[versions]` rules added for one run.
#[derive(Debug, Args)]
pub struct RuleArgs {
    /// Refuse unless this environment promoted the very same image digest first (its bake
    /// passed); repeat or comma separate. Adds to environment.toml's [versions] rules.
    #[arg(
        long,
        env = "CUTOVER_REQUIRE_PROMOTED_IN",
        value_name = "ENV",
        value_delimiter = ','
    )]
    pub require_promoted_in: Vec<String>,
}

#[derive(Debug, Args)]
pub struct PromoteArgs {
    #[command(flatten)]
    pub tag: TagArgs,
    /// Print the plan and its expected duration; change nothing.
    #[arg(long, env = "CUTOVER_DRY_RUN")]
    pub dry_run: bool,
    /// Override the service's strategy for this run: all-at-once, canary or linear.
    #[arg(long, env = "CUTOVER_STRATEGY", value_enum)]
    pub strategy: Option<StrategyKind>,
    #[command(flatten)]
    pub rules: RuleArgs,
}

#[derive(Debug, Args)]
pub struct RollbackArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// Roll back to this version from history instead of the previous release.
    #[arg(long, env = "CUTOVER_ROLLBACK_TO")]
    pub to: Option<String>,
    /// Print the plan and its expected duration; change nothing.
    #[arg(long, env = "CUTOVER_DRY_RUN")]
    pub dry_run: bool,
}

#[derive(Debug, Args)]
pub struct CleanupArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// Remove what the listing says (default: a dry run that changes nothing).
    #[arg(long, env = "CUTOVER_APPLY")]
    pub apply: bool,
    /// Print machine-readable JSON on stdout.
    #[arg(long, env = "CUTOVER_JSON")]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// Show one release's timeline from history: every status change with its time.
    #[arg(long, env = "CUTOVER_RELEASE", value_name = "VERSION")]
    pub release: Option<String>,
    /// Print machine-readable JSON on stdout.
    #[arg(long, env = "CUTOVER_JSON")]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct SimulateArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// How many seeds (scenarios) to run.
    #[arg(long, env = "CUTOVER_SIMULATE_SEEDS", default_value_t = 1000)]
    pub seeds: u64,
    /// Run every seed in this fault profile (calm, flaky-api, never-healthy, bad-probe,
    /// flapping, alarm, incident, incident-both-slots, service-alarm, crash, race, chaos,
    /// ecs-failure…); default: cycle through them all.
    #[arg(long, env = "CUTOVER_SIMULATE_PROFILE")]
    pub profile: Option<String>,
    /// Replay one seed and print its event log (what a reported violation names).
    #[arg(long, env = "CUTOVER_SIMULATE_SEED")]
    pub seed: Option<u64>,
    /// Print machine-readable JSON on stdout.
    #[arg(long, env = "CUTOVER_JSON")]
    pub json: bool,
}

impl StageArgs {
    /// The library request; `--image` is checked to be pinned by digest here, so a bad
    /// reference is a usage error before anything runs.
    fn into_release(self, config_dir: PathBuf) -> anyhow::Result<ReleaseRequest> {
        if let Some(image) = &self.image {
            PrebuiltImage::parse(image)
                .map_err(|e| crate::image::ImageError::Input(format!("--image {e}")))?;
        }
        Ok(ReleaseRequest {
            version: Version::parse(&self.tag.tag)?,
            target: Target {
                config_dir,
                env: self.tag.target.env,
                service: self.tag.target.service,
                strategy: self.strategy,
            },
            image: self.image,
            git_sha: self.git_sha,
            force_rebuild: self.force_rebuild,
            dry_run: self.dry_run,
            require_promoted_in: Vec::new(),
        })
    }
}

impl PlanArgs {
    fn into_release(self, config_dir: PathBuf) -> anyhow::Result<ReleaseRequest> {
        StageArgs {
            tag: self.tag,
            image: self.image,
            dry_run: true,
            git_sha: None,
            force_rebuild: false,
            strategy: None,
        }
        .into_release(config_dir)
    }
}

impl Cli {
    /// `-v` count; under the action, its `log-level` input sets it (error and warn below
    /// the default, debug and trace above), unless `-v` asks for more.
    pub fn verbosity(&self) -> i8 {
        let verbose = i8::try_from(self.verbose).unwrap_or(i8::MAX);
        match &self.command {
            Command::Action(a) if verbose == 0 => a.verbosity(),
            Command::Action(a) => verbose.max(a.verbosity()),
            _ => verbose,
        }
    }

    /// Turn parsed arguments into a library request. Tags are parsed here so a bad tag is
    /// a usage error before anything else runs.
    pub fn into_request(self) -> anyhow::Result<Request> {
        let config_dir = self.config_dir;
        let target = |t: TargetArgs| Target {
            config_dir: config_dir.clone(),
            env: t.env,
            service: t.service,
            strategy: None,
        };
        Ok(match self.command {
            Command::Init(a) => Request::Init(InitRequest {
                config_dir: config_dir.clone(),
                env: a.env,
                service: a.service,
                from_terraform: a.from_terraform,
                worker: a.worker,
            }),
            Command::Render(a) => Request::Render(RenderRequest {
                version: Version::parse(&a.tag.tag)?,
                target: target(a.tag.target),
                image: a.image,
                git_sha: a.git_sha,
                build_root: a.build_root,
            }),
            Command::Plan(a) => Request::Release(Verb::Plan, a.into_release(config_dir.clone())?),
            Command::Diff(a) => Request::Release(Verb::Diff, a.into_release(config_dir.clone())?),
            Command::Build(a) => Request::Build(BuildRequest {
                version: Version::parse(&a.tag.tag)?,
                target: target(a.tag.target),
                git_sha: a.git_sha,
                force_rebuild: a.force_rebuild,
            }),
            Command::Stage(a) => Request::Release(Verb::Stage, a.into_release(config_dir.clone())?),
            Command::Deploy(a) => Request::Release(
                Verb::Deploy,
                ReleaseRequest {
                    require_promoted_in: a.rules.require_promoted_in,
                    ..a.stage.into_release(config_dir.clone())?
                },
            ),
            Command::Promote(a) => Request::Promote(PromoteRequest {
                version: Version::parse(&a.tag.tag)?,
                target: Target {
                    strategy: a.strategy,
                    ..target(a.tag.target)
                },
                dry_run: a.dry_run,
                require_promoted_in: a.rules.require_promoted_in,
            }),
            Command::Rollback(a) => Request::Rollback(RollbackRequest {
                to: a.to.as_deref().map(Version::parse).transpose()?,
                target: target(a.target),
                dry_run: a.dry_run,
            }),
            Command::Status(a) => Request::Status(StatusRequest {
                release: a.release.as_deref().map(Version::parse).transpose()?,
                target: target(a.target),
                json: a.json,
            }),
            Command::Simulate(a) => Request::Simulate(SimulateRequest {
                target: target(a.target),
                seeds: a.seeds,
                profile: a.profile,
                seed: a.seed,
                json: a.json,
            }),
            Command::Verify(a) => Request::Verify(target(a)),
            Command::Unlock(a) => Request::Unlock(target(a)),
            Command::Cleanup(a) => Request::Cleanup(CleanupRequest {
                target: target(a.target),
                apply: a.apply,
                json: a.json,
            }),
            Command::Action(a) => {
                Request::Action(a.into_request(std::env::var("GITHUB_REF").ok())?)
            }
        })
    }
}

/// `--strategy` takes the config's own enum: one spelling for clap, the action and config.
impl clap::ValueEnum for StrategyKind {
    fn value_variants<'a>() -> &'a [Self] {
        &StrategyKind::ALL
    }

    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        Some(clap::builder::PossibleValue::new(self.as_str()))
    }
}
