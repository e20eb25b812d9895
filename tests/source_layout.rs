//! The shape of `src/` stays the one ARCHITECTURE.md describes: no import cycle between files,
//! no file too long to read in one sitting, and the deciding modules free of I/O crates.
//!
//! The import graph is read from the source text: an edge goes from a file to the file that
//! defines what a `use crate::…`, `use super::…`, `use self::…` or inline `crate::…` path names,
//! following `pub use` re-exports to the defining file. A re-export is not itself an edge: a
//! `mod.rs` that re-exports its children is their facade, not a user of them. Test code (`#[cfg(test)]` onwards and
//! `tests.rs` files) is left out: tests may reach anywhere.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// Longest a file in `src/` may be.
const MAX_LINES: usize = 650;

/// Modules that decide and must not do I/O: they may not name these crates.
const PURE_MODULES: &[&str] = &[
    "src/assess",
    "src/plan",
    "src/model",
    "src/account.rs",
    "src/forge/verdict.rs",
    "src/backoff.rs",
];
const IO_CRATES: &[&str] = &[
    "tokio",
    "hyper",
    "kube",
    "octocrab",
    "k8s_openapi",
    "reqwest",
];

type ModPath = Vec<String>;

struct SourceFile {
    path: String,
    module: ModPath,
    /// The code without comments and without test code.
    code: String,
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn module_of(relative: &str) -> ModPath {
    let trimmed = relative.trim_start_matches("src/").trim_end_matches(".rs");
    let mut segments: ModPath = trimmed.split('/').map(str::to_string).collect();
    if matches!(
        segments.last().map(String::as_str),
        Some("mod" | "lib" | "main")
    ) {
        segments.pop();
    }
    segments
}

/// The text with line comments, block comments and string literals blanked, cut where test code
/// starts.
fn code_of(text: &str) -> String {
    let cut = text.find("#[cfg(test)]").unwrap_or(text.len());
    let text = &text[..cut];
    let mut out = String::with_capacity(text.len());
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            i += 2;
            while i + 1 < chars.len() && !(chars[i] == '*' && chars[i + 1] == '/') {
                i += 1;
            }
            i += 2;
        } else if c == '"' {
            // Raw strings with hashes are rare in src/; plain and escaped strings are blanked.
            out.push('"');
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                if chars[i] == '\\' {
                    i += 1;
                }
                i += 1;
            }
            out.push('"');
            i += 1;
        } else if c == '\'' && next.is_some_and(|n| n != '\\') && chars.get(i + 2) == Some(&'\'') {
            out.push_str("' '");
            i += 3;
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

fn load() -> Vec<SourceFile> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut paths = Vec::new();
    rust_files(&root.join("src"), &mut paths);
    paths
        .into_iter()
        .map(|p| {
            let relative = p
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/");
            let text = fs::read_to_string(&p).unwrap();
            SourceFile {
                module: module_of(&relative),
                code: code_of(&text),
                path: relative,
            }
        })
        .filter(|f| {
            !f.path.ends_with("/tests.rs") && !f.path.contains("/tests/") && f.path != "src/main.rs"
        })
        .collect()
}

/// Expands a use tree (`a::{b, c::{d, e as f}}`) into full paths, each with the name it binds.
fn expand(tree: &str, prefix: &[String], out: &mut Vec<(ModPath, String)>) {
    let tree = tree.trim();
    if tree.is_empty() {
        return;
    }
    if let Some(open) = tree.find('{') {
        let head: ModPath = tree[..open]
            .split("::")
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
        let mut base = prefix.to_vec();
        base.extend(head);
        let inner = &tree[open + 1..tree.rfind('}').unwrap_or(tree.len())];
        let mut depth = 0;
        let mut start = 0;
        for (i, c) in inner.char_indices() {
            match c {
                '{' => depth += 1,
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    expand(&inner[start..i], &base, out);
                    start = i + 1;
                }
                _ => {}
            }
        }
        expand(&inner[start..], &base, out);
        return;
    }
    let (path, alias) = match tree.split_once(" as ") {
        Some((p, a)) => (p.trim(), Some(a.trim().to_string())),
        None => (tree, None),
    };
    let mut full = prefix.to_vec();
    full.extend(
        path.split("::")
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string),
    );
    if full.last().is_some_and(|s| s == "self") {
        full.pop();
    }
    let name = alias.unwrap_or_else(|| full.last().cloned().unwrap_or_default());
    out.push((full, name));
}

/// Every `use` declaration of a file: (is it a re-export, path, bound name).
fn uses(code: &str) -> Vec<(bool, ModPath, String)> {
    let mut found = Vec::new();
    let bytes = code.as_bytes();
    let mut search = 0;
    while let Some(pos) = code[search..].find("use ") {
        let at = search + pos;
        search = at + 4;
        let before = code[..at].trim_end();
        let boundary = at == 0 || !bytes[at - 1].is_ascii_alphanumeric() && bytes[at - 1] != b'_';
        let statement_start = before.is_empty()
            || before.ends_with(';')
            || before.ends_with('{')
            || before.ends_with('}')
            || before.ends_with(']')
            || before.ends_with("pub")
            || before.ends_with(')');
        if !boundary || !statement_start {
            continue;
        }
        let reexport = before.ends_with("pub") || before.ends_with(')') && before.contains("pub(");
        let Some(end) = code[at..].find(';') else {
            break;
        };
        let tree = &code[at + 4..at + end];
        let mut paths = Vec::new();
        expand(tree, &[], &mut paths);
        found.extend(paths.into_iter().map(|(p, n)| (reexport, p, n)));
    }
    found
}

/// Inline `crate::a::b` paths outside `use` declarations.
fn inline_paths(code: &str) -> Vec<ModPath> {
    let mut found = Vec::new();
    let mut search = 0;
    while let Some(pos) = code[search..].find("crate::") {
        let at = search + pos;
        search = at + 7;
        if at > 0 {
            let prev = code.as_bytes()[at - 1];
            if prev.is_ascii_alphanumeric() || prev == b'_' || prev == b':' {
                continue;
            }
        }
        let rest = &code[at..];
        let end = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
            .unwrap_or(rest.len());
        let path: ModPath = rest[..end]
            .split("::")
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
        found.push(path);
    }
    found
}

struct Graph {
    files: Vec<SourceFile>,
    by_module: BTreeMap<ModPath, usize>,
    /// Per file, the names it re-exports and the absolute paths they stand for.
    reexports: Vec<BTreeMap<String, ModPath>>,
}

impl Graph {
    fn new(files: Vec<SourceFile>) -> Graph {
        let by_module = files
            .iter()
            .enumerate()
            .map(|(i, f)| (f.module.clone(), i))
            .collect();
        let mut graph = Graph {
            files,
            by_module,
            reexports: Vec::new(),
        };
        graph.reexports = (0..graph.files.len())
            .map(|i| {
                uses(&graph.files[i].code)
                    .into_iter()
                    .filter(|(reexport, _, _)| *reexport)
                    .map(|(_, path, name)| (name, graph.absolute(i, &path)))
                    .collect()
            })
            .collect();
        graph
    }

    /// The path as seen from the crate root.
    fn absolute(&self, file: usize, path: &[String]) -> ModPath {
        let module = &self.files[file].module;
        let mut out: ModPath = Vec::new();
        let mut rest = path;
        match path.first().map(String::as_str) {
            Some("crate") => rest = &path[1..],
            Some("self") => {
                out = module.clone();
                rest = &path[1..];
            }
            Some("super") => {
                out = module.clone();
                while rest.first().is_some_and(|s| s == "super") {
                    out.pop();
                    rest = &rest[1..];
                }
            }
            // A path into a child module declared by this file (`use kind::Foo` in a mod.rs).
            Some(first) => {
                let mut child = module.clone();
                child.push(first.to_string());
                if self.by_module.contains_key(&child) {
                    out = module.clone();
                } else {
                    return Vec::new();
                }
            }
            None => return Vec::new(),
        }
        out.extend(rest.iter().cloned());
        out
    }

    /// The file that defines what an absolute path names.
    fn resolve(&self, path: &[String], depth: usize) -> Option<usize> {
        if depth > 16 {
            return None;
        }
        let (len, file) = (0..=path.len())
            .rev()
            .find_map(|n| self.by_module.get(&path[..n]).map(|f| (n, *f)))?;
        if let Some(name) = path.get(len)
            && let Some(target) = self.reexports[file].get(name)
        {
            let mut next = target.clone();
            next.extend(path[len + 1..].iter().cloned());
            if next != path {
                return self.resolve(&next, depth + 1).or(Some(file));
            }
        }
        Some(file)
    }

    fn edges(&self) -> Vec<BTreeSet<usize>> {
        (0..self.files.len())
            .map(|i| {
                let code = &self.files[i].code;
                let mut targets = BTreeSet::new();
                let paths = uses(code)
                    .into_iter()
                    .filter(|(reexport, _, _)| !reexport)
                    .map(|(_, p, _)| self.absolute(i, &p))
                    .chain(inline_paths(code).into_iter().map(|p| self.absolute(i, &p)));
                for path in paths {
                    if path.is_empty() && self.files[i].module.is_empty() {
                        continue;
                    }
                    if let Some(target) = self.resolve(&path, 0)
                        && target != i
                    {
                        targets.insert(target);
                    }
                }
                targets
            })
            .collect()
    }
}

/// Strongly connected components with more than one file (Tarjan).
fn cycles(edges: &[BTreeSet<usize>]) -> Vec<Vec<usize>> {
    struct State<'a> {
        edges: &'a [BTreeSet<usize>],
        index: Vec<Option<usize>>,
        low: Vec<usize>,
        stack: Vec<usize>,
        on_stack: Vec<bool>,
        next: usize,
        found: Vec<Vec<usize>>,
    }
    fn visit(s: &mut State<'_>, v: usize) {
        s.index[v] = Some(s.next);
        s.low[v] = s.next;
        s.next += 1;
        s.stack.push(v);
        s.on_stack[v] = true;
        for &w in s.edges[v].iter() {
            match s.index[w] {
                None => {
                    visit(s, w);
                    s.low[v] = s.low[v].min(s.low[w]);
                }
                Some(iw) if s.on_stack[w] => s.low[v] = s.low[v].min(iw),
                _ => {}
            }
        }
        if Some(s.low[v]) == s.index[v] {
            let mut component = Vec::new();
            while let Some(w) = s.stack.pop() {
                s.on_stack[w] = false;
                component.push(w);
                if w == v {
                    break;
                }
            }
            if component.len() > 1 {
                component.sort();
                s.found.push(component);
            }
        }
    }
    let n = edges.len();
    let mut state = State {
        edges,
        index: vec![None; n],
        low: vec![0; n],
        stack: Vec::new(),
        on_stack: vec![false; n],
        next: 0,
        found: Vec::new(),
    };
    for v in 0..n {
        if state.index[v].is_none() {
            visit(&mut state, v);
        }
    }
    state.found
}

#[test]
fn no_two_files_in_src_import_each_other_even_indirectly() {
    let graph = Graph::new(load());
    let edges = graph.edges();
    let report: Vec<String> = cycles(&edges)
        .into_iter()
        .map(|component| {
            let lines: Vec<String> = component
                .iter()
                .map(|&f| {
                    let inside: Vec<&str> = edges[f]
                        .iter()
                        .filter(|t| component.contains(t))
                        .map(|&t| graph.files[t].path.as_str())
                        .collect();
                    format!("  {} -> {}", graph.files[f].path, inside.join(", "))
                })
                .collect();
            format!("cycle of {} files:\n{}", component.len(), lines.join("\n"))
        })
        .collect();
    assert!(report.is_empty(), "{}", report.join("\n"));
}

#[test]
fn the_checker_sees_an_import_cycle_and_follows_re_exports() {
    let files = vec![
        SourceFile {
            path: "src/a.rs".into(),
            module: vec!["a".into()],
            code: code_of("use crate::b::Thing; // use crate::c::Nothing;\nfn f() {}"),
        },
        SourceFile {
            path: "src/b/mod.rs".into(),
            module: vec!["b".into()],
            code: code_of("mod inner;\npub use inner::Thing;\n"),
        },
        SourceFile {
            path: "src/b/inner.rs".into(),
            module: vec!["b".into(), "inner".into()],
            code: code_of("pub struct Thing;\nfn g() { crate::a::f(); }\n"),
        },
        SourceFile {
            path: "src/c.rs".into(),
            module: vec!["c".into()],
            code: code_of("use super::a::{self};\nconst S: &str = \"crate::b::x\";\n"),
        },
    ];
    let graph = Graph::new(files);
    let edges = graph.edges();
    assert_eq!(
        edges[0],
        BTreeSet::from([2]),
        "a.rs names b::inner through the re-export"
    );
    assert_eq!(edges[1], BTreeSet::new(), "a re-export is not an edge");
    assert_eq!(edges[2], BTreeSet::from([0]));
    assert_eq!(
        edges[3],
        BTreeSet::from([0]),
        "strings and comments are not imports"
    );
    assert_eq!(cycles(&edges), vec![vec![0, 2]]);
}

#[test]
fn no_file_in_src_is_longer_than_one_sitting() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut paths = Vec::new();
    rust_files(&root.join("src"), &mut paths);
    let long: Vec<String> = paths
        .iter()
        .filter_map(|p| {
            let lines = fs::read_to_string(p).unwrap().lines().count();
            (lines > MAX_LINES).then(|| format!("{} has {lines} lines", p.display()))
        })
        .collect();
    assert!(
        long.is_empty(),
        "over {MAX_LINES} lines:\n{}",
        long.join("\n")
    );
}

#[test]
fn deciding_modules_name_no_io_crate() {
    let files = load();
    let mut offenders = Vec::new();
    for file in &files {
        if !PURE_MODULES.iter().any(|m| file.path.starts_with(m)) {
            continue;
        }
        for krate in IO_CRATES {
            let named = file.code.match_indices(krate).any(|(at, _)| {
                let before = file.code[..at].chars().next_back();
                let after = file.code[at + krate.len()..].chars().next();
                !before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':')
                    && after == Some(':')
            });
            if named {
                offenders.push(format!("{} names {krate}", file.path));
            }
        }
    }
    assert!(offenders.is_empty(), "{}", offenders.join("\n"));
}
