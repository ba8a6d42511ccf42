//! `kubectl-vmmem __complete`: answers completion requests, asking the kubeconfig and the cluster
//! for names. A shell is waiting, so every lookup is bounded in time and any failure just means
//! no candidates (never an error message in the middle of the user's command line).

use std::path::PathBuf;
use std::time::Duration;

use clap::CommandFactory;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, ListParams};

use super::complete::{complete, Answer, Lookup};
use crate::cluster::connect::{self, ConnectFlags, Env};

/// The longest a completion waits for the cluster.
pub const LOOKUP_TIMEOUT: Duration = Duration::from_secs(3);

/// Answer one request (the words after `vmmem`) and print it.
pub fn run(words: &[String]) -> std::process::ExitCode {
    let text = answer(words, &Env::from_process()).render();
    let mut stdout = std::io::stdout().lock();
    // A closed pipe means the shell gave up; nothing to report.
    let _ = std::io::Write::write_all(&mut stdout, text.as_bytes());
    std::process::ExitCode::SUCCESS
}

/// The full answer: clap's candidates plus the names the lookup finds.
pub fn answer(words: &[String], env: &Env) -> Answer {
    let mut cmd = super::args::Cli::command();
    cmd.build();
    let mut answer = complete(&cmd, words);
    fill(&mut answer, env);
    answer
}

/// Add the names the answer's lookup asks for (none when the cluster cannot be asked in time).
pub fn fill(answer: &mut Answer, env: &Env) {
    if let Some(lookup) = answer.lookup.clone() {
        let names = look_up(&lookup, answer, env);
        answer.add_looked_up(names.into_iter().map(|n| (n, String::new())));
    }
}

/// kubectl's connection flags from the words already typed.
fn connect_flags(a: &Answer) -> ConnectFlags {
    let own = |id: &str| a.flag(id).map(str::to_string);
    let timeout = a
        .flag("request_timeout")
        .and_then(|t| crate::parse::duration::parse(t).ok())
        .filter(|t| !t.is_zero())
        .map_or(LOOKUP_TIMEOUT, |t| t.min(LOOKUP_TIMEOUT));
    ConnectFlags {
        kubeconfig: own("kubeconfig").map(PathBuf::from),
        context: own("context"),
        cluster: own("cluster"),
        user: own("user"),
        as_user: own("as_user"),
        as_groups: a.flags.get("as_group").cloned().unwrap_or_default(),
        server: own("server"),
        token: own("token").map(crate::cluster::token::Token::from),
        insecure_skip_tls_verify: a.flag("insecure_skip_tls_verify").is_some(),
        certificate_authority: own("certificate_authority").map(PathBuf::from),
        request_timeout: Some(timeout),
    }
}

fn look_up(lookup: &Lookup, a: &Answer, env: &Env) -> Vec<String> {
    let flags = connect_flags(a);
    match lookup {
        Lookup::Contexts | Lookup::Clusters | Lookup::Users => {
            kubeconfig_names(lookup, &flags, env)
        }
        Lookup::Namespaces | Lookup::VmNames | Lookup::Nodes => {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return Vec::new();
            };
            let namespace = a.flag("namespace").map(str::to_string);
            let call = cluster_names(lookup, flags, env, namespace);
            rt.block_on(async { tokio::time::timeout(LOOKUP_TIMEOUT, call).await })
                .ok()
                .flatten()
                .unwrap_or_default()
        }
    }
}

/// Context, cluster or user names of the kubeconfig files kubectl would read.
fn kubeconfig_names(lookup: &Lookup, flags: &ConnectFlags, env: &Env) -> Vec<String> {
    let Ok((paths, _)) = connect::kubeconfig_paths(flags.kubeconfig.as_deref(), env) else {
        return Vec::new();
    };
    let Ok(kc) = connect::read_merged(&paths) else {
        return Vec::new();
    };
    match lookup {
        Lookup::Contexts => kc.contexts.into_iter().map(|c| c.name).collect(),
        Lookup::Clusters => kc.clusters.into_iter().map(|c| c.name).collect(),
        _ => kc.auth_infos.into_iter().map(|u| u.name).collect(),
    }
}

/// Names of namespaces, nodes, or the VMs of the namespace named (else the context's).
async fn cluster_names(
    lookup: &Lookup,
    flags: ConnectFlags,
    env: &Env,
    namespace: Option<String>,
) -> Option<Vec<String>> {
    let conn = connect::connect_with_env(&flags, env).await.ok()?;
    let (gvk, plural, ns) = match lookup {
        Lookup::Namespaces => (
            GroupVersionKind::gvk("", "v1", "Namespace"),
            "namespaces",
            None,
        ),
        Lookup::Nodes => (GroupVersionKind::gvk("", "v1", "Node"), "nodes", None),
        _ => (
            GroupVersionKind::gvk("kubevirt.io", "v1", "VirtualMachine"),
            "virtualmachines",
            Some(namespace.unwrap_or(conn.default_namespace.clone())),
        ),
    };
    let resource = ApiResource::from_gvk_with_plural(&gvk, plural);
    let api: Api<DynamicObject> = match &ns {
        Some(ns) => Api::namespaced_with(conn.client.clone(), ns, &resource),
        None => Api::all_with(conn.client.clone(), &resource),
    };
    let list = api.list(&ListParams::default()).await.ok()?;
    let mut names: Vec<String> = list
        .items
        .into_iter()
        .filter_map(|o| o.metadata.name)
        .collect();
    names.sort();
    Some(names)
}
