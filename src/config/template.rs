//! `{placeholder}` templates for status contexts, descriptions and target URLs, parsed once so
//! that a typo is a configuration error rather than a wrong status on every commit.

use std::fmt;

/// The values a template can refer to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placeholder {
    Cluster,
    Kind,
    Namespace,
    Name,
    Sha,
    ShortSha,
    Host,
    Repository,
    State,
    Reason,
    ReasonText,
    Message,
    Summary,
}

impl Placeholder {
    const ALL: [(Placeholder, &'static str); 13] = [
        (Placeholder::Cluster, "cluster"),
        (Placeholder::Kind, "kind"),
        (Placeholder::Namespace, "namespace"),
        (Placeholder::Name, "name"),
        (Placeholder::Sha, "sha"),
        (Placeholder::ShortSha, "short_sha"),
        (Placeholder::Host, "host"),
        (Placeholder::Repository, "repository"),
        (Placeholder::State, "state"),
        (Placeholder::Reason, "reason"),
        (Placeholder::ReasonText, "reason_text"),
        (Placeholder::Message, "message"),
        (Placeholder::Summary, "summary"),
    ];

    /// The name written between braces.
    pub fn name(self) -> &'static str {
        Placeholder::ALL
            .iter()
            .find(|(p, _)| *p == self)
            .map_or("", |(_, n)| n)
    }

    fn from_name(name: &str) -> Option<Placeholder> {
        Placeholder::ALL
            .iter()
            .find(|(_, n)| *n == name)
            .map(|(p, _)| *p)
    }
}

/// Placeholders allowed in the status context: only the object's identity, so the context of
/// an object never changes with its state.
pub const CONTEXT_PLACEHOLDERS: &[Placeholder] = &[
    Placeholder::Cluster,
    Placeholder::Kind,
    Placeholder::Namespace,
    Placeholder::Name,
];

/// Placeholders allowed in the target URL.
pub const TARGET_URL_PLACEHOLDERS: &[Placeholder] = &[
    Placeholder::Cluster,
    Placeholder::Kind,
    Placeholder::Namespace,
    Placeholder::Name,
    Placeholder::Sha,
    Placeholder::ShortSha,
    Placeholder::Host,
    Placeholder::Repository,
];

/// Placeholders allowed in the description.
pub const DESCRIPTION_PLACEHOLDERS: &[Placeholder] = &[
    Placeholder::Cluster,
    Placeholder::Kind,
    Placeholder::Namespace,
    Placeholder::Name,
    Placeholder::ShortSha,
    Placeholder::State,
    Placeholder::Reason,
    Placeholder::ReasonText,
    Placeholder::Message,
    Placeholder::Summary,
];

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Literal(String),
    Value(Placeholder),
}

/// A parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    source: String,
    pieces: Vec<Piece>,
}

/// A template that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("unknown placeholder `{{{name}}}` (allowed: {allowed})")]
    UnknownPlaceholder { name: String, allowed: String },
    #[error("unclosed `{{` at byte {0} (write `{{{{` for a literal brace)")]
    Unclosed(usize),
    #[error("unmatched `}}` at byte {0} (write `}}}}` for a literal brace)")]
    Unmatched(usize),
    #[error("must contain {0}")]
    Missing(String),
}

impl Template {
    /// Parses `text`, accepting only the `allowed` placeholders. `{{` and `}}` are literal braces.
    pub fn parse(text: &str, allowed: &[Placeholder]) -> Result<Template, TemplateError> {
        let mut pieces = Vec::new();
        let mut literal = String::new();
        let mut chars = text.char_indices().peekable();
        while let Some((i, c)) = chars.next() {
            match c {
                '{' if chars.peek().is_some_and(|(_, n)| *n == '{') => {
                    chars.next();
                    literal.push('{');
                }
                '}' if chars.peek().is_some_and(|(_, n)| *n == '}') => {
                    chars.next();
                    literal.push('}');
                }
                '{' => {
                    let close = text[i + 1..].find('}').ok_or(TemplateError::Unclosed(i))?;
                    let name = &text[i + 1..i + 1 + close];
                    let placeholder = Placeholder::from_name(name)
                        .filter(|p| allowed.contains(p))
                        .ok_or_else(|| TemplateError::UnknownPlaceholder {
                            name: name.to_string(),
                            allowed: allowed
                                .iter()
                                .map(|p| p.name())
                                .collect::<Vec<_>>()
                                .join(", "),
                        })?;
                    if !literal.is_empty() {
                        pieces.push(Piece::Literal(std::mem::take(&mut literal)));
                    }
                    pieces.push(Piece::Value(placeholder));
                    while chars.peek().is_some_and(|(j, _)| *j <= i + 1 + close) {
                        chars.next();
                    }
                }
                '}' => return Err(TemplateError::Unmatched(i)),
                other => literal.push(other),
            }
        }
        if !literal.is_empty() {
            pieces.push(Piece::Literal(literal));
        }
        Ok(Template {
            source: text.to_string(),
            pieces,
        })
    }

    /// Fails unless the template uses every one of `required`.
    pub fn require(&self, required: &[Placeholder]) -> Result<(), TemplateError> {
        let missing: Vec<String> = required
            .iter()
            .filter(|r| !self.pieces.contains(&Piece::Value(**r)))
            .map(|r| format!("{{{}}}", r.name()))
            .collect();
        if missing.is_empty() {
            Ok(())
        } else {
            Err(TemplateError::Missing(missing.join(", ")))
        }
    }

    /// The template as written.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Whether the template renders to nothing.
    pub fn is_empty(&self) -> bool {
        self.pieces.is_empty()
    }

    /// Renders the template, asking `value` for each placeholder.
    pub fn render<'a>(&self, value: impl Fn(Placeholder) -> &'a str) -> String {
        let mut out = String::new();
        for piece in &self.pieces {
            match piece {
                Piece::Literal(text) => out.push_str(text),
                Piece::Value(p) => out.push_str(value(*p)),
            }
        }
        out
    }
}

impl fmt::Display for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_render_placeholders_and_literal_braces() {
        let t = Template::parse(
            "flux/{cluster}/{kind}/{namespace}/{name} {{x}}",
            CONTEXT_PLACEHOLDERS,
        )
        .unwrap();
        let out = t.render(|p| match p {
            Placeholder::Cluster => "prod",
            Placeholder::Kind => "Kustomization",
            Placeholder::Namespace => "flux-system",
            Placeholder::Name => "apps",
            _ => "?",
        });
        assert_eq!(out, "flux/prod/Kustomization/flux-system/apps {x}");
        assert!(
            t.require(&[Placeholder::Kind, Placeholder::Namespace, Placeholder::Name])
                .is_ok()
        );
    }

    #[test]
    fn template_mistakes_are_named() {
        let err = Template::parse("flux/{clustr}/{name}", CONTEXT_PLACEHOLDERS).unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown placeholder `{clustr}` (allowed: cluster, kind, namespace, name)"
        );
        let err = Template::parse("flux/{state}", CONTEXT_PLACEHOLDERS).unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown placeholder `{state}` (allowed: cluster, kind, namespace, name)"
        );
        assert_eq!(
            Template::parse("a{name", CONTEXT_PLACEHOLDERS)
                .unwrap_err()
                .to_string(),
            "unclosed `{` at byte 1 (write `{{` for a literal brace)"
        );
        assert_eq!(
            Template::parse("a}b", CONTEXT_PLACEHOLDERS)
                .unwrap_err()
                .to_string(),
            "unmatched `}` at byte 1 (write `}}` for a literal brace)"
        );
        let t = Template::parse("flux/{name}", CONTEXT_PLACEHOLDERS).unwrap();
        assert_eq!(
            t.require(&[Placeholder::Kind, Placeholder::Namespace, Placeholder::Name])
                .unwrap_err()
                .to_string(),
            "must contain {kind}, {namespace}"
        );
    }

    #[test]
    fn non_ascii_literals_survive() {
        let t = Template::parse("déploiement {name} ✓", CONTEXT_PLACEHOLDERS).unwrap();
        assert_eq!(t.render(|_| "app"), "déploiement app ✓");
    }
}
