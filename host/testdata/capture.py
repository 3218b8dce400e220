#!/usr/bin/env python3
"""Captures the first bytes real clients send, for the codec tests (host/testdata/*.bin).

    python3 host/testdata/capture.py          # rewrites the .bin files next to this script

Each capture listens on a loopback port, lets one real client (v2ray 4.34 as a VLESS
client without TLS, curl as a SOCKS5 or HTTP proxy client) connect, answers only what
that client needs to go on, and stores what it sent. No traffic leaves loopback: the
clients are pointed at names that only the capture ever sees.
"""
import json, os, socket, subprocess, sys, tempfile, threading, time

HERE = os.path.dirname(os.path.abspath(__file__))
UUID = "27848739-7e62-4138-9fd3-098a63964b6b"


def listener():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(4)
    return s, s.getsockname()[1]


def capture(sock, answer=None, wait=1.5):
    """Accepts one connection; `answer(first_bytes)` may return bytes to send back once."""
    sock.settimeout(20)
    conn, _ = sock.accept()
    conn.settimeout(wait)
    got = b""
    answered = answer is None
    try:
        while True:
            chunk = conn.recv(65536)
            if not chunk:
                break
            got += chunk
            if not answered:
                reply = answer(got)
                if reply:
                    conn.sendall(reply)
                    answered = True
    except socket.timeout:
        pass
    conn.close()
    return got


def save(name, data):
    with open(os.path.join(HERE, name), "wb") as f:
        f.write(data)
    print(f"{name}: {len(data)} bytes")


def v2ray_capture(name, mux):
    sock, port = listener()
    socks, socks_port = listener()
    socks.close()
    config = {
        "log": {"loglevel": "warning"},
        "inbounds": [{"listen": "127.0.0.1", "port": socks_port, "protocol": "socks"}],
        "outbounds": [{
            "protocol": "vless",
            "settings": {"vnext": [{"address": "127.0.0.1", "port": port,
                                    "users": [{"id": UUID, "encryption": "none"}]}]},
            "streamSettings": {"network": "tcp", "security": "none"},
            "mux": {"enabled": mux, "concurrency": 8},
        }],
    }
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(config, f)
    v2ray = subprocess.Popen(["v2ray", "-config", f.name], stdout=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", socks_port), 0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        curl = subprocess.Popen(["curl", "-s", "-m", "5", "--socks5-hostname",
                                 f"127.0.0.1:{socks_port}", "http://example.com/capture"],
                                stdout=subprocess.DEVNULL)
        save(name, capture(sock))
        curl.kill()
    finally:
        v2ray.kill()
        os.unlink(f.name)


def curl_capture(name, args, answer):
    sock, port = listener()
    curl = subprocess.Popen(["curl", "-s", "-m", "5"] + [a.replace("PORT", str(port)) for a in args],
                            stdout=subprocess.DEVNULL)
    save(name, capture(sock, answer))
    curl.kill()


def socks_answer(got):
    # The greeting (3 bytes from curl): choose "no authentication".
    return b"\x05\x00" if len(got) >= 3 else None


if __name__ == "__main__":
    v2ray_capture("v2ray-4.34-vless-tcp.bin", False)
    v2ray_capture("v2ray-4.34-vless-mux.bin", True)
    curl_capture("curl-socks5.bin", ["--socks5-hostname", "127.0.0.1:PORT", "http://example.com/"],
                 socks_answer)
    curl_capture("curl-http-absolute.bin", ["-x", "http://127.0.0.1:PORT", "http://example.com/a?b=c"], None)
    curl_capture("curl-http-connect.bin", ["-p", "-x", "http://127.0.0.1:PORT", "https://example.com/"], None)
    sys.exit(0)
