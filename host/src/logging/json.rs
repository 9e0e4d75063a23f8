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

impl Fields<'_> {
    fn put(&mut self, field: &Field, value: Value) {
        self.0.push((field.name().to_string(), value));
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
