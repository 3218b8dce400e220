use super::*;

#[test]
fn names_are_checked_before_the_wire() {
    assert_eq!(absolute("example.com").unwrap(), "example.com.");
    assert_eq!(absolute("Example.COM.").unwrap(), "Example.COM.");
    assert_eq!(
        absolute("_dmarc.a-b.example").unwrap(),
        "_dmarc.a-b.example."
    );
    let long_label = format!("{}.example", "a".repeat(64));
    let long_name = vec!["abcdefgh"; 40].join(".");
    for bad in [
        "",
        ".",
        "a..b",
        "a b.example",
        "ex\u{e4}mple.com",
        &long_label,
        &long_name,
    ] {
        assert!(absolute(bad).is_err(), "{bad:?}");
    }
}

#[tokio::test]
async fn an_ip_literal_is_its_own_answer() {
    let config = DnsConfig {
        servers: vec![DnsServer::Udp("127.0.0.1:9".parse().unwrap())],
        ..DnsConfig::default()
    };
    let resolver = Resolver::new(&config);
    let ips = resolver.resolve("::1").await.unwrap();
    assert_eq!(ips, ["::1".parse::<IpAddr>().unwrap()]);
    assert!(matches!(
        resolver.resolve("not a name").await,
        Err(DnsError::BadName(_))
    ));
}
