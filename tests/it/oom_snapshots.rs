//! The rendered table and JSON for the seed's reports, pinned (review changes with `cargo insta`).

use crate::oom_fixtures::fixture;
use vmmem::model::oom_verdict::explain;
use vmmem::model::version::Version;
use vmmem::output::oom::{to_json, to_table};
use vmmem::parse::oom::parse_kernel_log;

#[test]
fn table_of_a_kernel_log_with_two_reports() {
    let events = parse_kernel_log(&fixture("variant-multi-kernel-log.log"));
    let explained = explain(&events, None, Some(Version::new(1, 1, 1)));
    insta::assert_snapshot!(to_table(&explained));
}

#[test]
fn json_of_the_seed_examples() {
    let mut text = String::new();
    for name in [
        "seed-example1-journal.log",
        "seed-example2-dmesg-T.log",
        "seed-example3-dmesg.log",
    ] {
        text.push_str(&fixture(name));
    }
    let events = parse_kernel_log(&text);
    assert_eq!(events.len(), 3);
    let explained = explain(&events, None, Some(Version::new(0, 54, 0)));
    insta::assert_snapshot!(to_json(&explained).unwrap());
}
