//! `statuses`: the templates naming and describing each commit status.

use super::section::Section;
use crate::config::{
    CONTEXT_PLACEHOLDERS, ConfigError, DESCRIPTION_PLACEHOLDERS, Placeholder, RawStatuses,
    StatusSettings, TARGET_URL_PLACEHOLDERS, Template, defaults,
};

/// `statuses`.
pub(super) fn statuses(
    section: &Section<'_>,
    raw: RawStatuses,
) -> Result<StatusSettings, ConfigError> {
    Ok(StatusSettings {
        context: context(section, raw.context.as_deref())?,
        description: description(section, raw.description.as_deref())?,
        target_url: target_url(section, raw.target_url.as_deref())?,
        read_back: raw.read_back.unwrap_or(defaults::READ_BACK),
    })
}

/// `statuses.context`: must name the object, so that two objects never share a status.
fn context(section: &Section<'_>, raw: Option<&str>) -> Result<Template, ConfigError> {
    Template::parse(raw.unwrap_or(defaults::CONTEXT), CONTEXT_PLACEHOLDERS)
        .and_then(|t| {
            t.require(&[Placeholder::Kind, Placeholder::Namespace, Placeholder::Name])
                .map(|()| t)
        })
        .map_err(|e| section.invalid("context", e))
}

/// `statuses.description`.
fn description(section: &Section<'_>, raw: Option<&str>) -> Result<Template, ConfigError> {
    Template::parse(
        raw.unwrap_or(defaults::DESCRIPTION),
        DESCRIPTION_PLACEHOLDERS,
    )
    .map_err(|e| section.invalid("description", e))
}

/// `statuses.targetUrl`: empty means no link.
fn target_url(section: &Section<'_>, raw: Option<&str>) -> Result<Option<Template>, ConfigError> {
    let text = match raw.map(str::trim) {
        None | Some("") => return Ok(None),
        Some(text) => text,
    };
    let template = Template::parse(text, TARGET_URL_PLACEHOLDERS)
        .map_err(|e| section.invalid("targetUrl", e))?;
    if !(text.starts_with("https://") || text.starts_with("http://")) {
        return Err(section.invalid(
            "targetUrl",
            format!("`{text}` must start with https:// or http://"),
        ));
    }
    Ok(Some(template))
}
