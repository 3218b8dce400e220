use std::net::IpAddr;

use super::dat::{self, write};
use super::ruleset::Query;
use super::*;

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

fn site_file() -> Vec<u8> {
    write::geosite(&[
        (
            "GOOGLE",
            vec![
                (2, "google.com", &[][..]),
                (3, "www.google.cn", &["cn"][..]),
                (2, "g.cn", &["cn", "ads"][..]),
                (0, "googleapis", &[][..]),
                (1, r"^ads[0-9]+\.example\.org$", &["ads"][..]),
            ],
        ),
        (
            "cn",
            vec![(2, "cn", &[][..]), (3, "Exact.Example.COM", &[][..])],
        ),
    ])
}

fn sites() -> Domains {
    dat::geosite(&site_file()).unwrap()
}

#[test]
fn every_domain_type_matches_as_xray_defines_it() {
    let d = sites();
    let google = d.selector("google").unwrap();
    // domain: the name and its subdomains, label-aligned.
    assert!(d.contains(&google, "google.com"));
    assert!(d.contains(&google, "mail.google.com"));
    assert!(!d.contains(&google, "notgoogle.com"));
    // full: the name only.
    assert!(d.contains(&google, "www.google.cn"));
    assert!(!d.contains(&google, "x.www.google.cn"));
    // plain: anywhere.
    assert!(d.contains(&google, "content-googleapis.net"));
    // regex.
    assert!(d.contains(&google, "ads12.example.org"));
    assert!(!d.contains(&google, "ads.example.org"));
    let cn = d.selector("CN").unwrap();
    assert!(
        d.contains(&cn, "exact.example.com"),
        "full values are lower-cased"
    );
    assert!(d.contains(&cn, "baidu.cn"));
    assert!(!d.contains(&cn, "google.com"));
    assert_eq!(d.matching("www.google.cn"), vec![0, 1]);
    assert_eq!(d.list_name(1), Some("cn"));
}

#[test]
fn attributes_select_entries_and_unknown_names_are_errors() {
    let d = sites();
    let cn = d.selector("google@cn").unwrap();
    assert!(d.contains(&cn, "www.google.cn"));
    assert!(d.contains(&cn, "img.g.cn"));
    assert!(!d.contains(&cn, "google.com"), "no @cn attribute");
    let both = d.selector("google@cn@ads").unwrap();
    assert!(d.contains(&both, "g.cn"));
    assert!(!d.contains(&both, "www.google.cn"));
    let ads = d.selector("google@ads").unwrap();
    assert!(
        d.contains(&ads, "ads7.example.org"),
        "regexes carry attributes"
    );
    assert!(matches!(d.selector("nope"), Err(GeoError::UnknownList(n)) if n == "nope"));
    assert!(matches!(
        d.selector("google@nope"),
        Err(GeoError::UnknownAttribute(_))
    ));
}

#[test]
fn names_are_case_and_trailing_dot_insensitive_through_geodata() {
    let data = GeoData {
        geosite: Some(sites()),
        ..GeoData::default()
    };
    let list = data.domain_list("geosite:google").unwrap();
    assert!(data.domain_in(&list, "Mail.GOOGLE.com."));
    assert!(!data.domain_in(&list, ""));
    assert!(!data.domain_in(&list, "."));
    let long = format!("{}.google.com", "A".repeat(300));
    assert!(
        data.domain_in(&list, &long),
        "names beyond the stack buffer"
    );
    assert!(matches!(
        data.domain_list("geoip:cn"),
        Err(GeoError::Spec { .. })
    ));
    assert!(data.ip_list("geoip:cn").is_err(), "no geoip configured");
}

fn ip_file() -> Vec<u8> {
    write::geoip(&[
        (
            "PRIVATE",
            vec![
                (ip("10.0.0.0"), 8),
                (ip("192.168.0.0"), 16),
                (ip("192.168.1.0"), 24),
                (ip("fc00::"), 7),
            ],
            false,
        ),
        ("notcn", vec![(ip("1.0.1.0"), 24)], true),
        ("all", vec![(ip("0.0.0.0"), 0), (ip("::"), 0)], false),
    ])
}

#[test]
fn cidrs_merge_and_reverse_match_inverts() {
    let lists = dat::geoip(&ip_file()).unwrap();
    let private = lists.get(lists.id("private").unwrap()).unwrap();
    assert_eq!(private.len(), 3, "the /24 inside the /16 is merged");
    assert!(private.contains(ip("10.255.255.255")));
    assert!(private.contains(ip("192.168.200.1")));
    assert!(!private.contains(ip("11.0.0.0")));
    assert!(private.contains(ip("fd00::1")));
    assert!(
        private.contains(ip("::ffff:10.1.2.3")),
        "IPv4-mapped is IPv4"
    );
    assert!(!private.contains(ip("2001:db8::1")));
    let notcn = lists.get(lists.id("NOTCN").unwrap()).unwrap();
    assert!(!notcn.contains(ip("1.0.1.7")));
    assert!(notcn.contains(ip("8.8.8.8")));
    let all = lists.get(lists.id("all").unwrap()).unwrap();
    assert!(all.contains(ip("255.255.255.255")) && all.contains(ip("ffff::1")));
    assert!(matches!(lists.id("xx"), Err(GeoError::UnknownList(_))));
}

#[test]
fn every_prefix_of_a_valid_file_is_read_or_refused_never_panics() {
    for file in [site_file(), ip_file()] {
        for cut in 0..file.len() {
            let prefix = &file[..cut];
            let site = dat::geosite(prefix);
            let ip = dat::geoip(prefix);
            for e in [site.err(), ip.err()].into_iter().flatten() {
                let text = e.to_string();
                assert!(text.contains("byte"), "{text}");
            }
        }
    }
}

#[test]
fn a_truncated_or_malformed_file_is_refused_with_its_path_and_offset() {
    let dir = tempfile::tempdir().unwrap();
    let file = site_file();
    let path = dir.path().join("geosite.dat");
    std::fs::write(&path, &file[..file.len() - 3]).unwrap();
    let sources = Sources {
        geosite: Some(path.clone()),
        ..Sources::default()
    };
    let e = GeoData::load(&sources).err().unwrap().to_string();
    assert!(e.starts_with(&path.display().to_string()), "{e}");
    assert!(e.contains("truncated at byte"), "{e}");
    // Wire type 7 at byte 0.
    std::fs::write(&path, [0x0f, 0x00]).unwrap();
    let e = GeoData::load(&sources).err().unwrap().to_string();
    assert!(e.contains("malformed at byte 0"), "{e}");
    // A CIDR of 5 bytes, at the entry's offset.
    let mut bad = Vec::new();
    let mut cidr = Vec::new();
    wire::write::bytes(&mut cidr, 1, &[1, 2, 3, 4, 5]);
    let mut entry = Vec::new();
    wire::write::bytes(&mut entry, 1, b"x");
    wire::write::bytes(&mut entry, 2, &cidr);
    wire::write::bytes(&mut bad, 1, &entry);
    let e = dat::geoip(&bad).err().unwrap().to_string();
    assert!(
        e.contains("at byte 5") && e.contains("neither 4 nor 16"),
        "{e}"
    );
    let e = dat::geoip(&write::geoip(&[("x", vec![(ip("1.2.3.4"), 33)], false)]));
    assert!(e.err().unwrap().to_string().contains("1.2.3.4/33"));
    let missing = Sources {
        geoip: Some(dir.path().join("nope.dat")),
        ..Sources::default()
    };
    let e = GeoData::load(&missing).err().unwrap().to_string();
    assert!(e.contains("nope.dat"), "{e}");
}

#[test]
fn source_rule_sets_match_as_sing_box_defines_them() {
    let set = source::parse(
        r#"{"version": 2, "rules": [
            {"domain": "exact.test", "domain_suffix": ["suffix.test", ".sub.test"],
             "domain_keyword": "kw", "domain_regex": "^re[0-9]+\\.test$"},
            {"ip_cidr": ["10.0.0.0/8", "2001:db8::1"]},
            {"type": "logical", "mode": "and", "rules": [
                {"domain_suffix": "both.test"}, {"source_ip_cidr": "192.0.2.0/24"}]}
        ]}"#,
    )
    .unwrap();
    let domain = |d| Query {
        domain: Some(d),
        ..Query::default()
    };
    assert!(set.matches(&domain("exact.test")));
    assert!(!set.matches(&domain("a.exact.test")));
    assert!(set.matches(&domain("suffix.test")) && set.matches(&domain("a.suffix.test")));
    assert!(!set.matches(&domain("sub.test")) && set.matches(&domain("a.sub.test")));
    assert!(set.matches(&domain("xkwx.test")) && set.matches(&domain("re5.test")));
    let addr = |a: &str| Query {
        ip: Some(ip(a)),
        ..Query::default()
    };
    assert!(set.matches(&addr("10.1.1.1")) && set.matches(&addr("2001:db8::1")));
    assert!(!set.matches(&addr("2001:db8::2")));
    let both = Query {
        domain: Some("x.both.test"),
        source: Some(ip("192.0.2.9")),
        ip: None,
    };
    assert!(set.matches(&both));
    assert!(!set.matches(&Query {
        source: None,
        ..both
    }));
    assert!(!set.matches(&domain("unrelated.test")));
    let inverted = source::parse(
        r#"{"version": 1, "rules": [
            {"domain": "not.test", "invert": true, "source_ip_cidr": "198.51.100.0/24"}]}"#,
    )
    .unwrap();
    // Anything but not.test from 198.51.100.0/24.
    assert!(inverted.matches(&domain("unrelated.test")));
    let from = |d, s: &str| Query {
        domain: Some(d),
        source: Some(ip(s)),
        ip: None,
    };
    assert!(!inverted.matches(&from("not.test", "198.51.100.1")));
    assert!(inverted.matches(&from("not.test", "203.0.113.1")));
    for bad in [
        r#"{"version": 2, "rules": [{"port": 443}]}"#,
        r#"{"version": 9, "rules": []}"#,
        r#"{"version": 2, "rules": [{"ip_cidr": "10.0.0.0/x"}]}"#,
        r#"{"version": 2, "rules": [{"type": "logical", "mode": "xor", "rules": []}]}"#,
        r#"[]"#,
    ] {
        assert!(source::parse(bad).is_err(), "{bad}");
    }
    let e = source::parse(r#"{"version": 2, "rules": [{"domain": "a"}, {"process_name": "x"}]}"#);
    let e = e.err().unwrap().to_string();
    assert!(e.contains("rule 1") && e.contains("process_name"), "{e}");
}

mod random {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        /// Random bytes, and valid files with bytes flipped, are read or refused.
        #[test]
        fn readers_never_panic(
            junk in proptest::collection::vec(any::<u8>(), 0..512),
            flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8),
        ) {
            let _ = dat::geosite(&junk);
            let _ = dat::geoip(&junk);
            let _ = srs::body_rules(&junk);
            let _ = srs::parse(&junk);
            for mut file in [site_file(), ip_file()] {
                for (at, byte) in &flips {
                    let i = at % file.len();
                    file[i] ^= byte;
                }
                if let Ok(d) = dat::geosite(&file) {
                    let _ = d.matching("www.google.com");
                }
                let _ = dat::geoip(&file);
            }
        }
    }
}

#[test]
fn ext_lists_are_read_from_the_assets_directory_when_first_opened() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("my-sites.dat"), site_file()).unwrap();
    let ips = write::geoip(&[("office", vec![(ip("198.51.100.0"), 24)], false)]);
    std::fs::write(dir.path().join("my-ips.dat"), ips).unwrap();
    let sources = Sources {
        assets: Some(dir.path().to_path_buf()),
        ..Sources::default()
    };
    let data = GeoData::load(&sources).unwrap();
    assert!(
        data.ext.paths().is_empty(),
        "nothing is read before it is asked for"
    );
    let google_cn = data.domain_list("ext:my-sites.dat:google@cn").unwrap();
    assert!(data.domain_in(&google_cn, "www.google.cn"));
    assert!(!data.domain_in(&google_cn, "google.com"), "no @cn");
    let office = data.ip_list("ext:my-ips.dat:OFFICE").unwrap();
    assert!(data.ip_in(&office, ip("198.51.100.9")));
    assert!(!data.ip_in(&office, ip("198.51.101.9")));
    // One copy per file, however many handles.
    assert_eq!(
        data.domain_list("ext:my-sites.dat:google@cn").unwrap(),
        google_cn
    );
    assert_eq!(data.ext.paths().len(), 2);
    assert!(!data.ext.changed());

    for (spec, error) in [
        ("ext:my-sites.dat:nope", "no list \"ext:my-sites.dat:nope\""),
        ("ext:../my-sites.dat:google", "FILE a file name"),
        ("ext:/etc/passwd:x", "FILE a file name"),
        ("ext:my-sites.dat", "ext:FILE:LIST"),
        ("ext:missing.dat:x", "missing.dat"),
    ] {
        let e = data.domain_list(spec).err().unwrap().to_string();
        assert!(e.contains(error), "{spec}: {e}");
    }
    // A geosite file is not a geoip file: refused with its path.
    let e = data
        .ip_list("ext:my-sites.dat:google")
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("my-sites.dat"), "{e}");
    // Tried files are watched: a change (here: the missing one appearing) is seen.
    std::fs::write(dir.path().join("missing.dat"), site_file()).unwrap();
    assert!(data.ext.changed());
    let none = GeoData::load(&Sources::default()).unwrap();
    let e = none
        .domain_list("ext:my-sites.dat:google")
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("[geodata] assets"), "{e}");
}
