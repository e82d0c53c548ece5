//! AWS errors → the engine's typed errors, by error code and transport outcome, never by
//! message text. Every error keeps the AWS request id and says which IAM action on which
//! resource was refused, so "access denied" can be fixed without guessing.

use aws_sdk_ecs::error::{ProvideErrorMetadata, SdkError};

use crate::ports::PortError;

/// The call being made, for messages: the IAM action and the resource it acts on.
#[derive(Debug, Clone, Copy)]
pub struct Call<'a> {
    /// IAM action, e.g. `ecs:UpdateService`.
    pub action: &'a str,
    /// ARN or name of the resource.
    pub resource: &'a str,
    /// Writes whose outcome is unknown after a transport failure are `Ambiguous`: the
    /// engine re-reads before deciding. Reads are simply `Transient`.
    pub write: bool,
}

const THROTTLING: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "RequestThrottled",
    "RequestThrottledException",
    "ProvisionedThroughputExceededException",
    "SlowDown",
    "PriorRequestNotComplete",
];
const ACCESS_DENIED: &[&str] = &[
    "AccessDenied",
    "AccessDeniedException",
    "UnauthorizedOperation",
    "UnrecognizedClientException",
    "InvalidClientTokenId",
    "ExpiredToken",
    "ExpiredTokenException",
    "AuthFailure",
];
const NOT_FOUND: &[&str] = &[
    "ClusterNotFoundException",
    "ServiceNotFoundException",
    "ServiceNotActiveException",
    "ListenerNotFound",
    "RuleNotFound",
    "TargetGroupNotFound",
    "LoadBalancerNotFound",
    "ParameterNotFound",
    "ParameterVersionNotFound",
    "ImageNotFoundException",
    "RepositoryNotFoundException",
    "ResourceNotFound",
    "ResourceNotFoundException",
    "NoSuchEntity",
];
const CONFLICT: &[&str] = &[
    "ParameterAlreadyExists",
    "ConcurrentModificationException",
    "ResourceInUse",
    "ResourceInUseException",
    "UpdateInProgressException",
];

/// Map any SDK error. `E` is the operation's error type.
pub fn port_error<E, R>(call: Call<'_>, err: SdkError<E, R>) -> PortError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug,
{
    let what = format!("{} on {}", call.action, call.resource);
    match &err {
        SdkError::ServiceError(service) => {
            let e = service.err();
            let code = e.code().unwrap_or("Unknown");
            let request_id = e
                .meta()
                .extra("aws_request_id")
                .or_else(|| e.meta().extra("request_id"));
            let mut message = format!("{what}: {code}: {}", e.message().unwrap_or("no message"));
            if let Some(id) = request_id {
                message.push_str(&format!(" (request id {id})"));
            }
            classify(code, message, call)
        }
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            let message = format!("{what}: {}", aws_sdk_ecs::error::DisplayErrorContext(&err));
            if call.write {
                PortError::Ambiguous(message)
            } else {
                PortError::Transient(message)
            }
        }
        // Construction failures are bugs or bad input on our side: not worth a retry.
        _ => PortError::Conflict(format!(
            "{what}: {}",
            aws_sdk_ecs::error::DisplayErrorContext(&err)
        )),
    }
}

fn classify(code: &str, message: String, call: Call<'_>) -> PortError {
    if THROTTLING.contains(&code) {
        PortError::Throttled(message)
    } else if ACCESS_DENIED.contains(&code) {
        PortError::AccessDenied(format!(
            "{message}. Allow `{}` on `{}` in the deploy role (terraform/README.md lists every permission)",
            call.action, call.resource
        ))
    } else if NOT_FOUND.contains(&code) {
        PortError::NotFound(message)
    } else if CONFLICT.contains(&code) {
        PortError::Conflict(message)
    } else if code.starts_with("InternalFailure")
        || code.starts_with("ServiceUnavailable")
        || code == "ServerException"
        || code == "InternalError"
        || code == "InternalServerError"
    {
        // A 5xx after the request reached AWS: a write may have applied.
        if call.write {
            PortError::Ambiguous(message)
        } else {
            PortError::Transient(message)
        }
    } else {
        // Validation and other client errors: retrying will not help; the message says why.
        PortError::Conflict(message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WRITE: Call<'static> = Call {
        action: "ecs:UpdateService",
        resource: "arn:svc",
        write: true,
    };

    #[test]
    fn classifies_by_code() {
        assert!(matches!(
            classify("ThrottlingException", "m".into(), WRITE),
            PortError::Throttled(_)
        ));
        assert!(matches!(
            classify("ParameterAlreadyExists", "m".into(), WRITE),
            PortError::Conflict(_)
        ));
        assert!(matches!(
            classify("ServiceNotFoundException", "m".into(), WRITE),
            PortError::NotFound(_)
        ));
        assert!(matches!(
            classify("InternalFailure", "m".into(), WRITE),
            PortError::Ambiguous(_)
        ));
        let read = Call {
            write: false,
            ..WRITE
        };
        assert!(matches!(
            classify("InternalFailure", "m".into(), read),
            PortError::Transient(_)
        ));
    }

    #[test]
    fn access_denied_names_action_and_resource() {
        let PortError::AccessDenied(m) = classify("AccessDeniedException", "x".into(), WRITE)
        else {
            panic!()
        };
        assert!(
            m.contains("`ecs:UpdateService`") && m.contains("`arn:svc`"),
            "{m}"
        );
    }
}
