//! The `wasmray` binary as a user runs it: `check`, `uuid`, `link`, `cert`, and `run`
//! on the embedded default.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

fn wasmray() -> Command {
    Command::new(env!("CARGO_BIN_EXE_wasmray"))
}

fn example_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/server.toml");
    std::fs::copy(example, dir.path().join("server.toml")).unwrap();
    let out = wasmray()
        .arg("cert")
        .arg("--out")
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    dir
}

fn check(dir: &Path, text: Option<String>) -> (bool, String) {
    let path = dir.join("server.toml");
    if let Some(text) = text {
        std::fs::write(&path, text).unwrap();
    }
    let out = wasmray()
        .arg("check")
        .arg("-c")
        .arg(&path)
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

#[test]
fn check_accepts_the_example_and_refuses_each_mistake() {
    let dir = example_dir();
    let (ok, out) = check(dir.path(), None);
    assert!(ok, "{out}");
    assert!(out.contains("pipeline: sniff-http"), "{out}");
    let good = std::fs::read_to_string(dir.path().join("server.toml")).unwrap();
    let cases = [
        (
            "27848739-7e62-4138-9fd3-098a63964b6b",
            "27848739-zzzz",
            "inbound[0].users[0].id: not a UUID: \"27848739-zzzz\"",
        ),
        (
            "handshake_timeout =",
            "colour = 1\nhandshake_timeout =",
            "unknown field `colour`",
        ),
        (
            "tag = \"block\"",
            "tag = \"direct\"",
            "outbound[1].tag: duplicate tag \"direct\"",
        ),
        (
            "cert = \"cert.pem\"",
            "cert = \"nope.pem\"",
            "inbound[0].tls.cert: cannot read",
        ),
        (
            "outbound = \"block\"",
            "outbound = \"nowhere\"",
            "no outbound is tagged \"nowhere\"",
        ),
    ];
    for (from, to, expected) in cases {
        assert!(good.contains(from), "the example has {from}");
        let (ok, out) = check(dir.path(), Some(good.replacen(from, to, 1)));
        assert!(!ok, "{to} must be refused");
        assert!(out.contains(expected), "expected {expected:?} in:\n{out}");
        assert!(
            out.contains("server.toml"),
            "the error names the file:\n{out}"
        );
    }
}

#[test]
fn uuid_and_link() {
    let out = wasmray().arg("uuid").output().unwrap();
    let id = String::from_utf8(out.stdout).unwrap();
    assert!(uuid::Uuid::parse_str(id.trim()).is_ok(), "{id}");

    let dir = example_dir();
    let out = wasmray()
        .args(["link", "--host", "proxy.example.com", "-c"])
        .arg(dir.path().join("server.toml"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let links = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = links.lines().collect();
    assert_eq!(lines.len(), 2, "one link per user: {links}");
    assert!(lines[0].starts_with("vless://27848739-7e62-4138-9fd3-098a63964b6b@proxy.example.com:8443?encryption=none&security=tls&sni=proxy.example.com"), "{links}");
    assert!(lines[1].ends_with("#bob%40example.com"), "{links}");
}

/// `wasmray run` with no config prints a share link and serves it.
#[test]
fn the_embedded_default_starts_and_prints_a_share_link() {
    let mut child = wasmray()
        .args(["run", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let guard = KillOnDrop(&mut child);
    let stdout = guard.0.stdout.take().unwrap();
    let mut link = None;
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        if let Some(l) = line.strip_prefix("share link: ") {
            link = Some(l.to_string());
        }
        if line.contains("wasmray is running") {
            break;
        }
    }
    let link = link.expect("a share link is printed before the daemon reports it is running");
    assert!(link.starts_with("vless://"), "{link}");
    assert!(
        link.contains("security=tls") && link.contains("allowInsecure=1"),
        "{link}"
    );
    // The link's address accepts TLS connections.
    let authority = link.split('@').nth(1).unwrap().split('?').next().unwrap();
    std::net::TcpStream::connect(authority).expect("the default listens where the link says");
}

struct KillOnDrop<'a>(&'a mut std::process::Child);

impl Drop for KillOnDrop<'_> {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// SIGTERM (and SIGINT) stop accepting, drain and exit 0.
#[test]
fn sigterm_drains_and_exits_zero() {
    for signal in ["-TERM", "-INT"] {
        let mut child = wasmray()
            .args(["run", "--listen", "127.0.0.1:0", "--grace", "2s"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        assert!(
            lines.any(|l| l.unwrap().contains("wasmray is running")),
            "the daemon reports that it runs"
        );
        let status = Command::new("kill")
            .arg(signal)
            .arg(child.id().to_string())
            .status()
            .unwrap();
        assert!(status.success());
        let exit = child.wait().unwrap();
        assert_eq!(exit.code(), Some(0), "{signal}: {exit:?}");
    }
}

fn builtin(name: &str) -> &'static [u8] {
    wasmray::plugin::BUILTIN
        .iter()
        .find(|b| b.name == name)
        .map(|b| b.wasm)
        .unwrap()
}

#[test]
fn plugin_check_and_run_show_what_a_plugin_says() {
    let dir = tempfile::tempdir().unwrap();
    let wasm = dir.path().join("sniff-http.wasm");
    std::fs::write(&wasm, builtin("sniff-http")).unwrap();
    let out = wasmray()
        .args(["plugin", "check"])
        .arg(&wasm)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success()
            && text.contains("name: sniff-http")
            && text.contains("stage: sniff\n"),
        "{out:?}"
    );

    let payload = dir.path().join("request.txt");
    std::fs::write(
        &payload,
        "GET /x HTTP/1.1\r\nHost: www.example.com:8080\r\nCache-Control: no-cache\r\n\r\n",
    )
    .unwrap();
    let out = wasmray()
        .args(["plugin", "run"])
        .arg(&wasm)
        .arg("--payload")
        .arg(&payload)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(text.ends_with('\n'), "{text:?}");
    for expected in [
        "matched",
        "set cache-control = no-cache",
        "set :path = /x",
        "protocol = http1",
        "sniffed-domain = www.example.com",
    ] {
        assert!(text.contains(expected), "{expected:?} in:\n{text}");
    }

    std::fs::write(&wasm, b"not wasm").unwrap();
    let out = wasmray()
        .args(["plugin", "check"])
        .arg(&wasm)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not a wasm module"),
        "{out:?}"
    );
}

/// The example config on loopback port 0, in a directory of its own.
fn loopback_example() -> (tempfile::TempDir, std::path::PathBuf, String) {
    let dir = example_dir();
    let path = dir.path().join("server.toml");
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace("0.0.0.0:8443", "127.0.0.1:0")
        .replace("127.0.0.1:10085", "127.0.0.1:0")
        .replace("127.0.0.1:9100", "127.0.0.1:0");
    std::fs::write(&path, &text).unwrap();
    (dir, path, text)
}

/// `text` without the TOML table `header` (up to the next blank line).
fn without_section(text: &str, header: &str) -> String {
    let Some(start) = text.find(header) else {
        panic!("no {header} in the example")
    };
    let end = text[start..].find("\n\n").map_or(text.len(), |e| start + e);
    format!("{}{}", &text[..start], &text[end..])
}

/// The first line of `child`'s log that contains `needle`; the rest of the log is
/// drained in the background, so the child never blocks on a full pipe.
fn log_line(child: &mut std::process::Child, needle: &str) -> String {
    let mut lines = BufReader::new(child.stderr.take().unwrap())
        .lines()
        .map_while(Result::ok);
    let line = lines
        .find(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("no log line with {needle:?}"));
    std::thread::spawn(move || lines.for_each(drop));
    line
}

/// The example's `[metrics]` is served by `wasmray run`: curl reads a page in the
/// Prometheus text format with the inbound's series and the build info.
#[test]
fn run_serves_the_metrics_of_the_config() {
    let (_dir, path, _) = loopback_example();
    let mut child = run_logged(&path, &[]);
    let guard = KillOnDrop(&mut child);
    let line = log_line(guard.0, "metrics: Prometheus at ");
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("no URL in {line:?}"))
        .trim_end_matches(|c: char| c.is_ascii_control() || c == '"');
    let out = Command::new("curl")
        .args(["-sS", "-i", url])
        .output()
        .unwrap();
    let page = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");
    assert!(page.contains("text/plain; version=0.0.4"), "{page}");
    assert!(page.contains("\nwasmray_build_info{version=\""), "{page}");
    assert!(
        page.contains("\nwasmray_inbound_bytes_total{inbound=\"vless-in\",direction=\"uplink\"} 0"),
        "{page}"
    );
    assert!(
        page.contains("\nwasmray_connections{inbound=\"vless-in\"} 0"),
        "{page}"
    );
    let other = url.replace("/metrics", "/");
    let out = Command::new("curl")
        .args(["-sS", "-o", "/dev/null", "-w", "%{http_code}", &other])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "404");
}

/// The example's `[api]` is served by `wasmray run`: a real generated client
/// (python-xray-api, see tests/api/xray_api.py) lists its inbounds and reads the
/// counters the daemon registered at start.
#[test]
fn run_serves_the_management_api_of_the_config() {
    let (_dir, path, _) = loopback_example();
    let mut child = run_logged(&path, &[]);
    let guard = KillOnDrop(&mut child);
    let line = log_line(guard.0, "api: Xray's HandlerService");
    let addr: std::net::SocketAddr = line
        .rsplit(' ')
        .next()
        .map(|a| a.trim_matches(|c: char| !c.is_ascii_digit() && c != '.' && c != ':'))
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("no address in {line:?}"));
    assert!(addr.ip().is_loopback());
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/api/xray_api.py");
    let call = |args: &[&str]| {
        let out = Command::new("python3")
            .arg(script)
            .arg(addr.port().to_string())
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    assert_eq!(call(&["inbounds"]), r#"{"ok": ["vless-in"]}"#);
    let stats = call(&["query", "outbound>>>direct>>>"]);
    assert!(
        stats.contains(r#""outbound>>>direct>>>traffic>>>uplink": 0"#),
        "{stats}"
    );
}

/// `wasmray run -c FILE` with `args`, its log lines on stderr.
fn run_logged(path: &Path, args: &[&str]) -> std::process::Child {
    wasmray()
        .arg("run")
        .arg("-c")
        .arg(path)
        .args(args)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// SIGHUP, sent by `wasmray reload` through the pid file, re-reads the whole config:
/// a valid change is applied, an invalid one is refused with the error `check` prints
/// while the running configuration keeps serving; `reload -c` checks before it signals.
#[test]
fn wasmray_reload_applies_a_valid_config_and_refuses_an_invalid_one() {
    let (dir, path, text) = loopback_example();
    let pid_file = dir.path().join("wasmray.pid");
    let mut child = run_logged(&path, &["--pid-file", pid_file.to_str().unwrap()]);
    let guard = KillOnDrop(&mut child);
    let mut lines = BufReader::new(guard.0.stderr.take().unwrap())
        .lines()
        .map(|l| l.unwrap());
    assert!(lines.any(|l| l.contains("listening")), "the daemon starts");
    // The pid file is written once the daemon listens, just after that log line.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let pid: u32 = loop {
        let text = std::fs::read_to_string(&pid_file).unwrap_or_default();
        if let Ok(pid) = text.trim().parse() {
            break pid;
        }
        assert!(std::time::Instant::now() < deadline, "no pid file");
        std::thread::sleep(std::time::Duration::from_millis(5));
    };
    assert_eq!(pid, guard.0.id());
    let reload = |check: bool| {
        let mut cmd = wasmray();
        cmd.arg("reload").arg("--pid-file").arg(&pid_file);
        if check {
            cmd.arg("-c").arg(&path);
        }
        cmd.output().unwrap()
    };

    let bob = "[[inbound.users]]\nid = \"0f6a5c44-5b8e-4e34-9c1a-2b0c4a9e7d10\"\nemail = \"bob\"\n\n[[inbound.fallback]]";
    std::fs::write(&path, text.replacen("[[inbound.fallback]]", bob, 1)).unwrap();
    let out = reload(true);
    assert!(out.status.success(), "{out:?}");
    let applied = lines
        .find(|l| l.contains("configuration reloaded"))
        .unwrap();
    assert!(applied.contains("inbounds_kept: 1"), "{applied}");

    let broken = text.replace("default = \"direct\"", "default = \"nowhere\"");
    std::fs::write(&path, &broken).unwrap();
    let (_, checked) = check(dir.path(), None);
    let out = reload(true);
    assert!(!out.status.success(), "an invalid config is not signalled");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("nowhere"),
        "{out:?}"
    );
    // Signalled anyway (plain SIGHUP): the daemon refuses it with check's words.
    assert!(reload(false).status.success());
    let refused = lines.find(|l| l.contains("SIGHUP")).unwrap();
    assert!(refused.contains("configuration refused"), "{refused}");
    let first_error = checked.lines().find(|l| l.contains("nowhere")).unwrap();
    let mut rest = lines.by_ref().take_while(|l| !l.contains("listening"));
    assert!(
        refused.contains(first_error.trim()) || rest.any(|l| l.contains(first_error.trim())),
        "{first_error:?} not in the log after {refused:?}"
    );
}

/// `access = FILE` writes the access lines there whatever the level, and SIGHUP
/// reopens the file, as logrotate expects.
#[test]
fn the_access_log_file_is_written_at_any_level_and_reopened_on_sighup() {
    let (dir, path, text) = loopback_example();
    let log = dir.path().join("access.log");
    let access = format!("access = {:?}", log.display().to_string());
    // One listener, so `listening_port` finds the inbound's.
    let text = text.replace("[api]\nlisten = \"127.0.0.1:0\"\n", "");
    let text = without_section(&text, "[metrics]");
    let text = text
        .lines()
        .map(|l| match l {
            l if l.starts_with("level ") => "level = \"error\"",
            l if l.starts_with("access ") => &access,
            l => l,
        })
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(&path, &text).unwrap();
    let mut child = wasmray()
        .args(["run", "-c"])
        .arg(&path)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let guard = KillOnDrop(&mut child);
    let stdout = guard.0.stdout.take().unwrap();
    assert!(
        BufReader::new(stdout)
            .lines()
            .any(|l| l.unwrap().contains("wasmray is running")),
        "the daemon starts"
    );
    let addr = listening_port(guard.0.id());
    // A connection that is no VLESS at all: one `rejected` access line.
    let lines_after = |file: &Path, n: usize| {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let text = std::fs::read_to_string(file).unwrap_or_default();
            if text.lines().count() >= n || std::time::Instant::now() > deadline {
                return text;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    };
    drop(std::net::TcpStream::connect(addr).unwrap());
    let first = lines_after(&log, 1);
    assert!(first.contains("rejected"), "{first:?}");
    let rotated = dir.path().join("access.log.1");
    std::fs::rename(&log, &rotated).unwrap();
    let hup = Command::new("kill")
        .args(["-HUP", &guard.0.id().to_string()])
        .status()
        .unwrap();
    assert!(hup.success());
    // Reopened: the next line goes to a new access.log, none to the rotated file.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !log.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "access.log was not reopened"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    drop(std::net::TcpStream::connect(addr).unwrap());
    assert!(lines_after(&log, 1).contains("rejected"));
    assert_eq!(
        std::fs::read_to_string(&rotated).unwrap().lines().count(),
        1
    );
}

/// The TCP address the process `pid` listens on (its only listener), from /proc.
fn listening_port(pid: u32) -> std::net::SocketAddr {
    let inodes: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter_map(|l| {
            let l = l.to_string_lossy().to_string();
            Some(l.strip_prefix("socket:[")?.strip_suffix(']')?.to_string())
        })
        .collect();
    let tcp = std::fs::read_to_string("/proc/net/tcp").unwrap();
    for line in tcp.lines().skip(1) {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() > 9 && f[3] == "0A" && inodes.iter().any(|i| i == f[9]) {
            let port = u16::from_str_radix(f[1].rsplit(':').next().unwrap(), 16).unwrap();
            return std::net::SocketAddr::from(([127, 0, 0, 1], port));
        }
    }
    panic!("pid {pid} listens on no TCP port");
}

/// The systemd unit passes `systemd-analyze verify` (where systemd is installed),
/// pointed at this build of the binary.
#[test]
fn the_systemd_unit_verifies() {
    let unit = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/wasmray.service");
    let text = std::fs::read_to_string(&unit).unwrap();
    for needed in [
        "ExecReload=/bin/kill -HUP $MAINPID",
        "DynamicUser=yes",
        "AmbientCapabilities=CAP_NET_BIND_SERVICE",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "ReadWritePaths=",
        "--pid-file /run/wasmray/wasmray.pid",
    ] {
        assert!(text.contains(needed), "the unit lacks {needed}");
    }
    if Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("systemd-analyze is not installed; only the unit's text was checked");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let local = dir.path().join("wasmray.service");
    std::fs::write(
        &local,
        text.replace("/usr/local/bin/wasmray", env!("CARGO_BIN_EXE_wasmray")),
    )
    .unwrap();
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&local)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stderr).to_string();
    let complaints: Vec<&str> = said
        .lines()
        .filter(|l| l.contains("wasmray.service"))
        .collect();
    assert!(out.status.success() && complaints.is_empty(), "{said}");
}

/// `wasmray import-xray` prints TOML that `wasmray check` accepts, says on stderr how
/// many fields stayed behind, and writes inline certificates only where it is told
/// (keys readable by their owner alone).
#[test]
fn import_xray_prints_a_config_that_checks_and_writes_inline_certificates_on_request() {
    let fixture = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/fixtures/xray/client.json"
    );
    let out = wasmray().args(["import-xray", fixture]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("fields not carried over; the TOML lists them at its top"),
        "{stderr}"
    );
    let dir = tempfile::tempdir().unwrap();
    let toml = dir.path().join("client.toml");
    std::fs::write(&toml, &out.stdout).unwrap();
    checks(&toml);

    let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let lines = |pem: String| serde_json::to_string(&pem.lines().collect::<Vec<_>>()).unwrap();
    let json = format!(
        r#"{{"inbounds": [{{"port": 8443, "listen": "127.0.0.1", "protocol": "vless", "tag": "in",
            "settings": {{"clients": [{{"id": "27848739-7e62-4138-9fd3-098a63964b6b"}}], "decryption": "none"}},
            "streamSettings": {{"security": "tls", "tlsSettings": {{"certificates": [
                {{"certificate": {}, "key": {}}}]}}}}}}],
            "outbounds": [{{"protocol": "freedom"}}]}}"#,
        lines(cert.cert.pem()),
        lines(cert.signing_key.serialize_pem())
    );
    let source = dir.path().join("inline.json");
    std::fs::write(&source, json).unwrap();
    let refused = wasmray().arg("import-xray").arg(&source).output().unwrap();
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--write-certs"));
    let out = wasmray()
        .arg("import-xray")
        .arg(&source)
        .arg("--write-certs")
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    use std::os::unix::fs::PermissionsExt as _;
    let key = std::fs::metadata(dir.path().join("in-key.pem")).unwrap();
    assert_eq!(key.permissions().mode() & 0o777, 0o600);
    let inline = dir.path().join("inline.toml");
    std::fs::write(&inline, &out.stdout).unwrap();
    checks(&inline);
}

/// `wasmray check -c path` passes.
fn checks(path: &Path) {
    let check = wasmray().arg("check").arg("-c").arg(path).output().unwrap();
    let stderr = String::from_utf8_lossy(&check.stderr);
    assert!(check.status.success(), "{stderr}");
}
