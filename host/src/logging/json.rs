//! The JSON format: one object per line, for log collectors —
//! `{"time": "…Z", "level": "INFO", "target": "nacre::node", "message": "…",
//! <the event's fields>}`. Numbers and booleans stay JSON numbers and
//! booleans; a plugin's [`FieldSet`](super::FieldSet) is an object under
//! `"fields"`.

use std::fmt;

use serde_json::Value;
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::{FormatTime, SystemTime};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

use super::field_set::{self, FIELD_SET};

/// Formats each event as one JSON object on one line.
pub(super) struct JsonLines;

impl<S, N> FormatEvent<S, N> for JsonLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let mut time = String::new();
        SystemTime.format_time(&mut Writer::new(&mut time))?;
        let meta = event.metadata();
        let mut line = vec![
            ("time".to_string(), Value::from(time)),
            ("level".to_string(), Value::from(meta.level().as_str())),
            ("target".to_string(), Value::from(meta.target())),
        ];
        event.record(&mut Fields(&mut line));
        writer.write_char('{')?;
        for (i, (key, value)) in line.iter().enumerate() {
            let comma = if i == 0 { "" } else { "," };
            write!(writer, "{comma}{}:{value}", Value::from(key.as_str()))?;
        }
        writer.write_str("}\n")
    }
}

/// Collects an event's fields as JSON values, in the order recorded.
struct Fields<'a>(&'a mut Vec<(String, Value)>);

/// Keys every line has; an event field of the same name (openraft logs a
/// peer as `target`) is written as `field_<name>`, so no key appears twice.
const RESERVED: [&str; 3] = ["time", "level", "target"];

impl Fields<'_> {
    fn put(&mut self, field: &Field, value: Value) {
        let name = field.name();
        let key = if RESERVED.contains(&name) {
            format!("field_{name}")
        } else {
            name.to_string()
        };
        self.0.push((key, value));
    }
}

impl Visit for Fields<'_> {
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field, value.into());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field, value.into());
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.put(field, value.into());
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field, value.into());
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, value.into());
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.put(field, value.to_string().into());
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let text = format!("{value:?}");
        if field.name() == FIELD_SET
            && let Some(pairs) = field_set::parse(&text)
        {
            let object = pairs.into_iter().map(|(k, v)| (k, Value::from(v)));
            return self.put(field, Value::Object(object.collect()));
        }
        self.put(field, text.into());
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Seek};
    use std::sync::Mutex;

    use super::JsonLines;
    use crate::logging::FieldSet;

    #[test]
    fn a_line_is_one_object_with_typed_fields_and_no_key_twice() {
        let mut file = tempfile::tempfile().expect("a temp file");
        let subscriber = tracing_subscriber::fmt()
            .event_format(JsonLines)
            .with_writer(Mutex::new(file.try_clone().expect("a second handle")))
            .finish();
        let pairs = [("zone".to_string(), "a b".to_string())];
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!(target: "nacre::test", target = 3, ok = true, took_ms = 1.5, fields = %FieldSet(&pairs), "hello \"you\"");
        });
        let mut text = String::new();
        file.rewind().expect("rewound");
        file.read_to_string(&mut text).expect("read back");
        assert_eq!(text.lines().count(), 1, "{text}");
        let line: serde_json::Value = serde_json::from_str(&text).expect("one JSON object");
        assert_eq!(line["target"], "nacre::test");
        assert_eq!(line["field_target"], 3);
        assert_eq!(line["level"], "INFO");
        assert_eq!(line["message"], "hello \"you\"");
        assert_eq!(line["ok"], true);
        assert_eq!(line["took_ms"], 1.5);
        assert_eq!(line["fields"]["zone"], "a b");
        assert!(
            line["time"].as_str().is_some_and(|t| t.ends_with('Z')),
            "{line}"
        );
        assert_eq!(text.matches("\"target\"").count(), 1, "{text}");
    }
}
