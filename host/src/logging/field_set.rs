//! Fields whose names are only known at run time — a plugin's log fields —
//! written as real fields of the line, not as one string.
//!
//! `tracing` fields have names fixed at compile time, so such a set travels
//! in the one field named [`FIELD_SET`] as a JSON object of strings
//! ([`FieldSet`]); both formats of the node's log expand it: the text format
//! writes `key=value` for each entry, the JSON format an object under
//! `"fields"`.

use std::fmt;

/// The name of the field that carries a [`FieldSet`].
pub const FIELD_SET: &str = "fields";

/// Key-value pairs to log as fields: `tracing::info!(fields = %FieldSet(&pairs), "…")`.
pub struct FieldSet<'a>(pub &'a [(String, String)]);

impl fmt::Display for FieldSet<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("{")?;
        for (i, (key, value)) in self.0.iter().enumerate() {
            let (key, value) = (json_string(key), json_string(value));
            let comma = if i == 0 { "" } else { "," };
            write!(f, "{comma}{key}:{value}")?;
        }
        f.write_str("}")
    }
}

fn json_string(s: &str) -> String {
    serde_json::Value::from(s).to_string()
}

/// The pairs of a [`FieldSet`] in the order written, or `None` if `text` is
/// not one.
pub(super) fn parse(text: &str) -> Option<Vec<(String, String)>> {
    if !text.starts_with('{') {
        return None;
    }
    serde_json::from_str::<Ordered>(text).ok().map(|o| o.0)
}

/// A JSON object of strings, its entries kept in order.
struct Ordered(Vec<(String, String)>);

impl<'de> serde::Deserialize<'de> for Ordered {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Entries;
        impl<'de> serde::de::Visitor<'de> for Entries {
            type Value = Ordered;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object of strings")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Ordered, A::Error> {
                let mut pairs = Vec::new();
                while let Some(pair) = map.next_entry::<String, String>()? {
                    pairs.push(pair);
                }
                Ok(Ordered(pairs))
            }
        }
        deserializer.deserialize_map(Entries)
    }
}

/// `key=value` for the text format: the value as is when it is one plain
/// word, else quoted and escaped, so a line splits back into its fields.
pub(super) fn write_pair(out: &mut impl fmt::Write, key: &str, value: &str) -> fmt::Result {
    let plain = !value.is_empty()
        && value
            .chars()
            .all(|c| !c.is_whitespace() && !c.is_control() && c != '"' && c != '=');
    if plain {
        write!(out, "{key}={value}")
    } else {
        write!(out, "{key}={value:?}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_field_set_round_trips_and_plain_values_stay_unquoted() {
        let pairs = vec![
            ("service".to_string(), "orders".to_string()),
            ("note".to_string(), "two words".to_string()),
        ];
        let text = FieldSet(&pairs).to_string();
        assert_eq!(parse(&text), Some(pairs.clone()), "{text}");
        let mut out = String::new();
        for (k, v) in &pairs {
            write_pair(&mut out, k, v).expect("written");
            out.push(' ');
        }
        assert_eq!(out, r#"service=orders note="two words" "#);
        assert_eq!(parse("{}"), Some(Vec::new()));
        assert!(parse("orders").is_none());
        assert!(parse(r#"{"n": 1}"#).is_none(), "only strings");
    }
}
