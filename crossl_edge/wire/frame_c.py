"""Generate the C99 header-only latent frame codec (+ COBS) `c/crossl_frame.h` from frame.py.

Run `python -m crossl_edge.wire.frame_c` to rewrite it, `--check` to verify the checked-in copy.
"""

from __future__ import annotations

import sys
from pathlib import Path

from . import frame as F
from .digest import definition_digest
from .generated import generator_main, sync_file
from .sync_c import render_sync

HEADER_PATH = Path(__file__).resolve().parent / "c" / "crossl_frame.h"
_CTYPE = {"B": ("uint8_t", 8), "H": ("uint16_t", 16), "I": ("uint32_t", 32), "Q": ("uint64_t", 64)}

# The header's text with @KEY@ placeholders (C stays C: edited and reviewed as a .h file).
TEMPLATE_PATH = HEADER_PATH.with_name("crossl_frame.h.in")


def _crc_nibble_table() -> list[int]:
    table = []
    for c in range(16):
        for _ in range(4):
            c = (c >> 1) ^ (F.CRC32_POLY_REFLECTED if c & 1 else 0)
        table.append(c)
    return table


def _enum_lines(items: list[tuple[str, str]]) -> str:
    """C enumerators, one a line, each preceded by its comment."""
    return ",\n".join(f"    /* {doc} */\n    {decl}" for decl, doc in items)


def _field_code(*, encode: bool, extra: bool = False) -> str:
    lines = []
    fields = F.FIELDS_V2[len(F.FIELDS):] if extra else F.FIELDS
    ind, hv, hs = ("    ", "v2->", "v2.") if extra else ("", "h->", "h.")
    for f in fields:
        off = f"CROSSL_FRAME_OFF_{f.name.upper()}"
        if f.const is not None:
            if encode:
                n = len(f.const) if isinstance(f.const, bytes) else 1
                for k in range(n):
                    macro = "CROSSL_FRAME_" + (f"MAGIC{k}" if f.name == "magic" else "VERSION")
                    lines.append(f"    out[{off} + {k}u] = {macro};")
            continue
        ctype, bits = _CTYPE[f.fmt]
        if encode:
            if bits == 8:
                lines.append(f"{ind}    out[{off}] = {hv}{f.name};")
            else:
                lines.append(f"{ind}    crossl_frame_put_u{bits}(out + {off}, {hv}{f.name});")
        elif bits == 8:
            lines.append(f"{ind}    {hs}{f.name} = buf[{off}];")
        else:
            lines.append(f"{ind}    {hs}{f.name} = crossl_frame_get_u{bits}(buf + {off});")
    return "\n".join(lines)


def render_header() -> str:
    """The full text of crossl_frame.h for the current definition."""
    reasons = list(F.FrameErrorReason)
    table = _crc_nibble_table()
    subs = {
        "VERSION": str(F.FORMAT_VERSION),
        "DIGEST": definition_digest(),
        "MAGIC0": f"0x{F.MAGIC[0]:02X}", "MAGIC1": f"0x{F.MAGIC[1]:02X}",
        "MAGICC0": chr(F.MAGIC[0]), "MAGICC1": chr(F.MAGIC[1]),
        "HEADER": str(F.HEADER_SIZE), "TRAILER": str(F.TRAILER_SIZE),
        "OVERHEAD": str(F.OVERHEAD), "MAXLEN": str(F.MAX_LATENT_LENGTH),
        "CRIT": f"0x{F.FLAGS_CRITICAL_MASK:02X}", "ANC": f"0x{F.FLAGS_ANCILLARY_MASK:02X}",
        "POLY": f"{F.CRC32_POLY_REFLECTED:08X}",
        "VERSION2": str(F.FORMAT_VERSION_V2),
        "HEADER2": str(F.HEADER_SIZE_BY_VERSION[2]), "OVERHEAD2": str(F.OVERHEAD_BY_VERSION[2]),
        "OFFSETS": "\n".join(f"#define CROSSL_FRAME_OFF_{f.name.upper()} "
                             f"{F.OFFSETS_BY_VERSION[2][f.name]}u /* {f.size} B */"
                             for f in F.FIELDS_V2),
        "MEMBERS2": "\n".join(f"    {_CTYPE[f.fmt][0]} {f.name}; /* {f.doc} */"
                              for f in F.FIELDS_V2[len(F.FIELDS):]),
        "ENCODE_FIELDS2": _field_code(encode=True, extra=True),
        "DECODE_FIELDS2": _field_code(encode=False, extra=True),
        "SYNC": render_sync(),
        "DTYPES": _enum_lines([(f"CROSSL_FRAME_DTYPE_{d.name} = {d.value}", F.DTYPE_DOCS[d])
                               for d in F.LatentDType]),
        "DTYPE_CASES": "\n".join(f"    case CROSSL_FRAME_DTYPE_{d.name}: return {d.itemsize}u;"
                                 for d in F.LatentDType),
        "STATUS": _enum_lines([(f"CROSSL_FRAME_ERR_{r.name} = {r.value}", F.REASON_DOCS[r])
                               for r in reasons]),
        "STATUS_CASES": "\n".join(f'    case CROSSL_FRAME_ERR_{r.name}: return "{r.name}";'
                                  for r in reasons),
        "MEMBERS": "\n".join(f"    {_CTYPE[f.fmt][0]} {f.name}; /* {f.doc.replace('*/', '')} */"
                             for f in F.FIELDS if f.const is None),
        "CRC_TABLE": "\n".join("        " + ", ".join(f"0x{v:08X}u" for v in table[k:k + 4]) + ","
                                for k in range(0, 16, 4)),
        "ENCODE_FIELDS": _field_code(encode=True),
        "DECODE_FIELDS": _field_code(encode=False),
    }
    text = TEMPLATE_PATH.read_text()
    for key, value in subs.items():
        text = text.replace(f"@{key}@", value)
    assert "@" not in text, "unsubstituted placeholder"
    return text


def write_header(path: Path = HEADER_PATH, *, check: bool = False) -> bool:
    """Write (or with check=True only compare) the file; return True if it was up to date."""
    return sync_file(path, render_header(), check=check)


def main(argv: list[str] | None = None) -> int:
    return generator_main(argv, description=__doc__ or "", default=HEADER_PATH, write=write_header,
                          module="crossl_edge.wire.frame_c")


if __name__ == "__main__":
    sys.exit(main())
