"""Sealed frames, beacons and hellos: a ChaCha20-Poly1305 (RFC 8439) envelope around the plain ones.

The envelope's 20-byte header and the inner message's header are associated data; the rest (a
frame's latent and CRC) is encrypted. SECURE_FRAMES.md is the specification; crossl_secure.h the C.
"""

from __future__ import annotations

import enum
import hashlib
import struct
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Final

from .beacon import BEACON_MAGIC
from .fields import Field, field_offsets
from .frame import HEADER_SIZE_BY_VERSION, MAGIC
from .hello import HELLO_MAGIC

SEAL_MAGIC: Final[bytes] = b"CS"
SEAL_VERSION: Final[int] = 1
KEY_SIZE: Final[int] = 32
TAG_SIZE: Final[int] = 16
NONCE_SIZE: Final[int] = 12
PHONE_SENDER_BIT: Final[int] = 0x8000_0000   # senders with bit 31 set are phones, clear: nodes
MAX_COUNTER: Final[int] = 0xFFFF_FFFF        # a sender seals at most this many messages a boot
REPLAY_WINDOW: Final[int] = 64               # the phone accepts this far out of order
NETWORK_ID_LABEL: Final[bytes] = b"crossl-edge network id v1"

SEAL_FIELDS: Final[tuple[Field, ...]] = (
    Field("magic", "2s", 'ASCII "CS"; identifies a sealed (authenticated) message.',
          const=SEAL_MAGIC),
    Field("version", "B", "Envelope version.", const=SEAL_VERSION),
    Field("clear", "B", "Bytes of the inner message sent in clear (authenticated, not "
          "encrypted): its header."),
    Field("network", "I", "Network id: BLAKE2b-32 of the network key (keyed, with a label)."),
    Field("sender", "I", "Nonce part 1: node id (bit 31 clear) or phone session id (bit 31 set)."),
    Field("boot", "I", "Nonce part 2: the sender's boot counter (persisted; +1 every start)."),
    Field("counter", "I", "Nonce part 3: messages the sender sealed since that boot."),
)
SEAL_OFFSETS: Final[dict[str, int]] = field_offsets(SEAL_FIELDS)
SEAL_HEADER_SIZE: Final[int] = sum(f.size for f in SEAL_FIELDS)
SEAL_OVERHEAD: Final[int] = SEAL_HEADER_SIZE + TAG_SIZE
NONCE_OFFSET: Final[int] = SEAL_OFFSETS["sender"]   # the nonce is header bytes 8..19 as they are
_HEADER = struct.Struct("<" + "".join(f.fmt for f in SEAL_FIELDS))
assert SEAL_HEADER_SIZE == 20 == _HEADER.size and SEAL_OVERHEAD == 36
assert SEAL_HEADER_SIZE - NONCE_OFFSET == NONCE_SIZE


class SealReason(enum.IntEnum):
    """Why a sealed message was rejected; the value is the C status (CROSSL_SEAL_ERR_*)."""

    MALFORMED = -30       # too short, bad magic or version, clear length past the end
    OTHER_NETWORK = -31   # sealed with another network's key (network id differs)
    BAD_TAG = -32         # tag does not verify: wrong key, a flipped bit, a forgery
    REPLAY = -33          # nonce already seen (or from an earlier boot of that sender)
    UNSEALED = -34        # a plain message where a key requires sealed ones
    BUFFER_TOO_SMALL = -35  # (C) output buffer too small
    EXHAUSTED = -36       # the sender's counter is spent: reboot (new boot counter) to go on
    INVALID_ARGUMENT = -37  # not a message this envelope seals, or a NULL pointer (C)


REASON_DOCS: Final[dict[SealReason, str]] = {
    SealReason.MALFORMED: "too short, bad magic or version, or the clear length runs past the end",
    SealReason.OTHER_NETWORK: "the network id is not this network's (another key)",
    SealReason.BAD_TAG: "the Poly1305 tag does not verify: wrong key, corruption or forgery",
    SealReason.REPLAY: "this nonce was seen already, or comes from an earlier boot of the sender",
    SealReason.UNSEALED: "a plain frame, beacon or hello arrived where a key requires sealing",
    SealReason.BUFFER_TOO_SMALL: "(C) the output buffer is too small",
    SealReason.EXHAUSTED: "(sealers) the per-boot counter is spent; restart with a new boot",
    SealReason.INVALID_ARGUMENT: "(sealers) not a frame, beacon or hello; or a NULL pointer (C)",
}


class SealError(ValueError):
    """A message could not be sealed or opened; ``.reason`` says why."""

    def __init__(self, reason: SealReason, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class NetworkKey:
    """A network's 32-byte ChaCha20-Poly1305 key; its repr shows the network id, never the key."""

    key: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.key, (bytes, bytearray)) or len(self.key) != KEY_SIZE:
            raise SealError(SealReason.INVALID_ARGUMENT, f"a network key has {KEY_SIZE} bytes")
        object.__setattr__(self, "key", bytes(self.key))

    @property
    def network_id(self) -> int:
        return network_id(self.key)

    def __repr__(self) -> str:
        return f"NetworkKey(network_id=0x{self.network_id:08x})"


def network_id(key: bytes) -> int:
    """The u32 every sealed message of this key carries: keyed BLAKE2b, 4-byte digest, LE."""
    d = hashlib.blake2b(NETWORK_ID_LABEL, digest_size=4, key=bytes(key)).digest()
    return int.from_bytes(d, "little")


def clear_length(plain: bytes) -> int:
    """Bytes of ``plain`` sent in clear: a frame's header; all of a beacon or hello (nothing in
    them is secret, so they are authenticated only)."""
    head = bytes(plain[:2])
    if head == MAGIC and len(plain) > 2 and plain[2] in HEADER_SIZE_BY_VERSION:
        n = HEADER_SIZE_BY_VERSION[plain[2]]
        if len(plain) > n:
            return n
    elif head in (BEACON_MAGIC, HELLO_MAGIC) and 0 < len(plain) <= 0xFF:
        return len(plain)
    raise SealError(SealReason.INVALID_ARGUMENT, "only frames (v1, v2), beacons and hellos are "
                    "sealed")


def _aead(key: bytes):  # noqa: ANN202 - cryptography's class, imported lazily
    try:
        from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
    except ImportError as e:
        raise SealError(SealReason.INVALID_ARGUMENT, "sealed frames need the `cryptography` "
                        "package: pip install 'crossl-edge[secure]'") from e
    return ChaCha20Poly1305(key)


def seal(key: NetworkKey, plain: bytes, *, sender: int, boot: int, counter: int,
         aead: object | None = None) -> bytes:
    """The sealed bytes of ``plain``: header || clear part || ciphertext || tag."""
    for name, v in (("sender", sender), ("boot", boot), ("counter", counter)):
        if not 0 <= v <= 0xFFFF_FFFF:
            raise SealError(SealReason.INVALID_ARGUMENT, f"{name}={v} does not fit a u32")
    plain = bytes(plain)
    clear = clear_length(plain)
    head = _HEADER.pack(SEAL_MAGIC, SEAL_VERSION, clear, key.network_id, sender, boot, counter)
    ad = head + plain[:clear]
    cipher: Any = aead or _aead(key.key)  # an AEAD object (cryptography's, duck-typed)
    ct = cipher.encrypt(head[NONCE_OFFSET:], plain[clear:], ad)
    return ad + ct


@dataclass(frozen=True)
class Opened:
    """A verified message: its sender, boot and counter, and the plain inner bytes."""

    sender: int
    boot: int
    counter: int
    plain: bytes


def is_sealed(buf: bytes | bytearray | memoryview) -> bool:
    """True when ``buf`` starts with the envelope's magic (open it to know whether it is valid)."""
    return bytes(buf[:2]) == SEAL_MAGIC


def open_sealed(key: NetworkKey, buf: bytes | bytearray | memoryview, *,
                aead: object | None = None) -> Opened:
    """Verify and decrypt one sealed message (no replay check); raise SealError with a reason.

    Checks, in order: size >= 36, magic, version, clear length, network id, tag."""
    data = bytes(buf)
    if len(data) < SEAL_OVERHEAD or data[:2] != SEAL_MAGIC:
        raise SealError(SealReason.MALFORMED, "not a sealed message (too short or bad magic)")
    _, version, clear, net, sender, boot, counter = _HEADER.unpack_from(data)
    if version != SEAL_VERSION:
        raise SealError(SealReason.MALFORMED, f"envelope version {version}; this code opens "
                        f"{SEAL_VERSION}")
    if SEAL_HEADER_SIZE + clear > len(data) - TAG_SIZE:
        raise SealError(SealReason.MALFORMED, f"clear length {clear} runs past the end")
    if net != key.network_id:
        raise SealError(SealReason.OTHER_NETWORK, f"network 0x{net:08x} is not this one "
                        f"(0x{key.network_id:08x})")
    cipher: Any = aead or _aead(key.key)  # an AEAD object (cryptography's, duck-typed)
    from cryptography.exceptions import InvalidTag
    ad_end = SEAL_HEADER_SIZE + clear
    try:
        body = cipher.decrypt(
            data[NONCE_OFFSET:SEAL_HEADER_SIZE], data[ad_end:], data[:ad_end])
    except InvalidTag:
        raise SealError(SealReason.BAD_TAG, "the tag does not verify (wrong key, corrupted or "
                        "forged)") from None
    return Opened(sender, boot, counter, data[SEAL_HEADER_SIZE:ad_end] + body)


class Sealer:
    """Seals one sender's messages with fresh nonces: (sender, boot, counter), counter += 1.

    Nonces never repeat while ``(sender, boot)`` is new for every run of the sender: a node
    takes a persisted boot counter, a phone a random 31-bit session id and a random boot."""

    def __init__(self, key: NetworkKey, *, sender: int, boot: int, counter: int = 0) -> None:
        self.key, self.sender, self.boot, self.counter = key, int(sender), int(boot), int(counter)
        self._aead = _aead(key.key)

    def seal(self, plain: bytes) -> bytes:
        if self.counter > MAX_COUNTER:
            raise SealError(SealReason.EXHAUSTED, "the per-boot counter is spent; restart")
        out = seal(self.key, plain, sender=self.sender, boot=self.boot, counter=self.counter,
                   aead=self._aead)
        self.counter += 1
        return out


class ReplayGuard:
    """The phone's replay check per sender: a newer boot resets it; within a boot a counter is
    accepted once, up to REPLAY_WINDOW behind the highest seen (UDP may reorder)."""

    def __init__(self, *, window: int = REPLAY_WINDOW, max_senders: int = 1024) -> None:
        self.window, self.max_senders = int(window), int(max_senders)
        self._state: OrderedDict[int, tuple[int, int, int]] = OrderedDict()  # boot, top, bits

    def accept(self, sender: int, boot: int, counter: int) -> bool:
        """True (and remembered) for a fresh (boot, counter) of ``sender``; False for a replay."""
        last = self._state.get(sender)
        if last is None or boot > last[0]:
            state = (boot, counter, 1)
        elif boot < last[0]:
            return False
        else:
            _, top, bits = last
            if counter > top:
                shift = counter - top
                bits = ((bits << shift) | 1) & ((1 << self.window) - 1) if shift < self.window \
                    else 1
                state = (boot, counter, bits)
            elif top - counter >= self.window or bits >> (top - counter) & 1:
                return False
            else:
                state = (boot, top, bits | 1 << (top - counter))
        self._state[sender] = state
        self._state.move_to_end(sender)
        while len(self._state) > self.max_senders:   # only senders that passed the tag get here
            self._state.popitem(last=False)
        return True


@dataclass
class SecureCounters:
    """What the phone's opener did: messages opened, and every rejection by reason."""

    opened: int = 0
    rejected: dict[str, int] = field(default_factory=dict)   # lower-case SealReason names

    def reject(self, reason: SealReason) -> None:
        name = reason.name.lower()
        self.rejected[name] = self.rejected.get(name, 0) + 1

    def to_json(self) -> dict[str, object]:
        return {"opened": self.opened, "rejected": dict(sorted(self.rejected.items())),
                "rejected_total": sum(self.rejected.values())}


class Opener:
    """The phone side: open sealed messages of one network, reject replays and plain messages,
    count every rejection (``counters``)."""

    def __init__(self, key: NetworkKey, *, guard: ReplayGuard | None = None) -> None:
        self.key = key
        self.guard = guard or ReplayGuard()
        self.counters = SecureCounters()
        self._aead = _aead(key.key)

    def open(self, buf: bytes | bytearray | memoryview) -> Opened | None:
        """The opened message, or None (and the reason counted) when it is not acceptable."""
        if not is_sealed(buf):
            self.counters.reject(SealReason.UNSEALED)
            return None
        try:
            m = open_sealed(self.key, buf, aead=self._aead)
        except SealError as e:
            self.counters.reject(e.reason)
            return None
        if m.sender & PHONE_SENDER_BIT or not self.guard.accept(m.sender, m.boot, m.counter):
            self.counters.reject(SealReason.REPLAY)   # a phone's own beacon reflected back counts
            return None                               # as a replay too
        self.counters.opened += 1
        return m


class BeaconGuard:
    """The node side (twin of crossl_seal_open_beacon in C): accept a sealed beacon from a phone
    session once; a new session (sender or boot) is accepted, within one only a higher counter."""

    def __init__(self, key: NetworkKey) -> None:
        self.key = key
        self.last: tuple[int, int, int] | None = None

    def open(self, buf: bytes) -> bytes | SealReason:
        try:
            m = open_sealed(self.key, buf)
        except SealError as e:
            return e.reason
        if not m.sender & PHONE_SENDER_BIT or (
                self.last is not None and self.last[:2] == (m.sender, m.boot)
                and m.counter <= self.last[2]):
            return SealReason.REPLAY
        self.last = (m.sender, m.boot, m.counter)
        return m.plain
