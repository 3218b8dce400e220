//! Regular expressions for plugin configs (the `regex` crate's RE2-like syntax, as Xray's
//! Go `regexp`), compiled once at configure time with bounded size.

pub use regex::Regex;

/// The most memory one compiled pattern may take. A larger one is refused at configure
/// with a clear message rather than running the plugin out of its memory cap.
pub const SIZE_LIMIT: usize = 1 << 20;

/// Compiles `pattern` (unanchored, case-sensitive unless it says `(?i)`).
pub fn compile(pattern: &str) -> Result<Regex, String> {
    regex::RegexBuilder::new(pattern)
        .size_limit(SIZE_LIMIT)
        .dfa_size_limit(SIZE_LIMIT)
        .build()
        .map_err(|e| format!("invalid regex {pattern:?}: {}", one_line(&e.to_string())))
}

/// regex errors are multi-line drawings; a config error should fit on one line.
fn one_line(s: &str) -> String {
    s.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compiles_and_refuses() {
        assert!(compile("^a+$").unwrap().is_match("aaa"));
        let e = compile("a(").unwrap_err();
        assert!(
            e.starts_with("invalid regex \"a(\": ") && !e.contains('\n'),
            "{e}"
        );
        assert!(
            compile("(?:a{1000}){1000}")
                .unwrap_err()
                .contains("size limit")
        );
    }
}
