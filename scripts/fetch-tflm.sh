#!/usr/bin/env bash
# Fetch TensorFlow Lite Micro at the commit crossl-edge is tested with, plus the third-party
# sources its Makefile would download (same pins as ../shared/third_party/README.md), with git.
# Usage: bash scripts/fetch-tflm.sh DIR   then   crossl-edge firmware BUNDLE --out fw --build --tflm DIR
# (or export CROSSL_TFLM_SRC=DIR). Needs git, patch and network access to github.com.
set -euo pipefail

DIR=${1:?usage: bash scripts/fetch-tflm.sh DIR}
TFLM_COMMIT=90b983c2b3f1480642e040bbd2ddb37b998f3424
FLATBUFFERS_TAG=v25.9.23
GEMMLOWP_COMMIT=719139ce755a0f31cbf1c37f7f98adcc7fc9f425
RUY_COMMIT=d37128311b445e758136b8602d1bbd2a755e115d
CMSIS_NN_COMMIT=4ab83cc3cc98fb85ed6dafb55e8ca02f1628dcae

# fetch URL REF DEST: a shallow checkout of one commit or tag, without its .git folder.
fetch() {
    local url=$1 ref=$2 dest=$3
    mkdir -p "$dest"
    git -C "$dest" init -q
    git -C "$dest" remote add origin "$url"
    git -C "$dest" fetch -q --depth 1 origin "$ref"
    git -C "$dest" checkout -q FETCH_HEAD
    rm -rf "$dest/.git"
}

if [ -e "$DIR" ] && [ -n "$(ls -A "$DIR")" ]; then
    echo "error: $DIR exists and is not empty; pass a new folder." >&2
    exit 2
fi
fetch https://github.com/tensorflow/tflite-micro.git "$TFLM_COMMIT" "$DIR"
DL="$DIR/tensorflow/lite/micro/tools/make/downloads"
mkdir -p "$DL"
fetch https://github.com/google/flatbuffers.git "refs/tags/$FLATBUFFERS_TAG" "$DL/flatbuffers"
patch -s -p1 -d "$DL/flatbuffers" < "$DIR/tensorflow/lite/micro/tools/make/flatbuffers.patch"
fetch https://github.com/google/gemmlowp.git "$GEMMLOWP_COMMIT" "$DL/gemmlowp"
fetch https://github.com/google/ruy.git "$RUY_COMMIT" "$DL/ruy"
fetch https://github.com/ARM-software/CMSIS-NN.git "$CMSIS_NN_COMMIT" "$DL/cmsis_nn"
echo "TensorFlow Lite Micro $TFLM_COMMIT with its dependencies is in $DIR"
