//! The published contract and the deployed routes stay in step: every API
//! Gateway route in `template.yaml` is documented in `docs/openapi.yaml`
//! (by its `x-route-key`) and nothing is documented that is not routed.

use std::collections::BTreeSet;

fn values_after(path: &str, marker: &str) -> BTreeSet<String> {
    let text =
        std::fs::read_to_string(format!("{}/../{path}", env!("CARGO_MANIFEST_DIR"))).expect(path);
    text.lines()
        .filter_map(|l| l.trim().strip_prefix(marker))
        .map(|v| v.trim().trim_matches('"').to_string())
        .collect()
}

#[test]
fn every_route_is_documented_and_every_documented_route_exists() {
    let routed = values_after("template.yaml", "RouteKey:");
    let documented = values_after("docs/openapi.yaml", "x-route-key:");
    assert!(!routed.is_empty());
    assert_eq!(routed, documented);
}

#[test]
fn every_documented_path_is_under_v1_but_the_console_itself() {
    for route in values_after("docs/openapi.yaml", "x-route-key:") {
        let path = route.split_whitespace().nth(1).unwrap_or_default();
        assert!(
            path.starts_with("/v1/") || path == "/console" || path == "/console/{asset}",
            "{route}"
        );
    }
}

/// Every queue a function consumes is drained by a bounded number of
/// instances (`ScalingConfig.MaximumConcurrency`): a flood on one queue (a
/// redelivery storm, a burst of pictures) cannot take the account's
/// concurrency from the functions that answer the office and the carrier.
#[test]
fn every_queue_mapping_bounds_its_concurrency() {
    let text = std::fs::read_to_string(format!("{}/../template.yaml", env!("CARGO_MANIFEST_DIR")))
        .expect("template.yaml");
    let lines: Vec<&str> = text.lines().collect();
    let mut mappings = 0;
    for (i, line) in lines.iter().enumerate() {
        // An event source (its `Properties` follow), not a failure
        // destination (`Type: SQS` under `OnFailure`).
        if line.trim() != "Type: SQS" || lines.get(i + 1).map(|l| l.trim()) != Some("Properties:") {
            continue;
        }
        let indent = line.len() - line.trim_start().len();
        // The mapping's name is the line above; its properties follow,
        // more indented than the name.
        let name = lines[i - 1].trim();
        let body: Vec<&str> = lines[i + 1..]
            .iter()
            .take_while(|l| l.trim().is_empty() || l.len() - l.trim_start().len() >= indent)
            .copied()
            .collect();
        mappings += 1;
        assert!(
            body.iter()
                .any(|l| l.trim().starts_with("MaximumConcurrency:")),
            "the SQS mapping {name} sets no ScalingConfig.MaximumConcurrency"
        );
    }
    assert!(mappings >= 4, "found {mappings} SQS mappings");
}
