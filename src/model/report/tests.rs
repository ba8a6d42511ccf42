use super::*;
use crate::model::oom_vm::LogsRead;

#[test]
fn stale_nodes_are_said_once_per_reason() {
    let mut stale = HashMap::new();
    stale.insert("n3".to_string(), "exec timed out".to_string());
    stale.insert("n2".to_string(), "not allowed".to_string());
    stale.insert("n1".to_string(), "not allowed".to_string());
    assert_eq!(
        stale_warnings(&stale),
        vec![
            "live data for nodes n1, n2 is stale: not allowed".to_string(),
            "live data for node n3 is stale: exec timed out".to_string(),
        ]
    );
    assert!(stale_warnings(&HashMap::new()).is_empty());
}

#[test]
fn kernel_logs_read_cover_their_nodes() {
    assert!(!LogsRead::None.covers(Some("n1")));
    assert!(LogsRead::All.covers(None));
    let read = LogsRead::Nodes(["n1".to_string()].into_iter().collect());
    assert!(read.covers(Some("n1")));
    assert!(!read.covers(Some("n2")));
    assert!(!read.covers(None));
}
