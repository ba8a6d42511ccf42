//! Running one command in one container through the API server (pods/exec over WebSocket), with a
//! time limit, and collecting what it printed.

use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, AttachParams};
use tokio::io::AsyncReadExt;

/// What a finished exec printed.
#[derive(Debug, Clone)]
pub struct ExecOutput {
    pub stdout: String,
    pub stderr: String,
    /// `None` when the command exited 0; else how it failed.
    pub failure: Option<CommandFailure>,
}

/// How a command that ran ended without success, as the server's exec status says.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandFailure {
    /// The status's `ExitCode` cause.
    #[error("exit code {0}")]
    Exit(String),
    /// No exit code: the status's reason, else its message (at most 200 characters).
    #[error("{0}")]
    Status(String),
    #[error("the command failed")]
    Unknown,
}

/// Why an exec gave no output.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ExecError {
    #[error("exec into pod {namespace}/{name} did not finish within {secs:.0}s")]
    Timeout {
        namespace: String,
        name: String,
        secs: f64,
    },
    /// 404: the pod no longer exists.
    #[error(
        "exec into pod {namespace}/{name} failed: pod {namespace}/{name} is gone (404 Not Found)"
    )]
    Gone { namespace: String, name: String },
    /// A refused upgrade with code 403 and no Status to quote.
    #[error("exec into pod {namespace}/{name} failed: not allowed to exec into pods in namespace {namespace} (403 Forbidden: needs the create verb on pods/exec)")]
    Forbidden { namespace: String, name: String },
    /// The server answered with an error status (`code`); `message` is its message, or the
    /// sentence for a request it kept throttling.
    #[error("exec into pod {namespace}/{name} failed: {message}")]
    Refused {
        namespace: String,
        name: String,
        code: u16,
        message: String,
    },
    /// No answer from the server (connection, TLS, upgrade): the innermost cause.
    #[error("exec into pod {namespace}/{name} failed: {reason}")]
    Connection {
        namespace: String,
        name: String,
        reason: String,
    },
    /// The exec started but its output could not be taken.
    #[error("exec into pod {namespace}/{name} failed: {output}")]
    Output {
        namespace: String,
        name: String,
        output: OutputError,
    },
}

impl ExecError {
    /// Whether the exec failed because its pod no longer exists.
    pub fn pod_gone(&self) -> bool {
        matches!(self, ExecError::Gone { .. })
    }

    /// Whether the server refused the exec with 403.
    pub fn forbidden(&self) -> bool {
        matches!(
            self,
            ExecError::Forbidden { .. } | ExecError::Refused { code: 403, .. }
        )
    }
}

/// Why a started exec's output was not taken.
#[derive(Debug, Clone, thiserror::Error)]
pub enum OutputError {
    #[error("the exec stream has no stdout or stderr")]
    NoStreams,
    #[error("reading its output: {0}")]
    Read(std::sync::Arc<std::io::Error>),
    #[error(
        "it printed more than {mib} MiB, far more than a node probe prints; the output was dropped"
    )]
    TooLarge { mib: u64 },
}

/// Run `argv` in `container` of pod `ns/name`; give up after `timeout`.
pub async fn run(
    client: &kube::Client,
    ns: &str,
    name: &str,
    container: &str,
    argv: Vec<String>,
    timeout: Duration,
) -> Result<ExecOutput, ExecError> {
    let api: Api<Pod> = Api::namespaced(client.clone(), ns);
    let output_error = |output| ExecError::Output {
        namespace: ns.to_string(),
        name: name.to_string(),
        output,
    };
    let work = async {
        let params = AttachParams::default()
            .container(container)
            .stdin(false)
            .stdout(true)
            .stderr(true);
        let mut proc = api
            .exec(name, argv, &params)
            .await
            .map_err(|e| refused(&e, ns, name))?;
        let (Some(out), Some(err)) = (proc.stdout(), proc.stderr()) else {
            return Err(output_error(OutputError::NoStreams));
        };
        let status = proc.take_status();
        let (mut o, mut e) = (Vec::new(), Vec::new());
        let (r1, r2) = tokio::join!(
            read_capped(out, &mut o, MAX_STDOUT_BYTES),
            read_capped(err, &mut e, MAX_STDERR_BYTES)
        );
        r1.and(r2).map_err(output_error)?;
        let st = match status {
            Some(s) => s.await,
            None => None,
        };
        let _ = proc.join().await;
        let failure = match st {
            Some(s) if s.status.as_deref() == Some("Success") => None,
            Some(s) => Some(failure(s)),
            None => None,
        };
        Ok(ExecOutput {
            stdout: String::from_utf8_lossy(&o).into_owned(),
            stderr: String::from_utf8_lossy(&e).into_owned(),
            failure,
        })
    };
    match tokio::time::timeout(timeout, work).await {
        Ok(r) => r,
        Err(_) => Err(ExecError::Timeout {
            namespace: ns.to_string(),
            name: name.to_string(),
            secs: timeout.as_secs_f64(),
        }),
    }
}

/// The most a command may print on stdout: a node probe prints a few kB per pod and a kernel
/// log at most the kernel's ring buffer (`log_buf_len` tops out at 32 MiB); past this the output
/// is no probe's, and reading on would let one node fill this machine's memory.
pub const MAX_STDOUT_BYTES: u64 = 64 << 20;
/// The most kept of stderr (it only ever goes into one error sentence).
pub const MAX_STDERR_BYTES: u64 = 1 << 20;

/// Read `stream` to its end into `buf`, or fail once it holds more than `cap` bytes.
async fn read_capped(
    stream: impl tokio::io::AsyncRead + Unpin,
    buf: &mut Vec<u8>,
    cap: u64,
) -> Result<(), OutputError> {
    let read = stream
        .take(cap + 1)
        .read_to_end(buf)
        .await
        .map_err(|e| OutputError::Read(std::sync::Arc::new(e)))?;
    if read as u64 > cap {
        return Err(OutputError::TooLarge { mib: cap >> 20 });
    }
    Ok(())
}

/// Why the server would not start an exec, from its status code. kube-rs hands over the
/// server's Status when there is one (its message names the verb, resource and user of a 403);
/// a bare refused upgrade only has its code.
fn refused(e: &kube::Error, ns: &str, name: &str) -> ExecError {
    use kube::client::UpgradeConnectionError::ProtocolSwitch;
    let (namespace, name) = (ns.to_string(), name.to_string());
    let code = match e {
        kube::Error::Api(s) => s.code,
        kube::Error::UpgradeConnection(ProtocolSwitch(code)) => code.as_u16(),
        _ => 0,
    };
    match (code, e) {
        (404, _) => ExecError::Gone { namespace, name },
        (403, kube::Error::UpgradeConnection(_)) => ExecError::Forbidden { namespace, name },
        (429, kube::Error::UpgradeConnection(_)) => ExecError::Refused {
            namespace,
            name,
            code,
            message: crate::cluster::retry::throttled_sentence(&kube::Error::Api(
                kube::core::Status::failure("", "TooManyRequests")
                    .with_code(429)
                    .boxed(),
            ))
            .unwrap_or_default(),
        },
        (0, _) => ExecError::Connection {
            namespace,
            name,
            reason: kube_message(e),
        },
        _ => ExecError::Refused {
            namespace,
            name,
            code,
            message: kube_message(e),
        },
    }
}

/// A failed command's status: `exit code 1`, else the server's reason.
fn failure(s: k8s_openapi::apimachinery::pkg::apis::meta::v1::Status) -> CommandFailure {
    let code = s
        .details
        .as_ref()
        .and_then(|d| d.causes.as_ref())
        .and_then(|c| c.iter().find(|c| c.reason.as_deref() == Some("ExitCode")))
        .and_then(|c| c.message.clone());
    match code {
        Some(c) => CommandFailure::Exit(c),
        None => s
            .reason
            .filter(|r| !r.is_empty())
            .or(s.message)
            .map(|m| CommandFailure::Status(m.chars().take(200).collect()))
            .unwrap_or(CommandFailure::Unknown),
    }
}

/// The server's message for a refused request, else the innermost cause.
pub fn kube_message(e: &kube::Error) -> String {
    if let Some(sentence) = crate::cluster::retry::throttled_sentence(e) {
        return sentence;
    }
    match e {
        kube::Error::Api(s) if !s.message.is_empty() => s.message.clone(),
        kube::Error::Api(s) => format!("{} {}", s.code, s.reason),
        other => crate::cluster::connect::root_cause(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn output_past_the_cap_is_an_error_not_memory() {
        let mut buf = Vec::new();
        read_capped(&[7u8; 100][..], &mut buf, 100).await.unwrap();
        assert_eq!(buf.len(), 100);
        // An endless stream stops one byte past the cap.
        let mut buf = Vec::new();
        let e = read_capped(tokio::io::repeat(b'x'), &mut buf, 2 << 20)
            .await
            .unwrap_err();
        assert_eq!(buf.len(), (2 << 20) + 1);
        assert_eq!(
            e.to_string(),
            "it printed more than 2 MiB, far more than a node probe prints; the output was dropped"
        );
    }
}
