//! Pod exec over WebSocket (`v5.channel.k8s.io`, `v4.channel.k8s.io`): runs the command for real,
//! with the pod's node host tree as `VMMEM_CGROUP_ROOT`/`VMMEM_PROC_ROOT`, and streams stdout (1),
//! stderr (2) and the exit status (3).

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Uri};
use axum::response::Response;
use futures::stream::{SplitSink, SplitStream};
use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::hosttree;
use super::nodecpu;
use super::resources::PODS;
use super::rest::{user_of, Query};
use super::server::{error_response, App};
use super::status::ApiError;
use super::tick::{container_view, write_host_tree_at};

/// What an exec runs, decided before the upgrade.
struct Plan {
    node: String,
    command: Vec<String>,
    stdin: bool,
    latency: Duration,
    hung: bool,
    /// For a container of a virt-launcher pod (no hostPID): (pod uid, container index); the
    /// command then sees that container's own cgroup and processes, as on cgroup v1.
    view: Option<(String, usize)>,
    /// The node probe without stdin: its output can be stored (see `nodecpu`).
    probe: bool,
}

fn prepare(
    app: &App,
    headers: &HeaderMap,
    ns: &str,
    name: &str,
    q: &Query,
) -> Result<Plan, ApiError> {
    let user = user_of(&app.tokens, headers)?;
    let w = app.world();
    // A WebSocket exec is a GET: the apiserver authorizes it as `get` on pods/exec, and since
    // Kubernetes 1.30 (AuthorizePodWebsocketUpgradeCreatePermission) also as `create`.
    app.requests
        .access("get", "", "pods/exec", Some(ns), Some(name));
    w.auth
        .check(&user, "get", &PODS, Some("exec"), Some(ns))
        .map_err(|e| e.named(Some(name)))?;
    if checks_exec_create(&w.config.kubernetes_version) {
        app.requests
            .access("create", "", "pods/exec", Some(ns), Some(name));
        w.auth
            .check(&user, "create", &PODS, Some("exec"), Some(ns))
            .map_err(|e| e.named(Some(name)))?;
    }
    let pod = w
        .store
        .get(&PODS, ns, name)
        .ok_or_else(|| ApiError::not_found(&PODS, name))?;
    let containers: Vec<&str> = pod["spec"]["containers"]
        .as_array()
        .map(|cs| cs.iter().filter_map(|c| c["name"].as_str()).collect())
        .unwrap_or_default();
    let container = q
        .get("container")
        .map(str::to_string)
        .or_else(|| containers.first().map(|c| c.to_string()))
        .unwrap_or_default();
    if !containers.contains(&container.as_str()) {
        return Err(ApiError::bad_request(format!(
            "container {container} is not valid for pod {name}"
        )));
    }
    if pod["status"]["phase"] != json!("Running") {
        return Err(ApiError::bad_request(format!(
            "unable to upgrade connection: container not found (\"{container}\")"
        )));
    }
    let command = q.all("command");
    if command.is_empty() {
        return Err(ApiError::bad_request("you must specify at least 1 command"));
    }
    if !w.exec.any_command && !allowed(&command) {
        // The command runs on this machine: only the two the simulated images hold.
        return Err(ApiError::bad_request(format!(
            "the simulated pod {ns}/{name} has no such command: it runs only the node probe and the kernel log command of kubectl-vmmem"
        )));
    }
    let node = pod["spec"]["nodeName"].as_str().unwrap_or("").to_string();
    let host_pid = pod["spec"]["hostPID"].as_bool() == Some(true);
    let uid = pod["metadata"]["uid"].as_str().unwrap_or("").to_string();
    let view = match container.as_str() {
        _ if host_pid || !w.launchers.contains_key(&uid) => None,
        "compute" => Some((uid, 1)),
        "guest-console-log" => Some((uid, 2)),
        _ => None,
    };
    let stdin = q.flag("stdin") && q.get("stdin").is_some();
    Ok(Plan {
        view,
        hung: w.exec.hung_nodes.contains(&node),
        latency: w.exec.latency,
        node,
        probe: !stdin && nodecpu::is_probe(&command),
        command,
        stdin,
    })
}

/// The kernel log command of kubectl-vmmem's agent (`dmesg`, or the simulated node's log file).
const KERNEL_LOG: &str =
    "if [ -n \"$VMMEM_KERNEL_LOG\" ]; then cat \"$VMMEM_KERNEL_LOG\"; else dmesg; fi";

/// Whether `command` is one the simulated pods have: the kernel log command, or the node probe
/// (`sh -c PREAMBLE+probe.sh vmmem-probe ARGS…`) whose preamble only sets `VMMEM_*` variables to
/// single-quoted values without quotes inside (the arguments are the script's positional
/// parameters, never run).
pub fn allowed(command: &[String]) -> bool {
    if command.len() == 3 && command[0] == "sh" && command[1] == "-c" && command[2] == KERNEL_LOG {
        return true;
    }
    if command.len() < 4 || command[0] != "sh" || command[1] != "-c" || command[3] != "vmmem-probe"
    {
        return false;
    }
    let Some(preamble) = command[2].strip_suffix(nodecpu::PROBE_SCRIPT) else {
        return false;
    };
    preamble.lines().all(|line| {
        line.split_once("='").is_some_and(|(name, rest)| {
            name.starts_with("VMMEM_")
                && name[6..]
                    .bytes()
                    .all(|b| b.is_ascii_uppercase() || b == b'_')
                && rest.strip_suffix('\'').is_some_and(|v| !v.contains('\''))
        })
    }) && (preamble.is_empty() || preamble.ends_with('\n'))
}

/// Whether a server of this version also asks for `create` on pods/exec (1.30 and later).
fn checks_exec_create(kubernetes_version: &str) -> bool {
    let mut parts = kubernetes_version
        .trim_start_matches('v')
        .split(['.', '+', '-']);
    let major: u32 = parts.next().and_then(|p| p.parse().ok()).unwrap_or(1);
    let minor: u32 = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    (major, minor) >= (1, 30)
}

pub async fn handle(
    State(app): State<App>,
    Path((ns, name)): Path<(String, String)>,
    uri: Uri,
    headers: HeaderMap,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    app.requests.count(super::requests::RequestKind::Exec);
    let q = Query::parse(uri.query());
    let plan = match prepare(&app, &headers, &ns, &name, &q) {
        Ok(p) => p,
        Err(e) => return error_response(&e),
    };
    let Ok(ws) = ws else {
        // SPDY clients (kubectl before 1.30) name stream protocols but send no WebSocket key.
        let spdy = headers.contains_key("x-stream-protocol-version");
        let message = if spdy {
            "this simulated API server speaks exec over WebSocket only (v5.channel.k8s.io, v4.channel.k8s.io), \
             not SPDY; kubectl older than 1.30 needs KUBECTL_REMOTE_COMMAND_WEBSOCKETS=true"
        } else {
            "Upgrade request required: exec needs a WebSocket (v5.channel.k8s.io or v4.channel.k8s.io)"
        };
        return error_response(&ApiError::bad_request(message));
    };
    let ws = ws.protocols(["v5.channel.k8s.io", "v4.channel.k8s.io"]);
    let v5 = ws
        .selected_protocol()
        .is_some_and(|p| p.as_bytes() == b"v5.channel.k8s.io");
    ws.on_upgrade(move |socket| run(app, socket, plan, v5))
}

/// Counts a running exec on its node while alive (the ticker refreshes that node's host tree).
struct Session {
    app: App,
    node: String,
}

impl Session {
    fn open(app: &App, node: &str) -> Session {
        *app.world()
            .exec
            .sessions
            .entry(node.to_string())
            .or_default() += 1;
        Session {
            app: app.clone(),
            node: node.to_string(),
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        if let Some(n) = self.app.world().exec.sessions.get_mut(&self.node) {
            *n = n.saturating_sub(1);
        }
    }
}

/// A close frame with code 1000: clients treat a close without a code as an error.
fn normal_close() -> Message {
    Message::Close(Some(axum::extract::ws::CloseFrame {
        code: 1000,
        reason: "".into(),
    }))
}

fn frame(channel: u8, data: &[u8]) -> Message {
    let mut v = Vec::with_capacity(data.len() + 1);
    v.push(channel);
    v.extend_from_slice(data);
    Message::Binary(v.into())
}

/// The status channel's message for an exit code.
pub fn exit_status(command: &[String], code: Option<i32>) -> Value {
    match code {
        Some(0) => json!({"metadata": {}, "status": "Success"}),
        Some(c) => json!({"metadata": {}, "status": "Failure",
            "message": format!("command terminated with non-zero exit code: error executing command [{}], exit code {c}", command.join(" ")),
            "reason": "NonZeroExitCode", "details": {"causes": [{"reason": "ExitCode", "message": c.to_string()}]}}),
        None => {
            json!({"metadata": {}, "status": "Failure", "message": "command terminated by a signal", "reason": "InternalError",
            "details": {"causes": [{"reason": "ExitCode", "message": "137"}]}})
        }
    }
}

type Sink = SplitSink<WebSocket, Message>;
type Stream = SplitStream<WebSocket>;

/// Where an exec's command looks: the cgroup and proc roots it is given, the node's root, and
/// the tree's generation.
type Roots = (PathBuf, PathBuf, PathBuf, u64);

async fn run(app: App, socket: WebSocket, plan: Plan, v5: bool) {
    let (mut sink, mut stream) = socket.split();
    let mut stop = app.stop.clone();
    if plan.hung {
        // A node whose kubelet never answers: hold the connection until the client gives up.
        hold_until_closed(&mut stream, &mut stop).await;
        return;
    }
    tokio::time::sleep(plan.latency).await;
    let _session = Session::open(&app, &plan.node);
    let (cgroup_root, proc_root, root, generation) = match write_roots(&app, &plan) {
        Ok(t) => t,
        Err(e) => {
            let st = json!({"metadata": {}, "status": "Failure", "reason": "InternalError", "message": format!("writing the node's host files: {e}")});
            finish(&mut sink, &st).await;
            return;
        }
    };
    let env = nodecpu::exec_env(&root, &cgroup_root, &proc_root, &plan.node);
    if plan.probe {
        send_probe(&app, &plan, &root, &env, generation, &mut sink).await;
        return;
    }
    let mut cmd = tokio::process::Command::new(&plan.command[0]);
    cmd.args(&plan.command[1..]).current_dir(&root);
    for (k, v) in &env {
        cmd.env(k, v);
    }
    cmd.stdin(if plan.stdin {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .kill_on_drop(true);
    let child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            finish(&mut sink, &spawn_failed(&plan.command[0], &e)).await;
            return;
        }
    };
    relay(child, &plan.command, v5, &mut sink, &mut stream, &mut stop).await;
}

/// Wait until the client closes the connection or the server stops.
async fn hold_until_closed(stream: &mut Stream, stop: &mut tokio::sync::watch::Receiver<bool>) {
    loop {
        tokio::select! {
            m = stream.next() => if m.is_none() || matches!(m, Some(Err(_)) | Some(Ok(Message::Close(_)))) { return },
            _ = super::server::stopped(stop) => return,
        }
    }
}

/// Write the node's host tree now and pick the roots the command sees (a launcher
/// container's own cgroup and processes, or the whole node).
fn write_roots(app: &App, plan: &Plan) -> Result<Roots, std::io::Error> {
    let mut w = app.world();
    let r =
        write_host_tree_at(&mut w, &plan.node).and_then(|(root, generation)| match &plan.view {
            Some((uid, idx)) => {
                let (cg, procs) = container_view(&w, &root, uid, *idx)?;
                Ok((cg, procs, root, generation))
            }
            None => Ok((
                hosttree::cgroup_root(&root),
                hosttree::proc_root(&root),
                root,
                generation,
            )),
        });
    w.exec
        .written
        .insert(plan.node.clone(), std::time::Instant::now());
    r
}

/// Send the exit status on channel 3 and close normally.
async fn finish(sink: &mut Sink, status: &Value) {
    let _ = sink.send(frame(3, status.to_string().as_bytes())).await;
    let _ = sink.send(normal_close()).await;
}

/// The node probe's output (stored or run now), then its status.
async fn send_probe(
    app: &App,
    plan: &Plan,
    root: &std::path::Path,
    env: &[(&'static str, PathBuf)],
    generation: u64,
    sink: &mut Sink,
) {
    let st = match probe(app, plan, root, env, generation).await {
        Ok(run) => {
            for (channel, out) in [(1, &run.stdout), (2, &run.stderr)] {
                for chunk in out.chunks(16 * 1024) {
                    if sink.send(frame(channel, chunk)).await.is_err() {
                        return;
                    }
                }
            }
            exit_status(&plan.command, run.code)
        }
        Err(e) => spawn_failed(&plan.command[0], &e),
    };
    finish(sink, &st).await;
}

/// Stream a running command's stdout and stderr to the client and its stdin from it, until
/// both outputs end; then its exit status. A client hang-up or server stop ends it early.
async fn relay(
    mut child: tokio::process::Child,
    command: &[String],
    v5: bool,
    sink: &mut Sink,
    stream: &mut Stream,
    stop: &mut tokio::sync::watch::Receiver<bool>,
) {
    let mut stdin = child.stdin.take();
    let (Some(mut out), Some(mut err)) = (child.stdout.take(), child.stderr.take()) else {
        return;
    };
    let (mut out_buf, mut err_buf) = (vec![0u8; 16 * 1024], vec![0u8; 16 * 1024]);
    let (mut out_done, mut err_done) = (false, false);
    while !(out_done && err_done) {
        tokio::select! {
            n = out.read(&mut out_buf), if !out_done => match n {
                Ok(0) | Err(_) => out_done = true,
                Ok(n) => if sink.send(frame(1, &out_buf[..n])).await.is_err() { return },
            },
            n = err.read(&mut err_buf), if !err_done => match n {
                Ok(0) | Err(_) => err_done = true,
                Ok(n) => if sink.send(frame(2, &err_buf[..n])).await.is_err() { return },
            },
            m = stream.next() => match m {
                Some(Ok(Message::Binary(b))) if !b.is_empty() => match b[0] {
                    0 => if let Some(si) = stdin.as_mut() {
                        if si.write_all(&b[1..]).await.is_err() { stdin = None; }
                    },
                    255 if v5 && b.get(1) == Some(&0) => stdin = None,
                    _ => {}
                },
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return,
                _ => {}
            },
            _ = super::server::stopped(stop) => return,
        }
    }
    drop(stdin);
    let code = child.wait().await.ok().and_then(|s| s.code());
    finish(sink, &exit_status(command, code)).await;
}

/// The status the API server relays when containerd cannot start the command (as a kubelet
/// v1.20 with containerd and runc says it: a 500 with no exit code, the exec's id named).
fn spawn_failed(program: &str, e: &std::io::Error) -> Value {
    let why = match e.kind() {
        std::io::ErrorKind::NotFound => format!("stat {program}: no such file or directory"),
        _ => e.to_string(),
    };
    let cause = format!(
        "error executing command in container: failed to exec in container: failed to start exec \"{:064x}\": OCI runtime exec failed: exec failed: unable to start container process: exec: {program:?}: {why}: unknown",
        rand::random::<u64>()
    );
    json!({"metadata": {}, "status": "Failure", "code": 500, "reason": "InternalError",
        "message": format!("Internal error occurred: {cause}"),
        "details": {"causes": [{"message": cause}]}})
}

/// The node probe: its stored output when the node's tree is the one it ran against (after the
/// CPU time that run took), else a run now, stored for the next exec (see `nodecpu`).
async fn probe(
    app: &App,
    plan: &Plan,
    root: &std::path::Path,
    env: &[(&'static str, PathBuf)],
    generation: u64,
) -> std::io::Result<nodecpu::StoredRun> {
    let stored = {
        let mut w = app.world();
        w.exec.cpus.exec_seen(&plan.node);
        if plan.view.is_none() {
            w.exec.cpus.learn(&plan.node, &plan.command);
        }
        let hit = w
            .exec
            .cpus
            .lookup(&plan.node, &plan.command, &plan.view, generation)
            .cloned();
        if hit.is_some() {
            w.exec.cpus.counts.served += 1;
        }
        hit
    };
    if let Some(run) = stored {
        tokio::time::sleep(run.took).await;
        return Ok(run);
    }
    let (command, root, env2) = (plan.command.clone(), root.to_path_buf(), env.to_vec());
    let (stdout, stderr, code, took) =
        tokio::task::spawn_blocking(move || nodecpu::run_collect(&command, &root, &env2))
            .await
            .map_err(std::io::Error::other)??;
    let run = nodecpu::StoredRun {
        command: plan.command.clone(),
        view: plan.view.clone(),
        generation,
        stdout,
        stderr,
        code,
        took,
    };
    let mut w = app.world();
    w.exec.cpus.counts.ran += 1;
    let same = w
        .exec
        .trees
        .get(&plan.node)
        .is_some_and(|t| t.generation() == generation);
    if same {
        w.exec.cpus.store(&plan.node, run.clone());
    }
    Ok(run)
}

#[cfg(test)]
mod allowed_tests {
    use super::*;

    fn probe(preamble: &str) -> Vec<String> {
        vec![
            "sh".into(),
            "-c".into(),
            format!("{preamble}{}", nodecpu::PROBE_SCRIPT),
            "vmmem-probe".into(),
            "uid-1:2147483648".into(),
        ]
    }

    #[test]
    fn only_the_probe_and_the_kernel_log_run() {
        assert!(allowed(&probe("")));
        assert!(allowed(&probe(
            "VMMEM_SELF='abc'\nVMMEM_CGROUP_ROOT='/x y'\n"
        )));
        assert!(allowed(&["sh".into(), "-c".into(), KERNEL_LOG.into()]));
        for bad in [
            probe("rm -rf /tmp/x\n"),
            probe("VMMEM_SELF='a'; touch /tmp/p\n"),
            probe("VMMEM_SELF='a'\\''b'\n"),
            probe("PATH='/evil'\n"),
            vec!["sh".into(), "-c".into(), "exit 3".into()],
            vec!["true".into()],
            vec!["sh".into(), "-c".into(), format!("{KERNEL_LOG}; id")],
        ] {
            assert!(
                !allowed(&bad),
                "{:?}",
                &bad[..bad.len().min(3)]
                    .iter()
                    .map(|s| &s[..s.len().min(60)])
                    .collect::<Vec<_>>()
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::checks_exec_create;

    #[test]
    fn exec_needs_create_from_kubernetes_1_30() {
        assert!(!checks_exec_create("v1.20.2"));
        assert!(!checks_exec_create("v1.29.9+rke2r1"));
        assert!(checks_exec_create("v1.30.0"));
        assert!(checks_exec_create("v1.33.1+k3s1"));
    }
}
