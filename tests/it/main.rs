//! The integration tests, as one test binary: one module per area (each was its own binary
//! before, and each of those linked the whole library again), the shared helpers as modules
//! beside them. Tests run in parallel threads of this one process, so a test never changes
//! what the process shares (environment, working directory, signal dispositions) and names
//! what it creates outside the process (tmux sockets, cgroups, temp files) after itself.

// Shared helpers.
mod common;
mod fix_checks;
mod fix_process;
mod krew_rules;
mod oom_fixtures;
mod support;
// Also built into benches/probe.rs, so it stays where the bench finds it.
#[path = "../support/cgtree.rs"]
mod cgtree;

mod agent_caps;
mod agent_cli;
mod agent_readings;
mod agent_wait;
mod bad_input_cli;
mod both_nodes;
mod both_servers;
mod cli_list;
mod completion_kubectl;
mod dashboard_prometheus;
mod dashboard_restarts;
mod demo_lab;
mod faults_agents;
mod faults_api;
mod faults_apiserver;
mod faults_dashboard;
mod faults_rbac;
mod faults_tui;

mod features_from_files;
mod features_hotplug;
mod fix_apiserver;
mod fix_interrupt;
mod fix_kubectl;
mod fix_race;
mod fix_sim;
mod fix_version_inferred;
mod guest_filling;
mod hostile_input;
mod hostile_output;
mod krew_manifest;
mod kubeconfig_auth;
mod kubeconfig_prop;
mod kubelet_readings;
mod kubelet_shmem_swap;
mod kubevirt_vectors;
mod least_privilege;
mod live_cli;
mod live_kubectl;
mod live_source;
mod manifest_prop;
mod one_number;
mod oom_cases;
mod oom_cli;
mod oom_eta;
mod oom_fuzz;
mod oom_parse;
mod oom_real_kernel;
mod oom_snapshots;
mod oom_stream;
mod oom_verdict;
mod parsers_prop;
mod plugin_install;
mod probe_fixtures;
mod probe_kernel;
mod probe_prop;
mod prometheus_real;
mod rbac;
mod rbac_apiserver;
mod rbac_requests;
mod readme_pictures;
mod real_apiserver_smoke;
mod real_node;
mod real_node_prometheus;
mod report_from_files;
mod sim_cli;
mod sim_client;
mod sim_exec;
mod sim_hotplug;
mod sim_kubectl;
mod sim_node_cpus;
mod sim_paging;
mod sim_prometheus;
mod sim_v2_sidecar;
mod support_bundle;
mod tui_pty;
