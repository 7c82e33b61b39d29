#!/usr/bin/env bash
# Debian packages the tests use: the Cortex-M cross-compiler with its C and C++ libraries
# (firmware_bridge builds TFLite Micro for Cortex-M4), qemu-system-arm to run the M4 image, and
# clang with its libFuzzer/sanitizer runtime (tests/fuzz, benchmarks/fuzz.py; Debian bookworm:
# compiler-rt ships as libclang-rt-14-dev), and headless Chromium with a font for the report's
# rendering test (tests/test_report.py, scripts/report-screenshot.sh).
# Skips quietly when they are present, or when apt-get is not usable (the tests then skip those checks).
set -euo pipefail
need=()
command -v arm-none-eabi-gcc >/dev/null || need+=(gcc-arm-none-eabi libnewlib-arm-none-eabi)
[ -e /usr/lib/arm-none-eabi/include/c++ ] || need+=(libstdc++-arm-none-eabi-newlib)
command -v qemu-system-arm >/dev/null || need+=(qemu-system-arm)
command -v g++ >/dev/null || need+=(g++)
command -v make >/dev/null || need+=(make)  # crossl.mk builds TFLite Micro
command -v clang >/dev/null || need+=(clang)
compgen -G "/usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer-*.a" >/dev/null || need+=(libclang-rt-14-dev)
command -v chromium >/dev/null || need+=(chromium fonts-dejavu-core)
[ ${#need[@]} -eq 0 ] && exit 0
if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
else
  echo "note: install ${need[*]} to run the cross-compilation and fuzzing tests (they are skipped without them)" >&2
fi
