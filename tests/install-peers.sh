#!/usr/bin/env bash
# Installs the real VLESS peer the interop tests talk to: Debian's v2ray (V2Ray 4.34).
set -euo pipefail
# And curl, which the client tests drive through the SOCKS5 and HTTP inbounds.
missing=""
command -v v2ray >/dev/null 2>&1 || missing="$missing v2ray"
command -v curl >/dev/null 2>&1 || missing="$missing curl"
if [ -n "$missing" ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  # shellcheck disable=SC2086
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing >/dev/null
fi
# sed reads all of it: with pipefail, head could leave v2ray writing into a closed pipe (exit 141).
v2ray -version | sed -n 1p
