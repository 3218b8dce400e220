#!/usr/bin/env python3
"""Start time and base memory of a server: exec to the first accepted connection on its
port, then the RSS after it has sat idle (no connection yet served) for a moment.

    startup.py NAME PORT RUNS -- COMMAND...

Prints one JSON line like loadgen's: {"server", "scenario": "start", "start_ms"
(median of RUNS), "start_ms_max", "rss_mib" (median), "rss_anon_mib", "rss_file_mib"}.
"""
import json
import os
import statistics
import subprocess
import sys
import time

LIMIT_S = 30.0
IDLE_S = 1.0


def listening(port):
    """Whether a socket listens on PORT (read from /proc/net/tcp, so the probe is no
    connection the server has to serve)."""
    want = f":{port:04X}"
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            parts = line.split()
            if parts[1].endswith(want) and parts[3] == "0A":
                return True
    return False


def rollup(pid):
    """(Rss, Anonymous, file-backed) in KiB from /proc/PID/smaps_rollup."""
    fields = {}
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 2 and parts[0].endswith(":") and parts[1].isdigit():
                fields[parts[0][:-1]] = int(parts[1])
    rss = fields.get("Rss", 0)
    anon = fields.get("Anonymous", 0)
    return rss, anon, rss - anon


def once(port, command):
    started = time.monotonic()
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while not listening(port):
            if proc.poll() is not None:
                raise SystemExit(f"{command[0]} exited with {proc.returncode} before listening")
            if time.monotonic() - started > LIMIT_S:
                raise SystemExit(f"{command[0]} did not listen on {port} within {LIMIT_S}s")
            time.sleep(0.001)
        start_ms = (time.monotonic() - started) * 1000
        time.sleep(IDLE_S)
        return start_ms, rollup(proc.pid)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def main():
    name, port, runs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    command = sys.argv[sys.argv.index("--") + 1:]
    samples = [once(port, command) for _ in range(runs)]
    starts = [s for s, _ in samples]
    mib = lambda i: round(statistics.median(r[i] for _, r in samples) / 1024, 1)
    print(json.dumps({
        "server": name,
        "scenario": "start",
        "start_ms": round(statistics.median(starts), 1),
        "start_ms_max": round(max(starts), 1),
        "rss_mib": mib(0),
        "rss_anon_mib": mib(1),
        "rss_file_mib": mib(2),
    }))


if __name__ == "__main__":
    main()
