#!/usr/bin/env bash
# Emulated 64-bit Raspberry Pi check (optional, not CI): a Debian bookworm arm64 root file system
# (the base of 64-bit Raspberry Pi OS) run through qemu-user, a fresh venv there with
# `pip install '<wheel>[litert,onnx-runtime]'`, then the bundle's sample windows through the int8
# encoders and the phone model on LiteRT and on ONNX Runtime; the predictions and int8 latents are
# compared with the same run on this (x86_64) machine.
#
#   sudo bash scripts/pi-emulate.sh BUNDLE [WORKDIR]     (root: debootstrap and chroot)
#
# Cost measured on a 2-core x86_64 VM: ~12 minutes, ~400 MB under WORKDIR (default
# /tmp/crossl-pi). Needs Debian's qemu-user-static, binfmt-support and debootstrap (installed here
# when missing) and the package indexes (Debian's and PyPI). Exit 0: identical on every window.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
[ $# -ge 1 ] || { echo "usage: $0 BUNDLE [WORKDIR]" >&2; exit 2; }
bundle=$(realpath "$1"); work=$(realpath -m "${2:-/tmp/crossl-pi}")
[ -f "$bundle/manifest.json" ] || { echo "error: $1 is not a bundle (no manifest.json); run crossl-edge export first." >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "error: debootstrap and chroot need root; run it with sudo." >&2; exit 2; }
PY=${PYTHON:-.venv/bin/python}
[ -x "$PY" ] || PY=$(command -v python3)

need=()
command -v qemu-aarch64-static >/dev/null || need+=(qemu-user-static binfmt-support)
command -v debootstrap >/dev/null || need+=(debootstrap)
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
[ -e /proc/sys/fs/binfmt_misc/register ] || mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
update-binfmts --enable qemu-aarch64 >/dev/null 2>&1 || true
[ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ] || { echo "error: qemu-aarch64 is not registered with binfmt_misc; install qemu-user-static and binfmt-support." >&2; exit 1; }

# The Debian mirror this machine already uses (deb822 or one-line sources), unless MIRROR is set.
mirror=${MIRROR:-$(sed -n 's/^URIs: *\([^ ]*debian\)\/*$/\1/p' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -1)}
[ -n "$mirror" ] || mirror=$(awk '$1=="deb" && $3=="bookworm" {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
[ -n "$mirror" ] || { echo "error: no Debian mirror found in /etc/apt; set MIRROR=<debian mirror URL>." >&2; exit 2; }

root="$work/rootfs"
t0=$(date +%s)
if [ ! -x "$root/usr/bin/python3" ]; then
  rm -rf "$root"; mkdir -p "$root"
  debootstrap --arch=arm64 --variant=minbase --include=python3,python3-venv,ca-certificates \
    bookworm "$root" "$mirror" >"$work/debootstrap.log" 2>&1 \
    || { echo "error: debootstrap failed; see $work/debootstrap.log" >&2; exit 1; }
fi
t1=$(date +%s)

# The wheel of this checkout, the bundle and the probe go into the root file system.
rm -rf "$root/crossl" && mkdir -p "$root/crossl/dist"
"$PY" -m pip wheel --quiet --no-deps -w "$root/crossl/dist" . >/dev/null
cp -r "$bundle" "$root/crossl/bundle"
cat >"$root/crossl/probe.py" <<'EOF'
"""Int8 latents and phone predictions for a bundle's sample windows, per runtime, as JSON."""
import hashlib
import json
import platform
import sys

import numpy as np

from crossl_edge.manifest import load_manifest
from crossl_edge.runtime.backends import OnnxRunner, TFLiteRunner
from crossl_edge.runtime.bench import real_latents
from crossl_edge.samples import load_samples

m = load_manifest(sys.argv[1])
raw, labels = load_samples(m.path("samples.npz"), m.names)
out = {"machine": platform.machine(), "python": platform.python_version(),
       "windows": int(len(labels)), "runtimes": {}}
for rt, phone in (("litert", TFLiteRunner(m.path(m.aggregator.artifacts["tflite"]))),
                  ("onnxruntime", OnnxRunner(m.path(m.aggregator.artifacts["onnx"])))):
    z = real_latents(m, raw, [rt])
    present = np.ones((1, len(m.modalities)), np.float32)
    pred = [int(phone.run(np.stack([e.latent_quant.dequantize(z[e.name][i])
                                    for e in m.modalities])[None], present).argmax())
            for i in range(len(labels))]
    digest = hashlib.sha256(b"".join(z[e.name].tobytes() for e in m.modalities)).hexdigest()
    out["runtimes"][rt] = {"pred": pred, "latents_sha256": digest,
                           "accuracy": float(np.mean(np.array(pred) == labels))}
print(json.dumps(out))
EOF

# Inside: a fresh venv, the wheel with both runtime extras from PyPI (pip's defaults), the probe.
for f in /etc/resolv.conf /etc/ssl/certs/ca-certificates.crt; do cp -L "$f" "$root$f"; done
mount -t proc proc "$root/proc" 2>/dev/null || true
trap 'umount "$root/proc" 2>/dev/null || true' EXIT
chroot "$root" /usr/bin/env -i PATH=/usr/bin:/bin HOME=/root LANG=C.UTF-8 \
  ${HTTPS_PROXY:+HTTPS_PROXY=$HTTPS_PROXY} ${https_proxy:+https_proxy=$https_proxy} \
  PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_CERT=/etc/ssl/certs/ca-certificates.crt /bin/sh -ec '
    python3 -m venv /crossl/venv
    whl=$(ls /crossl/dist/crossl_edge-*.whl)
    /crossl/venv/bin/pip install --quiet --prefer-binary "$whl[litert,onnx-runtime]"
    /crossl/venv/bin/pip list --format freeze > /crossl/pip-list.txt
    cd /crossl && /crossl/venv/bin/python probe.py /crossl/bundle > /crossl/aarch64.json
    /crossl/venv/bin/crossl-edge bench /crossl/bundle --quick > /crossl/bench.txt'
t2=$(date +%s)
(cd "$work" && PYTHONPATH="$repo" "$PY" "$root/crossl/probe.py" "$bundle" > "$work/x86_64.json")
cp "$root/crossl/aarch64.json" "$root/crossl/pip-list.txt" "$root/crossl/bench.txt" "$work/"
"$PY" - "$work" "$((t1 - t0))" "$((t2 - t1))" <<'EOF'
import json, sys
from pathlib import Path
work = Path(sys.argv[1])
a, x = (json.loads((work / f"{n}.json").read_text()) for n in ("aarch64", "x86_64"))
same = {rt: a["runtimes"][rt] == x["runtimes"][rt] for rt in x["runtimes"]}
size = sum(f.stat().st_size for f in (work / "rootfs").rglob("*") if f.is_file() and not f.is_symlink())
print(f"aarch64 (qemu-user, Python {a['python']}) vs {x['machine']} (Python {x['python']}), "
      f"{x['windows']} sample windows")
for rt, ok in same.items():
    print(f"  {rt:<12} predictions and int8 latents {'identical' if ok else 'DIFFER'}; "
          f"accuracy {a['runtimes'][rt]['accuracy']:.3f} vs {x['runtimes'][rt]['accuracy']:.3f}")
print(f"  debootstrap {sys.argv[2]} s, venv + install + probe + bench {sys.argv[3]} s, "
      f"root file system {size / 2**20:.0f} MiB; files in {work}")
sys.exit(0 if all(same.values()) else 1)
EOF
