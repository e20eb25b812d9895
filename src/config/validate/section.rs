//! Where in `config.yaml` a validator is, so that its errors name the full field path.

use std::fmt::Display;
use std::time::Duration;

use crate::config::{ConfigError, HumanDuration};

/// A section of `config.yaml` (`ledger`, `forges[0]`, `forges[0].credentials`, or the top
/// level): the file and field path every error inside it names.
#[derive(Debug, Clone)]
pub(super) struct Section<'a> {
    file: &'a str,
    path: String,
}

impl<'a> Section<'a> {
    /// The top level of `file`.
    pub(super) fn root(file: &'a str) -> Self {
        Section {
            file,
            path: String::new(),
        }
    }

    /// The section `name` inside this one.
    pub(super) fn child(&self, name: impl Display) -> Section<'a> {
        Section {
            file: self.file,
            path: self.field(name),
        }
    }

    /// The path of field `name` of this section.
    pub(super) fn field(&self, name: impl Display) -> String {
        if self.path.is_empty() {
            name.to_string()
        } else {
            format!("{}.{name}", self.path)
        }
    }

    /// Field `name` of this section is wrong.
    pub(super) fn invalid(&self, name: impl Display, problem: impl Display) -> ConfigError {
        self.invalid_at(self.field(name), problem)
    }

    /// This section as a whole is wrong.
    pub(super) fn invalid_here(&self, problem: impl Display) -> ConfigError {
        self.invalid_at(self.path.clone(), problem)
    }

    fn invalid_at(&self, field: String, problem: impl Display) -> ConfigError {
        ConfigError::Invalid {
            file: self.file.to_string(),
            field,
            problem: problem.to_string(),
        }
    }
}

/// A duration the file may leave out.
pub(super) fn or_default(value: Option<HumanDuration>, default: Duration) -> Duration {
    value.map_or(default, |d| d.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_nested_section_names_its_fields_by_their_full_path() {
        let top = Section::root("c.yaml");
        let token = top.child("forges[2]").child("credentials").child("token");
        assert_eq!(top.field("cluster"), "cluster");
        assert_eq!(token.field("env"), "forges[2].credentials.token.env");
        assert_eq!(
            token.invalid("env", "bad").to_string(),
            "c.yaml: forges[2].credentials.token.env: bad"
        );
        assert_eq!(
            token.invalid_here("missing").to_string(),
            "c.yaml: forges[2].credentials.token: missing"
        );
    }
}
