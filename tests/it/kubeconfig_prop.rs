//! KUBECONFIG lists and kubeconfig files of any shape: `kubeconfig_paths` never panics, keeps the
//! order, drops empty entries, repeats and missing files; reading and connecting either work or
//! fail with one line that names the file.

use std::ffi::OsString;
use std::path::PathBuf;

use proptest::prelude::*;
use vmmem::cluster::connect::{connect_with_env, kubeconfig_paths, read_merged, ConnectFlags, Env};

/// Entries of a KUBECONFIG list: good files, a directory, missing files, empties.
#[derive(Debug, Clone, Copy)]
enum Entry {
    Good(usize),
    Dir,
    Missing(usize),
    Empty,
}

fn entry() -> impl Strategy<Value = Entry> {
    prop_oneof![
        3 => (0usize..3).prop_map(Entry::Good),
        1 => Just(Entry::Dir),
        2 => (0usize..3).prop_map(Entry::Missing),
        2 => Just(Entry::Empty),
    ]
}

fn good(dir: &std::path::Path, i: usize) -> PathBuf {
    let p = dir.join(format!("good-{i}"));
    if !p.exists() {
        std::fs::write(
            &p,
            format!(
                "apiVersion: v1\nkind: Config\nclusters:\n- name: c{i}\n  cluster: {{server: 'http://127.0.0.1:{}'}}\ncontexts:\n- name: x{i}\n  context: {{cluster: c{i}, user: u{i}}}\ncurrent-context: x{i}\nusers:\n- name: u{i}\n  user: {{token: t{i}}}\n",
                9000 + i
            ),
        )
        .unwrap();
    }
    p
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn kubeconfig_lists(entries in proptest::collection::vec(entry(), 0..8)) {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir_all(d.join("a-dir")).unwrap();
        let parts: Vec<PathBuf> = entries
            .iter()
            .map(|e| match e {
                Entry::Good(i) => good(d, *i),
                Entry::Dir => d.join("a-dir"),
                Entry::Missing(i) => d.join(format!("missing-{i}")),
                Entry::Empty => PathBuf::new(),
            })
            .collect();
        let list: OsString = parts
            .iter()
            .map(|p| p.as_os_str().to_os_string())
            .collect::<Vec<_>>()
            .join(std::ffi::OsStr::new(":"));
        let env = Env { kubeconfig: Some(list), home: Some(d.join("home")), in_cluster: false };
        let (paths, looked) = kubeconfig_paths(None, &env).unwrap();
        prop_assert!(!looked.contains('\n'));
        // Existing entries, first occurrence only, in list order.
        let mut want: Vec<PathBuf> = Vec::new();
        for p in &parts {
            if !p.as_os_str().is_empty() && p.exists() && !want.contains(p) {
                want.push(p.clone());
            }
        }
        prop_assert_eq!(&paths, &want);
        match read_merged(&paths) {
            Ok(kc) => {
                prop_assert!(!paths.iter().any(|p| p.is_dir()));
                // The first good file's context is current.
                if let Some(Entry::Good(i)) = entries.iter().find(|e| matches!(e, Entry::Good(_))) {
                    prop_assert_eq!(kc.current_context, Some(format!("x{i}")));
                }
            }
            Err(e) => {
                let msg = e.to_string();
                prop_assert!(paths.iter().any(|p| p.is_dir()), "{}", msg);
                prop_assert!(msg.contains("a-dir") && !msg.contains('\n'), "{}", msg);
            }
        }
        let result = runtime().block_on(connect_with_env(&ConnectFlags::default(), &env));
        match result {
            Ok(conn) => {
                let first = entries.iter().find_map(|e| match e {
                    Entry::Good(i) => Some(*i),
                    _ => None,
                });
                prop_assert_eq!(conn.server, format!("http://127.0.0.1:{}", 9000 + first.unwrap()));
            }
            Err(e) => prop_assert!(!e.to_string().contains('\n'), "{}", e),
        }
    }

    #[test]
    fn kubeconfig_files_of_any_shape(text in kubeconfig_text()) {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("config");
        std::fs::write(&p, &text).unwrap();
        let flags = ConnectFlags { kubeconfig: Some(p.clone()), ..ConnectFlags::default() };
        if let Err(e) = runtime().block_on(connect_with_env(&flags, &Env::default())) {
            let msg = e.to_string();
            prop_assert!(!msg.contains('\n'), "{}", msg);
        }
    }
}

/// Kubeconfig-like YAML: real keys in random arrangements, with odd values.
fn kubeconfig_text() -> impl Strategy<Value = String> {
    let value = prop_oneof![
        Just("x".to_string()),
        Just("c".to_string()),
        Just("''".to_string()),
        Just("'!!notbase64'".to_string()),
        Just("aGVsbG8=".to_string()),
        Just("http://127.0.0.1:1".to_string()),
        Just("'::not a url'".to_string()),
        Just("[".to_string()),
        Just("{".to_string()),
        Just("~".to_string()),
        Just("123".to_string()),
        "\\PC{0,10}",
    ];
    let key = proptest::sample::select(vec![
        "apiVersion",
        "kind",
        "clusters",
        "contexts",
        "users",
        "current-context",
        "name",
        "cluster",
        "context",
        "user",
        "server",
        "certificate-authority-data",
        "client-certificate-data",
        "client-key-data",
        "token",
        "namespace",
        "insecure-skip-tls-verify",
        "proxy-url",
        "tls-server-name",
        "- name",
    ]);
    let line = (0usize..4, key, value)
        .prop_map(|(indent, k, v)| format!("{}{k}: {v}", "  ".repeat(indent)));
    proptest::collection::vec(line, 0..30).prop_map(|l| l.join("\n"))
}
