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
        .find(|(n, _)| *n == name)
        .map(|(_, b)| *b)
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
        out.status.success() && text.contains("name: sniff-http") && text.contains("Sniff"),
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

/// SIGHUP re-reads the `[plugins]` section: a valid change is swapped in, an invalid
/// one is refused while the running pipeline keeps serving.
#[test]
fn sighup_reloads_the_plugins() {
    let dir = example_dir();
    let path = dir.path().join("server.toml");
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace("0.0.0.0:8443", "127.0.0.1:0");
    std::fs::write(&path, &text).unwrap();
    let mut child = wasmray()
        .arg("run")
        .arg("-c")
        .arg(&path)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let guard = KillOnDrop(&mut child);
    let mut lines = BufReader::new(guard.0.stderr.take().unwrap())
        .lines()
        .map(|l| l.unwrap());
    assert!(lines.any(|l| l.contains("listening")), "the daemon starts");
    let pid = guard.0.id().to_string();
    let hup = || {
        assert!(
            Command::new("kill")
                .args(["-HUP", &pid])
                .status()
                .unwrap()
                .success()
        )
    };

    std::fs::write(
        &path,
        text.replace("call_timeout = \"5ms\"", "call_timeout = \"7ms\""),
    )
    .unwrap();
    hup();
    let swapped = lines
        .find(|l| l.contains("plugin pipeline swapped"))
        .unwrap();
    assert!(swapped.contains("generation=2"), "{swapped}");

    std::fs::write(
        &path,
        text.replace("default = \"direct\"", "default = \"nowhere\""),
    )
    .unwrap();
    hup();
    let refused = lines.find(|l| l.contains("SIGHUP")).unwrap();
    assert!(
        refused.contains("configuration refused") || refused.contains("no outbound"),
        "{refused}"
    );
}
