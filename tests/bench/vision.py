#!/usr/bin/env python3
"""The Vision load: one download of inner TLS 1.3 (what Vision is for) through a real
sing-box client's SOCKS5 port, from a local TLS 1.3 server started here, while the
proxy server's CPU time is read from /proc/PID/stat before and after. Prints one JSON
line per scenario for report.py.

    vision.py --name wasmray --pid PID --socks vision=PORT --socks vision-plain=PORT \
              --cert cert.pem --key key.pem --bytes N
"""
import argparse
import json
import os
import socket
import ssl
import struct
import threading
import time

CHUNK = 256 * 1024


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # utime and stime are fields 14 and 15 of the whole line (11 and 12 after the name).
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def read_exact(tls, n):
    data = b""
    while len(data) < n:
        chunk = tls.recv(n - len(data))
        if not chunk:
            raise OSError("closed before the request")
        data += chunk
    return data


def serve(listener, context):
    """Sends each client over TLS 1.3 the byte count it asks for (8 bytes, big-endian)."""
    payload = bytes(range(256)) * (CHUNK // 256)
    while True:
        try:
            raw, _ = listener.accept()
        except OSError:
            return
        try:
            tls = context.wrap_socket(raw, server_side=True)
            left = struct.unpack(">Q", read_exact(tls, 8))[0]
        except (OSError, ssl.SSLError):
            raw.close()
            continue
        with tls:
            while left > 0:
                n = min(left, CHUNK)
                tls.sendall(payload[:n])
                left -= n


def socks_connect(port, target):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"\x05\x01\x00")
    if s.recv(2) != b"\x05\x00":
        raise RuntimeError("SOCKS5 method refused")
    host, tport = target
    s.sendall(b"\x05\x01\x00\x01" + socket.inet_aton(host) + struct.pack(">H", tport))
    reply = b""
    while len(reply) < 10:
        chunk = s.recv(10 - len(reply))
        if not chunk:
            raise RuntimeError("SOCKS5 closed")
        reply += chunk
    if reply[1] != 0:
        raise RuntimeError(f"SOCKS5 connect failed: {reply[1]}")
    return s


def download(port, target, size):
    client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client.check_hostname = False
    client.verify_mode = ssl.CERT_NONE
    client.minimum_version = ssl.TLSVersion.TLSv1_3
    got = 0
    buf = bytearray(CHUNK)
    with client.wrap_socket(socks_connect(port, target)) as tls:
        tls.sendall(struct.pack(">Q", size))
        while True:
            n = tls.recv_into(buf)
            if n == 0:
                break
            got += n
    if got != size:
        raise RuntimeError(f"{got} of {size} bytes arrived")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--name", required=True)
    ap.add_argument("--pid", type=int, required=True)
    ap.add_argument("--socks", action="append", required=True, help="SCENARIO=PORT")
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--bytes", type=int, default=1 << 30)
    args = ap.parse_args()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    context.load_cert_chain(args.cert, args.key)
    listener = socket.create_server(("127.0.0.1", 0))
    threading.Thread(target=serve, args=(listener, context), daemon=True).start()
    target = listener.getsockname()
    for spec in args.socks:
        scenario, port = spec.split("=")
        row = {"server": args.name, "scenario": scenario}
        try:
            download(int(port), target, 1 << 20)  # warm-up: handshakes, pools
            before, start = cpu_seconds(args.pid), time.monotonic()
            download(int(port), target, args.bytes)
            cpu, wall = cpu_seconds(args.pid) - before, time.monotonic() - start
            gb = args.bytes / 1e9
            row["mb_per_sec"] = round(args.bytes / 1e6 / wall, 3)
            row["server_cpu_secs_per_gb"] = round(cpu / gb, 3)
        except Exception as e:  # a failed load is a row that says so
            row["error"] = str(e)
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
