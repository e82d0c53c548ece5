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
        R: std::fmt::Debug + 'static,
    {
        // `-vv` and finer: every AWS call by action and resource (names and ARNs only).
        tracing::trace!(action = self.action, resource = self.resource, "aws call");
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

/// Map any SDK error. `E` is the operation's error type.
fn port_error<E, R>(call: Call<'_>, err: SdkError<E, R>) -> PortError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + 'static,
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
        // Connection refused or reset, DNS, TLS, a timeout: the causes' messages, never
        // the SDK's Debug output (`DisplayErrorContext` appends it).
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            call.unsure(format!("{what}: {}", chain_text(&err)))
        }
        // Construction failures are bugs or bad input on our side: not worth a retry.
        _ => PortError::Conflict(format!("{what}: {}", chain_text(&err))),
    }
}

/// An error and its causes as one line of their messages (`a: b: c`), a cause left out
/// when an outer message already quotes it. Never Debug text.
pub(crate) fn chain_text(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = String::new();
    let mut cause = Some(err);
    while let Some(e) = cause {
        let part = e.to_string();
        let part = part.trim();
        if !part.is_empty() && !text.contains(part) {
            if !text.is_empty() {
                text.push_str(": ");
            }
            text.push_str(part);
        }
        cause = e.source();
    }
    text
}

/// The class comes from the rule the simulation shares ([`PortError::from_code`]); here
/// the messages gain what only the adapter knows: the IAM action and resource.
fn classify(code: &str, message: String, call: Call<'_>) -> PortError {
    match PortError::from_code(code, message, call.write) {
        PortError::AccessDenied(message) => PortError::AccessDenied(format!(
            "{message}. Allow `{}` on `{}` in the deploy role (terraform/README.md lists every permission)",
            call.action, call.resource
        )),
        PortError::CredentialsExpired(message) => {
            PortError::CredentialsExpired(format!("{message} ({})", call.action))
        }
        other => other,
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
            ("TooManyUpdates", write, PortError::Throttled(m())),
            ("InternalServiceFault", read, PortError::Transient(m())),
            ("RequestTimeout", write, PortError::Ambiguous(m())),
        ] {
            assert_eq!(classify(code, m(), call), class, "{code}");
        }
    }

    #[test]
    fn an_expired_token_is_not_access_denied_and_says_how_to_get_longer_sessions() {
        let call = Call::read("ssm:GetParameters", "/cutover/p/web/history");
        for code in ["ExpiredToken", "ExpiredTokenException", "RequestExpired"] {
            let err = classify(code, "m".into(), call);
            assert!(matches!(err, PortError::CredentialsExpired(_)), "{code}");
            assert!(!err.is_retryable(), "{code}");
            let text = err.to_string();
            assert!(text.contains("role-duration-seconds"), "{text}");
            assert!(text.contains("max_session_duration"), "{text}");
        }
    }

    #[test]
    fn a_transport_error_reads_as_its_causes_without_debug_text() {
        #[derive(Debug)]
        struct Outer(Inner);
        #[derive(Debug)]
        struct Inner;
        impl std::fmt::Display for Outer {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "dispatch failure")
            }
        }
        impl std::fmt::Display for Inner {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "Connection refused")
            }
        }
        impl std::error::Error for Inner {}
        impl std::error::Error for Outer {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                Some(&self.0)
            }
        }
        assert_eq!(
            chain_text(&Outer(Inner)),
            "dispatch failure: Connection refused"
        );
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
