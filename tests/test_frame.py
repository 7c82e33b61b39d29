"""Latent frame v1 Python codec and COBS: golden bytes, round trips, validation, fuzzing."""

from __future__ import annotations

import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from crossl_edge.wire import frame_c, frame_doc
from crossl_edge.wire.cobs import (
    CobsError,
    CobsStreamDecoder,
    cobs_decode,
    cobs_encode,
    cobs_max_encoded_size,
    serial_packet,
)
from crossl_edge.wire.frame import (
    FORMAT_VERSION,
    HEADER_SIZE,
    OFFSETS,
    OVERHEAD,
    TRAILER_SIZE,
    FrameError,
    FrameErrorReason,
    LatentDType,
    LatentFrame,
    decode_frame,
    encode_frame,
    fingerprint32,
    frame_size,
)

GOLDEN = Path(__file__).parent / "golden"
FUZZ = settings(max_examples=300, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow])
R = FrameErrorReason


def golden_frames() -> dict[str, LatentFrame]:
    """The frames pinned by tests/golden/frame_v1_<name>.bin (never change them: v1 is fixed)."""
    i8 = ((np.arange(96) * 37 + 11) % 256 - 128).astype(np.int8)
    f32 = np.array([0.0, -0.0, 1.0, -1.5, 3.14159, 1e-38, 65504.0, -123.456], np.float32)
    i16 = (np.arange(16, dtype=np.int64) * 4099 - 32768).astype(np.int16)
    return {
        "int8_96": LatentFrame(modality_id=0, seq=123456, timestamp_us=1_700_000_000_123_456,
                               fingerprint=0xC0FFEE42, dtype=LatentDType.INT8, latent=i8),
        "float32_8": LatentFrame(modality_id=1, seq=0xFFFFFFFF, timestamp_us=2**40 + 5,
                                 fingerprint=0x01020304, dtype="float32", latent=f32),
        # An ancillary flag bit: decoders must accept it and pass it on.
        "int16_16": LatentFrame(modality_id=7, seq=0, timestamp_us=0, fingerprint=0xFFFFFFFF,
                                dtype=LatentDType.INT16, latent=i16, flags=0x01),
    }


def _with_crc(body: bytes) -> bytes:
    return body + zlib.crc32(body).to_bytes(4, "little")


def test_constants_and_sizes() -> None:
    assert (HEADER_SIZE, TRAILER_SIZE, OVERHEAD, FORMAT_VERSION) == (24, 4, 28, 1)
    assert frame_size(96, "int8") == 124 <= 244  # one BLE notification with DLE
    assert frame_size(96, LatentDType.FLOAT32) == 412
    assert frame_size(10, 1) == 48
    with pytest.raises(FrameError):
        frame_size(70000)


@pytest.mark.parametrize("name", sorted(golden_frames()))
def test_golden_bytes(name: str) -> None:
    frame = golden_frames()[name]
    data = (GOLDEN / f"frame_v1_{name}.bin").read_bytes()
    assert encode_frame(frame) == data
    decoded = decode_frame(data)
    assert decoded == frame
    assert decoded.latent.dtype == frame.dtype.wire.newbyteorder("=")
    assert data[:3] == b"CL\x01" and len(data) == frame_size(frame.latent.size, frame.dtype)


def test_golden_int8_layout_by_hand() -> None:
    data = (GOLDEN / "frame_v1_int8_96.bin").read_bytes()
    assert data[3:8] == bytes([0, 0, 0, 96, 0])  # modality, dtype, flags, length (u16 LE)
    assert int.from_bytes(data[8:12], "little") == 123456
    assert int.from_bytes(data[12:20], "little") == 1_700_000_000_123_456
    assert int.from_bytes(data[20:24], "little") == 0xC0FFEE42
    assert int.from_bytes(data[-4:], "little") == zlib.crc32(data[:-4])


def _frames() -> st.SearchStrategy[LatentFrame]:
    def build(dtype: LatentDType, draw_array: np.ndarray, ints: tuple[int, ...]) -> LatentFrame:
        return LatentFrame(modality_id=ints[0], seq=ints[1], timestamp_us=ints[2],
                           fingerprint=ints[3], dtype=dtype, latent=draw_array, flags=ints[4])

    def for_dtype(dtype: LatentDType) -> st.SearchStrategy[LatentFrame]:
        arrays = hnp.arrays(dtype.wire, st.integers(1, 200))
        ints = st.tuples(st.integers(0, 255), st.integers(0, 2**32 - 1),
                         st.integers(0, 2**64 - 1), st.integers(0, 2**32 - 1),
                         st.integers(0, 0x0F))
        return st.builds(build, st.just(dtype), arrays, ints)

    return st.one_of(*(for_dtype(d) for d in LatentDType))


@FUZZ
@given(_frames())
def test_round_trip(frame: LatentFrame) -> None:
    data = encode_frame(frame)
    assert len(data) == frame_size(frame.latent.size, frame.dtype)
    back = decode_frame(data)
    assert back == frame and back.flags == frame.flags
    assert encode_frame(back) == data


@FUZZ
@given(st.one_of(st.binary(max_size=300),
                 st.binary(max_size=300).map(lambda b: b"CL\x01" + b),
                 st.binary(min_size=21, max_size=300).map(lambda b: _with_crc(b"CL\x01" + b))))
def test_decode_random_bytes_only_frame_error(data: bytes) -> None:
    try:
        frame = decode_frame(data)
    except FrameError as exc:
        assert isinstance(exc.reason, FrameErrorReason) and str(exc)
    else:
        assert encode_frame(frame) == data  # whatever is accepted is canonical


@FUZZ
@given(_frames(), st.data())
def test_mutated_frames_rejected(frame: LatentFrame, data: st.DataObject) -> None:
    good = encode_frame(frame)
    kind = data.draw(st.sampled_from(["burst", "truncate", "extend"]))
    if kind == "burst":  # <= 32-bit burst: CRC-32 detects every one
        start = data.draw(st.integers(0, len(good) - 1))
        width = data.draw(st.integers(1, min(4, len(good) - start)))
        new = data.draw(st.binary(min_size=width, max_size=width))
        bad = good[:start] + new + good[start + width:]
        if bad == good:
            return
        with pytest.raises(FrameError):
            decode_frame(bad)
    elif kind == "truncate":
        cut = data.draw(st.integers(0, len(good) - 1))
        with pytest.raises(FrameError) as err:
            decode_frame(good[:cut])
        assert err.value.reason is R.TRUNCATED
    else:
        extra = data.draw(st.binary(min_size=1, max_size=8))
        with pytest.raises(FrameError) as err:
            decode_frame(good + extra)
        assert err.value.reason is R.LENGTH_MISMATCH


def _patched(offset: int, value: bytes) -> bytes:
    good = encode_frame(golden_frames()["int8_96"])[:-4]  # == the golden file, tested above
    return _with_crc(good[:offset] + value + good[offset + len(value):])


@pytest.mark.parametrize(("buf", "reason"), [
    (b"", R.TRUNCATED),
    (b"CL\x01" + bytes(20), R.TRUNCATED),
    (_patched(0, b"LC"), R.BAD_MAGIC),
    (_patched(OFFSETS["version"], b"\x03"), R.UNKNOWN_VERSION),
    (_patched(OFFSETS["version"], b"\x02"), R.TRUNCATED),   # a v2 header is 8 bytes longer
    (_with_crc(b"CL\x02" + bytes(28))[:34], R.TRUNCATED),   # shorter than a v2 overhead
    (_patched(OFFSETS["version"], b"\x00"), R.UNKNOWN_VERSION),
    (_patched(OFFSETS["dtype"], b"\x03"), R.BAD_DTYPE),
    (_patched(OFFSETS["length"], b"\x00\x00"), R.LENGTH_MISMATCH),
    (_patched(OFFSETS["length"], b"\x61\x00"), R.TRUNCATED),
    (_patched(OFFSETS["length"], b"\x5f\x00"), R.LENGTH_MISMATCH),
    (_patched(OFFSETS["flags"], b"\x10"), R.BAD_FLAGS),
    (_patched(OFFSETS["flags"], b"\x80"), R.BAD_FLAGS),
    (_patched(0, b"CL")[:-1] + b"\x00", R.BAD_CRC),
])
def test_decode_reasons(buf: bytes, reason: FrameErrorReason) -> None:
    with pytest.raises(FrameError) as err:
        decode_frame(buf)
    assert err.value.reason is reason
    assert isinstance(err.value, ValueError)


def test_ancillary_flags_pass_through() -> None:
    frame = decode_frame(_patched(OFFSETS["flags"], b"\x0f"))
    assert frame.flags == 0x0F


def test_bad_crc_message() -> None:
    data = bytearray((GOLDEN / "frame_v1_int8_96.bin").read_bytes())
    data[30] ^= 0x01
    with pytest.raises(FrameError, match="CRC-32") as err:
        decode_frame(bytes(data))
    assert err.value.reason is R.BAD_CRC


def _frame(**kw: object) -> LatentFrame:
    args: dict[str, object] = dict(modality_id=0, seq=0, timestamp_us=0, fingerprint=0,
                                   dtype="int8", latent=np.zeros(4, np.int8))
    args.update(kw)
    return LatentFrame(**args)  # type: ignore[arg-type]


@pytest.mark.parametrize(("kw", "reason", "match"), [
    (dict(seq=2**32), R.INVALID_ARGUMENT, "seq=4294967296 out of range"),
    (dict(seq=-1), R.INVALID_ARGUMENT, "seq"),
    (dict(timestamp_us=2**64), R.INVALID_ARGUMENT, "timestamp_us"),
    (dict(modality_id=256), R.INVALID_ARGUMENT, "modality_id"),
    (dict(fingerprint=1.5), R.INVALID_ARGUMENT, "fingerprint must be an integer"),
    (dict(seq=True), R.INVALID_ARGUMENT, "bool"),
    (dict(flags=0x20), R.BAD_FLAGS, "critical"),
    (dict(dtype="int64"), R.BAD_DTYPE, "unsupported latent dtype"),
    (dict(dtype=9), R.BAD_DTYPE, "unsupported"),
    (dict(latent=np.zeros(4, np.float32)), R.INVALID_ARGUMENT, "cast"),
    (dict(latent=[1, 2, 3]), R.INVALID_ARGUMENT, "does not match"),
    (dict(latent=np.zeros((2, 2), np.int8)), R.INVALID_ARGUMENT, "1-D"),
    (dict(latent=np.zeros(0, np.int8)), R.INVALID_ARGUMENT, "1..65535"),
    (dict(latent=np.zeros(65536, np.int8)), R.INVALID_ARGUMENT, "65536 elements"),
])
def test_encode_validation(kw: dict[str, object], reason: FrameErrorReason, match: str) -> None:
    with pytest.raises(FrameError, match=match) as err:
        encode_frame(_frame(**kw))
    assert err.value.reason is reason


def test_frame_is_immutable_and_normalised() -> None:
    src = np.arange(4, dtype=">i2")  # big-endian input is fine: values, not bytes, count
    frame = _frame(dtype=np.int16, latent=src, seq=np.uint32(7))
    assert frame.dtype is LatentDType.INT16 and frame.seq == 7 and type(frame.seq) is int
    src[0] = 99
    assert frame.latent[0] == 0 and not frame.latent.flags.writeable
    with pytest.raises(AttributeError):
        frame.seq = 3  # type: ignore[misc]
    assert encode_frame(frame)[HEADER_SIZE:HEADER_SIZE + 4] == b"\x00\x00\x01\x00"
    with pytest.raises(TypeError):
        encode_frame(b"not a frame")  # type: ignore[arg-type]


def test_fingerprint32() -> None:
    assert fingerprint32("C0FFEE42") == 0xC0FFEE42 == fingerprint32(0xC0FFEE42)
    assert fingerprint32(f"{12345:08x}") == 12345
    for bad in ("xyz", "abc", "deadbeef" * 8, "sha256:deadbeef", 2**32, -1):
        with pytest.raises(FrameError):
            fingerprint32(bad)  # type: ignore[arg-type]


# --- COBS -------------------------------------------------------------------------------------
COBS_VECTORS = [  # from the COBS literature (Cheshire & Baker; Wikipedia's table)
    (b"\x00", b"\x01\x01"),
    (b"\x00\x00", b"\x01\x01\x01"),
    (b"\x00\x11\x00", b"\x01\x02\x11\x01"),
    (b"\x11\x22\x00\x33", b"\x03\x11\x22\x02\x33"),
    (b"\x11\x22\x33\x44", b"\x05\x11\x22\x33\x44"),
    (b"\x11\x00\x00\x00", b"\x02\x11\x01\x01\x01"),
    (bytes(range(1, 255)), b"\xff" + bytes(range(1, 255))),
    (bytes(range(0, 255)), b"\x01\xff" + bytes(range(1, 255))),
    (bytes(range(1, 256)), b"\xff" + bytes(range(1, 255)) + b"\x02\xff"),
    (bytes(range(2, 256)) + b"\x00", b"\xff" + bytes(range(2, 256)) + b"\x01\x01"),
    (bytes(range(3, 256)) + b"\x00\x01", b"\xfe" + bytes(range(3, 256)) + b"\x02\x01"),
    (b"", b"\x01"),
]


@pytest.mark.parametrize(("raw", "encoded"), COBS_VECTORS)
def test_cobs_vectors(raw: bytes, encoded: bytes) -> None:
    assert cobs_encode(raw) == encoded
    assert cobs_decode(encoded) == raw


@FUZZ
@given(st.one_of(st.binary(max_size=800),
                 st.lists(st.sampled_from([b"\x00", b"\x01" * 253, b"\x02" * 254, b"\x03"]),
                          max_size=8).map(b"".join)))
def test_cobs_round_trip(raw: bytes) -> None:
    enc = cobs_encode(raw)
    assert b"\x00" not in enc and len(enc) <= cobs_max_encoded_size(len(raw))
    assert cobs_decode(enc) == raw


@FUZZ
@given(st.binary(max_size=600))
def test_cobs_decode_random(data: bytes) -> None:
    try:
        raw = cobs_decode(data)
    except CobsError as exc:
        assert exc.reason is R.BAD_COBS and isinstance(exc, FrameError)
    else:
        assert cobs_decode(cobs_encode(raw)) == raw and len(raw) < len(data)


@FUZZ
@given(st.lists(st.binary(max_size=300), max_size=6), st.lists(st.integers(1, 64), max_size=20))
def test_cobs_stream_any_chunking(packets: list[bytes], cuts: list[int]) -> None:
    wire = b"\x00\x00" + b"".join(serial_packet(p) for p in packets)
    dec = CobsStreamDecoder(max_packet=512)
    got: list[bytes] = []
    pos = 0
    for c in cuts + [len(wire)]:
        got += dec.feed(wire[pos:pos + c])
        pos += c
    assert got == packets and dec.dropped == 0


def test_cobs_stream_resyncs_after_garbage_and_overflow() -> None:
    good = encode_frame(golden_frames()["int8_96"])
    wire = b"\x05\x01\x00" + b"\x07" * 600 + b"\x00" + serial_packet(good)
    dec = CobsStreamDecoder(max_packet=300)
    assert dec.feed(wire) == [good] and dec.dropped == 2
    assert decode_frame(cobs_decode(serial_packet(good)[:-1])) == golden_frames()["int8_96"]


# --- generated files, import hygiene ----------------------------------------------------------
def test_generated_files_are_up_to_date() -> None:
    assert frame_c.write_header(check=True), "run: python -m crossl_edge.wire.frame_c"
    assert frame_doc.write_doc(check=True), "run: python -m crossl_edge.wire.frame_doc"


def test_runtime_modules_import_without_heavy_deps() -> None:
    code = ("import sys, crossl_edge.wire.frame, crossl_edge.wire.cobs; "
            "heavy = {'torch', 'tensorflow', 'onnx', 'onnxruntime', 'click'} & set(sys.modules); "
            "assert not heavy, heavy")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[1])


if __name__ == "__main__":  # one-off: write the golden files (v1 goldens must never change)
    for name, frame in golden_frames().items():
        path = GOLDEN / f"frame_v1_{name}.bin"
        if not path.exists():
            path.write_bytes(encode_frame(frame))
