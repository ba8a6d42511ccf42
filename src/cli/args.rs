//! Flags and subcommands. kubectl forwards no flags to plugins, so its connection flags are ours.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Name clap shows in help: `kubectl vmmem` when run as a kubectl plugin.
pub fn display_name(argv0: &str) -> &'static str {
    let base = argv0.rsplit(['/', '\\']).next().unwrap_or(argv0);
    if base.starts_with("kubectl-") || base.starts_with("kubectl_") {
        "kubectl vmmem"
    } else {
        "kubectl-vmmem"
    }
}

/// argv with argv[0] replaced by the display name, so usage lines read `kubectl vmmem …`.
pub fn with_display_name(argv: &[String]) -> Vec<String> {
    let mut out = argv.to_vec();
    if let Some(first) = out.first_mut() {
        *first = display_name(first).to_string();
    }
    out
}

#[derive(Debug, Parser)]
#[command(
    name = "kubectl vmmem",
    bin_name = "kubectl vmmem",
    version = crate::cli::args::VERSION,
    about = "Why KubeVirt VMs get OOM-killed: guest memory vs overhead per VM, and the fix",
    long_about = "Shows, for every KubeVirt VM, guest memory, the virt-launcher pod's memory limit, live \
cgroup usage and the overhead broken down by process, judges the OOM risk and recommends a \
memory reservation.",
    after_help = "Examples:\n  kubectl vmmem list -A\n  kubectl vmmem list --from support-bundle.zip -o wide\n  kubectl vmmem list --demo -o json"
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Option<Command>,
}

pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (",
    env!("VMMEM_GIT_REVISION"),
    ")"
);

#[derive(Debug, Subcommand)]
pub enum Command {
    /// List every VM's memory: guest, limits, usage, overhead, headroom, risk and recommendation.
    #[command(
        after_help = "Examples:\n  kubectl vmmem list -A\n  kubectl vmmem list -n prod -o wide\n  kubectl vmmem list --from ./supportbundle_x.zip -o json"
    )]
    List(ListArgs),
    /// Explain kernel OOM kills: which VM died, what triggered it, which process held what, and
    /// the reservation to set.
    #[command(
        after_help = "Examples:\n  kubectl vmmem oom -f kernel.log\n  dmesg | kubectl vmmem oom -f -\n  journalctl -k -o short-iso | kubectl vmmem oom -f - -o json\n  kubectl vmmem oom -f kernel.log --kubevirt-version v1.1.1"
    )]
    Oom(OomArgs),
    /// Interactive dashboard (the default on a terminal): risk at a glance, details, fixes.
    #[command(
        after_help = "Examples:\n  kubectl vmmem top -A\n  kubectl vmmem top --from ./supportbundle_x.zip --readonly\n  kubectl vmmem top -r 5s"
    )]
    Top(TopArgs),
    /// Serve a simulated KubeVirt cluster on 127.0.0.1 until interrupted (for demos and tests).
    #[cfg_attr(
        not(feature = "demo"),
        command(
            about = "Serve a simulated KubeVirt cluster (not in this build: it was built without the cargo feature `demo`)."
        )
    )]
    #[command(
        after_help = "Examples:\n  kubectl vmmem sim --write-kubeconfig sim.kubeconfig\n  kubectl vmmem sim --vms 5000 --nodes 200 --write-kubeconfig big.kubeconfig\n  kubectl --kubeconfig sim.kubeconfig get vm,vmi,pods -A"
    )]
    Sim(crate::cli::sim::SimArgs),
    /// Apply a memory reservation to one VM: show the plan, ask, patch, optionally restart.
    #[command(
        after_help = "Examples:\n  kubectl vmmem fix web-01 -n prod\n  kubectl vmmem fix prod/db-01 --reserve 1Gi --restart --yes\n  kubectl vmmem fix web-01 --dry-run=server -o json\n  kubectl vmmem fix web-01 --undo --yes"
    )]
    Fix(crate::cli::fix::FixArgs),
    /// Read pod memory cgroups and processes on this machine (a node, e.g. over ssh).
    #[command(
        long_about = "Runs the node probe on the machine it is on and prints what it read: memory cgroup \
counters of each pod and its containers (limit, usage, working set, peak, failcnt, OOM kills), \
each process's private memory and, given the guest size, qemu's resident guest RAM. Works with no \
API server: run it on a node over ssh. Pods are given by UID (`kubectl get pod -o \
jsonpath='{.metadata.uid}'`); with none, every pod under kubepods is read.",
        after_help = "Examples:\n  kubectl vmmem probe --local\n  kubectl vmmem probe --local 99ee3a64-645b-4699-9384-5a3875d78b41:2Gi -o json\n  VMMEM_KUBEPODS=kubelet.slice/kubelet-kubepods.slice kubectl vmmem probe --local"
    )]
    Probe(ProbeArgs),
    /// Print the kubectl_complete-vmmem script: shell completion through kubectl 1.26 or later.
    ///
    /// Save it as an executable file named kubectl_complete-vmmem on PATH (e.g. next to
    /// kubectl-vmmem).
    #[command(
        after_help = "Examples:\n  kubectl vmmem completion > \"${KREW_ROOT:-$HOME/.krew}/bin/kubectl_complete-vmmem\"\n  chmod +x \"${KREW_ROOT:-$HOME/.krew}/bin/kubectl_complete-vmmem\"\n  (installed with cargo: write it to ~/.cargo/bin/kubectl_complete-vmmem instead)\n\nkubectl's own completion must be loaded too (e.g. `source <(kubectl completion bash)`); then\n`kubectl vmmem <TAB>` completes subcommands, flags, namespaces, node and VM names."
    )]
    Completion,
    /// Manage the node agent pods.
    #[command(
        after_help = "Examples:\n  kubectl vmmem agent cleanup\n  kubectl vmmem agent cleanup --agent-namespace vmmem-lab"
    )]
    Agent(AgentArgs),
}

#[derive(Debug, Clone, Args)]
pub struct AgentArgs {
    #[command(subcommand)]
    pub command: AgentCommand,
}

#[derive(Debug, Clone, Subcommand)]
pub enum AgentCommand {
    /// Delete the agent pods left behind: those of runs on this machine that were killed, and
    /// any past their deadline (in the agent namespace).
    #[command(
        after_help = "Examples:\n  kubectl vmmem agent cleanup\n  kubectl vmmem agent cleanup --all --agent-namespace vmmem-lab"
    )]
    Cleanup {
        /// Every agent pod in the namespace, also those of runs still going here or on other
        /// machines.
        #[arg(long)]
        all: bool,
    },
}

/// Output formats of `oom`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum OomOutput {
    #[default]
    Table,
    Json,
}

/// Output formats of `probe`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum ProbeOutput {
    #[default]
    Table,
    Json,
}

#[derive(Debug, Clone, Default, Args)]
pub struct OomArgs {
    /// A kernel log (dmesg, dmesg -T, journalctl -k, syslog, /dev/kmsg, a support bundle's
    /// kernel.log); `-` reads standard input.
    #[arg(short = 'f', long = "filename", value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// Read this node's kernel log through the node agent (repeatable).
    #[arg(long = "node", value_name = "NODE")]
    pub nodes: Vec<String>,
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value_t = OomOutput::Table)]
    pub output: OomOutput,
}

#[derive(Debug, Clone, Default, Args)]
pub struct ProbeArgs {
    /// Run on this machine (probing other nodes goes through agent pods).
    #[arg(long)]
    pub local: bool,
    /// The directory that plays /sys/fs/cgroup.
    #[arg(long, value_name = "DIR", default_value = "/sys/fs/cgroup")]
    pub cgroup_root: PathBuf,
    /// The directory that plays /proc.
    #[arg(long, value_name = "DIR", default_value = "/proc")]
    pub proc_root: PathBuf,
    /// Pods to read: POD_UID, or POD_UID:GUEST_SIZE (e.g. 2Gi, or bytes) to also measure the
    /// guest RAM resident in qemu from /proc/PID/smaps. None: every pod found.
    #[arg(value_name = "POD_UID[:GUEST]")]
    pub pods: Vec<String>,
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value_t = ProbeOutput::Table)]
    pub output: ProbeOutput,
}

/// `top` has no flags of its own: `--refresh`, `--readonly`, `-n`/`-A` are global.
#[derive(Debug, Clone, Default, Args)]
pub struct TopArgs {}

/// Output formats of `list`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum ListOutput {
    #[default]
    Table,
    Wide,
    Json,
    Yaml,
}

#[derive(Debug, Clone, Default, Args)]
pub struct ListArgs {
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value_t = ListOutput::Table)]
    pub output: ListOutput,
}

/// How to read live memory numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum LiveMode {
    /// Agent pod, else exec into the compute container, else the kubelet summary.
    #[default]
    Auto,
    /// A privileged agent pod per node (pod slice, containers, processes).
    Agent,
    /// `sh` in each VM's compute container (its own cgroup only).
    PodExec,
    /// The kubelet Summary API through the API server (no per-process data).
    Kubelet,
    /// Specs only.
    Off,
}

/// kubectl's connection flags plus the tool's global ones.
#[derive(Debug, Clone, Default, Args)]
pub struct GlobalArgs {
    /// Path to the kubeconfig file (default: $KUBECONFIG, then ~/.kube/config).
    #[arg(long, global = true, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig context to use.
    #[arg(long, global = true)]
    pub context: Option<String>,
    /// The kubeconfig cluster to use.
    #[arg(long, global = true)]
    pub cluster: Option<String>,
    /// The kubeconfig user to use.
    #[arg(long, global = true)]
    pub user: Option<String>,
    /// Namespace scope (default: the context's namespace, else `default`).
    #[arg(short = 'n', long, global = true)]
    pub namespace: Option<String>,
    /// All namespaces.
    #[arg(short = 'A', long, global = true)]
    pub all_namespaces: bool,
    /// Username to impersonate.
    #[arg(long = "as", global = true, value_name = "USER")]
    pub as_user: Option<String>,
    /// Group to impersonate (repeatable).
    #[arg(long = "as-group", global = true, value_name = "GROUP")]
    pub as_group: Vec<String>,
    /// How long to wait for one server request, e.g. 10s, 1m; 0 waits forever.
    #[arg(long, global = true, value_name = "DURATION", default_value = "0")]
    pub request_timeout: String,
    /// The address of the Kubernetes API server.
    #[arg(short = 's', long, global = true)]
    pub server: Option<String>,
    /// Do not verify the server's certificate (insecure).
    #[arg(long, global = true)]
    pub insecure_skip_tls_verify: bool,
    /// A CA certificate file (PEM) to verify the server's certificate with, instead of the
    /// kubeconfig's.
    #[arg(long, global = true, value_name = "FILE")]
    pub certificate_authority: Option<PathBuf>,
    /// Bearer token for the API server (sent over https, or plain http to this machine only).
    #[arg(long, global = true)]
    pub token: Option<crate::cluster::token::Token>,

    /// Run against the built-in simulated cluster (no cluster needed).
    #[cfg_attr(
        not(feature = "demo"),
        arg(
            help = "Run against the built-in simulated cluster (not in this build: it was built without the cargo feature `demo`)."
        )
    )]
    #[arg(long, global = true, conflicts_with = "from")]
    pub demo: bool,
    /// Read objects from files instead of a cluster: a YAML/JSON file, a folder, or a Harvester
    /// support bundle (zip or extracted).
    #[arg(long, global = true, value_name = "PATH")]
    pub from: Option<PathBuf>,
    /// With --from: the most one file or zip entry may hold, unpacked [default: 256Mi].
    #[arg(long, global = true, value_name = "SIZE")]
    pub max_file_size: Option<String>,
    /// With --from: the most all files read may hold together [default: 1Gi].
    #[arg(long, global = true, value_name = "SIZE")]
    pub max_total_size: Option<String>,
    /// KubeVirt version to assume when the cluster does not say (e.g. v1.3.0).
    #[arg(long, global = true, value_name = "VERSION")]
    pub kubevirt_version: Option<String>,
    /// Where live memory numbers come from.
    #[arg(long, global = true, value_enum, default_value_t = LiveMode::Auto)]
    pub live: LiveMode,
    /// Namespace for agent pods (default: vmmem-system, made by assets/rbac/agent-namespace.yaml).
    #[arg(long, global = true, value_name = "NS")]
    pub agent_namespace: Option<String>,
    /// Image for agent pods (default: busybox:1.37.0 pinned by digest; SUSE BCI on Harvester).
    #[arg(long, global = true, value_name = "IMAGE")]
    pub agent_image: Option<String>,
    /// Image pull secret for agent pods.
    #[arg(long, global = true, value_name = "SECRET")]
    pub agent_pull_secret: Option<String>,
    /// Image pull policy for agent pods (Always, IfNotPresent, Never).
    #[arg(long, global = true, value_name = "POLICY")]
    pub agent_pull_policy: Option<String>,
    /// Refresh interval of the dashboard.
    #[arg(
        short = 'r',
        long,
        global = true,
        value_name = "DURATION",
        default_value = "2s"
    )]
    pub refresh: String,
    /// Disable every mutating action.
    #[arg(long, global = true)]
    pub readonly: bool,
    /// How far back remembered peaks count as evidence (e.g. 7d, 12h), or `off` to use and keep
    /// no history at all (peaks are kept per cluster and VM in the user's state directory).
    #[arg(long, global = true, value_name = "WINDOW|off", default_value = "7d")]
    pub history: String,
    /// Prometheus to read each VM's history from (peaks, OOM kills, limit changes over the
    /// --history window). Without it, a well-known monitoring service (Harvester's, OpenShift's,
    /// kube-prometheus') is used through the API server's service proxy when there is one.
    #[arg(long, global = true, value_name = "URL")]
    pub prometheus: Option<String>,
    /// Bearer token for --prometheus (default: the kubeconfig user's credentials); sent over
    /// https, or plain http to this machine only.
    #[arg(
        long,
        global = true,
        value_name = "TOKEN",
        env = "VMMEM_PROMETHEUS_TOKEN",
        hide_env_values = true
    )]
    pub prometheus_token: Option<crate::cluster::token::Token>,
    /// Do not verify --prometheus's certificate (insecure).
    #[arg(long, global = true)]
    pub prometheus_insecure_skip_tls_verify: bool,
    /// End the Prometheus history window at this time (RFC 3339, e.g. 2026-11-21T22:00:00Z)
    /// instead of now: the week before an incident.
    #[arg(long, global = true, value_name = "TIME")]
    pub prometheus_until: Option<String>,
    /// Log what the tool does, as kubectl's -v: 6 logs each API request with its status and
    /// latency, 8 their bodies too. To stderr; the dashboard writes a file named in its ? help.
    #[arg(
        short = 'v',
        long = "v",
        global = true,
        value_name = "LEVEL",
        default_value_t = 0,
        value_parser = clap::value_parser!(u8).range(0..=10)
    )]
    pub verbosity: u8,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plugin_name_in_help() {
        assert_eq!(
            display_name("/usr/local/bin/kubectl-vmmem"),
            "kubectl vmmem"
        );
        assert_eq!(display_name("target/debug/vmmem"), "kubectl-vmmem");
    }

    #[test]
    fn kubectl_flags_parse_anywhere() {
        let cli = Cli::try_parse_from([
            "kubectl vmmem",
            "list",
            "-n",
            "prod",
            "--context",
            "c1",
            "--as",
            "me",
            "--as-group",
            "g1",
            "--as-group",
            "g2",
            "-o",
            "json",
            "--request-timeout",
            "5s",
        ])
        .unwrap();
        assert_eq!(cli.global.namespace.as_deref(), Some("prod"));
        assert_eq!(cli.global.context.as_deref(), Some("c1"));
        assert_eq!(cli.global.as_group, vec!["g1", "g2"]);
        assert_eq!(cli.global.request_timeout, "5s");
        let Some(Command::List(l)) = cli.command else {
            panic!()
        };
        assert_eq!(l.output, ListOutput::Json);
        Cli::command_for_test().debug_assert();
    }

    #[test]
    fn debug_of_the_flags_holds_no_token() {
        let cli =
            Cli::try_parse_from(["kubectl vmmem", "list", "--token", "tok-that-must-not-leak"])
                .unwrap();
        assert_eq!(
            cli.global.token.as_ref().map(|t| t.expose()),
            Some("tok-that-must-not-leak")
        );
        for shown in [format!("{cli:?}"), format!("{:#?}", cli.global)] {
            assert!(!shown.contains("tok-that-must-not-leak"), "{shown}");
            assert!(shown.contains("<redacted>"), "{shown}");
        }
    }

    #[test]
    fn probe_flags() {
        let cli = Cli::try_parse_from([
            "kubectl vmmem",
            "probe",
            "--local",
            "--cgroup-root",
            "/x",
            "abc:2Gi",
            "def",
            "-o",
            "json",
        ])
        .unwrap();
        let Some(Command::Probe(p)) = cli.command else {
            panic!()
        };
        assert!(p.local);
        assert_eq!(p.cgroup_root, PathBuf::from("/x"));
        assert_eq!(p.proc_root, PathBuf::from("/proc"));
        assert_eq!(p.pods, ["abc:2Gi", "def"]);
        assert_eq!(p.output, ProbeOutput::Json);
    }

    impl Cli {
        fn command_for_test() -> clap::Command {
            <Cli as clap::CommandFactory>::command()
        }
    }
}
