//! VLESS users, looked up in constant time.
//!
//! As Xray since v25.8.29, bytes 6 and 7 of the id are ignored for the lookup (they
//! carry `vlessRoute`), so a client may vary them.
//!
//! Each user is an [`Arc<UserEntry>`] that its sessions hold. A reload carries the
//! entries of users that stay over to the new list ([`Users::carry_over`]) and
//! revokes those that are gone, which ends their sessions; nobody else's are touched.
//! The management API changes a list the same way, copy on write: [`Users::with`]
//! and [`Users::without`] make the next list, and a removed user is revoked.

use std::collections::HashMap;
use std::sync::Arc;

use subtle::{ConditionallySelectable, ConstantTimeEq};
use tokio::sync::watch;

use crate::config::{Flow, User};

/// One user, as its sessions see it.
pub struct UserEntry {
    pub email: Arc<str>,
    /// The flow this user's requests must ask for.
    pub flow: Flow,
    /// The id as configured, shortened, for log lines (never the whole id).
    pub short_id: Arc<str>,
    /// The whole id, for the management API's user list only.
    id: uuid::Uuid,
    revoked: watch::Sender<bool>,
}

impl std::fmt::Debug for UserEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserEntry")
            .field("email", &self.email)
            .field("flow", &self.flow)
            .field("id", &self.short_id)
            .finish()
    }
}

/// Why the management API could not change a user list (Xray's words, which panels
/// match on).
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum UsersError {
    #[error("proxy/vless: User {0} already exists.")]
    Exists(String),
    #[error("proxy/vless: User {0} not found.")]
    NotFound(String),
    #[error("proxy/vless: Email must not be empty.")]
    NoEmail,
}

impl UserEntry {
    fn new(user: &User) -> Arc<Self> {
        Arc::new(UserEntry {
            email: Arc::from(user.email.as_str()),
            flow: user.flow,
            short_id: Arc::from(crate::util::short_id(&user.id)),
            id: user.id,
            revoked: watch::Sender::new(false),
        })
    }

    /// The user as configured (for the API's user list).
    pub fn user(&self) -> User {
        User {
            id: self.id,
            email: self.email.to_string(),
            flow: self.flow,
        }
    }

    /// Resolves once the user has been removed (at once if it already was).
    pub async fn revoked(&self) {
        let mut rx = self.revoked.subscribe();
        let _ = rx.wait_for(|r| *r).await;
    }

    fn revoke(&self) {
        self.revoked.send_replace(true);
    }
}

#[derive(Debug, Clone, Default)]
pub struct Users {
    keys: Vec<[u8; 16]>,
    entries: Vec<Arc<UserEntry>>,
}

/// The id with the vlessRoute bytes cleared.
fn key(id: &[u8; 16]) -> [u8; 16] {
    let mut k = *id;
    k[6] = 0;
    k[7] = 0;
    k
}

impl Users {
    pub fn new(users: &[User]) -> Self {
        Self::carry_over(&Users::default(), users)
    }

    /// The list for `users`, keeping `old`'s entry (and so its sessions) for every user
    /// whose id and email are unchanged.
    pub fn carry_over(old: &Users, users: &[User]) -> Self {
        let kept: HashMap<[u8; 16], &Arc<UserEntry>> =
            old.keys.iter().copied().zip(old.entries.iter()).collect();
        let mut keys = Vec::with_capacity(users.len());
        let mut entries = Vec::with_capacity(users.len());
        for user in users {
            let k = key(user.id.as_bytes());
            let entry = match kept.get(&k) {
                Some(e) if *e.email == *user.email && e.flow == user.flow => Arc::clone(e),
                _ => UserEntry::new(user),
            };
            keys.push(k);
            entries.push(entry);
        }
        Self { keys, entries }
    }

    /// Revokes every user of `self` whose id is not in `next`; returns how many.
    pub fn revoke_missing(&self, next: &Users) -> usize {
        let mut revoked = 0;
        for (k, entry) in self.keys.iter().zip(&self.entries) {
            if !next.keys.contains(k) {
                entry.revoke();
                revoked += 1;
            }
        }
        revoked
    }

    /// This list and `user`. Emails are unique, ignoring case, as in Xray; a user with
    /// the id of another replaces it for that id (Xray's quirk, kept for panels).
    pub fn with(&self, user: &User) -> Result<Users, UsersError> {
        if !user.email.is_empty() && self.by_email(&user.email).is_some() {
            return Err(UsersError::Exists(user.email.clone()));
        }
        let k = key(user.id.as_bytes());
        let mut next = self.clone();
        match next.keys.iter().position(|other| *other == k) {
            Some(i) => {
                if let Some(slot) = next.entries.get_mut(i) {
                    *slot = UserEntry::new(user);
                }
            }
            None => {
                next.keys.push(k);
                next.entries.push(UserEntry::new(user));
            }
        }
        Ok(next)
    }

    /// This list without the user with `email` (ignoring case), and that user, whom
    /// the caller revokes once the new list is in place.
    pub fn without(&self, email: &str) -> Result<(Users, Arc<UserEntry>), UsersError> {
        if email.is_empty() {
            return Err(UsersError::NoEmail);
        }
        let i = (self.entries.iter())
            .position(|e| crate::util::same_email(&e.email, email))
            .ok_or_else(|| UsersError::NotFound(email.to_string()))?;
        let mut next = self.clone();
        next.keys.remove(i);
        let gone = next.entries.remove(i);
        Ok((next, gone))
    }

    /// The user with `email`, ignoring case as Xray does.
    pub fn by_email(&self, email: &str) -> Option<&Arc<UserEntry>> {
        self.entries
            .iter()
            .find(|e| crate::util::same_email(&e.email, email))
    }

    /// Every user with an email, in list order (what the API lists and counts).
    pub fn listed(&self) -> impl Iterator<Item = &Arc<UserEntry>> {
        self.entries.iter().filter(|e| !e.email.is_empty())
    }

    /// Ends the sessions of a user taken out of every list.
    pub fn revoke(entry: &UserEntry) {
        entry.revoke();
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Some user has the Vision flow (its connections need reads that stop at TLS
    /// records until the request is known).
    pub fn any_vision(&self) -> bool {
        self.entries.iter().any(|e| e.flow.is_vision())
    }

    /// The user with this id. Compares against every user, in constant time per user,
    /// so timing does not tell which prefix matched.
    pub fn find(&self, id: &[u8; 16]) -> Option<Arc<UserEntry>> {
        let wanted = key(id);
        let mut found = subtle::Choice::from(0);
        let mut index = 0u32;
        for (i, k) in self.keys.iter().enumerate() {
            let hit = k.ct_eq(&wanted);
            index.conditional_assign(&(i as u32), hit);
            found |= hit;
        }
        bool::from(found)
            .then(|| self.entries.get(index as usize).cloned())
            .flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_api_adds_and_removes_users_with_xrays_answers() {
        let users = Users::new(&[user(1, "Alice")]);
        assert_eq!(
            users.with(&user(2, "alice")).unwrap_err().to_string(),
            "proxy/vless: User alice already exists."
        );
        let users = users.with(&user(2, "bob")).unwrap();
        assert_eq!(
            users.find(&[2; 16]).map(|e| e.email.to_string()).as_deref(),
            Some("bob")
        );
        let listed: Vec<String> = users.listed().map(|e| e.email.to_string()).collect();
        assert_eq!(listed, ["Alice", "bob"]);
        assert_eq!(
            users.listed().next().map(|e| e.user().id),
            Some(uuid::Uuid::from_bytes([1; 16]))
        );
        let (users, gone) = users.without("ALICE").unwrap();
        assert_eq!(&*gone.email, "Alice");
        assert!(users.find(&[1; 16]).is_none());
        assert_eq!(
            users.without("carol").unwrap_err().to_string(),
            "proxy/vless: User carol not found."
        );
        assert_eq!(
            users.without("").unwrap_err().to_string(),
            "proxy/vless: Email must not be empty."
        );
        assert!(
            !format!("{gone:?}").contains("01010101-0101"),
            "Debug never shows the whole id"
        );
    }

    #[test]
    fn finds_users_ignoring_the_vless_route_bytes() {
        let id = uuid::Uuid::parse_str("27848739-7e62-4138-9fd3-098a63964b6b").unwrap();
        let users = Users::new(&[
            User {
                id: uuid::Uuid::nil(),
                email: "nil".into(),
                flow: Default::default(),
            },
            User {
                id,
                email: "alice".into(),
                flow: Default::default(),
            },
        ]);
        let email = |id: &[u8; 16]| users.find(id).map(|e| e.email.to_string());
        let mut sent = *id.as_bytes();
        assert_eq!(email(&sent).as_deref(), Some("alice"));
        sent[6] = 0xff;
        sent[7] = 0x01;
        assert_eq!(email(&sent).as_deref(), Some("alice"));
        sent[0] ^= 1;
        assert_eq!(email(&sent), None);
    }

    fn user(n: u8, email: &str) -> User {
        User {
            id: uuid::Uuid::from_bytes([n; 16]),
            email: email.into(),
            flow: Default::default(),
        }
    }

    #[tokio::test]
    async fn a_reload_keeps_the_users_that_stay_and_revokes_the_others() {
        let old = Users::new(&[user(1, "a"), user(2, "b"), user(3, "c")]);
        let a = old.find(&[1; 16]).unwrap();
        let b = old.find(&[2; 16]).unwrap();
        let c = old.find(&[3; 16]).unwrap();
        // b is removed, c's email changes, d is new.
        let next = Users::carry_over(&old, &[user(1, "a"), user(3, "c2"), user(4, "d")]);
        assert!(Arc::ptr_eq(&a, &next.find(&[1; 16]).unwrap()));
        assert_eq!(&*next.find(&[3; 16]).unwrap().email, "c2");
        assert!(next.find(&[2; 16]).is_none());
        assert_eq!(old.revoke_missing(&next), 1);
        let now = std::time::Duration::from_millis(50);
        tokio::time::timeout(now, b.revoked())
            .await
            .expect("b is revoked");
        for kept in [a, c] {
            assert!(tokio::time::timeout(now, kept.revoked()).await.is_err());
        }
    }
}
