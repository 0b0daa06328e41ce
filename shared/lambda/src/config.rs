//! Configuration from environment variables, read once at cold start.

/// Variables that were required but not set, all of them at once.
#[derive(Debug, thiserror::Error)]
#[error("missing environment variables: {}", .missing.join(", "))]
pub struct ConfigError {
    /// Every missing name.
    pub missing: Vec<&'static str>,
}

/// Reads every name in `names`; fails naming all that are missing or empty.
pub fn require<const N: usize>(names: [&'static str; N]) -> Result<[String; N], ConfigError> {
    let values = names.map(|n| std::env::var(n).ok().filter(|v| !v.is_empty()));
    let missing: Vec<&'static str> = names
        .iter()
        .zip(values.iter())
        .filter(|(_, v)| v.is_none())
        .map(|(n, _)| *n)
        .collect();
    if !missing.is_empty() {
        return Err(ConfigError { missing });
    }
    Ok(values.map(Option::unwrap_or_default))
}

/// An optional variable, or `default`.
pub fn optional(name: &str, default: &str) -> String {
    std::env::var(name)
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| default.to_string())
}

/// An optional numeric variable, or `default` when unset or unreadable.
pub fn optional_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_missing_variable_is_named() {
        let e = require([
            "SHARED_TEST_SURELY_UNSET_A",
            "PATH",
            "SHARED_TEST_SURELY_UNSET_B",
        ])
        .unwrap_err();
        assert_eq!(
            e.missing,
            vec!["SHARED_TEST_SURELY_UNSET_A", "SHARED_TEST_SURELY_UNSET_B"]
        );
        assert!(e
            .to_string()
            .contains("SHARED_TEST_SURELY_UNSET_A, SHARED_TEST_SURELY_UNSET_B"));
    }
}
