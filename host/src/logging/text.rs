//! The text format's fields: the message as is, then `key=value` for each
//! field, a plugin's [`FieldSet`](super::FieldSet) expanded into its own
//! `key=value` pairs.

use std::fmt;

use tracing::field::Field;
use tracing_subscriber::field::MakeExt;
use tracing_subscriber::fmt::FormatFields;
use tracing_subscriber::fmt::format::{Writer, debug_fn};

use super::field_set::{self, FIELD_SET};

/// How the text format writes an event's fields.
pub(super) fn fields() -> impl for<'writer> FormatFields<'writer> + Send + Sync + 'static {
    debug_fn(write_field).delimited(" ")
}

fn write_field(out: &mut Writer<'_>, field: &Field, value: &dyn fmt::Debug) -> fmt::Result {
    match field.name() {
        "message" => write!(out, "{value:?}"),
        FIELD_SET => {
            let text = format!("{value:?}");
            let Some(pairs) = field_set::parse(&text) else {
                return write!(out, "{FIELD_SET}={text}");
            };
            for (i, (key, value)) in pairs.iter().enumerate() {
                if i > 0 {
                    out.write_char(' ')?;
                }
                field_set::write_pair(out, key, value)?;
            }
            Ok(())
        }
        name => write!(out, "{name}={value:?}"),
    }
}
