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
    /// `None` when the command exited 0; else the server's message (exit code, signal).
    pub failure: Option<String>,
}

/// Why an exec gave no output.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ExecError {
    #[error("exec into {pod} did not finish within {secs:.0}s")]
    Timeout { pod: String, secs: f64 },
    #[error("exec into {pod} failed: {message}")]
    Failed { pod: String, message: String },
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
    let pod = format!("pod {ns}/{name}");
    let api: Api<Pod> = Api::namespaced(client.clone(), ns);
    let work = async {
        let params = AttachParams::default()
            .container(container)
            .stdin(false)
            .stdout(true)
            .stderr(true);
        let mut proc = api
            .exec(name, argv, &params)
            .await
            .map_err(|e| ExecError::Failed {
                pod: pod.clone(),
                message: refused_message(&e, ns, name),
            })?;
        let (Some(out), Some(err)) = (proc.stdout(), proc.stderr()) else {
            return Err(ExecError::Failed {
                pod: pod.clone(),
                message: "the exec stream has no stdout or stderr".into(),
            });
        };
        let status = proc.take_status();
        let (mut o, mut e) = (Vec::new(), Vec::new());
        let (r1, r2) = tokio::join!(
            read_capped(out, &mut o, MAX_STDOUT_BYTES),
            read_capped(err, &mut e, MAX_STDERR_BYTES)
        );
        r1.and(r2).map_err(|e| ExecError::Failed {
            pod: pod.clone(),
            message: e,
        })?;
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
            pod,
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
) -> Result<(), String> {
    let read = stream
        .take(cap + 1)
        .read_to_end(buf)
        .await
        .map_err(|e| format!("reading its output: {e}"))?;
    if read as u64 > cap {
        return Err(format!(
            "it printed more than {} MiB, far more than a node probe prints; the output was dropped",
            cap >> 20
        ));
    }
    Ok(())
}

/// Why the server would not start an exec, as a sentence. kube-rs hands over the server's
/// Status when there is one (its message names the verb, resource and user of a 403); a bare
/// refused upgrade only has its code.
fn refused_message(e: &kube::Error, ns: &str, name: &str) -> String {
    use kube::client::UpgradeConnectionError::ProtocolSwitch;
    let code = match e {
        kube::Error::Api(s) => s.code,
        kube::Error::UpgradeConnection(ProtocolSwitch(code)) => code.as_u16(),
        _ => 0,
    };
    match (code, e) {
        (404, _) => format!("pod {ns}/{name} is gone (404 Not Found)"),
        (403, kube::Error::UpgradeConnection(_)) => format!(
            "not allowed to exec into pods in namespace {ns} (403 Forbidden: needs the create verb on pods/exec)"
        ),
        (429, kube::Error::UpgradeConnection(_)) => {
            crate::cluster::retry::throttled_sentence(&kube::Error::Api(
                kube::core::Status::failure("", "TooManyRequests")
                    .with_code(429)
                    .boxed(),
            ))
            .unwrap_or_default()
        }
        _ => kube_message(e),
    }
}

/// Whether an exec failed because its pod no longer exists.
pub fn pod_gone(e: &ExecError) -> bool {
    matches!(e, ExecError::Failed { message, .. } if message.ends_with("is gone (404 Not Found)"))
}

/// A failed command's status in a few words: `exit code 1`, else the server's reason.
fn failure(s: k8s_openapi::apimachinery::pkg::apis::meta::v1::Status) -> String {
    let code = s
        .details
        .as_ref()
        .and_then(|d| d.causes.as_ref())
        .and_then(|c| c.iter().find(|c| c.reason.as_deref() == Some("ExitCode")))
        .and_then(|c| c.message.clone());
    match code {
        Some(c) => format!("exit code {c}"),
        None => s
            .reason
            .filter(|r| !r.is_empty())
            .or(s.message)
            .map(|m| m.chars().take(200).collect())
            .unwrap_or_else(|| "the command failed".into()),
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
            e,
            "it printed more than 2 MiB, far more than a node probe prints; the output was dropped"
        );
    }
}
