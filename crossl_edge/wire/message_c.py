"""The C99 codecs of the fixed-size control messages for crossl_frame.h: beacon and hello.

Rendered from the field tables of beacon.py and hello.py; sync_c.py places the text.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import beacon as B
from . import hello as H
from .fields import Field

_CTYPE = {"B": ("uint8_t", 8), "H": ("uint16_t", 16), "I": ("uint32_t", 32),
          "Q": ("uint64_t", 64)}

_TEMPLATE = r"""#define CROSSL_$M_MAGIC0 0x$MAGIC0u /* '$MAGICC0' */
#define CROSSL_$M_MAGIC1 0x$MAGIC1u /* '$MAGICC1' */
#define CROSSL_$M_VERSION $VERSIONu
#define CROSSL_$M_SIZE $SIZEu /* header + CRC */
$OFFSETS

/* $WHAT (FRAME_FORMAT.md, "$SECTION"). */
typedef struct crossl_$p {
$MEMBERS
} crossl_$p_t;

/* Encode into out[0..cap): CROSSL_$M_SIZE or a negative status. */
static inline int32_t crossl_$p_encode(const crossl_$p_t *m, uint8_t *out, size_t cap)
{
    if (m == NULL || out == NULL) return CROSSL_FRAME_ERR_INVALID_ARGUMENT;
    if ((m->flags & 0xF0u) != 0u) return CROSSL_FRAME_ERR_BAD_FLAGS;
    if (cap < CROSSL_$M_SIZE) return CROSSL_FRAME_ERR_BUFFER_TOO_SMALL;
    out[0] = CROSSL_$M_MAGIC0;
    out[1] = CROSSL_$M_MAGIC1;
    out[CROSSL_$M_OFF_VERSION] = CROSSL_$M_VERSION;
$ENCODE
    crossl_frame_put_u32(out + CROSSL_$M_SIZE - 4u,
                         crossl_frame_crc32_update(0u, out, CROSSL_$M_SIZE - 4u));
    return (int32_t)CROSSL_$M_SIZE;
}

/* Decode exactly one: too short, magic, version, too long (a later version may be longer),
 * CRC, flags (in this order); *m is written only on CROSSL_FRAME_OK. */
static inline crossl_frame_status_t crossl_$p_decode(const uint8_t *buf, size_t len,
                                                    crossl_$p_t *m)
{
    if (buf == NULL || m == NULL) return CROSSL_FRAME_ERR_INVALID_ARGUMENT;
    if (len < CROSSL_$M_SIZE) return CROSSL_FRAME_ERR_TRUNCATED;
    if (buf[0] != CROSSL_$M_MAGIC0 || buf[1] != CROSSL_$M_MAGIC1) {
        return CROSSL_FRAME_ERR_BAD_MAGIC;
    }
    if (buf[CROSSL_$M_OFF_VERSION] != CROSSL_$M_VERSION) return CROSSL_FRAME_ERR_UNKNOWN_VERSION;
    if (len > CROSSL_$M_SIZE) return CROSSL_FRAME_ERR_LENGTH_MISMATCH;
    if (crossl_frame_crc32_update(0u, buf, CROSSL_$M_SIZE - 4u) !=
        crossl_frame_get_u32(buf + CROSSL_$M_SIZE - 4u)) return CROSSL_FRAME_ERR_BAD_CRC;
    if ((buf[CROSSL_$M_OFF_FLAGS] & 0xF0u) != 0u) return CROSSL_FRAME_ERR_BAD_FLAGS;
$DECODE
    return CROSSL_FRAME_OK;
}
"""


@dataclass(frozen=True)
class Message:
    """One fixed-size control message: C prefix, magic, version, fields, size."""

    prefix: str
    what: str
    section: str
    magic: bytes
    version: int
    fields: tuple[Field, ...]
    offsets: dict[str, int]
    size: int


MESSAGES = (
    Message("beacon", "A decoded sync beacon (the phone sends it)", "Sync beacon", B.BEACON_MAGIC,
            B.BEACON_VERSION, B.BEACON_FIELDS, B.BEACON_OFFSETS, B.BEACON_SIZE),
    Message("hello", "A node hello (a node sends it until its first beacon)", "Bootstrap",
            H.HELLO_MAGIC, H.HELLO_VERSION, H.HELLO_FIELDS, H.HELLO_OFFSETS, H.HELLO_SIZE),
)


def _fields(msg: Message, *, encode: bool) -> str:
    lines = []
    for f in msg.fields:
        if f.const is not None:
            continue
        off, bits = f"CROSSL_{msg.prefix.upper()}_OFF_{f.name.upper()}", _CTYPE[f.fmt][1]
        if encode:
            lines.append(f"    out[{off}] = m->{f.name};" if bits == 8 else
                         f"    crossl_frame_put_u{bits}(out + {off}, m->{f.name});")
        else:
            lines.append(f"    m->{f.name} = buf[{off}];" if bits == 8 else
                         f"    m->{f.name} = crossl_frame_get_u{bits}(buf + {off});")
    return "\n".join(lines)


def render_message(msg: Message) -> str:
    """Macros, struct, encoder and decoder of one message."""
    m = msg.prefix.upper()
    subs = {
        "MAGIC0": f"{msg.magic[0]:02X}", "MAGIC1": f"{msg.magic[1]:02X}",
        "MAGICC0": chr(msg.magic[0]), "MAGICC1": chr(msg.magic[1]),
        "VERSION": str(msg.version), "SIZE": str(msg.size), "WHAT": msg.what,
        "SECTION": msg.section, "M": m, "p": msg.prefix,
        "OFFSETS": "\n".join(f"#define CROSSL_{m}_OFF_{f.name.upper()} {msg.offsets[f.name]}u"
                             for f in msg.fields),
        "MEMBERS": "\n".join(f"    {_CTYPE[f.fmt][0]} {f.name}; /* {f.doc} */"
                             for f in msg.fields if f.const is None),
        "ENCODE": _fields(msg, encode=True), "DECODE": _fields(msg, encode=False),
    }
    text = _TEMPLATE
    for key in sorted(subs, key=len, reverse=True):   # $MAGIC0 before $M, longest first
        text = text.replace(f"${key}", subs[key])
    assert "$" not in text, "unsubstituted placeholder"
    return text


def render_messages() -> str:
    """Every control message's C codec, plus the hello interval."""
    return (f"#define CROSSL_HELLO_INTERVAL_US {H.HELLO_INTERVAL_US}u "
            "/* a node repeats its hello this often until its first beacon */\n" +
            "\n".join(render_message(m) for m in MESSAGES))
