//! Kubeconfig rules, override flags and the sentences for unreachable servers.

use super::*;

fn kubeconfig(dir: &Path, file: &str, ctx: &str, server: &str, ns: Option<&str>) -> PathBuf {
    let ns = ns.map_or(String::new(), |n| format!("    namespace: {n}\n"));
    let text = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: {ctx}-cluster\n  cluster:\n    server: {server}\ncontexts:\n- name: {ctx}\n  context:\n    cluster: {ctx}-cluster\n    user: {ctx}-user\n{ns}current-context: {ctx}\nusers:\n- name: {ctx}-user\n  user:\n    token: t-{ctx}\n"
    );
    let p = dir.join(file);
    std::fs::write(&p, text).unwrap();
    p
}

#[tokio::test]
async fn kubeconfig_list_is_merged_first_wins_and_missing_files_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let a = kubeconfig(
        dir.path(),
        "a",
        "alpha",
        "http://127.0.0.1:1",
        Some("team-a"),
    );
    let b = kubeconfig(dir.path(), "b", "beta", "http://127.0.0.1:2", None);
    let missing = dir.path().join("missing");
    let list = std::env::join_paths([&missing, &a, &b]).unwrap();
    let env = Env {
        kubeconfig: Some(list),
        ..Env::default()
    };
    let conn = connect_with_env(&ConnectFlags::default(), &env)
        .await
        .unwrap();
    assert_eq!(conn.context.as_deref(), Some("alpha"));
    assert_eq!(conn.server, "http://127.0.0.1:1");
    assert_eq!(conn.default_namespace, "team-a");
    let flags = ConnectFlags {
        context: Some("beta".into()),
        ..ConnectFlags::default()
    };
    let conn = connect_with_env(&flags, &env).await.unwrap();
    assert_eq!(conn.server, "http://127.0.0.1:2");
    assert_eq!(conn.default_namespace, "default");
    assert_eq!(conn.cluster.as_deref(), Some("beta-cluster"));
}

#[tokio::test]
async fn flag_beats_env_and_home() {
    let dir = tempfile::tempdir().unwrap();
    let a = kubeconfig(dir.path(), "a", "alpha", "http://127.0.0.1:1", None);
    let home = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(home.path().join(".kube")).unwrap();
    kubeconfig(
        &home.path().join(".kube"),
        "config",
        "home",
        "http://127.0.0.1:3",
        None,
    );
    let env = Env {
        kubeconfig: None,
        home: Some(home.path().to_path_buf()),
        in_cluster: false,
    };
    let conn = connect_with_env(&ConnectFlags::default(), &env)
        .await
        .unwrap();
    assert_eq!(conn.context.as_deref(), Some("home"));
    let flags = ConnectFlags {
        kubeconfig: Some(a),
        server: Some("http://127.0.0.1:9".into()),
        as_user: Some("alice".into()),
        as_groups: vec!["ops".into()],
        token: Some("tok".into()),
        request_timeout: Some(Duration::from_secs(5)),
        ..ConnectFlags::default()
    };
    let conn = connect_with_env(&flags, &env).await.unwrap();
    assert_eq!(conn.context.as_deref(), Some("alpha"));
    assert_eq!(conn.server, "http://127.0.0.1:9");
    assert_eq!(conn.config.auth_info.impersonate.as_deref(), Some("alice"));
    assert_eq!(
        conn.config.auth_info.impersonate_groups,
        Some(vec!["ops".to_string()])
    );
    assert_eq!(conn.config.read_timeout, Some(Duration::from_secs(5)));
    assert!(conn.watch_client().is_ok());
}

#[tokio::test]
async fn clear_sentences_for_missing_config_and_unknown_context() {
    let dir = tempfile::tempdir().unwrap();
    let env = Env {
        home: Some(dir.path().to_path_buf()),
        ..Env::default()
    };
    let e = connect_with_env(&ConnectFlags::default(), &env)
        .await
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("no kubeconfig found (looked at "), "{e}");
    assert!(e.contains(".kube"), "{e}");
    let a = kubeconfig(dir.path(), "a", "alpha", "http://127.0.0.1:1", None);
    let flags = ConnectFlags {
        kubeconfig: Some(a),
        context: Some("prod".into()),
        ..ConnectFlags::default()
    };
    let e = connect_with_env(&flags, &env)
        .await
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        "context \"prod\" is not in the kubeconfig (it has: alpha)"
    );
    let flags = ConnectFlags {
        kubeconfig: Some(dir.path().join("nope")),
        ..ConnectFlags::default()
    };
    let e = connect_with_env(&flags, &env)
        .await
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("cannot read kubeconfig "), "{e}");
}

#[tokio::test]
async fn server_flag_alone_is_enough() {
    let env = Env::default();
    let flags = ConnectFlags {
        server: Some("http://127.0.0.1:7".into()),
        ..ConnectFlags::default()
    };
    let conn = connect_with_env(&flags, &env).await.unwrap();
    assert_eq!(conn.server, "http://127.0.0.1:7");
    assert_eq!(conn.default_namespace, "default");
    let flags = ConnectFlags {
        server: Some("not a url".into()),
        ..ConnectFlags::default()
    };
    assert!(connect_with_env(&flags, &env).await.is_err());
}

/// A server on 127.0.0.1 that accepts connections and never answers (until the task is aborted).
async fn silent_server() -> (std::net::SocketAddr, tokio::task::JoinHandle<()>) {
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = silent.local_addr().unwrap();
    let keep = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = silent.accept().await {
            held.push(s);
        }
    });
    (addr, keep)
}

#[tokio::test]
async fn unreachable_and_silent_servers_fail_within_the_timeout() {
    // A port nobody listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let flags = ConnectFlags {
        server: Some(format!("http://127.0.0.1:{port}")),
        request_timeout: Some(Duration::from_secs(2)),
        ..ConnectFlags::default()
    };
    let conn = connect_with_env(&flags, &Env::default()).await.unwrap();
    let e = conn.check_reachable().await.unwrap_err().to_string();
    assert!(
        e.starts_with(&format!(
            "cannot reach the Kubernetes API server at http://127.0.0.1:{port}: "
        )),
        "{e}"
    );
    // A server that accepts connections and never answers.
    let (addr, keep) = silent_server().await;
    let flags = ConnectFlags {
        server: Some(format!("http://{addr}")),
        request_timeout: Some(Duration::from_secs(1)),
        ..ConnectFlags::default()
    };
    let conn = connect_with_env(&flags, &Env::default()).await.unwrap();
    let started = std::time::Instant::now();
    let e = conn.check_reachable().await.unwrap_err().to_string();
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        e,
        format!("the Kubernetes API server at http://{addr} did not answer within 1s (--request-timeout)")
    );
    keep.abort();
}

#[tokio::test]
async fn tokens_go_over_plain_http_only_to_this_machine() {
    let token = "tok-that-must-not-leak";
    for server in [
        "http://10.0.0.1:6443",
        "http://kube.example:80",
        "http://[fd00::1]:6443",
    ] {
        let flags = ConnectFlags {
            server: Some(server.into()),
            token: Some(token.into()),
            ..ConnectFlags::default()
        };
        let e = connect_with_env(&flags, &Env::default())
            .await
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("refusing to send credentials in clear text to http://"),
            "{server}: {e}"
        );
        assert!(e.contains("use https://") && !e.contains(token), "{e}");
    }
    // The same token is fine to loopback over http, and to anyone over https.
    for server in [
        "http://127.0.0.1:6443",
        "http://127.8.0.1:1",
        "http://[::1]:6443",
        "http://localhost:8001",
        "https://10.0.0.1:6443",
    ] {
        let flags = ConnectFlags {
            server: Some(server.into()),
            token: Some(token.into()),
            ..ConnectFlags::default()
        };
        assert!(
            connect_with_env(&flags, &Env::default()).await.is_ok(),
            "{server}"
        );
    }
    // Without credentials plain http anywhere stays allowed (kubectl proxy on another host).
    let flags = ConnectFlags {
        server: Some("http://10.0.0.1:8001".into()),
        ..ConnectFlags::default()
    };
    assert!(connect_with_env(&flags, &Env::default()).await.is_ok());
    // A kubeconfig user's token counts too.
    let dir = tempfile::tempdir().unwrap();
    let kc = kubeconfig(dir.path(), "a", "far", "http://192.0.2.7:6443", None);
    let flags = ConnectFlags {
        kubeconfig: Some(kc),
        ..ConnectFlags::default()
    };
    let e = connect_with_env(&flags, &Env::default())
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("in clear text to http://192.0.2.7:6443"), "{e}");
}

#[test]
fn flags_debug_holds_no_token() {
    let flags = ConnectFlags {
        token: Some("tok-that-must-not-leak".into()),
        ..ConnectFlags::default()
    };
    let shown = format!("{flags:?}");
    assert!(!shown.contains("tok-that-must-not-leak"), "{shown}");
    assert!(shown.contains("<redacted>"), "{shown}");
}

#[tokio::test]
async fn a_timeout_is_told_by_its_type_not_its_words() {
    let flags = ConnectFlags {
        server: Some("http://127.0.0.1:7".into()),
        request_timeout: Some(Duration::from_secs(5)),
        ..ConnectFlags::default()
    };
    let conn = connect_with_env(&flags, &Env::default()).await.unwrap();
    let timeout = "the Kubernetes API server at http://127.0.0.1:7 did not answer within 5s (--request-timeout)";
    let io = |kind, text: &str| kube::Error::Service(Box::new(std::io::Error::new(kind, text)));
    // The client's read timeout: an I/O error of kind TimedOut, whatever it says.
    let e = io(std::io::ErrorKind::TimedOut, "deadline has elapsed");
    assert!(timed_out(&e));
    assert_eq!(conn.request_error(&e).to_string(), timeout);
    // tokio's Elapsed wrapped in an I/O error of another kind (found under it).
    let elapsed = tokio::time::timeout(Duration::ZERO, std::future::pending::<()>())
        .await
        .unwrap_err();
    let e = kube::Error::Service(Box::new(std::io::Error::other(elapsed)));
    assert_eq!(conn.request_error(&e).to_string(), timeout);
    // The words alone are no timeout.
    let e = io(std::io::ErrorKind::ConnectionRefused, "the peer timed out");
    assert!(!timed_out(&e));
    assert_eq!(
        conn.request_error(&e).to_string(),
        "cannot reach the Kubernetes API server at http://127.0.0.1:7: the peer timed out"
    );
}

#[tokio::test]
async fn a_real_read_timeout_is_a_timeout() {
    // A server that never answers: the client's own read timeout ends the request (no outer
    // time limit here).
    let (addr, keep) = silent_server().await;
    let flags = ConnectFlags {
        server: Some(format!("http://{addr}")),
        request_timeout: Some(Duration::from_millis(300)),
        ..ConnectFlags::default()
    };
    let conn = connect_with_env(&flags, &Env::default()).await.unwrap();
    let e = conn.client.apiserver_version().await.unwrap_err();
    assert!(timed_out(&e), "{e:?}");
    assert!(
        matches!(conn.request_error(&e), ConnectError::Timeout { .. }),
        "{e:?}"
    );
    keep.abort();
}
