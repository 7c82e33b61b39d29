#!/usr/bin/env bash
# Emulated Raspberry Pi check (optional, not CI). A Debian bookworm root file system (the base of
# Raspberry Pi OS) for ARCH=arm64 (64-bit Pi OS, default) or ARCH=armhf (32-bit Pi OS), run
# through qemu-user; a fresh venv there with the install the README gives for that OS; then the
# bundle's sample windows through the int8 encoders and the phone model on every runtime that
# installed, compared window by window with the same run on this (x86_64) machine.
#
#   sudo [ARCH=arm64|armhf] bash scripts/pi-emulate.sh BUNDLE [WORKDIR]
#
# arm64: `pip install '<wheel>[litert,onnx-runtime]'`. armhf: PyPI has no numpy, ai-edge-litert or
# onnxruntime wheels for armv7, so that install is tried (it must fail) and then the README's
# 32-bit route: Debian's python3-numpy in a --system-site-packages venv and
# `pip install '<wheel>[tflite-runtime]'`.
# Cost for ARCH=arm64, measured on a 2-core x86_64 VM shared with other jobs: debootstrap ~12 min,
# venv + install + probe + quick bench ~4 min, ~510 MiB under WORKDIR (default /tmp/crossl-pi-ARCH;
# a second run reuses the root file system). Needs Debian's qemu-user-static, binfmt-support and debootstrap (installed
# here when missing) and the package indexes (Debian's, PyPI). Exit 0: the same predictions.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
arch=${ARCH:-arm64}
case "$arch" in
  arm64) qemu=aarch64; pkgs=python3,python3-venv,ca-certificates ;;
  armhf) qemu=arm; pkgs=python3,python3-venv,python3-numpy,ca-certificates ;;
  *) echo "error: ARCH must be arm64 or armhf, not $arch." >&2; exit 2 ;;
esac
[ $# -ge 1 ] || { echo "usage: [ARCH=arm64|armhf] $0 BUNDLE [WORKDIR]" >&2; exit 2; }
bundle=$(realpath "$1"); work=$(realpath -m "${2:-/tmp/crossl-pi-$arch}")
[ -f "$bundle/manifest.json" ] || { echo "error: $1 is not a bundle (no manifest.json); run crossl-edge export first." >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "error: debootstrap and chroot need root; run it with sudo." >&2; exit 2; }
PY=${PYTHON:-.venv/bin/python}
[ -x "$PY" ] || PY=$(command -v python3)

need=()
command -v "qemu-$qemu-static" >/dev/null || need+=(qemu-user-static binfmt-support)
command -v debootstrap >/dev/null || need+=(debootstrap)
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
[ -e /proc/sys/fs/binfmt_misc/register ] || mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
update-binfmts --enable "qemu-$qemu" >/dev/null 2>&1 || true
[ -e "/proc/sys/fs/binfmt_misc/qemu-$qemu" ] || { echo "error: qemu-$qemu is not registered with binfmt_misc; install qemu-user-static and binfmt-support." >&2; exit 1; }

# The Debian mirror this machine already uses (deb822 or one-line sources), unless MIRROR is set.
mirror=${MIRROR:-$(sed -n 's/^URIs: *\([^ ]*debian\)\/*$/\1/p' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -1)}
[ -n "$mirror" ] || mirror=$(awk '$1=="deb" && $3=="bookworm" {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
[ -n "$mirror" ] || { echo "error: no Debian mirror found in /etc/apt; set MIRROR=<debian mirror URL>." >&2; exit 2; }

root="$work/rootfs"
mkdir -p "$work"
t0=$(date +%s)
if [ ! -x "$root/usr/bin/python3" ]; then
  rm -rf "$root"; mkdir -p "$root"
  debootstrap --arch="$arch" --variant=minbase --include="$pkgs" bookworm "$root" "$mirror" \
    >"$work/debootstrap.log" 2>&1 || { echo "error: debootstrap failed; see $work/debootstrap.log" >&2; exit 1; }
fi
t1=$(date +%s)

# The wheel of this checkout, the bundle and the probe go into the root file system.
rm -rf "$root/crossl" && mkdir -p "$root/crossl/dist"
"$PY" -m pip wheel --quiet --no-deps -w "$root/crossl/dist" . >/dev/null
cp -r "$bundle" "$root/crossl/bundle"
cat >"$root/crossl/probe.py" <<'EOF'
"""Int8 latents and phone predictions for a bundle's sample windows on every installed runtime."""
import json
import platform
import sys

import numpy as np

from crossl_edge.manifest import load_manifest
from crossl_edge.runtime.backends import OnnxRunner, TFLiteRunner
from crossl_edge.bench.bench import real_latents
from crossl_edge.bench.report import runtime_present, runtime_version
from crossl_edge.samples import load_samples

m = load_manifest(sys.argv[1])
raw, labels = load_samples(m.path("samples.npz"), m.names)
out = {"machine": platform.machine(), "python": platform.python_version(),
       "numpy": np.__version__, "windows": int(len(labels)), "runtimes": {}}
for rt in ("litert", "tflite_runtime", "onnxruntime"):
    if not runtime_present(rt):
        continue
    phone = (OnnxRunner(m.path(m.aggregator.artifacts["onnx"])) if rt == "onnxruntime" else
             TFLiteRunner(m.path(m.aggregator.artifacts["tflite"]), xnnpack=False, backend=rt))
    z = real_latents(m, raw, [rt])
    present = np.ones((1, len(m.modalities)), np.float32)
    pred = [int(phone.run(np.stack([e.latent_quant.dequantize(z[e.name][i])
                                    for e in m.modalities])[None], present).argmax())
            for i in range(len(labels))]
    out["runtimes"][rt] = {"version": runtime_version(rt), "pred": pred,
                           "latents": {e.name: z[e.name].tolist() for e in m.modalities},
                           "accuracy": float(np.mean(np.array(pred) == labels))}
print(json.dumps(out))
EOF

if [ "$arch" = arm64 ]; then
  install='python3 -m venv /crossl/venv
    /crossl/venv/bin/pip install --quiet "$whl[litert,onnx-runtime]"'
else
  install='python3 -m venv /crossl/venv
    if /crossl/venv/bin/pip install --quiet --only-binary=:all: "$whl[litert]" 2>/crossl/litert-err.txt; then
      echo "unexpected: [litert] installed on armv7" >&2; exit 1; fi
    rm -rf /crossl/venv && python3 -m venv --system-site-packages /crossl/venv
    /crossl/venv/bin/pip install --quiet "$whl[tflite-runtime]"'
fi
# Inside: a fresh venv with the README's install for this OS (PyPI, pip's defaults), the probe.
for f in /etc/resolv.conf /etc/ssl/certs/ca-certificates.crt; do cp -L "$f" "$root$f"; done
mount -t proc proc "$root/proc" 2>/dev/null || true
trap 'umount "$root/proc" 2>/dev/null || true' EXIT
chroot "$root" /usr/bin/env -i PATH=/usr/bin:/bin HOME=/root LANG=C.UTF-8 \
  ${HTTPS_PROXY:+HTTPS_PROXY=$HTTPS_PROXY} ${https_proxy:+https_proxy=$https_proxy} \
  PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_CERT=/etc/ssl/certs/ca-certificates.crt /bin/sh -ec "
    whl=\$(ls /crossl/dist/crossl_edge-*.whl)
    $install
    /crossl/venv/bin/pip list --format freeze > /crossl/pip-list.txt
    cd /crossl && /crossl/venv/bin/python probe.py /crossl/bundle > /crossl/$arch.json
    /crossl/venv/bin/crossl-edge bench /crossl/bundle --quick > /crossl/bench.txt"
t2=$(date +%s)
umount "$root/proc" 2>/dev/null || true
size_mib=$(du -sxm "$root" | cut -f1)
(cd "$work" && PYTHONPATH="$repo" "$PY" "$root/crossl/probe.py" "$bundle" > "$work/x86_64.json")
cp "$root/crossl/$arch.json" "$root/crossl/pip-list.txt" "$root/crossl/bench.txt" "$work/"
[ -f "$root/crossl/litert-err.txt" ] && cp "$root/crossl/litert-err.txt" "$work/"
"$PY" - "$work" "$arch" "$((t1 - t0))" "$((t2 - t1))" "$size_mib" <<'EOF'
import json
import sys
from pathlib import Path

import numpy as np

work, arch = Path(sys.argv[1]), sys.argv[2]
a, x = (json.loads((work / f"{n}.json").read_text()) for n in (arch, "x86_64"))
print(f"{a['machine']} (qemu-user, Python {a['python']}, numpy {a['numpy']}) vs {x['machine']} "
      f"(Python {x['python']}), {x['windows']} sample windows")
ok = bool(a["runtimes"])
for rt, got in a["runtimes"].items():
    ref_rt = rt if rt in x["runtimes"] else "litert"      # tflite-runtime vs LiteRT on x86_64
    ref = x["runtimes"][ref_rt]
    same = sum(p == q for p, q in zip(got["pred"], ref["pred"]))
    lsb = max(int(np.abs(np.array(got["latents"][k]) - np.array(ref["latents"][k])).max())
              for k in ref["latents"])
    ok = ok and same == len(ref["pred"])
    print(f"  {rt} {got['version']} vs {ref_rt} {ref['version']}: predictions equal on {same}/"
          f"{len(ref['pred'])} windows, int8 latents max diff {lsb} LSB, accuracy "
          f"{got['accuracy']:.3f} vs {ref['accuracy']:.3f}")
err = work / "litert-err.txt"
if err.exists():
    line = next((s for s in err.read_text().splitlines() if "No matching distribution" in s), "?")
    print(f"  [litert] on armv7 (--only-binary=:all:): {line.strip()}")
print(f"  debootstrap {sys.argv[3]} s, venv + install + probe + bench {sys.argv[4]} s, "
      f"root file system {sys.argv[5]} MiB; files in {work}")
sys.exit(0 if ok else 1)
EOF
