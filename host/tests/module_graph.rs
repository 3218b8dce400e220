//! The host's modules form no circles: not between the top-level modules of
//! `host/src`, and not between the files of any folder below it.
//!
//! The graph is read from the source: every `crate::a::b` and `super::b` path (use
//! trees expanded, comments and string literals skipped, `#[cfg(test)]` modules
//! included: a test that reaches up is still a dependency), with items a folder's
//! `mod.rs` re-exports attributed to the file that defines them. Run with
//! `cargo test -p wasmray --test module_graph -- --nocapture` to print the graph.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

type Graph = BTreeMap<String, BTreeSet<String>>;

#[test]
fn no_circles_between_modules() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let files = rust_files(&src);
    assert!(files.len() > 20, "found only {} files", files.len());
    let mut failures = Vec::new();
    for (scope, graph) in graphs(&src, &files) {
        println!("{scope}:");
        for (from, to) in &graph {
            println!(
                "  {from} -> {}",
                to.iter().cloned().collect::<Vec<_>>().join(", ")
            );
        }
        for cycle in cycles(&graph) {
            failures.push(format!("{scope}: {}", cycle.join(" -> ")));
        }
    }
    assert!(failures.is_empty(), "circles:\n{}", failures.join("\n"));
}

#[test]
fn the_reader_sees_a_circle_when_there_is_one() {
    let mut graph = Graph::new();
    let text = "use crate::{b::{X, Y}, c};\n// crate::d in a comment\nlet s = \"crate::e\";";
    for path in paths(&strip(text), "crate") {
        if let Some(first) = path.first() {
            graph.entry("a".into()).or_default().insert(first.clone());
        }
    }
    assert_eq!(
        graph
            .get("a")
            .map(|s| s.iter().cloned().collect::<Vec<_>>()),
        Some(vec!["b".to_string(), "c".to_string()])
    );
    graph.entry("b".into()).or_default().insert("a".into());
    assert_eq!(cycles(&graph), vec![vec!["a", "b", "a"]]);
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).expect("read src").flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// The module path of a file: `src/a/b.rs` and `src/a/b/mod.rs` are `[a, b]`.
fn module_of(src: &Path, file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(src).expect("under src");
    let mut parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().trim_end_matches(".rs").to_string())
        .collect();
    if parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    parts
}

/// One graph for the top level ("crate") and one per folder.
fn graphs(src: &Path, files: &[PathBuf]) -> BTreeMap<String, Graph> {
    let texts: Vec<(Vec<String>, bool, String)> = files
        .iter()
        .map(|f| {
            let text = std::fs::read_to_string(f).expect("read");
            let is_mod = f.file_name().is_some_and(|n| n == "mod.rs");
            (module_of(src, f), is_mod, strip(&text))
        })
        .collect();
    let exports = reexports(&texts);
    let modules: BTreeSet<Vec<String>> = texts.iter().map(|(m, _, _)| m.clone()).collect();
    let mut out: BTreeMap<String, Graph> = BTreeMap::new();
    for (module, is_mod, text) in &texts {
        let Some(top) = module.first() else { continue };
        if top == "lib" || top == "main" {
            continue;
        }
        // `super` of a mod.rs is its folder's parent; of a file, its folder.
        let parent: Vec<String> = if *is_mod {
            module[..module.len().saturating_sub(1)].to_vec()
        } else {
            module[..module.len() - 1].to_vec()
        };
        let mut absolute: Vec<Vec<String>> = paths(text, "crate");
        for rel in paths(text, "super") {
            let mut p = parent.clone();
            p.extend(rel);
            absolute.push(p);
        }
        for path in absolute {
            let path = resolve(&exports, path);
            let Some(first) = path.first() else { continue };
            if first != top {
                add(&mut out, "crate", top, first);
                continue;
            }
            // Inside one folder: between the two files (or subfolders) below it
            // where the paths part. A folder's mod.rs reaching into its own children,
            // and items defined in a mod.rs, are the folder itself: no edge.
            let k = module.iter().zip(&path).take_while(|(a, b)| a == b).count();
            let (Some(from), Some(to)) = (module.get(k), path.get(k)) else {
                continue;
            };
            let mut target = path[..k].to_vec();
            target.push(to.clone());
            if modules.contains(&target) {
                add(&mut out, &module[..k].join("/"), from, to);
            }
        }
    }
    out
}

fn add(out: &mut BTreeMap<String, Graph>, scope: &str, from: &str, to: &str) {
    out.entry(scope.to_string())
        .or_default()
        .entry(from.to_string())
        .or_default()
        .insert(to.to_string());
}

/// Items a `mod.rs` re-exports (`pub use child::Item`), by `[folder.., Item]`.
fn reexports(texts: &[(Vec<String>, bool, String)]) -> BTreeMap<Vec<String>, Vec<String>> {
    let mut out = BTreeMap::new();
    for (module, is_mod, text) in texts {
        if !is_mod {
            continue;
        }
        for line in text.split(';') {
            let line = line.trim();
            let Some(rest) = line.strip_prefix("pub use ") else {
                continue;
            };
            for path in use_tree(rest) {
                if path.len() < 2 || path[0] == "crate" || path[0] == "super" {
                    continue;
                }
                let mut key = module.clone();
                key.push(path.last().cloned().unwrap_or_default());
                let mut target = module.clone();
                target.extend(path);
                out.insert(key, target);
            }
        }
    }
    out
}

fn resolve(exports: &BTreeMap<Vec<String>, Vec<String>>, path: Vec<String>) -> Vec<String> {
    for len in (1..=path.len()).rev() {
        if let Some(target) = exports.get(&path[..len]) {
            let mut out = target.clone();
            out.extend(path[len..].iter().cloned());
            return out;
        }
    }
    path
}

/// Every path following `root::` in `text`, use trees expanded (without `root`).
fn paths(text: &str, root: &str) -> Vec<Vec<String>> {
    let needle = format!("{root}::");
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find(&needle) {
        let before = rest[..at].chars().next_back();
        rest = &rest[at + needle.len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
            continue;
        }
        out.extend(
            use_tree(rest)
                .into_iter()
                .filter(|p| p.first().is_some_and(|s| s != "super")),
        );
    }
    out
}

/// Expands the use tree at the start of `text`: `a::{b, c::d}` is `[a,b]`, `[a,c,d]`.
fn use_tree(text: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    parse_tree(text.trim_start(), Vec::new(), &mut out);
    out
}

fn parse_tree(text: &str, prefix: Vec<String>, out: &mut Vec<Vec<String>>) -> usize {
    let mut path = prefix;
    let mut i = 0;
    let bytes = text.as_bytes();
    loop {
        while bytes.get(i).is_some_and(|b| b.is_ascii_whitespace()) {
            i += 1;
        }
        if bytes.get(i) == Some(&b'{') {
            i += 1;
            loop {
                i += parse_tree(&text[i..], path.clone(), out);
                while bytes.get(i).is_some_and(|b| b.is_ascii_whitespace()) {
                    i += 1;
                }
                match bytes.get(i) {
                    Some(b',') => i += 1,
                    Some(b'}') => return i + 1,
                    _ => return i,
                }
                while bytes.get(i).is_some_and(|b| b.is_ascii_whitespace()) {
                    i += 1;
                }
                if bytes.get(i) == Some(&b'}') {
                    return i + 1;
                }
            }
        }
        let start = i;
        while bytes
            .get(i)
            .is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'_')
        {
            i += 1;
        }
        if i == start {
            if !path.is_empty() {
                out.push(path);
            }
            return i;
        }
        let ident = &text[start..i];
        if ident != "self" {
            path.push(ident.to_string());
        }
        if text[i..].starts_with("::") {
            i += 2;
            continue;
        }
        out.push(path);
        return i;
    }
}

/// `text` with comments and string literals blanked out.
fn strip(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '/' if chars.peek() == Some(&'/') => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        out.push('\n');
                        break;
                    }
                }
            }
            '/' if chars.peek() == Some(&'*') => {
                let mut prev = ' ';
                for c in chars.by_ref() {
                    if prev == '*' && c == '/' {
                        break;
                    }
                    prev = c;
                }
                out.push(' ');
            }
            '"' => {
                let mut escaped = false;
                for c in chars.by_ref() {
                    if !escaped && c == '"' {
                        break;
                    }
                    escaped = !escaped && c == '\\';
                }
                out.push_str("\"\"");
            }
            // A char literal ('"', '\'') must not open a string; lifetimes pass through.
            '\'' => {
                out.push('\'');
                let ahead: String = chars.clone().take(3).collect();
                if ahead.starts_with('\\') {
                    let n = ahead.find('\'').map_or(0, |i| i + 1).max(3);
                    for _ in 0..n.min(ahead.len()) {
                        chars.next();
                    }
                } else if ahead.chars().nth(1) == Some('\'') {
                    chars.next();
                    chars.next();
                }
            }
            c => out.push(c),
        }
    }
    out
}

/// Every elementary circle found by a depth-first search, each reported once from its
/// smallest node.
fn cycles(graph: &Graph) -> Vec<Vec<String>> {
    let mut found = BTreeSet::new();
    for start in graph.keys() {
        let mut stack = vec![(start.clone(), vec![start.clone()])];
        while let Some((node, path)) = stack.pop() {
            for next in graph.get(&node).into_iter().flatten() {
                if next == start {
                    let mut cycle = path.clone();
                    cycle.push(start.clone());
                    found.insert(cycle);
                } else if next > start && !path.contains(next) {
                    let mut p = path.clone();
                    p.push(next.clone());
                    stack.push((next.clone(), p));
                }
            }
        }
    }
    found.into_iter().collect()
}
