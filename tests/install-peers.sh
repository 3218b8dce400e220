#!/usr/bin/env bash
# Installs the real VLESS peer the interop tests talk to: Debian's v2ray (V2Ray 4.34).
set -euo pipefail
if ! command -v v2ray >/dev/null 2>&1; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq v2ray >/dev/null
fi
v2ray -version | head -1
