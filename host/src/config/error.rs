//! Configuration errors that say where: the file, the line and column (when TOML
//! knows them) and the field path, e.g. `inbound[0].users[1].id: not a UUID: "x"`.

use std::fmt;
use std::path::PathBuf;

/// One reason a configuration was refused.
#[derive(Debug, thiserror::Error)]
pub struct ConfigError {
    pub file: Option<PathBuf>,
    pub line_col: Option<(usize, usize)>,
    pub path: String,
    pub message: String,
}

impl ConfigError {
    pub fn at(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            file: None,
            line_col: None,
            path: path.into(),
            message: message.into(),
        }
    }

    pub fn in_file(mut self, file: Option<&std::path::Path>) -> Self {
        self.file = file.map(|f| f.to_path_buf());
        self
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(file) = &self.file {
            write!(f, "{}", file.display())?;
            if let Some((line, col)) = self.line_col {
                write!(f, ":{line}:{col}")?;
            }
            write!(f, ": ")?;
        } else if let Some((line, col)) = self.line_col {
            write!(f, "line {line}, column {col}: ")?;
        }
        if !self.path.is_empty() {
            write!(f, "{}: ", self.path)?;
        }
        write!(f, "{}", self.message)
    }
}

/// All the errors found in one configuration (validation does not stop at the first).
#[derive(Debug, thiserror::Error)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

/// Converts a byte offset in `text` to a 1-based (line, column).
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset.min(text.len())).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

/// Collects errors while validating, with the current field path.
#[derive(Default)]
pub struct Errors(pub Vec<ConfigError>);

impl Errors {
    pub fn push(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.0.push(ConfigError::at(path, message));
    }

    /// Records the error of `result` at `path` and returns its value, if any.
    pub fn take<T>(&mut self, path: &str, result: Result<T, String>) -> Option<T> {
        result.map_err(|m| self.push(path, m)).ok()
    }
}

/// Refuses a tag that appears twice in one section (`inbound` or `outbound`).
pub fn check_duplicates<'a>(
    section: &str,
    tags: impl Iterator<Item = &'a str>,
    errors: &mut Errors,
) {
    let mut seen = std::collections::HashSet::new();
    for (i, tag) in tags.enumerate() {
        if !seen.insert(tag) {
            errors.push(
                format!("{section}[{i}].tag"),
                format!("duplicate tag {tag:?}"),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn line_and_column() {
        assert_eq!(super::line_col("a\nbc\nd", 3), (2, 2));
        assert_eq!(super::line_col("abc", 0), (1, 1));
        assert_eq!(super::line_col("abc", 99), (1, 4));
    }
}
