//! Kubernetes label selectors (`app=x,tier!=db,!sharding.fluxcd.io/key,env in (a,b)`), parsed
//! and validated like the API server does, and matched against an object's labels.

use std::collections::BTreeMap;
use std::fmt;

/// A parsed label selector; the empty selector matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LabelSelector {
    source: String,
    requirements: Vec<Requirement>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Requirement {
    key: String,
    op: Operator,
    values: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Operator {
    Equals,
    NotEquals,
    In,
    NotIn,
    Exists,
    DoesNotExist,
    GreaterThan,
    LessThan,
}

/// A selector the API server would refuse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid label selector `{selector}`: {problem}")]
pub struct SelectorError {
    pub selector: String,
    pub problem: SelectorProblem,
}

/// What is wrong with a label selector.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectorProblem {
    #[error("empty requirement")]
    EmptyRequirement,
    #[error("unbalanced `)`")]
    UnbalancedClose,
    #[error("unbalanced `(`")]
    UnbalancedOpen,
    #[error("`{value}` must be an integer for `{operator}`")]
    NotAnInteger {
        value: String,
        operator: &'static str,
    },
    #[error("unexpected `{rest}` after key `{key}`")]
    Unexpected { rest: String, key: String },
    #[error("expected `(value, ...)` after `{0}`")]
    ExpectedValues(String),
    #[error("`{0} in ()` needs at least one value")]
    EmptyIn(String),
    #[error("`{0}` is not a valid label key prefix (a DNS subdomain)")]
    KeyPrefix(String),
    #[error("`{0}` is not a valid label key")]
    Key(String),
    #[error("`{0}` is not a valid label value")]
    Value(String),
}

impl LabelSelector {
    /// Parses a selector string.
    pub fn parse(selector: &str) -> Result<LabelSelector, SelectorError> {
        let fail = |problem: SelectorProblem| SelectorError {
            selector: selector.to_string(),
            problem,
        };
        let mut requirements = Vec::new();
        for part in split_top_level(selector).map_err(&fail)? {
            let part = part.trim();
            if part.is_empty() {
                if selector.trim().is_empty() {
                    continue;
                }
                return Err(fail(SelectorProblem::EmptyRequirement));
            }
            requirements.push(parse_requirement(part).map_err(&fail)?);
        }
        Ok(LabelSelector {
            source: selector.trim().to_string(),
            requirements,
        })
    }

    /// Whether the selector has no requirements.
    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }

    /// The selector as written (trimmed), for the `labelSelector` query parameter.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Whether an object with these labels is selected.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.requirements.iter().all(|r| {
            let value = labels.get(&r.key);
            match r.op {
                Operator::Exists => value.is_some(),
                Operator::DoesNotExist => value.is_none(),
                Operator::Equals | Operator::In => value.is_some_and(|v| r.values.contains(v)),
                Operator::NotEquals | Operator::NotIn => {
                    !value.is_some_and(|v| r.values.contains(v))
                }
                Operator::GreaterThan | Operator::LessThan => {
                    let (Some(actual), Some(bound)) = (
                        value.and_then(|v| v.parse::<i64>().ok()),
                        r.values.first().and_then(|v| v.parse::<i64>().ok()),
                    ) else {
                        return false;
                    };
                    if r.op == Operator::GreaterThan {
                        actual > bound
                    } else {
                        actual < bound
                    }
                }
            }
        })
    }
}

impl fmt::Display for LabelSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

fn split_top_level(selector: &str) -> Result<Vec<&str>, SelectorProblem> {
    let mut parts = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    for (i, c) in selector.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth = depth
                    .checked_sub(1)
                    .ok_or(SelectorProblem::UnbalancedClose)?
            }
            ',' if depth == 0 => {
                parts.push(&selector[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if depth != 0 {
        return Err(SelectorProblem::UnbalancedOpen);
    }
    parts.push(&selector[start..]);
    Ok(parts)
}

fn parse_requirement(part: &str) -> Result<Requirement, SelectorProblem> {
    if let Some(key) = part.strip_prefix('!') {
        let key = key.trim();
        validate_key(key)?;
        return Ok(Requirement {
            key: key.to_string(),
            op: Operator::DoesNotExist,
            values: vec![],
        });
    }
    for (token, op) in [
        ("!=", Operator::NotEquals),
        ("==", Operator::Equals),
        ("=", Operator::Equals),
        (">", Operator::GreaterThan),
        ("<", Operator::LessThan),
    ] {
        if let Some((key, value)) = part.split_once(token) {
            let (key, value) = (key.trim(), value.trim());
            validate_key(key)?;
            validate_value(value)?;
            if matches!(op, Operator::GreaterThan | Operator::LessThan)
                && value.parse::<i64>().is_err()
            {
                return Err(SelectorProblem::NotAnInteger {
                    value: value.to_string(),
                    operator: token,
                });
            }
            return Ok(Requirement {
                key: key.to_string(),
                op,
                values: vec![value.to_string()],
            });
        }
    }
    let mut words = part.splitn(2, char::is_whitespace);
    let key = words.next().unwrap_or("").trim();
    let rest = words.next().unwrap_or("").trim();
    validate_key(key)?;
    if rest.is_empty() {
        return Ok(Requirement {
            key: key.to_string(),
            op: Operator::Exists,
            values: vec![],
        });
    }
    let (op, list) = if let Some(list) = rest.strip_prefix("notin") {
        (Operator::NotIn, list)
    } else if let Some(list) = rest.strip_prefix("in") {
        (Operator::In, list)
    } else {
        return Err(SelectorProblem::Unexpected {
            rest: rest.to_string(),
            key: key.to_string(),
        });
    };
    let list = list.trim();
    let inner = list
        .strip_prefix('(')
        .and_then(|l| l.strip_suffix(')'))
        .ok_or_else(|| SelectorProblem::ExpectedValues(key.to_string()))?;
    let values: Vec<String> = inner.split(',').map(|v| v.trim().to_string()).collect();
    for value in &values {
        validate_value(value)?;
    }
    if values.iter().all(String::is_empty) && op == Operator::In {
        return Err(SelectorProblem::EmptyIn(key.to_string()));
    }
    Ok(Requirement {
        key: key.to_string(),
        op,
        values,
    })
}

fn is_name_part(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
}

fn validate_key(key: &str) -> Result<(), SelectorProblem> {
    let (prefix, name) = match key.rsplit_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    if let Some(prefix) = prefix {
        let valid = !prefix.is_empty()
            && prefix.len() <= 253
            && prefix.split('.').all(|l| {
                !l.is_empty()
                    && l.len() <= 63
                    && l.bytes()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
                    && !l.starts_with('-')
                    && !l.ends_with('-')
            });
        if !valid {
            return Err(SelectorProblem::KeyPrefix(prefix.to_string()));
        }
    }
    if !is_name_part(name) {
        return Err(SelectorProblem::Key(key.to_string()));
    }
    Ok(())
}

fn validate_value(value: &str) -> Result<(), SelectorProblem> {
    if value.is_empty() || is_name_part(value) {
        Ok(())
    } else {
        Err(SelectorProblem::Value(value.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], bool);

    #[test]
    fn selectors_match_like_the_api_server() {
        let cases: &[Case] = &[
            ("", &[], true),
            ("!sharding.fluxcd.io/key", &[], true),
            (
                "!sharding.fluxcd.io/key",
                &[("sharding.fluxcd.io/key", "shard1")],
                false,
            ),
            (
                "sharding.fluxcd.io/key=shard1",
                &[("sharding.fluxcd.io/key", "shard1")],
                true,
            ),
            (
                "sharding.fluxcd.io/key==shard1",
                &[("sharding.fluxcd.io/key", "shard2")],
                false,
            ),
            ("tier!=db", &[], true),
            ("tier!=db", &[("tier", "db")], false),
            ("env in (prod, staging)", &[("env", "staging")], true),
            ("env in (prod,staging)", &[], false),
            ("env notin (prod)", &[], true),
            ("env notin (prod)", &[("env", "prod")], false),
            ("app", &[("app", "")], true),
            ("app,env=prod", &[("app", "x")], false),
            ("replicas>2", &[("replicas", "3")], true),
            ("replicas<2", &[("replicas", "3")], false),
        ];
        for (selector, pairs, expected) in cases {
            let parsed = LabelSelector::parse(selector).unwrap();
            assert_eq!(
                parsed.matches(&labels(pairs)),
                *expected,
                "{selector} on {pairs:?}"
            );
        }
    }

    #[test]
    fn invalid_selectors_are_refused_with_the_reason() {
        let cases = [
            (
                "env in (prod",
                "invalid label selector `env in (prod`: unbalanced `(`",
            ),
            ("a,,b", "invalid label selector `a,,b`: empty requirement"),
            (
                "-bad=x",
                "invalid label selector `-bad=x`: `-bad` is not a valid label key",
            ),
            (
                "app=has space",
                "invalid label selector `app=has space`: `has space` is not a valid label value",
            ),
            (
                "Bad_Prefix/x=y",
                "invalid label selector `Bad_Prefix/x=y`: `Bad_Prefix` is not a valid label key prefix (a DNS subdomain)",
            ),
            (
                "env within (a)",
                "invalid label selector `env within (a)`: unexpected `within (a)` after key `env`",
            ),
            (
                "n>x",
                "invalid label selector `n>x`: `x` must be an integer for `>`",
            ),
        ];
        for (selector, message) in cases {
            assert_eq!(
                LabelSelector::parse(selector).unwrap_err().to_string(),
                message
            );
        }
    }
}
