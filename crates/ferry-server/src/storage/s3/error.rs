//! [`S3Error`]: what a request to the object store can end in.

/// Why an S3 request failed. Messages never hold a secret (requests are signed in headers, and
/// the store's error messages do not echo them).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum S3Error {
    /// No such object (`NoSuchKey`, or a 404 without a body).
    #[error("no such object")]
    NotFound,
    /// The bucket does not exist (`NoSuchBucket`).
    #[error("no such bucket")]
    NoSuchBucket,
    /// The store refused the key or the signature (`AccessDenied`, `InvalidAccessKeyId`,
    /// `SignatureDoesNotMatch`, or a bare 403): `code: message`.
    #[error("access denied: {0}")]
    AccessDenied(String),
    /// A condition of the request did not hold (412).
    #[error("precondition failed")]
    PreconditionFailed,
    /// The multipart upload does not exist (aborted, completed or never created).
    #[error("no such multipart upload")]
    NoSuchUpload,
    /// The store could not be reached (the connection failed): the request was not sent.
    #[error("object store unreachable: {0}")]
    Unreachable(String),
    /// Any other error answer of the store.
    #[error("object store error {status} {code}: {message}")]
    Status {
        status: u16,
        code: String,
        message: String,
    },
    /// The connection failed during the exchange, or timed out.
    #[error("object store transport error: {0}")]
    Transport(String),
    /// An answer that does not make sense (unparsable XML, a missing header, ...).
    #[error("bad answer from the object store: {0}")]
    BadResponse(String),
    /// A key or argument the client refuses to send (see the function's documentation).
    #[error("invalid request: {0}")]
    Invalid(String),
}

impl S3Error {
    /// Whether the same request may well succeed if sent again: transport failures, timeouts,
    /// 500/502/503/504, 429 and `SlowDown`.
    pub fn is_transient(&self) -> bool {
        match self {
            S3Error::Unreachable(_) | S3Error::Transport(_) => true,
            S3Error::Status { status, code, .. } => {
                matches!(status, 429 | 500 | 502 | 503 | 504)
                    || matches!(
                        code.as_str(),
                        "SlowDown" | "InternalError" | "ServiceUnavailable"
                    )
            }
            _ => false,
        }
    }

    /// The error an error answer stands for: its status and, when it has a body, the `Code`
    /// and `Message` of the `<Error>` document.
    pub(crate) fn from_answer(status: u16, code: &str, message: &str) -> S3Error {
        let described = || match code {
            "" => format!("HTTP {status}"),
            _ => format!("{code}: {message}"),
        };
        match code {
            "NoSuchKey" => return S3Error::NotFound,
            "NoSuchBucket" => return S3Error::NoSuchBucket,
            "NoSuchUpload" => return S3Error::NoSuchUpload,
            "PreconditionFailed" => return S3Error::PreconditionFailed,
            "AccessDenied" | "InvalidAccessKeyId" | "SignatureDoesNotMatch" => {
                return S3Error::AccessDenied(described())
            }
            _ => {}
        }
        match status {
            404 if code.is_empty() => S3Error::NotFound,
            412 => S3Error::PreconditionFailed,
            403 => S3Error::AccessDenied(described()),
            _ => S3Error::Status {
                status,
                code: code.to_string(),
                message: message.to_string(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_answers_to_variants() {
        assert_eq!(
            S3Error::from_answer(404, "NoSuchKey", "x"),
            S3Error::NotFound
        );
        assert_eq!(S3Error::from_answer(404, "", ""), S3Error::NotFound);
        assert_eq!(
            S3Error::from_answer(404, "NoSuchBucket", "x"),
            S3Error::NoSuchBucket
        );
        assert_eq!(
            S3Error::from_answer(404, "NoSuchUpload", "x"),
            S3Error::NoSuchUpload
        );
        assert_eq!(
            S3Error::from_answer(412, "", ""),
            S3Error::PreconditionFailed
        );
        assert!(matches!(
            S3Error::from_answer(403, "InvalidAccessKeyId", "unknown"),
            S3Error::AccessDenied(m) if m == "InvalidAccessKeyId: unknown"
        ));
        assert!(matches!(
            S3Error::from_answer(400, "SignatureDoesNotMatch", ""),
            S3Error::AccessDenied(_)
        ));
        assert_eq!(
            S3Error::from_answer(403, "", ""),
            S3Error::AccessDenied("HTTP 403".into())
        );
    }

    #[test]
    fn knows_what_is_worth_a_retry() {
        for status in [429, 500, 502, 503, 504] {
            assert!(
                S3Error::from_answer(status, "", "").is_transient(),
                "{status}"
            );
        }
        assert!(S3Error::from_answer(400, "SlowDown", "").is_transient());
        assert!(S3Error::Transport("reset".into()).is_transient());
        assert!(S3Error::Unreachable("refused".into()).is_transient());
        assert!(!S3Error::from_answer(400, "InvalidRequest", "").is_transient());
        assert!(!S3Error::NotFound.is_transient());
        assert!(!S3Error::BadResponse("x".into()).is_transient());
    }
}
