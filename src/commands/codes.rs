//! The one place errors become exit codes (README's table): library modules return their
//! own typed errors and know nothing of exit codes; `main` asks here once a command ends.

use std::error::Error;

use super::action::InputError;
use crate::aws::CredentialsError;
use crate::config::ConfigError;
use crate::config::settings::UnknownStrategy;
use crate::engine::EngineError;
use crate::exit::{Coded, ExitCode};
use crate::image::ImageError;
use crate::ports::PortError;
use crate::version::VersionError;

/// The exit code for an error: the first cause in the chain that has one wins; anything
/// else is a failure with production untouched (exit 1).
pub fn exit_code(err: &anyhow::Error) -> ExitCode {
    err.chain().find_map(code_of).unwrap_or(ExitCode::Failed)
}

/// The error as one line for people: each cause's message once. `{err:#}` repeats a cause
/// that an outer message already quotes (an engine error carries its port error both in
/// its text and as its source), which made AWS errors read twice on one line.
pub fn error_text(err: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in err.chain() {
        let part = cause.to_string();
        let part = part.trim();
        if part.is_empty() || text.contains(part) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(part);
    }
    text
}

fn code_of(cause: &(dyn Error + 'static)) -> Option<ExitCode> {
    if let Some(coded) = cause.downcast_ref::<Coded>() {
        return Some(coded.code);
    }
    if let Some(engine) = cause.downcast_ref::<EngineError>() {
        return Some(engine_code(engine));
    }
    if let Some(image) = cause.downcast_ref::<ImageError>() {
        return Some(match image {
            ImageError::Input(_) => ExitCode::Usage,
            ImageError::Failed(_) => ExitCode::BuildFailed,
        });
    }
    let usage = cause.is::<ConfigError>()
        || cause.is::<VersionError>()
        || cause.is::<InputError>()
        || cause.is::<UnknownStrategy>()
        || cause.is::<CredentialsError>();
    usage.then_some(ExitCode::Usage)
}

fn engine_code(err: &EngineError) -> ExitCode {
    match err {
        EngineError::LockHeld { .. } => ExitCode::LockHeld,
        EngineError::VersionMismatch { .. }
        | EngineError::Usage(_)
        | EngineError::Miswired(_)
        | EngineError::Port {
            source: PortError::Miswired(_),
            ..
        } => ExitCode::Usage,
        EngineError::RollbackFailed { .. } => ExitCode::RollbackFailed,
        EngineError::Cancelled { .. } => ExitCode::Cancelled,
        EngineError::LockLost { .. }
        | EngineError::Failed { .. }
        | EngineError::RolledBack { .. }
        | EngineError::Port { .. } => ExitCode::Failed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::settings::StrategyKind;
    use crate::model::Slot;
    use crate::version::Version;

    fn code(err: impl Into<anyhow::Error>) -> ExitCode {
        // Wrapped in context as the commands do: the code still comes through.
        exit_code(&err.into().context("stage production/web"))
    }

    #[test]
    fn an_error_reads_each_cause_once() {
        let err = anyhow::Error::from(EngineError::Port {
            what: "read the release history".into(),
            source: PortError::Transient("ssm:GetParameters: Connection refused".into()),
        })
        .context("status production/web");
        assert_eq!(
            error_text(&err),
            "status production/web: read the release history: temporary failure: ssm:GetParameters: Connection refused"
        );
    }

    #[test]
    fn exit_0_is_success_and_never_an_error() {
        assert_eq!(ExitCode::Ok.code(), 0);
    }

    #[test]
    fn exit_1_deploy_failed_or_anything_unclassified() {
        assert_eq!(code(anyhow::anyhow!("something odd")), ExitCode::Failed);
        let failed = EngineError::Failed {
            status_reached: "Validating".into(),
            reason: "probe".into(),
        };
        assert_eq!(code(failed), ExitCode::Failed);
        let rolled = EngineError::RolledBack {
            slot: Slot::Blue,
            reason: "alarm".into(),
        };
        assert_eq!(code(rolled), ExitCode::Failed);
        assert_eq!(
            code(EngineError::LockLost { detail: "x".into() }),
            ExitCode::Failed
        );
        assert_eq!(ExitCode::Failed.code(), 1);
    }

    #[test]
    fn exit_2_usage_config_version_input_and_strategy() {
        let usage: Vec<anyhow::Error> = vec![
            ConfigError::new("deploy/services/web/service.toml", "bad").into(),
            Version::parse("main").unwrap_err().into(),
            InputError {
                input: "tag",
                problem: "x".into(),
            }
            .into(),
            "big-bang".parse::<StrategyKind>().unwrap_err().into(),
            ImageError::Input("no Dockerfile".into()).into(),
            CredentialsError::Missing {
                detail: "none".into(),
            }
            .into(),
            EngineError::Usage("no earlier good release".into()).into(),
            EngineError::VersionMismatch {
                staged: None,
                asked: Version::parse("v1.0.0").unwrap(),
            }
            .into(),
            Coded::new(ExitCode::Usage, "verify failed").into(),
            EngineError::Miswired("slot".into()).into(),
            EngineError::Port {
                what: "read production weights".into(),
                source: PortError::Miswired("a third target group".into()),
            }
            .into(),
        ];
        for err in usage {
            let text = err.to_string();
            assert_eq!(code(err), ExitCode::Usage, "{text}");
        }
        assert_eq!(ExitCode::Usage.code(), 2);
    }

    #[test]
    fn exit_3_rollback_failed() {
        let err = EngineError::RollbackFailed { reason: "x".into() };
        assert_eq!(code(err), ExitCode::RollbackFailed);
        assert_eq!(ExitCode::RollbackFailed.code(), 3);
    }

    #[test]
    fn exit_4_image_build_or_push_failed() {
        assert_eq!(
            code(ImageError::Failed("push refused".into())),
            ExitCode::BuildFailed
        );
        assert_eq!(ExitCode::BuildFailed.code(), 4);
    }

    #[test]
    fn exit_5_lock_held() {
        let err = EngineError::LockHeld {
            holder: "ci".into(),
            age_secs: 1,
            expires_in_secs: 2,
        };
        assert_eq!(code(err), ExitCode::LockHeld);
        assert_eq!(ExitCode::LockHeld.code(), 5);
    }

    #[test]
    fn exit_130_cancelled() {
        let err = EngineError::Cancelled { detail: "x".into() };
        assert_eq!(code(err), ExitCode::Cancelled);
        assert_eq!(
            code(Coded::new(ExitCode::Cancelled, "during the build")),
            ExitCode::Cancelled
        );
        assert_eq!(ExitCode::Cancelled.code(), 130);
    }
}
