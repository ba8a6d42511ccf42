//! The full row of the VM in focus, built with a refresh or asked for alone afterwards, is the
//! same row: same figures, same evidence (the peaks a refresh's rows are built with are the
//! ones kept for the rows asked for until the next refresh).

use std::time::Duration;

use crate::model::evidence::VmKey;
use crate::session::dashboard::snapshot::{DataSource, Request, Scope};
use vmmem_sim::Sim;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_row_asked_for_after_a_refresh_is_the_refreshs_own() {
    let sim = Sim::start_demo().await.unwrap();
    let (mut source, _dir) = super::tests_oom_source::demo_source(&sim);
    let key = VmKey::new("default", "memhold-vm");
    let request = Request {
        scope: Scope { namespace: None },
        focus: Some(key.clone()),
        generation: 0,
    };
    let mut with_session_peak = false;
    for _ in 0..4 {
        let snap = source.fetch(&request).await;
        assert!(snap.health.is_ok(), "{:?}", snap.health);
        let [own] = snap.details.as_slice() else {
            panic!("the focus's row comes with the refresh: {:?}", snap.details)
        };
        let alone = source
            .detail(&request.scope, &key)
            .await
            .expect("the row asked for alone");
        assert_eq!(format!("{alone:?}"), format!("{own:?}"));
        with_session_peak |= own
            .recommendation
            .evidence
            .iter()
            .any(|e| e.kind == crate::model::evidence::EvidenceKind::SessionPeak);
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert!(with_session_peak, "the later refreshes have a session peak");
    // Another VM, asked for alone, is built too; a VM that is not there is not.
    assert!(source
        .detail(&request.scope, &VmKey::new("default", "web-01"))
        .await
        .is_some_and(|r| r.name == "web-01"));
    assert!(source
        .detail(&request.scope, &VmKey::new("default", "no-such-vm"))
        .await
        .is_none());
    source.shutdown().await;
    sim.shutdown().await;
}
