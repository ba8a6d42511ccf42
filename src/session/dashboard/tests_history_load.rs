//! The dashboard's background history loads against loopback servers: one that refuses (the
//! load finishes at once with its sentence) and one that takes the connection and never answers.

use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;

use super::*;
use crate::history::HistoryMode;

fn scope(ns: &str) -> Scope {
    Scope {
        namespace: Some(ns.into()),
    }
}

async fn conn() -> Connection {
    let kc = kube::config::Kubeconfig::from_yaml(
        "apiVersion: v1\nkind: Config\ncurrent-context: c\nclusters: [{name: k, cluster: {server: 'http://127.0.0.1:9'}}]\nusers: [{name: u, user: {}}]\ncontexts: [{name: c, context: {cluster: k, user: u}}]\n",
    )
    .unwrap();
    crate::cluster::connect::from_kubeconfig(kc, &Default::default())
        .await
        .unwrap()
}

fn opts(url: &str) -> Options {
    let mut o = Options::default();
    o.prometheus.url = Some(url.into());
    o
}

/// A Prometheus that takes each connection and never answers; each connection's start and end
/// (the load dropped it) is sent on the channel.
async fn hanging() -> (String, tokio::sync::mpsc::UnboundedReceiver<bool>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            let tx = tx.clone();
            let _ = tx.send(true);
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                while matches!(tcp.read(&mut buf).await, Ok(n) if n > 0) {}
                let _ = tx.send(false);
            });
        }
    });
    (url, rx)
}

/// A port nothing listens on.
fn refusing() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    format!("http://{}", l.local_addr().unwrap())
}

/// Refresh until the load for `s` has finished.
async fn until_done(h: &mut HistoryLoads, o: &Options, s: &Scope, c: &Connection, now: i64) {
    for _ in 0..100 {
        h.refresh(o, s, c, &Inventory::default(), now);
        if h.current(s).is_some() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the load did not finish");
}

/// The next event of the hanging server is `connected` (true) or `ended` (false) within a few
/// seconds.
async fn next(events: &mut tokio::sync::mpsc::UnboundedReceiver<bool>, connected: bool) {
    let what = if connected {
        "a connection"
    } else {
        "the aborted load letting it go"
    };
    let got = tokio::time::timeout(Duration::from_secs(5), events.recv())
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"));
    assert_eq!(got, Some(connected), "{what}");
}

#[tokio::test]
async fn a_load_runs_beside_the_refreshes_and_the_last_one_stays_until_a_newer_one_is_done() {
    let c = conn().await;
    let (hung, mut ends) = hanging().await;
    let gone = refusing();
    let s = scope("prod");
    let mut h = HistoryLoads::default();
    let t0 = 1_796_625_612;
    // The first load, to a port that refuses: done at once, its sentence kept.
    until_done(&mut h, &opts(&gone), &s, &c, t0).await;
    let said = h.current(&s).unwrap().warnings.clone();
    assert!(said[0].contains("cannot reach Prometheus at"), "{said:?}");
    assert_eq!(h.loading(&s), None);
    // Not due again before 15 minutes: nothing starts (the hung server sees no connection).
    h.refresh(&opts(&hung), &s, &c, &Inventory::default(), t0 + 60);
    assert!(h.running.is_none());
    // Due: a newer load hangs; the last one's result stays in use, and nothing says "loading".
    h.refresh(
        &opts(&hung),
        &s,
        &c,
        &Inventory::default(),
        t0 + HISTORY_EVERY,
    );
    assert!(h.running.is_some());
    next(&mut ends, true).await;
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        h.refresh(
            &opts(&hung),
            &s,
            &c,
            &Inventory::default(),
            t0 + HISTORY_EVERY + 1,
        );
        assert!(h.current(&s).is_some_and(|l| l.warnings == said));
        assert_eq!(h.loading(&s), None);
    }
    // Shutdown aborts it.
    h.abort();
    next(&mut ends, false).await;
}

#[tokio::test]
async fn a_namespace_switch_aborts_the_old_scope_s_load_and_never_shows_its_history() {
    let c = conn().await;
    let (hung, mut ends) = hanging().await;
    let gone = refusing();
    let (prod, lab) = (scope("prod"), scope("lab"));
    let mut h = HistoryLoads::default();
    let t0 = 1_796_625_612;
    until_done(&mut h, &opts(&gone), &prod, &c, t0).await;
    // Switched to lab: prod's history is not lab's; lab's first load hangs and says so.
    h.refresh(&opts(&hung), &lab, &c, &Inventory::default(), t0 + 5);
    assert!(h.current(&lab).is_none());
    assert_eq!(
        h.loading(&lab),
        Some(format!(
            "history: loading the last 7 d from Prometheus at {hung}…"
        ))
    );
    assert_eq!(h.loading(&prod), None);
    next(&mut ends, true).await;
    // Back to prod before lab's load ended: lab's load stops, prod's is asked afresh.
    h.refresh(&opts(&gone), &prod, &c, &Inventory::default(), t0 + 10);
    next(&mut ends, false).await;
    until_done(&mut h, &opts(&gone), &prod, &c, t0 + 10).await;
    assert!(h.current(&lab).is_none());
    // History off, or files: nothing runs and nothing is said.
    let mut off = opts(&hung);
    off.history = HistoryMode::Off;
    let mut h = HistoryLoads::default();
    h.refresh(&off, &lab, &c, &Inventory::default(), t0);
    assert!(h.running.is_none() && h.loading(&lab).is_none());
}
