//! The RBAC manifests in assets/rbac grant what the tool uses: every row of the table in
//! docs/install.md is granted by the file it names, and the calls the code makes are in the table.

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
        vec![
            ("Role".into(), "kubectl-vmmem-agent".into()),
            ("ClusterRole".into(), "kubectl-vmmem-node-readings".into())
        ]
    );
    for f in [
        "readonly-clusterrole.yaml",
        "fix-role.yaml",
        "agent-role.yaml",
    ] {
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

/// What the code calls, by feature: the source of the table. Reads: cluster/live.rs (reflectors
/// for VMs, VMIs, pods, nodes, KubeVirt CRs, resource quotas, Harvester settings), completion
/// (namespaces, nodes, VMs); fix (merge patch of the VM, PUT of the restart subresource, then
/// VMI and pod reads); the node agent (pods create/delete, exec) and the fallbacks (pods/exec in
/// VM namespaces, nodes/proxy).
#[test]
fn the_table_covers_every_call_the_tool_makes() {
    let used: &[(&str, &str, &str, &str)] = &[
        (
            "readonly-clusterrole.yaml",
            "kubevirt.io",
            "virtualmachines",
            "list,watch,get",
        ),
        (
            "readonly-clusterrole.yaml",
            "kubevirt.io",
            "virtualmachineinstances",
            "list,watch",
        ),
        (
            "readonly-clusterrole.yaml",
            "kubevirt.io",
            "kubevirts",
            "list,watch",
        ),
        ("readonly-clusterrole.yaml", "", "pods", "list,watch"),
        ("readonly-clusterrole.yaml", "", "nodes", "list,watch"),
        (
            "readonly-clusterrole.yaml",
            "",
            "resourcequotas",
            "list,watch",
        ),
        (
            "readonly-clusterrole.yaml",
            "harvesterhci.io",
            "settings",
            "list,watch",
        ),
        ("readonly-clusterrole.yaml", "", "namespaces", "list"),
        // Instance types (issue 16): listed and watched by list/top, read by fix.
        (
            "readonly-clusterrole.yaml",
            "instancetype.kubevirt.io",
            "virtualmachineinstancetypes",
            "list,watch,get",
        ),
        (
            "readonly-clusterrole.yaml",
            "instancetype.kubevirt.io",
            "virtualmachineclusterinstancetypes",
            "list,watch,get",
        ),
        (
            "fix-role.yaml",
            "kubevirt.io",
            "virtualmachines",
            "get,patch",
        ),
        (
            "fix-role.yaml",
            "subresources.kubevirt.io",
            "virtualmachines/restart",
            "update",
        ),
        (
            "fix-role.yaml",
            "kubevirt.io",
            "virtualmachineinstances",
            "get,watch",
        ),
        ("fix-role.yaml", "", "pods", "get,list"),
        (
            "agent-role.yaml",
            "",
            "pods",
            "create,delete,get,list,watch,deletecollection",
        ),
        ("agent-role.yaml", "", "pods/exec", "create,get"),
        ("agent-role.yaml", "", "nodes/proxy", "get"),
    ];
    let rows = table();
    for (file, group, resource, verbs) in used {
        for verb in verbs.split(',') {
            assert!(
                rows.iter().any(|(_, g, r, vs, f)| f == file
                    && g == group
                    && r == resource
                    && vs.iter().any(|v| v == verb)),
                "docs/install.md's table lacks {verb} on {group}/{resource} ({file})"
            );
            assert!(
                grants(file, group, resource, verb),
                "{file} does not grant {verb} on {group}/{resource}"
            );
        }
    }
}
