//! Prometheus's text exposition format, and the one trait every part with
//! figures implements to render its own: the push service, Distro, Raft, the
//! registry's counts. `GET /nacre/v1/metrics` asks each in turn.

use std::fmt::Write as _;

/// The page being written.
#[derive(Default)]
pub struct Exposition {
    text: String,
}

impl Exposition {
    /// A value that goes up and down (`# TYPE gauge`).
    pub fn gauge(&mut self, name: &str, help: &str, value: f64) {
        self.figure(name, "gauge", help, value);
    }

    /// A value that only grows (`# TYPE counter`; names end in `_total`).
    pub fn counter(&mut self, name: &str, help: &str, value: u64) {
        self.figure(name, "counter", help, value as f64);
    }

    /// A gauge with one label: one line per labelled value
    /// (`name{label="value"} n`), label values escaped.
    pub fn labelled_gauge<'a>(
        &mut self,
        name: &str,
        help: &str,
        label: &str,
        values: impl IntoIterator<Item = (&'a str, f64)>,
    ) {
        let _ = write!(self.text, "# HELP {name} {help}\n# TYPE {name} gauge\n");
        for (value, n) in values {
            let value = value
                .replace('\\', "\\\\")
                .replace('"', "\\\"")
                .replace('\n', "\\n");
            let _ = writeln!(self.text, "{name}{{{label}=\"{value}\"}} {n}");
        }
    }

    fn figure(&mut self, name: &str, kind: &str, help: &str, value: f64) {
        // Writing to a String cannot fail.
        let _ = write!(
            self.text,
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}\n"
        );
    }

    /// The page as text (`text/plain; version=0.0.4`).
    pub fn into_text(self) -> String {
        self.text
    }
}

/// Something with figures for the metrics page.
pub trait RenderMetrics {
    /// Writes this part's figures to `out`; names start with `nacre_`.
    fn render_metrics(&self, out: &mut Exposition);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labelled_values_are_escaped() {
        let mut out = Exposition::default();
        out.labelled_gauge("nacre_z", "Zs.", "v", [("a\"b", 2.0)]);
        assert_eq!(
            out.into_text(),
            "# HELP nacre_z Zs.\n# TYPE nacre_z gauge\nnacre_z{v=\"a\\\"b\"} 2\n"
        );
    }

    #[test]
    fn figures_have_help_type_and_value() {
        let mut out = Exposition::default();
        out.gauge("nacre_x", "An x.", 1.5);
        out.counter("nacre_y_total", "Ys so far.", 7);
        assert_eq!(
            out.into_text(),
            "# HELP nacre_x An x.\n# TYPE nacre_x gauge\nnacre_x 1.5\n\
             # HELP nacre_y_total Ys so far.\n# TYPE nacre_y_total counter\nnacre_y_total 7\n"
        );
    }
}
