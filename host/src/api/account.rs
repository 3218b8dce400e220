//! VLESS users in and out of the API's messages: `AddUserOperation` and
//! `RemoveUserOperation` in a TypedMessage, `xray.common.protocol.User` with a
//! `xray.proxy.vless.Account`. Every message is decoded by prost from untrusted
//! bytes, and every failure is one of Xray's error texts.

use prost::Message;

use super::generated::xray::app::proxyman::command as cmd;
use super::generated::xray::common::protocol;
use super::generated::xray::common::serial::TypedMessage;
use super::generated::xray::proxy::vless;
use crate::config::{Flow, User};

pub const ADD_USER: &str = "xray.app.proxyman.command.AddUserOperation";
pub const REMOVE_USER: &str = "xray.app.proxyman.command.RemoveUserOperation";
pub const VLESS_ACCOUNT: &str = "xray.proxy.vless.Account";

/// What AlterInbound is asked to do.
#[derive(Debug, PartialEq, Eq)]
pub enum Operation {
    Add(User),
    Remove(String),
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum AccountError {
    #[error("app/proxyman/command: unknown operation > proto: not found")]
    UnknownOperation,
    #[error(
        "app/proxyman/command: unknown operation > proto: cannot parse invalid wire-format data"
    )]
    Malformed,
    #[error("app/proxyman/command: failed to parse user > {0}")]
    User(String),
}

/// The operation carried by `operation`.
pub fn operation(operation: Option<TypedMessage>) -> Result<Operation, AccountError> {
    let op = operation.ok_or(AccountError::UnknownOperation)?;
    match op.r#type.as_str() {
        ADD_USER => {
            let add = cmd::AddUserOperation::decode(op.value.as_slice())
                .map_err(|_| AccountError::Malformed)?;
            let user = add.user.unwrap_or_default();
            Ok(Operation::Add(user_from(user).map_err(AccountError::User)?))
        }
        REMOVE_USER => {
            let remove = cmd::RemoveUserOperation::decode(op.value.as_slice())
                .map_err(|_| AccountError::Malformed)?;
            Ok(Operation::Remove(remove.email))
        }
        _ => Err(AccountError::UnknownOperation),
    }
}

fn user_from(user: protocol::User) -> Result<User, String> {
    let account = user.account.ok_or("no account")?;
    if account.r#type != VLESS_ACCOUNT {
        return Err(format!(
            "account is {:?}, not a {VLESS_ACCOUNT}",
            account.r#type
        ));
    }
    let account = vless::Account::decode(account.value.as_slice())
        .map_err(|e| format!("proxy/vless: bad account > {e}"))?;
    let id = crate::util::parse_user_id(&account.id)
        .ok_or_else(|| "proxy/vless: failed to parse ID > not a UUID".to_string())?;
    let flow = Flow::parse(&account.flow, false).map_err(|e| format!("proxy/vless: {e}"))?;
    Ok(User {
        id,
        email: user.email,
        flow,
    })
}

/// A user as GetInboundUsers answers it: the id always in its dashed form.
pub fn user_to(user: &User) -> protocol::User {
    let account = vless::Account {
        id: user.id.hyphenated().to_string(),
        flow: user.flow.name().to_string(),
        encryption: "none".into(),
        ..Default::default()
    };
    protocol::User {
        level: 0,
        email: user.email.clone(),
        account: Some(TypedMessage {
            r#type: VLESS_ACCOUNT.into(),
            value: account.encode_to_vec(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The spec's AddUser example (`xray-api.md` §5), byte for byte.
    fn spec_add_user() -> Vec<u8> {
        let mut account = vec![0x0a, 0x24];
        account.extend_from_slice(b"27848739-7e62-4138-9fd3-098a63964b6b");
        account.extend_from_slice(&[0x12, 0x10]);
        account.extend_from_slice(b"xtls-rprx-vision");
        let mut typed = vec![0x0a, 0x18];
        typed.extend_from_slice(VLESS_ACCOUNT.as_bytes());
        typed.extend_from_slice(&[0x12, 0x38]);
        typed.extend_from_slice(&account);
        let mut user = vec![0x12, 0x03];
        user.extend_from_slice(b"a@b");
        user.extend_from_slice(&[0x1a, 0x54]);
        user.extend_from_slice(&typed);
        let mut add = vec![0x0a, 0x5b];
        add.extend_from_slice(&user);
        add
    }

    #[test]
    fn the_spec_add_user_operation_decodes() {
        let op = TypedMessage {
            r#type: ADD_USER.into(),
            value: spec_add_user(),
        };
        let Operation::Add(user) = operation(Some(op)).unwrap() else {
            panic!("an add")
        };
        assert_eq!(user.email, "a@b");
        assert_eq!(user.flow, Flow::Vision);
        assert_eq!(user.id.to_string(), "27848739-7e62-4138-9fd3-098a63964b6b");
        // And back: the account is the same id and flow.
        let back = user_to(&user);
        let account = vless::Account::decode(back.account.unwrap().value.as_slice()).unwrap();
        assert_eq!(
            (account.id.as_str(), account.flow.as_str()),
            ("27848739-7e62-4138-9fd3-098a63964b6b", "xtls-rprx-vision")
        );
    }

    #[test]
    fn the_spec_remove_user_operation_decodes() {
        let op = TypedMessage {
            r#type: REMOVE_USER.into(),
            value: vec![0x0a, 0x03, b'a', b'@', b'b'],
        };
        assert_eq!(operation(Some(op)), Ok(Operation::Remove("a@b".into())));
    }

    #[test]
    fn bad_operations_get_xrays_words_on_every_prefix() {
        let unknown = TypedMessage {
            r#type: "xray.proxy.vmess.Account".into(),
            value: vec![],
        };
        assert_eq!(
            operation(Some(unknown)),
            Err(AccountError::UnknownOperation)
        );
        assert_eq!(operation(None), Err(AccountError::UnknownOperation));
        let whole = spec_add_user();
        for cut in 0..whole.len() {
            let op = TypedMessage {
                r#type: ADD_USER.into(),
                value: whole[..cut].to_vec(),
            };
            // Never a panic; a cut message is malformed or a user without its parts.
            assert!(operation(Some(op)).is_err(), "prefix {cut} was accepted");
        }
    }
}
