#!/usr/bin/env python3
"""The routing-data memory row: a server holding a 100k-domain geosite and a 100k-CIDR
geoip (or the same lists as sing-box rule-sets), routing sessions whose targets are in
those lists, and the RSS it sits at afterwards.

    geodata.py --name NAME --pid PID --port PORT --uuid UUID [--sessions N] [--concurrency C]

Each session is TLS + a VLESS request for a target in the lists (domains of list
`bench`, IPs of its CIDRs), which every server's rules send to block; C sessions run at
once, so a server that pools routing instances grows its pool. Prints one JSON line:
{"server", "scenario": "geodata", "sessions", "concurrency", "failed", "rss_mib",
"hwm_mib"} (failed: sessions that could not connect or finish their handshake).
"""
import argparse
import json
import socket
import ssl
import threading
import uuid


def rss(pid):
    """(VmRSS, VmHWM) in MiB from /proc/PID/status."""
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(rest.split()[0]) / 1024
    return round(out["VmRSS"], 1), round(out["VmHWM"], 1)


def target(i):
    """The i-th session's VLESS address: a domain of the list or an address in it."""
    if i % 2 == 0:
        n = (i * 7919) % 100_000
        if n % 1000 == 0:
            n += 21  # a domain entry (every 1000th is a regex)
        # Entries of type domain and full both match the name itself.
        return bytes([2]) + bytes([len(name := f"host{n}.site{n % 5000}.example")]) + name.encode()
    n = (i * 104729) % 100_000
    if n % 10 == 0:
        n += 1  # an IPv4 entry
    ip = ((n * 3) << 8 | 0x01000000) + 7
    return bytes([1]) + ip.to_bytes(4, "big")


def session(port, user, i, ctx):
    """One routed session, read until the server closes it."""
    header = bytes([0]) + user + bytes([0, 1]) + (443).to_bytes(2, "big") + target(i)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as s:
            # Bytes no sniffer recognises: the routers see the target itself.
            s.sendall(header + b"\x01\x02\x03 not a protocol\r\n")
            try:
                while s.recv(4096):
                    pass
            except (ssl.SSLError, ConnectionError, socket.timeout):
                pass


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--name", required=True)
    p.add_argument("--pid", type=int, required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--uuid", required=True)
    p.add_argument("--sessions", type=int, default=4000)
    p.add_argument("--concurrency", type=int, default=64)
    a = p.parse_args()
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    user = uuid.UUID(a.uuid).bytes
    lock = threading.Lock()
    state = {"next": 0, "failed": 0}

    def worker():
        while True:
            with lock:
                i = state["next"]
                if i >= a.sessions:
                    return
                state["next"] += 1
            try:
                session(a.port, user, i, ctx)
            except OSError:
                with lock:
                    state["failed"] += 1

    threads = [threading.Thread(target=worker) for _ in range(a.concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    now, peak = rss(a.pid)
    print(json.dumps({
        "server": a.name, "scenario": "geodata", "sessions": a.sessions,
        "concurrency": a.concurrency, "failed": state["failed"], "rss_mib": now, "hwm_mib": peak,
    }))


if __name__ == "__main__":
    main()
