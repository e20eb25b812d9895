//! The log sink: every formatted log line is redacted ([`crate::redact`]) and has its control
//! characters escaped before it reaches stderr, so that no credential is logged and no input
//! (a condition message, a file name, a forge's answer) can forge or split a log line.

mod flux_json;

use std::io::{self, Write};

pub use flux_json::FluxJson;

use tracing_subscriber::fmt::MakeWriter;

/// `line` (one formatted log event, ending in a newline) redacted, with its control characters
/// escaped. With `keep_ansi`, the escape character of the subscriber's own colours is kept.
pub fn sanitize_line(line: &str, keep_ansi: bool) -> String {
    let (body, newline) = match line.strip_suffix('\n') {
        Some(body) => (body, "\n"),
        None => (line, ""),
    };
    let redacted = crate::redact::redact(body);
    let mut out = String::with_capacity(redacted.len() + 1);
    for c in redacted.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push('\t'),
            '\u{1b}' if keep_ansi => out.push(c),
            c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push_str(newline);
    out
}

/// Writes sanitized log lines to stderr.
#[derive(Debug, Clone, Copy)]
pub struct SafeStderr {
    /// Whether the subscriber colours its output (stderr is a terminal).
    pub ansi: bool,
}

impl<'a> MakeWriter<'a> for SafeStderr {
    type Writer = SafeLine;

    fn make_writer(&'a self) -> SafeLine {
        SafeLine { ansi: self.ansi }
    }
}

/// One event's writer: the subscriber hands it the whole formatted line at once.
#[derive(Debug)]
pub struct SafeLine {
    ansi: bool,
}

impl Write for SafeLine {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        let line = sanitize_line(&text, self.ansi);
        io::stderr().lock().write_all(line.as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        io::stderr().flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_in_a_line_are_escaped_and_its_newline_kept() {
        assert_eq!(
            sanitize_line("WARN bad name a\nINFO forged\r\0 line\n", false),
            "WARN bad name a\\nINFO forged\\r\\u{0} line\n"
        );
    }

    #[test]
    fn colours_survive_only_on_a_terminal() {
        assert_eq!(sanitize_line("\u{1b}[1mWARN\n", true), "\u{1b}[1mWARN\n");
        assert_eq!(sanitize_line("\u{1b}[1mWARN\n", false), "\\u{1b}[1mWARN\n");
    }

    #[test]
    fn a_registered_secret_never_reaches_a_log_line() {
        crate::redact::register("logging-test-secret-0123456789");
        assert_eq!(
            sanitize_line(
                "ERROR token logging-test-secret-0123456789 refused\n",
                false
            ),
            "ERROR token [redacted] refused\n"
        );
    }
}
