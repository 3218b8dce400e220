#!/usr/bin/env python3
"""Turns loadgen's JSON lines (one per server and scenario) into BENCHMARKS.md."""
import argparse
import datetime
import json
import os
import platform

ROWS = [
    # (scenario, field, label, lower is better)
    ("start", "start_ms", "start: exec to listening, ms (median of runs)", True),
    ("start", "rss_mib", "idle daemon before its first connection, RSS MiB", True),
    ("start", "rss_anon_mib", "idle daemon, anonymous RSS MiB (heap, stacks)", True),
    ("start", "rss_file_mib", "idle daemon, file-backed RSS MiB (code pages)", True),
    ("download", "mb_per_sec", "1 stream download, MB/s", False),
    ("download", "server_cpu_secs_per_gb", "1 stream download, server CPU s/GB", True),
    ("upload", "mb_per_sec", "1 stream upload, MB/s", False),
    ("upload", "server_cpu_secs_per_gb", "1 stream upload, server CPU s/GB", True),
    ("streams", "mb_per_sec", "N streams download, MB/s (aggregate)", False),
    ("streams", "server_cpu_secs_per_gb", "N streams download, server CPU s/GB", True),
    ("streams-up", "mb_per_sec", "N streams upload, MB/s (aggregate)", False),
    ("streams-up", "server_cpu_secs_per_gb", "N streams upload, server CPU s/GB", True),
    ("connect", "conns_per_sec", "connections/s (TLS + header + HTTP request echoed)", False),
    ("connect", "server_cpu_ms_per_conn", "server CPU per connection, ms", True),
    ("connect", "p50_ms", "connection latency p50, ms", True),
    ("connect", "p99_ms", "connection latency p99, ms", True),
    ("idle", "rss_kib_per_conn", "RSS per idle connection, KiB", True),
    ("mux", "mb_per_sec", "N downloads over one Mux.Cool tunnel, MB/s", False),
    ("mux", "server_cpu_secs_per_gb", "N downloads over one tunnel, server CPU s/GB", True),
    ("mux-http", "sub_streams_per_sec", "Mux.Cool HTTP scenario (64 sniffed requests per tunnel), sub-streams/s", False),
    ("mux-http", "server_cpu_ms_per_sub_stream", "Mux.Cool HTTP scenario, server CPU per sub-stream, ms", True),
    ("mux-http", "failed_sub_streams", "Mux.Cool HTTP scenario, sub-streams without their page", True),
    ("vision", "mb_per_sec", "XTLS Vision: 1 stream inner-TLS download via sing-box's Vision client, MB/s", False),
    ("vision", "server_cpu_secs_per_gb", "XTLS Vision: the same, server CPU s/GB", True),
    ("vision-plain", "mb_per_sec", "the same inner-TLS download without a flow (plain VLESS over TLS), MB/s", False),
    ("vision-plain", "server_cpu_secs_per_gb", "the same without a flow, server CPU s/GB", True),
]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("results")
    ap.add_argument("--sniff", default="on")
    ap.add_argument("--versions", default="")
    ap.add_argument("--command", default="bash tests/bench/compare.sh")
    args = ap.parse_args()
    results = {}
    servers = []
    with open(args.results) as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            r = json.loads(line)
            if r["server"] not in servers:
                servers.append(r["server"])
            results[(r["server"], r["scenario"])] = r

    def value(server, scenario, field):
        r = results.get((server, scenario))
        if r is None:
            return None, "not run"
        if "error" in r:
            return None, "failed: " + r["error"][:60]
        return r.get(field), None

    stats_runs = [s for s in servers if s.startswith("wasmray-stats-")]
    geo_runs = [s for s in servers if "-geo-" in s]
    servers = [s for s in servers if s not in stats_runs and s not in geo_runs]
    peers = [s for s in servers if s != "wasmray"]
    out = []
    out.append("# Benchmarks\n")
    out.append("Written by `tests/bench/compare.sh` (do not edit by hand). Each server in turn on\n"
               "loopback, the same loads from `loadgen` (VLESS over TLS straight to the server,\n"
               "targets started by loadgen), the server's CPU time and RSS read from `/proc` before\n"
               "and after each load. Ratios are wasmray / peer in this one run. The start rows come\n"
               "from `tests/bench/startup.py` (exec to a listening socket, read from /proc/net/tcp;\n"
               "RSS from /proc/PID/smaps_rollup after a second idle), with the built-in plugins\n"
               "and sniffing configured as for the loads. The Vision rows come from\n"
               "`tests/bench/vision.py`: a real sing-box client (flow xtls-rprx-vision, or none)\n"
               "in front of each server, one download of inner TLS 1.3 from a local server; v2ray\n"
               "4.34 has no Vision.\n")
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    out.append(f"- date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC")
    out.append(f"- machine: {os.cpu_count()} cores, {cpu}, Linux {platform.release()}")
    out.append(f"- versions: {args.versions}")
    out.append(f"- sniffing: {args.sniff} for all servers")
    out.append(f"- command: `{args.command}`\n")
    header = "| load | " + " | ".join(servers) + " | " + " | ".join(f"wasmray / {p}" for p in peers) + " |"
    out.append(header)
    out.append("|" + "---|" * (1 + len(servers) + len(peers)))
    for scenario, field, label, _lower in ROWS:
        cells = []
        for s in servers:
            v, why = value(s, scenario, field)
            cells.append(f"{v:g}" if v is not None else why)
        ratios = []
        ours, _ = value("wasmray", scenario, field)
        for p in peers:
            theirs, _ = value(p, scenario, field)
            if ours is not None and theirs:
                ratios.append(f"{ours / theirs:.2f}x")
            else:
                ratios.append("-")
        out.append(f"| {label} | " + " | ".join(cells) + " | " + " | ".join(ratios) + " |")
    out.append("")
    out.extend(stats_cost(results, stats_runs))
    out.extend(geodata_cost(results, geo_runs))
    print("\n".join(out))


GEO_ROWS = [
    # (scenario, field, label)
    ("start", "start_ms", "start: exec to listening, ms"),
    ("start", "rss_mib", "idle after start, RSS MiB"),
    ("geodata", "rss_mib", "after the routed sessions, RSS MiB"),
    ("geodata", "hwm_mib", "peak RSS (VmHWM), MiB"),
]


def geodata_cost(results, runs):
    """The routing-data rows: each server with the 100k-domain and 100k-CIDR lists in
    its rules and without them (the same rules without lists), and the difference."""
    names = []
    for r in runs:
        name = r.rsplit("-geo-", 1)[0]
        if name not in names and (f"{name}-geo-lists", "geodata") in results:
            names.append(name)
    if not names:
        return []
    sample = results[(f"{names[0]}-geo-lists", "geodata")]
    out = ["## Routing data: 100,000 domains and 100,000 CIDRs\n",
           "Each server with a geosite of 100,000 domains and a geoip of 100,000 CIDRs (sing-box:",
           "the same entries compiled to `.srs` by `sing-box rule-set compile`) used by its",
           "routing rules, and the same server with rules naming no list. "
           f"{sample.get('sessions')} sessions",
           f"with targets in the lists, {sample.get('concurrency', 64)} at once, then the RSS from /proc",
           "(`tests/bench/geodata.py`; files from `geodata-gen`). wasmray's plugin instances hold",
           "handles into the host's one copy, so its row does not grow with their number.\n"]

    def get(server, variant, scenario, field):
        r = results.get((f"{server}-geo-{variant}", scenario))
        return None if r is None or "error" in r else r.get(field)

    out.append("| | " + " | ".join(names) + " |")
    out.append("|" + "---|" * (1 + len(names)))
    for scenario, field, label in GEO_ROWS:
        for variant, words in (("lists", "with the lists"), ("plain", "without")):
            cells = [get(n, variant, scenario, field) for n in names]
            out.append(f"| {label}, {words} | " + " | ".join("-" if c is None else f"{c:g}" for c in cells) + " |")
    for scenario, field, label in (("geodata", "rss_mib", "RSS the lists add after the sessions, MiB"),
                                   ("start", "start_ms", "start time the lists add, ms")):
        cells = []
        for n in names:
            a, b = get(n, "lists", scenario, field), get(n, "plain", scenario, field)
            cells.append("-" if a is None or b is None else f"{a - b:+.1f}")
        out.append(f"| **{label}** | " + " | ".join(cells) + " |")
    failed = {n: get(n, "lists", "geodata", "failed") for n in names}
    out.append("")
    out.append("Sessions that failed to connect (should be 0): " +
               ", ".join(f"{n} {v}" for n, v in failed.items()) + "\n")
    return out


def stats_cost(results, runs):
    """The stats core's cost: wasmray's CPU per GB with [stats] on and off (the lower of
    the alternating runs of each), as a ratio."""
    if not runs:
        return []
    out = ["## The stats core's cost\n",
           "wasmray with `[stats] enabled = true` and `false`, run alternately twice on the same",
           "loads; each cell is the lower server CPU per GB of its two runs.\n",
           "| load | stats on, CPU s/GB | stats off, CPU s/GB | on / off |",
           "|---|---|---|---|"]
    for scenario, label in (("download", "1 stream download"), ("streams", "N streams download")):
        best = {}
        for enabled in ("true", "false"):
            values = [results[(r, scenario)].get("server_cpu_secs_per_gb") for r in runs
                      if r.startswith(f"wasmray-stats-{enabled}-") and (r, scenario) in results]
            values = [v for v in values if v]
            best[enabled] = min(values) if values else None
        on, off = best["true"], best["false"]
        ratio = f"{on / off:.3f}x" if on and off else "-"
        out.append(f"| {label} | {on if on else 'not run'} | {off if off else 'not run'} | {ratio} |")
    out.append("")
    return out


if __name__ == "__main__":
    main()
