//! Just enough of PromQL to check the queries in `dashboards/` and `deploy/prometheus/`: find
//! the vector selectors in an expression, split off a top-level threshold comparison, and
//! replace Grafana's template variables.

use std::collections::BTreeSet;
use std::sync::OnceLock;

use flux_status_exporter::metrics::{FAMILIES, Metrics};

/// A vector selector as written: `name` or `name{matchers}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selector {
    pub name: String,
    /// The selector's text, matchers included (without any `[range]` or `offset`).
    pub text: String,
}

/// Aggregation operators: an identifier followed by `by`/`without` or `(` that is not a metric.
const AGGREGATIONS: [&str; 12] = [
    "sum",
    "min",
    "max",
    "avg",
    "group",
    "stddev",
    "stdvar",
    "count",
    "count_values",
    "bottomk",
    "topk",
    "quantile",
];

/// Keywords after which a parenthesised list of label names follows.
const LABEL_LIST_KEYWORDS: [&str; 6] = [
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
];

/// Other keywords and literals that are not metric names.
const KEYWORDS: [&str; 9] = [
    "and", "or", "unless", "offset", "bool", "atan2", "inf", "nan", "start",
];

fn is_identifier_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_' || c == ':'
}

fn is_identifier_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == ':'
}

/// Index just past the string literal starting at `start` (which holds the quote).
fn skip_string(chars: &[char], start: usize) -> usize {
    let quote = chars[start];
    let mut i = start + 1;
    while i < chars.len() {
        match chars[i] {
            '\\' if quote != '`' => i += 2,
            c if c == quote => return i + 1,
            _ => i += 1,
        }
    }
    chars.len()
}

/// Index just past the bracketed group opening at `start` (`{`, `[` or `(`), strings skipped.
fn skip_group(chars: &[char], start: usize) -> usize {
    let (open, close) = match chars[start] {
        '{' => ('{', '}'),
        '[' => ('[', ']'),
        _ => ('(', ')'),
    };
    let mut depth = 0;
    let mut i = start;
    while i < chars.len() {
        match chars[i] {
            '"' | '\'' | '`' => {
                i = skip_string(chars, i);
                continue;
            }
            c if c == open => depth += 1,
            c if c == close => {
                depth -= 1;
                if depth == 0 {
                    return i + 1;
                }
            }
            _ => {}
        }
        i += 1;
    }
    chars.len()
}

fn skip_whitespace(chars: &[char], mut i: usize) -> usize {
    while i < chars.len() && chars[i].is_whitespace() {
        i += 1;
    }
    i
}

/// Every vector selector in `expr`, in order of appearance.
pub fn selectors(expr: &str) -> Vec<Selector> {
    let chars: Vec<char> = expr.chars().collect();
    let mut found = Vec::new();
    let mut i = 0;
    let mut previous_keyword: Option<String> = None;
    while i < chars.len() {
        let c = chars[i];
        if c == '"' || c == '\'' || c == '`' {
            i = skip_string(&chars, i);
            continue;
        }
        if c == '[' || c == '{' {
            // Ranges and subqueries hold durations; a bare `{...}` selector is not used here.
            i = skip_group(&chars, i);
            continue;
        }
        if c == '(' {
            if previous_keyword
                .as_deref()
                .is_some_and(|k| LABEL_LIST_KEYWORDS.contains(&k))
            {
                i = skip_group(&chars, i);
            } else {
                i += 1;
            }
            previous_keyword = None;
            continue;
        }
        if c.is_ascii_digit() || (c == '.' && chars.get(i + 1).is_some_and(char::is_ascii_digit)) {
            // A number, possibly with an exponent or a duration unit.
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.') {
                i += 1;
            }
            previous_keyword = None;
            continue;
        }
        if is_identifier_start(c) {
            let start = i;
            while i < chars.len() && is_identifier_char(chars[i]) {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            let next = skip_whitespace(&chars, i);
            let followed_by_paren = chars.get(next) == Some(&'(');
            let lower = word.to_ascii_lowercase();
            if LABEL_LIST_KEYWORDS.contains(&lower.as_str()) {
                previous_keyword = Some(lower);
                continue;
            }
            previous_keyword = None;
            if followed_by_paren
                || AGGREGATIONS.contains(&lower.as_str())
                || KEYWORDS.contains(&lower.as_str())
                || chars[..start]
                    .iter()
                    .rev()
                    .find(|c| !c.is_whitespace())
                    .is_some_and(|c| *c == '@')
            {
                continue;
            }
            let mut text = word.clone();
            if chars.get(next) == Some(&'{') {
                let end = skip_group(&chars, next);
                text.extend(&chars[next..end]);
                i = end;
            }
            found.push(Selector { name: word, text });
            continue;
        }
        if !c.is_whitespace() {
            previous_keyword = None;
        }
        i += 1;
    }
    found
}

/// The metric names `expr` reads.
pub fn metric_names(expr: &str) -> BTreeSet<String> {
    selectors(expr).into_iter().map(|s| s.name).collect()
}

/// `(lhs, rhs)` when `expr` is `lhs <comparison> rhs` at the top level with a numeric `rhs`
/// (a threshold): `lhs` is then the quantity the threshold is applied to.
pub fn threshold_comparison(expr: &str) -> Option<(String, String)> {
    let chars: Vec<char> = expr.chars().collect();
    let mut i = 0;
    let mut split = None;
    while i < chars.len() {
        match chars[i] {
            '"' | '\'' | '`' => {
                i = skip_string(&chars, i);
                continue;
            }
            '(' | '{' | '[' => {
                i = skip_group(&chars, i);
                continue;
            }
            '=' if chars.get(i + 1) == Some(&'=') => split = Some((i, 2)),
            '!' if chars.get(i + 1) == Some(&'=') => split = Some((i, 2)),
            '>' | '<' if chars.get(i + 1) == Some(&'=') => split = Some((i, 2)),
            '>' | '<' => split = Some((i, 1)),
            _ => {}
        }
        if let Some((at, len)) = split {
            let lhs: String = chars[..at].iter().collect();
            let rhs: String = chars[at + len..].iter().collect();
            let numeric = rhs
                .trim()
                .chars()
                .all(|c| c.is_ascii_digit() || ".*+-/e ".contains(c));
            return (numeric && !rhs.trim().is_empty())
                .then(|| (lhs.trim().to_string(), rhs.trim().to_string()));
        }
        i += 1;
    }
    None
}

/// Grafana's variables replaced for a query straight to Prometheus: the filter variables by
/// "all" (`.*`, as their allValue), the interval variables by `range`.
pub fn substitute_grafana_variables(expr: &str, range: &str) -> String {
    expr.replace("$__rate_interval", range)
        .replace("$__interval", range)
        .replace("$__range", range)
        .replace("${cluster}", ".*")
        .replace("$cluster", ".*")
        .replace("${namespace}", ".*")
        .replace("$namespace", ".*")
        .replace("${kind}", ".*")
        .replace("$kind", ".*")
}

/// Metric names in a fresh registry's exposition that the FAMILIES list does not own: the
/// `prometheus` crate's process collector (`process_*`).
fn process_metrics() -> &'static BTreeSet<String> {
    static NAMES: OnceLock<BTreeSet<String>> = OnceLock::new();
    NAMES.get_or_init(|| {
        let metrics = Metrics::new("test", "0.0.0", "unknown").expect("a registry");
        let text = metrics.render(jiff::Timestamp::now());
        text.lines()
            .filter_map(|line| line.strip_prefix("# TYPE "))
            .filter_map(|rest| rest.split_whitespace().next())
            .filter(|name| name.starts_with("process_"))
            .map(str::to_string)
            .collect()
    })
}

/// Whether the exporter serves a series named `name`: a non-histogram family of
/// [`FAMILIES`], a histogram's `_bucket`, `_sum` or `_count`, or a process metric.
pub fn exporter_serves(name: &str) -> bool {
    for (family, kind, _) in FAMILIES {
        if *kind == "histogram" {
            if ["_bucket", "_sum", "_count"]
                .iter()
                .any(|suffix| name.strip_suffix(suffix) == Some(family))
            {
                return true;
            }
        } else if name == *family {
            return true;
        }
    }
    process_metrics().contains(name)
}
