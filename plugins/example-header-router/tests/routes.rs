//! The example plugin, tested natively with the SDK's harness.

use example_header_router::HeaderRouter;
use wasmray_plugin_sdk::harness::{Harness, SnapshotBuilder, configure_error};

const CONFIG: &str = r#"{"header": "X-Route", "routes": {"eu": "proxy-eu", "us": "proxy-us"}}"#;

#[test]
fn routes_by_the_header() {
    let h = Harness::<HeaderRouter>::new(CONFIG);
    let session = SnapshotBuilder::new().attr("x-route", "eu").build();
    let delta = h.handle(&session, b"").expect_matched();
    assert_eq!(delta.outbound.as_deref(), Some("proxy-eu"));
}

#[test]
fn no_header_or_unknown_value_is_no_match() {
    let h = Harness::<HeaderRouter>::new(CONFIG);
    assert!(h.handle(&SnapshotBuilder::new().build(), b"").is_no_match());
    let other = SnapshotBuilder::new().attr("x-route", "mars").build();
    assert!(h.handle(&other, b"").is_no_match());
}

#[test]
fn default_catches_the_rest() {
    let h = Harness::<HeaderRouter>::new(
        r#"{"header": "x-route", "routes": {"us": "proxy-us"}, "default": "direct"}"#,
    );
    let other = SnapshotBuilder::new().attr("x-route", "mars").build();
    assert_eq!(
        h.handle(&other, b"").expect_matched().outbound.as_deref(),
        Some("direct")
    );
    let us = SnapshotBuilder::new().attr("x-route", " us ").build();
    assert_eq!(
        h.handle(&us, b"").expect_matched().outbound.as_deref(),
        Some("proxy-us")
    );
}

#[test]
fn logs_its_configuration() {
    let h = Harness::<HeaderRouter>::new(CONFIG);
    assert_eq!(h.logs()[0].message, "routing by \"X-Route\" over 2 values");
}

#[test]
fn refuses_bad_configs() {
    assert!(configure_error::<HeaderRouter>("{}").contains("missing field `header`"));
    assert!(
        configure_error::<HeaderRouter>(r#"{"header": "", "routes": {"a": "b"}}"#)
            .contains("header")
    );
    assert!(configure_error::<HeaderRouter>(r#"{"header": "x", "routes": {}}"#).contains("routes"));
    assert!(
        configure_error::<HeaderRouter>(r#"{"header": "x", "routes": {"a": "b"}, "typo": 1}"#)
            .contains("unknown field")
    );
}
