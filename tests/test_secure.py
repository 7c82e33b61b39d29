"""Sealed messages in Python: RFC 8439 vector, golden bytes, every rejection reason, the replay
guard, the node's beacon check, key files and `crossl-edge keys new`."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

pytest.importorskip("cryptography", reason="sealed frames need the cryptography package")

from crossl_edge.runtime.keys import read_key_file, write_key_file  # noqa: E402
from crossl_edge.wire import secure as S  # noqa: E402
from crossl_edge.wire.beacon import Beacon, decode_beacon, encode_beacon  # noqa: E402
from crossl_edge.wire.frame import decode_frame  # noqa: E402

GOLDEN = Path(__file__).parent / "golden"
KEY = S.NetworkKey(bytes(range(32)))
OTHER = S.NetworkKey(bytes(range(1, 33)))


def test_rfc8439_aead_vector() -> None:
    """RFC 8439 section 2.8.2: the primitive underneath is the standard one."""
    from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
    key = bytes(range(0x80, 0xA0))
    nonce = bytes.fromhex("070000004041424344454647")
    ad = bytes.fromhex("50515253c0c1c2c3c4c5c6c7")
    pt = (b"Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the "
          b"future, sunscreen would be it.")
    out = ChaCha20Poly1305(key).encrypt(nonce, pt, ad)
    assert out[-16:].hex() == "1ae10b594f09e26a7e902ecbd0600691"
    assert out[:16].hex() == "d31a8d34648e60db7b86afbc53ef7ec2"


def test_golden_sealed_frame_and_beacon() -> None:
    frame = (GOLDEN / "frame_v2_int8_96.bin").read_bytes()
    beacon = (GOLDEN / "beacon_v2.bin").read_bytes()
    sealed = S.seal(KEY, frame, sender=0x01020304, boot=7, counter=42)
    assert sealed == (GOLDEN / "secure_frame_v2_int8_96.bin").read_bytes()
    assert len(sealed) == len(frame) + S.SEAL_OVERHEAD == 168      # 132 -> 168 B, one BLE note
    assert sealed[20:52] == frame[:32]                   # header in clear (associated data)
    assert frame[32:] not in sealed                      # latent and CRC encrypted
    assert S.seal(KEY, beacon, sender=0x80000005, boot=9, counter=3) == \
        (GOLDEN / "secure_beacon_v2.bin").read_bytes()
    m = S.open_sealed(KEY, sealed)
    assert (m.sender, m.boot, m.counter, m.plain) == (0x01020304, 7, 42, frame)
    assert decode_frame(m.plain) == decode_frame(frame)


def test_every_rejection_has_its_reason() -> None:
    frame = (GOLDEN / "frame_v2_int8_96.bin").read_bytes()
    node = S.Sealer(KEY, sender=11, boot=1)
    op = S.Opener(KEY)
    first = node.seal(frame)
    assert op.open(first) is not None
    flipped = bytearray(node.seal(frame))
    flipped[60] ^= 0x01                                  # one bit of the ciphertext
    header_flip = bytearray(node.seal(frame))
    header_flip[20 + 8] ^= 0x80                          # one bit of the clear header (seq)
    assert op.open(bytes(flipped)) is None and op.open(bytes(header_flip)) is None
    assert op.open(S.seal(OTHER, frame, sender=11, boot=1, counter=99)) is None   # other net
    forged = bytearray(S.seal(OTHER, frame, sender=11, boot=1, counter=98))
    forged[4:8] = KEY.network_id.to_bytes(4, "little")   # right network id, wrong key
    assert op.open(bytes(forged)) is None
    assert op.open(first) is None                        # replay
    assert op.open(frame) is None                        # plain frame on a keyed phone
    assert op.open(first[:30]) is None and op.open(b"CS\x02" + first[3:]) is None   # malformed
    assert op.counters.to_json() == {
        "opened": 1, "rejected_total": 8,
        "rejected": {"bad_tag": 3, "malformed": 2, "other_network": 1, "replay": 1,
                     "unsealed": 1}}


def test_replay_guard_window_and_boots() -> None:
    g = S.ReplayGuard(window=8)
    assert all(g.accept(1, 5, c) for c in (0, 2, 1, 9))     # reordering within the window
    assert not g.accept(1, 5, 2) and not g.accept(1, 5, 1)  # seen
    assert not g.accept(1, 5, 1)                            # 9 - 1 >= 8: too old
    assert g.accept(1, 5, 4) and g.accept(1, 5, 100)        # 4 not seen yet; a jump forward
    assert not g.accept(1, 4, 101)                          # an earlier boot: replay
    assert g.accept(1, 6, 0)                                # a reboot resets the counter
    assert g.accept(2, 0, 0)                                # senders are independent


def test_phone_beacons_are_checked_by_the_node_twin() -> None:
    b = encode_beacon(Beacon(epoch=3, phone_time_us=5, origin_us=1, fingerprint=7))
    phone = S.Sealer(KEY, sender=S.PHONE_SENDER_BIT | 77, boot=1234)
    node = S.BeaconGuard(KEY)
    first, second = phone.seal(b), phone.seal(b)
    assert decode_beacon(node.open(second)) == decode_beacon(b)
    assert node.open(first) == S.SealReason.REPLAY             # older than the one taken
    assert node.open(second) == S.SealReason.REPLAY
    forged = S.Sealer(OTHER, sender=S.PHONE_SENDER_BIT | 77, boot=1234, counter=50).seal(b)
    assert node.open(forged) == S.SealReason.OTHER_NETWORK
    assert node.open(b) == S.SealReason.MALFORMED               # a plain beacon
    from_node = S.Sealer(KEY, sender=77, boot=1).seal(b)        # a node's sealing, reflected
    assert node.open(from_node) == S.SealReason.REPLAY
    restarted = S.Sealer(KEY, sender=S.PHONE_SENDER_BIT | 78, boot=1).seal(b)
    assert isinstance(node.open(restarted), bytes)              # a new phone session


def test_sealer_refuses_what_it_cannot_seal() -> None:
    with pytest.raises(S.SealError) as e:
        S.seal(KEY, b"XY\x01" + bytes(40), sender=1, boot=1, counter=0)
    assert e.value.reason == S.SealReason.INVALID_ARGUMENT
    s = S.Sealer(KEY, sender=1, boot=1, counter=S.MAX_COUNTER)
    s.seal((GOLDEN / "beacon_v2.bin").read_bytes())
    with pytest.raises(S.SealError) as e:
        s.seal((GOLDEN / "beacon_v2.bin").read_bytes())
    assert e.value.reason == S.SealReason.EXHAUSTED
    assert "key" not in repr(KEY).replace("NetworkKey", "") and KEY.key.hex() not in repr(KEY)


def test_key_file_mode_atomic_and_refusals(tmp_path: Path) -> None:
    from crossl_edge.errors import UsageError
    path = write_key_file(tmp_path / "k" / "net.key", KEY)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert read_key_file(path) == KEY
    with pytest.raises(UsageError, match="--force"):
        write_key_file(path, OTHER)
    assert read_key_file(write_key_file(path, OTHER, force=True)) == OTHER
    assert [p.name for p in path.parent.iterdir()] == ["net.key"]      # no temp files left
    bad = tmp_path / "bad.key"
    bad.write_text("crossl-net-key-v1:abcd\n")
    with pytest.raises(UsageError, match="not a crossl-edge key file"):
        read_key_file(bad)


def test_cli_keys_new(cli_run, tmp_path: Path) -> None:
    out = tmp_path / "net.key"
    code, stdout, _ = cli_run("keys", "new", "--out", out, "--json")
    assert code == 0
    doc = json.loads(stdout)
    key = read_key_file(out)
    assert doc["network_id"] == f"{key.network_id:08x}" and key.key.hex() not in stdout
    code, _, err = cli_run("keys", "new", "--out", out)
    assert code == 2 and "exists; pass --force" in err and "Traceback" not in err
    code, stdout, _ = cli_run("keys", "new", "--out", out, "--force")
    assert code == 0 and read_key_file(out) != key


def test_checked_in_c_header_is_current() -> None:
    from crossl_edge.wire.secure_c import HEADER_PATH, render_header
    assert HEADER_PATH.read_text() == render_header(), \
        "crossl_secure.h is stale: run python -m crossl_edge.wire.secure_c"
