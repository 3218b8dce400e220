//! The geodata readers on arbitrary bytes: geosite and geoip `.dat`, a sing-box rule-set
//! body (already decompressed) and a whole `.srs`, and the source `.json`. Each is read
//! or refused; lookups on whatever was read answer without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wasmray::geodata::{dat, ruleset::Query, source, srs};

fuzz_target!(|data: &[u8]| {
    if let Ok(sites) = dat::geosite(data) {
        for name in sites.lists().map(str::to_string).collect::<Vec<_>>() {
            if let Ok(sel) = sites.selector(&name) {
                let _ = sites.contains(&sel, "www.example.com");
            }
        }
    }
    if let Ok(ips) = dat::geoip(data) {
        let names: Vec<String> = ips.names().map(str::to_string).collect();
        for name in names {
            let list = ips.id(&name).ok().and_then(|id| ips.get(id));
            let _ = list.map(|l| l.contains("10.1.2.3".parse().unwrap()));
        }
    }
    let query = Query {
        domain: Some("a.example.com"),
        ip: Some("192.0.2.1".parse().unwrap()),
        source: None,
    };
    if let Ok(set) = srs::body_rules(data) {
        let _ = set.matches(&query);
    }
    if let Ok(set) = srs::parse(data) {
        let _ = set.matches(&query);
    }
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(set) = source::parse(text)
    {
        let _ = set.matches(&query);
    }
});
