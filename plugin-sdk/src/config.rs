//! The plugin's configuration: its `[plugins.config.<name>]` table, converted by the
//! daemon from TOML to JSON text.

use serde::de::DeserializeOwned;

/// The JSON text given to [`Plugin::configure`](crate::Plugin::configure). The daemon
/// converts the plugin's TOML table to JSON; a plugin without a table gets `{}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    json: String,
}

impl Config {
    /// Wraps JSON text; blank text is taken as `{}`.
    pub fn new(json: impl Into<String>) -> Self {
        let json = json.into();
        if json.trim().is_empty() {
            return Config { json: "{}".into() };
        }
        Config { json }
    }

    /// The JSON text.
    pub fn as_str(&self) -> &str {
        &self.json
    }

    /// Deserializes the table into `T`. Use `#[serde(deny_unknown_fields)]` on `T` so a
    /// typo in the daemon config is refused at load instead of silently ignored. The error
    /// names the place in the table, e.g. `invalid config: unknown field "domian" at line 1
    /// column 10`.
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T, String> {
        serde_json::from_str(&self.json).map_err(|e| format!("invalid config: {e}"))
    }

    /// The table as a JSON value, for plugins that want to walk it themselves.
    pub fn value(&self) -> Result<serde_json::Value, String> {
        self.parse()
    }

    /// True when the table is empty (`{}`): no config was given.
    pub fn is_empty(&self) -> bool {
        matches!(self.value(), Ok(serde_json::Value::Object(m)) if m.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct T {
        a: u32,
        #[serde(default)]
        b: Option<String>,
    }

    #[test]
    fn parses_and_reports_errors() {
        assert_eq!(
            Config::new(r#"{"a":1}"#).parse::<T>().unwrap(),
            T { a: 1, b: None }
        );
        let err = Config::new(r#"{"a":1,"c":2}"#).parse::<T>().unwrap_err();
        assert!(
            err.starts_with("invalid config: unknown field `c`"),
            "{err}"
        );
        assert!(Config::new("").is_empty());
        assert_eq!(Config::new("  ").as_str(), "{}");
        assert!(!Config::new(r#"{"a":1}"#).is_empty());
    }
}
