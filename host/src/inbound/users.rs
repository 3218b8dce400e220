//! VLESS users, looked up in constant time.
//!
//! As Xray since v25.8.29, bytes 6 and 7 of the id are ignored for the lookup (they
//! carry `vlessRoute`), so a client may vary them.

use std::sync::Arc;

use subtle::{ConditionallySelectable, ConstantTimeEq};

use crate::config::User;

#[derive(Debug, Clone)]
pub struct Users {
    keys: Vec<[u8; 16]>,
    emails: Vec<Arc<str>>,
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
        Self {
            keys: users.iter().map(|u| key(u.id.as_bytes())).collect(),
            emails: users.iter().map(|u| Arc::from(u.email.as_str())).collect(),
        }
    }

    /// The email of the user with this id. Compares against every user, in constant
    /// time per user, so timing does not tell which prefix matched.
    pub fn find(&self, id: &[u8; 16]) -> Option<Arc<str>> {
        let wanted = key(id);
        let mut found = subtle::Choice::from(0);
        let mut index = 0u32;
        for (i, k) in self.keys.iter().enumerate() {
            let hit = k.ct_eq(&wanted);
            index.conditional_assign(&(i as u32), hit);
            found |= hit;
        }
        bool::from(found)
            .then(|| self.emails.get(index as usize).cloned())
            .flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_users_ignoring_the_vless_route_bytes() {
        let id = uuid::Uuid::parse_str("27848739-7e62-4138-9fd3-098a63964b6b").unwrap();
        let users = Users::new(&[
            User {
                id: uuid::Uuid::nil(),
                email: "nil".into(),
            },
            User {
                id,
                email: "alice".into(),
            },
        ]);
        let mut sent = *id.as_bytes();
        assert_eq!(users.find(&sent).as_deref(), Some("alice"));
        sent[6] = 0xff;
        sent[7] = 0x01;
        assert_eq!(users.find(&sent).as_deref(), Some("alice"));
        sent[0] ^= 1;
        assert_eq!(users.find(&sent), None);
    }
}
