//! What a plugin asks to change, and the bounds a delta must respect.

/// Changes a plugin asks for; empty fields change nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Delta {
    pub set: Vec<(String, String)>,
    pub remove: Vec<String>,
    pub protocol: Option<String>,
    pub sniffed_domain: Option<String>,
    pub outbound: Option<String>,
}

/// Bounds on one delta, so plugin output cannot bloat a session.
#[derive(Debug, Clone, Copy)]
pub struct DeltaLimits {
    pub max_entries: usize,
    pub max_key_len: usize,
    pub max_value_len: usize,
    pub max_total_bytes: usize,
}

impl Default for DeltaLimits {
    fn default() -> Self {
        Self {
            max_entries: 256,
            max_key_len: 256,
            max_value_len: 8192,
            max_total_bytes: 64 * 1024,
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DeltaError {
    #[error("delta has {0} entries (at most {1})")]
    TooManyEntries(usize, usize),
    #[error("attribute key of {0} bytes (at most {1})")]
    KeyTooLong(usize, usize),
    #[error("empty attribute key")]
    EmptyKey,
    #[error("value of {0} bytes for key {1:?} (at most {2})")]
    ValueTooLong(usize, String, usize),
    #[error("delta of {0} bytes (at most {1})")]
    TooLarge(usize, usize),
}

impl Delta {
    pub fn is_empty(&self) -> bool {
        *self == Delta::default()
    }

    /// Checks the delta against `limits`; a plugin whose output fails this is treated
    /// like one that trapped.
    pub fn check(&self, limits: &DeltaLimits) -> Result<(), DeltaError> {
        let entries = self.set.len() + self.remove.len();
        if entries > limits.max_entries {
            return Err(DeltaError::TooManyEntries(entries, limits.max_entries));
        }
        let keys = self.set.iter().map(|(k, _)| k).chain(&self.remove);
        for key in keys {
            if key.is_empty() {
                return Err(DeltaError::EmptyKey);
            }
            if key.len() > limits.max_key_len {
                return Err(DeltaError::KeyTooLong(key.len(), limits.max_key_len));
            }
        }
        for (key, value) in &self.set {
            if value.len() > limits.max_value_len {
                return Err(DeltaError::ValueTooLong(
                    value.len(),
                    key.clone(),
                    limits.max_value_len,
                ));
            }
        }
        let fixed = [&self.protocol, &self.sniffed_domain, &self.outbound];
        let total: usize = self
            .set
            .iter()
            .map(|(k, v)| k.len() + v.len())
            .sum::<usize>()
            + self.remove.iter().map(String::len).sum::<usize>()
            + fixed
                .iter()
                .filter_map(|f| f.as_ref())
                .map(|s| s.len())
                .sum::<usize>();
        if total > limits.max_total_bytes {
            return Err(DeltaError::TooLarge(total, limits.max_total_bytes));
        }
        for value in fixed.into_iter().flatten() {
            if value.len() > limits.max_key_len {
                return Err(DeltaError::KeyTooLong(value.len(), limits.max_key_len));
            }
        }
        Ok(())
    }
}
