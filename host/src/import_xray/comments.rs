//! Xray reads its JSON with comments (`//` or `#` to the end of the line, `/* ... */`), and
//! so do the examples operators copy. This removes them outside strings, keeping every
//! newline so that serde's line numbers still point at the operator's file.

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum CommentError {
    #[error("a /* comment is never closed")]
    Unclosed,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    Code,
    Text,
    Escape,
    Line,
    Block,
    BlockStar,
}

pub fn strip(json: &str) -> Result<String, CommentError> {
    let mut out = String::with_capacity(json.len());
    let mut state = State::Code;
    let mut chars = json.chars().peekable();
    while let Some(c) = chars.next() {
        state = match (state, c) {
            (State::Code, '"') => {
                out.push(c);
                State::Text
            }
            (State::Code, '/') if chars.peek() == Some(&'/') => {
                chars.next();
                State::Line
            }
            (State::Code, '#') => State::Line,
            (State::Code, '/') if chars.peek() == Some(&'*') => {
                chars.next();
                out.push(' ');
                State::Block
            }
            (State::Text, '\\') => {
                out.push(c);
                State::Escape
            }
            (State::Text, '"') => {
                out.push(c);
                State::Code
            }
            (State::Escape, _) => {
                out.push(c);
                State::Text
            }
            (State::Line | State::Block | State::BlockStar, '\n') => {
                out.push('\n');
                if state == State::Line {
                    State::Code
                } else {
                    State::Block
                }
            }
            (State::Line, _) => State::Line,
            (State::Block | State::BlockStar, '*') => State::BlockStar,
            (State::BlockStar, '/') => State::Code,
            (State::Block | State::BlockStar, _) => State::Block,
            (s, _) => {
                out.push(c);
                s
            }
        };
    }
    if matches!(state, State::Block | State::BlockStar) {
        return Err(CommentError::Unclosed);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comments_go_and_strings_and_lines_stay() {
        let json = "{\n  // a comment \"with quotes\"\n  # another\n  \"a\": \"http://x//y\", /* b\n c */ \"d\": \"\\\"/*\"\n}";
        let out = strip(json).unwrap();
        assert_eq!(out.lines().count(), json.lines().count());
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["a"], "http://x//y");
        assert_eq!(v["d"], "\"/*");
        assert_eq!(strip("{} /* open"), Err(CommentError::Unclosed));
        assert_eq!(strip("{\"a\": 1}").unwrap(), "{\"a\": 1}");
    }

    #[test]
    fn every_prefix_strips_or_fails_cleanly() {
        let json = "{\"a\": \"x\\\"y\", // c\n \"b\": /* d */ 2}";
        for n in 0..=json.len() {
            if let Some(prefix) = json.get(..n) {
                let _ = strip(prefix);
            }
        }
    }
}
