//! Every verifier rule has at least one test that names it: a rule nobody trips in a test is a
//! check nobody knows works.

use ntsim::Rule;

/// Rules that are not driver bugs and need no fragment of their own.
const NOT_DRIVER_RULES: &[Rule] = &[Rule::EndOfRun, Rule::Panic];

#[test]
fn every_rule_is_named_by_a_test() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests");
    let mut sources = String::new();
    for entry in std::fs::read_dir(dir).expect("tests folder") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "rs")
            && path.file_name().is_some_and(|n| n != "rule_coverage.rs")
        {
            sources.push_str(&std::fs::read_to_string(&path).expect("readable test"));
        }
    }
    let missing: Vec<String> = Rule::ALL
        .iter()
        .filter(|r| !NOT_DRIVER_RULES.contains(r))
        .filter(|r| !sources.contains(&format!("Rule::{r:?}")))
        .map(|r| format!("{} {:?} ({})", r.number(), r, r.title()))
        .collect();
    assert!(
        missing.is_empty(),
        "verifier rules without a test that trips them:\n{}",
        missing.join("\n")
    );
}
