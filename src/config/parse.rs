//! YAML text to [`RawConfig`], with the file, line, column and field path of the first error.

use super::{ConfigError, RawConfig};

/// Parses `text` (an empty file is the all-defaults configuration); `file` names it in errors.
pub(super) fn parse_raw(text: &str, file: &str) -> Result<RawConfig, ConfigError> {
    if text.trim().is_empty() {
        return Ok(RawConfig::default());
    }
    let mut field = String::new();
    let result = serde_saphyr::with_deserializer_from_str(text, |de| {
        serde_path_to_error::deserialize(de).map_err(|e| {
            field = e.path().to_string();
            e.into_inner()
        })
    });
    result.map_err(|err| {
        let location = err
            .location()
            .map(|l| format!("{}:{}:", l.line(), l.column()))
            .unwrap_or_default();
        let message = err.without_snippet().to_string();
        let message = strip_location_prefix(&message);
        let field = if field.is_empty() || field == "." {
            "(top level)".to_string()
        } else {
            field
        };
        ConfigError::Parse {
            file: file.to_string(),
            location,
            field,
            message,
        }
    })
}

/// serde-saphyr prefixes messages with `error: line L column C: `; the location is reported
/// separately, in the `file:line:column:` form editors understand.
fn strip_location_prefix(message: &str) -> String {
    let first = message.lines().next().unwrap_or(message);
    let first = first.strip_prefix("error: ").unwrap_or(first);
    let first = match first.split_once(": ") {
        Some((head, rest)) if head.starts_with("line ") && head.contains(" column ") => rest,
        _ => first,
    };
    match first.rfind(" at line ") {
        Some(i) => first[..i].to_string(),
        None => first.to_string(),
    }
}
