//! Small helpers shared across modules.

/// The first 8 hex digits of a user id: enough to tell users apart in logs, never the
/// whole id (which is the user's password).
pub fn short_id(id: &uuid::Uuid) -> String {
    let hex = id.simple().to_string();
    format!("{}…", hex.get(..8).unwrap_or(&hex))
}
