//! AWS errors → the engine's typed errors, by error code and transport outcome, never by
//! message text. Every error keeps the AWS request id and says which IAM action on which
//! resource was refused, so "access denied" can be fixed without guessing.

use aws_sdk_ecs::error::{ProvideErrorMetadata, SdkError};

use crate::ports::{PortError, PortResult};

/// The call being made, for messages: the IAM action and the resource it acts on.
#[derive(Debug, Clone, Copy)]
pub struct Call<'a> {
    /// IAM action, e.g. `ecs:UpdateService`.
    action: &'a str,
    /// ARN or name of the resource.
    resource: &'a str,
    /// Writes whose outcome is unknown after a transport failure are `Ambiguous`: the
    /// engine re-reads before deciding. Reads are simply `Transient`.
    write: bool,
}

impl<'a> Call<'a> {
    pub fn read(action: &'a str, resource: &'a str) -> Self {
        Self {
            action,
            resource,
            write: false,
        }
    }

    pub fn write(action: &'a str, resource: &'a str) -> Self {
        Self {
            action,
            resource,
            write: true,
        }
    }

    /// Await the SDK's `send()` and map its error into the engine's.
    pub async fn send<T, E, R>(
        self,
        sent: impl Future<Output = Result<T, SdkError<E, R>>>,
    ) -> PortResult<T>
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
        R: std::fmt::Debug,
    {
        sent.await.map_err(|e| port_error(self, e))
    }

    /// A failure that may have happened after AWS acted: a write may have applied.
    fn unsure(self, message: String) -> PortError {
        if self.write {
            PortError::Ambiguous(message)
        } else {
            PortError::Transient(message)
        }
    }
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
fn port_error<E, R>(call: Call<'_>, err: SdkError<E, R>) -> PortError
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
            call.unsure(format!(
                "{what}: {}",
                aws_sdk_ecs::error::DisplayErrorContext(&err)
            ))
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
        call.unsure(message)
    } else {
        // Validation and other client errors: retrying will not help; the message says why.
        PortError::Conflict(message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_by_code() {
        let write = Call::write("ecs:UpdateService", "arn:svc");
        let read = Call::read("ecs:DescribeServices", "arn:svc");
        let m = || "m".to_string();
        for (code, call, class) in [
            ("ThrottlingException", write, PortError::Throttled(m())),
            ("ParameterAlreadyExists", write, PortError::Conflict(m())),
            ("ServiceNotFoundException", write, PortError::NotFound(m())),
            ("InternalFailure", write, PortError::Ambiguous(m())),
            ("InternalFailure", read, PortError::Transient(m())),
        ] {
            assert_eq!(classify(code, m(), call), class, "{code}");
        }
    }

    #[test]
    fn access_denied_names_action_and_resource() {
        let call = Call::write("ecs:UpdateService", "arn:svc");
        let PortError::AccessDenied(m) = classify("AccessDeniedException", "x".into(), call) else {
            panic!()
        };
        assert!(
            m.contains("`ecs:UpdateService`") && m.contains("`arn:svc`"),
            "{m}"
        );
    }
}
