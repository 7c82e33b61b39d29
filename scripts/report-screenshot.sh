#!/usr/bin/env bash
# Screenshot an HTML report in headless Chromium (Debian package `chromium`), to look at it as a
# person would: scripts/report-screenshot.sh REPORT.html OUT.png [WIDTH] [HEIGHT]
# Install once (Debian, as root): apt-get install --no-install-recommends chromium fonts-dejavu-core
set -euo pipefail
[ $# -ge 2 ] || { echo "usage: $0 REPORT.html OUT.png [WIDTH] [HEIGHT]" >&2; exit 2; }
html=$(realpath "$1"); out=$(realpath -m "$2"); w=${3:-1280}; h=${4:-3600}
[ -f "$html" ] || { echo "error: $1 does not exist; write it with crossl-edge parity BUNDLE --report DIR." >&2; exit 2; }
browser=$(command -v chromium || command -v chromium-browser || true)
[ -n "$browser" ] || { echo "error: chromium is not installed; apt-get install chromium (Debian) and run again." >&2; exit 2; }
profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
# Offline and quiet: no network services, a throw-away profile, the page's own size.
timeout 120 "$browser" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
  --disable-background-networking --disable-component-update --disable-sync \
  --hide-scrollbars --user-data-dir="$profile" --window-size="$w,$h" \
  --screenshot="$out" "file://$html" >/dev/null 2>&1
[ -s "$out" ] || { echo "error: chromium wrote no screenshot to $out." >&2; exit 1; }
echo "$out"
