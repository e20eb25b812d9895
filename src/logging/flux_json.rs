//! `--log-format json` in the shape Flux's controllers log (zap's JSON encoder): one flat
//! object per line with lower-case `level`, `ts` (RFC 3339, UTC) and `msg` first, then the
//! event's fields by name, so that the Loki or Vector pipelines that parse Flux's logs parse
//! ours too.

use std::fmt;

use serde_json::Value;
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// The event formatter of `--log-format json`.
#[derive(Debug, Clone, Copy, Default)]
pub struct FluxJson;

/// An event's message and fields, in the order they were recorded.
#[derive(Default)]
struct Fields {
    msg: String,
    rest: Vec<(&'static str, Value)>,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.msg = value.to_string();
        } else {
            self.rest.push((field.name(), Value::from(value)));
        }
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.rest.push((field.name(), Value::from(value)));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.rest.push((field.name(), Value::from(value)));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.rest.push((field.name(), Value::from(value)));
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.rest.push((field.name(), Value::from(value)));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let text = format!("{value:?}");
        if field.name() == "message" {
            self.msg = text;
        } else {
            self.rest.push((field.name(), Value::from(text)));
        }
    }
}

impl<S, N> FormatEvent<S, N> for FluxJson
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
        let mut fields = Fields::default();
        event.record(&mut fields);
        let level = event.metadata().level().as_str().to_ascii_lowercase();
        let ts = jiff::Timestamp::now().to_string();
        let text = |v: &str| Value::from(v).to_string();
        write!(
            writer,
            "{{\"level\":{},\"ts\":{},\"msg\":{}",
            text(&level),
            text(&ts),
            text(&fields.msg)
        )?;
        for (name, value) in &fields.rest {
            // A field named like one of ours keeps its value under a prefixed name.
            let name = match *name {
                "level" | "ts" | "msg" => format!("field.{name}"),
                other => other.to_string(),
            };
            write!(writer, ",{}:{}", text(&name), value)?;
        }
        writeln!(writer, "}}")
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buffer {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn an_event_is_one_flat_object_with_level_ts_and_msg_first_as_flux_logs() {
        let buffer = Buffer::default();
        let writer = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .event_format(FluxJson)
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            tracing::warn!(
                forge = "github",
                attempt = 2u64,
                ok = false,
                level = "x",
                "status not delivered: \"quoted\""
            );
        });
        let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
        assert!(text.starts_with("{\"level\":\"warn\",\"ts\":\""), "{text}");
        let line: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(line["msg"], "status not delivered: \"quoted\"");
        assert_eq!(line["forge"], "github");
        assert_eq!(line["attempt"], 2);
        assert_eq!(line["ok"], false);
        assert_eq!(line["field.level"], "x");
        assert!(
            line["ts"]
                .as_str()
                .unwrap()
                .parse::<jiff::Timestamp>()
                .is_ok()
        );
        assert_eq!(text.matches('\n').count(), 1);
    }
}
