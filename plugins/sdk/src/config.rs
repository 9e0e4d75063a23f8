//! The plugin's own configuration: the `[config]` table of its manifest,
//! handed over as strings (numbers and booleans in their TOML spelling).

use std::str::FromStr;

use crate::bindings::wit_host;

/// Every entry of the plugin's configuration, sorted by key.
pub fn all() -> Vec<(String, String)> {
    wit_host::config()
}

/// One entry of the plugin's configuration.
pub fn get(key: &str) -> Option<String> {
    wit_host::config_get(key)
}

/// One entry, or `default` when the manifest does not set it.
pub fn get_or(key: &str, default: &str) -> String {
    get(key).unwrap_or_else(|| default.to_string())
}

/// One entry parsed as `T`; `Ok(None)` when absent, `Err` (saying which key
/// and what was wrong) when present but not a `T`.
pub fn parse<T>(key: &str) -> Result<Option<T>, String>
where
    T: FromStr,
    T::Err: std::fmt::Display,
{
    get(key).map(|text| parse_value(key, &text)).transpose()
}

/// Parses one configuration value, with the key in the error.
pub fn parse_value<T>(key: &str, text: &str) -> Result<T, String>
where
    T: FromStr,
    T::Err: std::fmt::Display,
{
    text.trim()
        .parse()
        .map_err(|e| format!("config {key} = {text:?}: {e}"))
}

/// Splits a list written as `"a=1, b=2"` into trimmed pairs; entries without
/// `=` are errors. Manifests can only hand plugins flat strings, so this is
/// how a plugin takes a small map.
pub fn pairs(key: &str, text: &str) -> Result<Vec<(String, String)>, String> {
    text.split(',')
        .map(str::trim)
        .filter(|entry| !entry.is_empty())
        .map(|entry| {
            entry
                .split_once('=')
                .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                .ok_or_else(|| format!("config {key}: {entry:?} is not name=value"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_are_split_and_trimmed() {
        assert_eq!(
            pairs("k", " 10.1.=zone-a, 10.2.=zone-b ,").unwrap(),
            vec![
                ("10.1.".to_string(), "zone-a".to_string()),
                ("10.2.".to_string(), "zone-b".to_string())
            ]
        );
        assert!(pairs("k", "10.1.").is_err());
    }

    #[test]
    fn values_parse_with_the_key_in_errors() {
        assert_eq!(parse_value::<f64>("max_load", " 0.8 "), Ok(0.8));
        let error = parse_value::<u64>("timeout", "soon").unwrap_err();
        assert!(error.contains("timeout"), "{error}");
    }
}
