"""FRAME_FORMAT.md's normative time base: the integer definition quoted from timebase.py itself,
the C splits that reproduce it without 128-bit arithmetic, and the conformance vectors."""

from __future__ import annotations

import inspect
import textwrap

from . import conformance_vectors as CV
from . import timebase as T

_DEFINITION = (T._tdiv, T._i64, T.to_phone, T.to_local, T.on_beacon, T.sample_index,
               T.sample_due_phone, T.sample_due_local, T.GridWindower.push)


_MAX_PCT = T.SYNC_MAX_RATE // T.SYNC_RATE_PER_PPB // 10**7


def _source() -> list[str]:
    """The functions of the definition, as they run (docstrings kept: they are the prose)."""
    parts = [textwrap.dedent(inspect.getsource(fn)).rstrip() for fn in _DEFINITION]
    return ["```python", "\n\n".join(parts), "```"]


def integer_rules() -> list[str]:
    """Markdown: the normative integer definition of every time-base rule."""
    return [
        "### Integer definition (normative)", "",
        "The time base is defined by the integer functions below, quoted from "
        "`crossl_edge/wire/timebase.py` (this section is generated from that source, so it is "
        "the code that runs). Read them as pseudocode over **unbounded integers**: `_tdiv` "
        "divides truncating toward zero (as C99 `/`), `//` is floor division, `& _U64` reduces "
        "modulo 2^64, `_i64` reads a u64 difference as two's complement int64, `max`/`min` "
        "saturate. Evaluation order is as written; every intermediate is exact. Inputs: clock "
        "values are u64, `n` an int64, `rate_mhz` a u32, `window`/`hop` u32; the state "
        "`SyncState` is the C `crossl_sync_t` (zeroed at boot), `rate` is in units of 1/"
        f"{T.SYNC_RATE_PER_PPB} ppb, and `on_beacon` keeps `|rate| <= SYNC_MAX_RATE`.", "",
        *_source(), "",
        "**Wrap and saturation, for any input.** Clock results (`to_phone`, `to_local`, due "
        "times) are the exact value modulo 2^64 (u64 clocks wrap; distances are read through "
        "`_i64`, so a gap of up to 2^63 us = 292,000 years is unambiguous). The measured slope "
        f"saturates at +-SYNC_RATE_ONE (+-100 %, which the +-{_MAX_PCT} % clamp then cuts, so "
        "the result is as if unsaturated), "
        "`sample_index` at 2^63 - 1; `rate_mhz` 0 has no grid (index -1, due time 0); a "
        "negative grid index, or a window or hop of 0, completes nothing and restarts the run.",
        "",
        "**The same numbers in C without 128-bit arithmetic** (`crossl_frame.h`; every identity "
        "below is exact because both parts of each sum have one sign):",
        f"- `to_phone`: `dl = q * {T.SYNC_RATE_ONE:_} + r`, `r = r1 * 100_000 + r0`, "
        "`r1 * rate = a1 * 320_000 + a0`; correction = `q * rate + a1 + (a0 * 100_000 + r0 * "
        "rate) / RATE_ONE`. Largest intermediate < 2^59.",
        "- `to_local`: `dp = q * den + r` with `den = RATE_ONE + rate`; result `q * RATE_ONE` "
        "(u64 wrap) + `r * RATE_ONE / den` by long division in base 1000 (intermediates < "
        "1000 den < 2^45).",
        "- the slope: `dp >= 2 dl` gives +RATE_ONE, `dp <= 0` gives -RATE_ONE (exactly where "
        "the saturation acts), otherwise `|dp - dl| < dl <= 1e9` and the same long division.",
        "- `sample_index`: for `d < 0` the index is 0 when `|d| <= 500_000_000 / rate_mhz`, else "
        "-1; for `d >= 0`, `d = q * 1e9 + r` and the index is `q * rate_mhz + (r * rate_mhz + "
        "5e8) / 1e9`, saturated before the product is formed.",
        "- `sample_due`: `n = q * rate_mhz + r`, phone time `origin + q * 1e9 + r * 1e9 / "
        "rate_mhz` (u64 wrap), then `to_local`.",
        "- u64 -> int64 is `x <= INT64_MAX ? x : -(int64_t)~x - 1` (no implementation-defined "
        "conversion). The fuzz target `tests/fuzz/fuzz_timebase_ops.c` checks all of them "
        "against an `__int128` evaluation of the definition.", "",
    ]


def conformance_section() -> list[str]:
    """Markdown: the conformance vectors shipped beside this file."""
    rows = [f"| `conformance/{name}.json` | {CV.load(name)['description']} |"
            for name in CV.VECTORS]
    return [
        "## Conformance vectors", "",
        "`crossl_edge/wire/conformance/*.json` (shipped in the wheel as "
        "`crossl_edge.wire.conformance`) are generated from the definition above by "
        "`python -m crossl_edge.wire.conformance_vectors` and pass in Python and in C "
        "(`tests/test_conformance.py`). An independent implementation passes when it "
        "reproduces every `expect`. Each file holds `steps`, run in order on one node:", "",
        "- `{\"op\": \"reset\"}`: a reboot (zeroed sync state and grid);",
        "- `{\"op\": \"beacon\", epoch, phone_us, origin_us, local_us, expect: {result, "
        "anchor_local, anchor_phone, rate, epoch, origin_us}}`: `on_beacon` (result 0 "
        "adjusted, 1 re-synchronised) and the state after it;",
        "- `to_phone` (`local_us`), `to_local` (`phone_us`), `sample_index` (`local_us`, "
        "`rate_mhz`), `sample_due` (`n`, `rate_mhz`: the local due time), `grid_push` (`n`, "
        "`window`, `hop`): `expect` is the call's result.", "",
        "| file | what it exercises |", "|---|---|", *rows, "",
    ]
