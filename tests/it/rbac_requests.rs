//! The roles in assets/rbac grant exactly what the code asks for, verb by verb: each feature runs
//! through the real binary (the dashboard's watches in process) against the simulated cluster,
//! which logs every authorization it makes (verb, API group, resource, namespace, name); every
//! request of a feature is allowed by the roles docs/install.md names for it, and every verb of
//! every role is asked for by some feature that needs that role and is not already granted by
//! the read-only role (no more, no fewer).

use crate::common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use vmmem::cluster::live::{LiveOptions, LiveSource, Scope};
use vmmem::cluster::prometheus::{KnownService, WELL_KNOWN};
use vmmem::model::inventory::SourceKind;
use vmmem_sim::requests::Access;
use vmmem_sim::SimHandle;

#[derive(Debug, Deserialize)]
struct Object {
    kind: String,
    metadata: Meta,
    #[serde(default)]
    rules: Vec<Rule>,
}

#[derive(Debug, Deserialize)]
struct Meta {
    name: String,
    #[serde(default)]
    namespace: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Rule {
    #[serde(rename = "apiGroups", default)]
    api_groups: Vec<String>,
    #[serde(default)]
    resources: Vec<String>,
    #[serde(default)]
    verbs: Vec<String>,
    #[serde(rename = "resourceNames", default)]
    resource_names: Vec<String>,
}

/// A role file's one role: its rules, and for a Role the namespace it is applied in.
struct Role {
    file: &'static str,
    namespace: Option<String>,
    rules: Vec<Rule>,
}

fn role(file: &'static str) -> Role {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("assets/rbac")
        .join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{file}: {e}"));
    let objects: Vec<Object> = vmmem::parse::yaml::documents::<Object>(&text)
        .unwrap_or_else(|(doc, e)| panic!("{file}: document {doc}: {e}"));
    let roles: Vec<Object> = objects
        .into_iter()
        .filter(|o| o.kind == "ClusterRole" || o.kind == "Role")
        .collect();
    assert_eq!(roles.len(), 1, "{file} holds one role");
    let o = roles.into_iter().next().unwrap();
    assert!(o.metadata.name.starts_with("kubectl-vmmem-"), "{file}");
    // A Role is applied in the agent namespace (its manifest says so in its metadata).
    let namespace = (o.kind == "Role").then(|| {
        o.metadata
            .namespace
            .clone()
            .unwrap_or_else(|| panic!("{file}: a Role names its namespace"))
    });
    Role {
        file,
        namespace,
        rules: o.rules,
    }
}

impl Role {
    fn allows(&self, a: &Access) -> bool {
        if let Some(ns) = &self.namespace {
            if &a.namespace != ns {
                return false;
            }
        }
        self.rules.iter().any(|r| {
            r.api_groups.contains(&a.group)
                && r.resources.contains(&a.resource)
                && r.verbs.contains(&a.verb)
                && (r.resource_names.is_empty()
                    || a.name
                        .as_ref()
                        .is_some_and(|n| r.resource_names.contains(n)))
        })
    }

    /// Every (group, resource, verb, name) the role grants.
    fn grants(&self) -> BTreeSet<(String, String, String, Option<String>)> {
        let mut out = BTreeSet::new();
        for r in &self.rules {
            for g in &r.api_groups {
                for res in &r.resources {
                    for v in &r.verbs {
                        if r.resource_names.is_empty() {
                            out.insert((g.clone(), res.clone(), v.clone(), None));
                        }
                        for n in &r.resource_names {
                            out.insert((g.clone(), res.clone(), v.clone(), Some(n.clone())));
                        }
                    }
                }
            }
        }
        out
    }

    fn used_by(&self, grant: &(String, String, String, Option<String>), a: &Access) -> bool {
        let (g, res, v, name) = grant;
        &a.group == g
            && &a.resource == res
            && &a.verb == v
            && (name.is_none() || &a.name == name)
            && self.allows(a)
    }
}

/// Run the binary with `args`. `list` and `fix` run without history (`--history off`) unless
/// `args` say otherwise: history from the cluster's Prometheus is a feature of its own, with its
/// own role.
async fn run(sim: &SimHandle, args: &[&str]) -> Vec<Access> {
    let mut args = args.to_vec();
    if matches!(args.first(), Some(&"list" | &"fix")) && !args.contains(&"--history") {
        args.extend(["--history", "off"]);
    }
    let args = &args[..];
    let before = sim.accesses().len();
    let dir = tempfile::tempdir().unwrap();
    let kc = dir.path().join("kubeconfig");
    sim.write_kubeconfig(&kc).unwrap();
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_kubectl-vmmem"))
        .args(args)
        .env("KUBECONFIG", &kc)
        .env("HOME", dir.path())
        .env_remove("XDG_STATE_HOME")
        .env_remove("KUBERNETES_SERVICE_HOST")
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    sim.accesses()[before..].to_vec()
}

/// The dashboard's watches, in process: the same feeds `top` starts.
async fn watch(sim: &SimHandle) -> Vec<Access> {
    let before = sim.accesses().len();
    let dir = tempfile::tempdir().unwrap();
    let conn = common::connect_as(sim, dir.path(), "admin", Some(Duration::from_secs(10))).await;
    let live = LiveSource::start(
        &conn,
        LiveOptions {
            scope: Scope::All,
            source: SourceKind::Live,
            initial_timeout: Some(Duration::from_secs(20)),
        },
    )
    .await
    .unwrap();
    // Long enough for every watch to have been sent after its list.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    drop(live);
    sim.accesses()[before..].to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_role_grants_exactly_what_its_features_ask_for() {
    let readonly = role("readonly-clusterrole.yaml");
    let fix = role("fix-role.yaml");
    let agent = role("agent-role.yaml");
    let pod_exec = role("pod-exec-role.yaml");
    let kubelet = role("kubelet-clusterrole.yaml");
    let history = role("history-role.yaml");

    // Kubernetes 1.30 and later authorize a WebSocket exec as `create` on pods/exec besides
    // `get`: a cluster of that age asks for both.
    let mut scenario = vmmem_sim::Scenario::demo().unwrap();
    scenario.kubernetes_version = "v1.31.4+rke2r1".into();
    let sim = common::start(scenario).await;
    // feature -> (its requests, the roles it needs besides the read-only one)
    let mut features: BTreeMap<&str, (Vec<Access>, Vec<&Role>)> = BTreeMap::new();
    let mut read = run(&sim, &["list", "-A", "-o", "json", "--live", "off"]).await;
    read.extend(run(&sim, &["list", "-n", "prod", "--live", "off"]).await);
    read.extend(watch(&sim).await);
    features.insert("list and the dashboard", (read, vec![]));
    let mut completion = Vec::new();
    for words in [
        &["__complete", "-n", ""][..],
        &["__complete", "oom", "--node", ""],
        &["__complete", "fix", ""],
        &["__complete", "fix", "-n", "prod", ""],
    ] {
        completion.extend(run(&sim, words).await);
    }
    features.insert("completion", (completion, vec![]));
    features.insert(
        "fix",
        (
            run(
                &sim,
                &[
                    "fix",
                    "db-02",
                    "-n",
                    "prod",
                    "--reserve",
                    "512Mi",
                    "--yes",
                    "--live",
                    "off",
                ],
            )
            .await,
            vec![&fix],
        ),
    );
    features.insert(
        "fix --restart",
        (
            run(
                &sim,
                &[
                    "fix",
                    "app-01",
                    "-n",
                    "prod",
                    "--reserve",
                    "600Mi",
                    "--yes",
                    "--restart",
                    "--live",
                    "off",
                ],
            )
            .await,
            vec![&fix],
        ),
    );
    // A VM taking its memory from an instance type: fix reads the instance type by name.
    features.insert(
        "fix on an instance-type VM",
        (
            run(
                &sim,
                &[
                    "fix",
                    "typed-vm",
                    "-n",
                    "lab",
                    "--remove-limit",
                    "--dry-run=client",
                    "--live",
                    "off",
                ],
            )
            .await,
            vec![&readonly, &fix],
        ),
    );
    features.insert(
        "--live agent",
        (
            run(&sim, &["list", "-A", "-o", "json", "--live", "agent"]).await,
            vec![&agent],
        ),
    );
    features.insert(
        "agent cleanup",
        (run(&sim, &["agent", "cleanup"]).await, vec![&agent]),
    );
    features.insert(
        "--live pod-exec",
        (
            run(&sim, &["list", "-A", "-o", "json", "--live", "pod-exec"]).await,
            vec![&pod_exec],
        ),
    );
    features.insert(
        "--live kubelet",
        (
            run(&sim, &["list", "-A", "-o", "json", "--live", "kubelet"]).await,
            vec![&kubelet],
        ),
    );
    // The demo has Rancher's monitoring: history through the API server's service proxy.
    features.insert(
        "history from the cluster's Prometheus",
        (
            run(
                &sim,
                &[
                    "list",
                    "-A",
                    "-o",
                    "json",
                    "--live",
                    "off",
                    "--history",
                    "7d",
                ],
            )
            .await,
            vec![&history],
        ),
    );
    sim.shutdown().await;

    // No fewer: each request is granted by the roles the feature needs.
    let mut missing = Vec::new();
    for (feature, (accesses, roles)) in &features {
        for a in accesses {
            if !readonly.allows(a) && !roles.iter().any(|r| r.allows(a)) {
                missing.push(format!("{feature}: {a:?}"));
            }
        }
    }
    missing.dedup();
    assert!(missing.is_empty(), "not granted:\n{}", missing.join("\n"));

    // No more: each grant of a role is asked for by a feature that needs the role (for the
    // other roles, by a request the read-only role does not grant already).
    let mut unused = Vec::new();
    for role in [&readonly, &fix, &agent, &pod_exec, &kubelet, &history] {
        for grant in role.grants() {
            // The simulator has one distribution's monitoring service; the other names are
            // those the code looks up (`history_role_names_the_services_the_code_looks_up`).
            let grant = if std::ptr::eq(role, &history) {
                let rancher = &WELL_KNOWN[0];
                let name = match grant.1.as_str() {
                    "services/proxy" => service_proxy_name(rancher),
                    _ => rancher.name.to_string(),
                };
                (grant.0, grant.1, grant.2, Some(name))
            } else {
                grant
            };
            let used = features.values().any(|(accesses, roles)| {
                let needs =
                    std::ptr::eq(role, &readonly) || roles.iter().any(|r| std::ptr::eq(*r, role));
                needs
                    && accesses.iter().any(|a| {
                        role.used_by(&grant, a)
                            && (std::ptr::eq(role, &readonly) || !readonly.allows(a))
                    })
            });
            if !used {
                unused.push(format!("{}: {grant:?}", role.file));
            }
        }
    }
    assert!(
        unused.is_empty(),
        "granted and never used:\n{}",
        unused.join("\n")
    );
}

/// The name RBAC sees for a service proxy request: `SCHEME:NAME:PORT`, as the code asks.
fn service_proxy_name(s: &KnownService) -> String {
    format!("{}:{}:{}", s.scheme, s.name, s.port)
}

/// The history role names exactly the services the code looks up, in both forms (the Service,
/// and its proxy).
#[test]
fn history_role_names_the_services_the_code_looks_up() {
    let history = role("history-role.yaml");
    let names = |resource: &str| -> BTreeSet<String> {
        history
            .rules
            .iter()
            .filter(|r| r.resources.iter().any(|x| x == resource))
            .flat_map(|r| r.resource_names.clone())
            .collect()
    };
    let services: BTreeSet<String> = WELL_KNOWN.iter().map(|s| s.name.to_string()).collect();
    let proxies: BTreeSet<String> = WELL_KNOWN.iter().map(service_proxy_name).collect();
    assert_eq!(names("services"), services);
    assert_eq!(names("services/proxy"), proxies);
}

/// Each role file says in its first lines what the role amounts to.
#[test]
fn each_role_file_says_what_it_amounts_to() {
    for (file, words) in [
        ("readonly-clusterrole.yaml", "Amounts to:"),
        ("fix-role.yaml", "Amounts to:"),
        ("agent-role.yaml", "Amounts to:"),
        ("pod-exec-role.yaml", "Amounts to:"),
        ("kubelet-clusterrole.yaml", "equals root on every node"),
        ("agent-namespace.yaml", "Amounts to:"),
        ("history-role.yaml", "Amounts to:"),
    ] {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("assets/rbac")
            .join(file);
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{file}: {e}"));
        let head: String = text.lines().take(8).collect::<Vec<_>>().join("\n");
        assert!(
            head.contains(words),
            "{file} does not say {words:?} in its first lines:\n{head}"
        );
    }
}
