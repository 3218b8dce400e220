use super::*;

fn user(email: &str, id: u128) -> User {
    User {
        id: uuid::Uuid::from_u128(id),
        email: email.into(),
        flow: Flow::None,
    }
}

fn emails(users: &[User]) -> Vec<&str> {
    users.iter().map(|u| u.email.as_str()).collect()
}

#[test]
fn changes_survive_a_reopen_and_apply_on_top_of_the_config() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("users.json");
    let ledger = Ledger::open(&path).unwrap();
    assert!(
        !path.exists(),
        "an empty ledger writes nothing until a change"
    );
    let mut bob = user("bob@x", 2);
    bob.flow = Flow::Vision;
    ledger.added("in", &bob).unwrap();
    ledger.removed("in", "ALICE@x").unwrap();
    ledger.added("other", &user("carol@x", 3)).unwrap();
    ledger.removed("other", "carol@x").unwrap();

    let again = Ledger::open(&path).unwrap();
    let config = [user("alice@x", 1), user("dave@x", 4)];
    let users = again.apply("in", &config);
    assert_eq!(emails(&users), ["dave@x", "bob@x"]);
    assert_eq!(users[1].flow, Flow::Vision);
    // carol was added then removed: only the removal is left.
    assert_eq!(
        emails(&again.apply("other", &[user("carol@x", 3)])),
        Vec::<&str>::new()
    );
    assert_eq!(
        emails(&again.apply("untouched", &config)),
        ["alice@x", "dave@x"]
    );
    // Re-adding a removed user takes the removal back.
    again.added("in", &user("alice@x", 1)).unwrap();
    let users = Ledger::open(&path).unwrap().apply("in", &config);
    assert_eq!(emails(&users), ["alice@x", "dave@x", "bob@x"]);
}

#[test]
fn an_addition_the_config_already_has_is_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = Ledger::open(&dir.path().join("l.json")).unwrap();
    ledger.added("in", &user("bob@x", 2)).unwrap();
    ledger.added("in", &user("eve@x", 1)).unwrap();
    let users = ledger.apply("in", &[user("BOB@x", 9), user("alice@x", 1)]);
    assert_eq!(emails(&users), ["BOB@x", "alice@x"]);
}

#[test]
fn a_broken_or_foreign_file_is_refused_with_its_name() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("l.json");
    for (text, says) in [
        ("{", "EOF"),
        (r#"{"version": 2, "inbounds": {}}"#, "version 2"),
        (r#"{"version": 1, "inbounds": {}, "x": 1}"#, "unknown field"),
        (
            r#"{"version": 1, "inbounds": {"in": {"added": [{"email": "a", "id": "27848739-7e62-4138-9fd3-098a63964b6b", "flow": "xtls-rprx-origin"}]}}}"#,
            "unknown flow",
        ),
        (
            r#"{"version": 1, "inbounds": {"in": {"added": [{"email": "a", "id": "nope"}]}}}"#,
            "UUID",
        ),
    ] {
        std::fs::write(&path, text).unwrap();
        let e = Ledger::open(&path).unwrap_err().to_string();
        assert!(e.contains("l.json") && e.contains(says), "{text}: {e}");
    }
    // Every prefix of a valid file is refused or read, never a panic.
    let ledger = Ledger::open(&path.with_extension("ok")).unwrap();
    ledger.added("in", &user("bob@x", 2)).unwrap();
    let valid = std::fs::read(path.with_extension("ok")).unwrap();
    for n in 0..valid.len() {
        std::fs::write(&path, &valid[..n]).unwrap();
        let _ = Ledger::open(&path);
    }
}

#[test]
fn a_failed_write_keeps_the_old_file_and_state() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gone").join("l.json");
    let ledger = Ledger::open(&path).unwrap();
    let e = ledger.added("in", &user("bob@x", 2)).unwrap_err();
    assert!(e.to_string().contains("cannot write"), "{e}");
    assert_eq!(emails(&ledger.apply("in", &[])), Vec::<&str>::new());
}
