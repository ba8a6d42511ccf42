//! The RBAC manifests in assets/rbac and the table in docs/install.md say the same: every row of
//! the table is granted by the file it names and every grant of a file is a row of the table.
//! That the grants are exactly what the code asks for is measured by rbac_requests.rs.

use std::path::PathBuf;

use serde::Deserialize;

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
}

#[derive(Debug, Deserialize)]
struct Rule {
    #[serde(rename = "apiGroups", default)]
    api_groups: Vec<String>,
    #[serde(default)]
    resources: Vec<String>,
    #[serde(default)]
    verbs: Vec<String>,
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn objects(file: &str) -> Vec<Object> {
    let text = std::fs::read_to_string(root().join("assets/rbac").join(file))
        .unwrap_or_else(|e| panic!("reading assets/rbac/{file}: {e}"));
    vmmem::parse::yaml::documents::<Object>(&text)
        .unwrap_or_else(|(doc, e)| panic!("{file}: document {doc}: {e}"))
}

/// Does some rule of the file grant `verb` on `group`/`resource`? (No wildcards: we grant
/// exactly what is used.)
fn grants(file: &str, group: &str, resource: &str, verb: &str) -> bool {
    objects(file).iter().any(|o| {
        o.rules.iter().any(|r| {
            r.api_groups.iter().any(|g| g == group)
                && r.resources.iter().any(|x| x == resource)
                && r.verbs.iter().any(|v| v == verb)
        })
    })
}

/// Rows of the RBAC table in docs/install.md: (feature, group, resource, verbs, file).
fn table() -> Vec<(String, String, String, Vec<String>, String)> {
    let doc = std::fs::read_to_string(root().join("docs/install.md")).unwrap();
    doc.lines()
        .filter(|l| l.starts_with("| ") && l.ends_with(".yaml |"))
        .map(|l| {
            let cells: Vec<String> = l
                .trim_matches('|')
                .split('|')
                .map(|c| c.trim().to_string())
                .collect();
            assert_eq!(cells.len(), 5, "row {l:?}");
            let group = if cells[1] == "core" {
                String::new()
            } else {
                cells[1].clone()
            };
            let verbs = cells[3].split(',').map(|v| v.trim().to_string()).collect();
            (
                cells[0].clone(),
                group,
                cells[2].clone(),
                verbs,
                cells[4].clone(),
            )
        })
        .collect()
}

#[test]
fn the_files_are_roles_with_the_documented_names() {
    let names = |f: &str| {
        objects(f)
            .into_iter()
            .map(|o| (o.kind, o.metadata.name))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        names("readonly-clusterrole.yaml"),
        vec![("ClusterRole".into(), "kubectl-vmmem-readonly".into())]
    );
    assert_eq!(
        names("fix-role.yaml"),
        vec![("ClusterRole".into(), "kubectl-vmmem-fix".into())]
    );
    assert_eq!(
        names("agent-role.yaml"),
        vec![("Role".into(), "kubectl-vmmem-agent".into())]
    );
    assert_eq!(
        names("pod-exec-role.yaml"),
        vec![("ClusterRole".into(), "kubectl-vmmem-pod-exec".into())]
    );
    assert_eq!(
        names("kubelet-clusterrole.yaml"),
        vec![("ClusterRole".into(), "kubectl-vmmem-kubelet".into())]
    );
    for f in FILES {
        for o in objects(f) {
            for r in &o.rules {
                assert!(
                    !r.verbs
                        .iter()
                        .chain(&r.resources)
                        .chain(&r.api_groups)
                        .any(|x| x == "*"),
                    "{f}: wildcard in {r:?}"
                );
            }
        }
    }
}

#[test]
fn every_row_of_the_table_is_granted_by_its_file() {
    let rows = table();
    assert!(
        rows.len() >= 15,
        "the RBAC table in docs/install.md has {} rows",
        rows.len()
    );
    for (feature, group, resource, verbs, file) in rows {
        for verb in verbs {
            assert!(
                grants(&file, &group, &resource, &verb),
                "{feature}: {file} does not grant {verb} on {group}/{resource}"
            );
        }
    }
}

#[test]
fn the_read_only_role_cannot_change_anything() {
    for o in objects("readonly-clusterrole.yaml") {
        for r in o.rules {
            for v in r.verbs {
                assert!(
                    ["get", "list", "watch"].contains(&v.as_str()),
                    "readonly grants {v}"
                );
            }
        }
    }
}

const FILES: [&str; 5] = [
    "readonly-clusterrole.yaml",
    "fix-role.yaml",
    "agent-role.yaml",
    "pod-exec-role.yaml",
    "kubelet-clusterrole.yaml",
];

/// Every grant of every file is in the table, with the file's name.
#[test]
fn the_table_names_every_grant() {
    let rows = table();
    for file in FILES {
        for o in objects(file) {
            for r in &o.rules {
                for group in &r.api_groups {
                    for resource in &r.resources {
                        for verb in &r.verbs {
                            assert!(
                                rows.iter().any(|(_, g, res, vs, f)| f == file
                                    && g == group
                                    && res == resource
                                    && vs.contains(verb)),
                                "docs/install.md's table lacks {verb} on {group}/{resource} ({file})"
                            );
                        }
                    }
                }
            }
        }
    }
}

/// The agent namespace's manifest: `vmmem-system`, Pod Security level privileged, and the Role
/// applied there.
#[test]
fn the_agent_namespace_is_its_own_and_privileged() {
    let text = std::fs::read_to_string(root().join("assets/rbac/agent-namespace.yaml")).unwrap();
    let ns: serde_json::Value = vmmem::parse::yaml::from_str(&text).unwrap();
    assert_eq!(ns["kind"], "Namespace");
    assert_eq!(
        ns["metadata"]["name"],
        vmmem::node::agent_spec::DEFAULT_NAMESPACE
    );
    assert_eq!(
        ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"],
        "privileged"
    );
    let role = std::fs::read_to_string(root().join("assets/rbac/agent-role.yaml")).unwrap();
    assert!(role.contains("namespace: vmmem-system"), "{role}");
}
