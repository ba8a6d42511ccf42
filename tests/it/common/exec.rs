//! One exec into a pod's `agent` container through the real kube-rs client, read to the end.

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Status;
use kube::api::{Api, AttachParams};
use tokio::io::AsyncReadExt;

/// Run `cmd` in pod `name`'s `agent` container: its stdout, stderr and final status.
pub async fn run_exec<S: AsRef<str>>(
    pods: &Api<Pod>,
    name: &str,
    cmd: &[S],
) -> (String, String, Status) {
    let cmd: Vec<String> = cmd.iter().map(|c| c.as_ref().to_string()).collect();
    let mut p = pods
        .exec(
            name,
            cmd,
            &AttachParams::default().container("agent").stderr(true),
        )
        .await
        .unwrap();
    let (mut out, mut err) = (p.stdout().unwrap(), p.stderr().unwrap());
    let status = p.take_status().unwrap();
    let (mut o, mut e) = (String::new(), String::new());
    let (r1, r2) = tokio::join!(out.read_to_string(&mut o), err.read_to_string(&mut e));
    r1.unwrap();
    r2.unwrap();
    let st = status.await.unwrap();
    p.join().await.unwrap();
    (o, e, st)
}
