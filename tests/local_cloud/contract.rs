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
