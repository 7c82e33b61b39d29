"""The node side of sealed frames in a firmware folder: crossl_secure.h and the generated key file
(common/crossl_network_key.c: key, network id, a fresh random node id per modality).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from crossl_edge.wire.secure import PHONE_SENDER_BIT, NetworkKey
from crossl_edge.wire.secure_c import HEADER_PATH

KEY_C = "crossl_network_key.c"
KEY_H = "crossl_network_key.h"


def node_ids(names: list[str]) -> dict[str, int]:
    """A random 31-bit node id per modality (bit 31 clear: nodes; set: phones), all distinct.

    New at every generation, so a node flashed again never repeats a nonce of its earlier image
    even when its boot counter starts over."""
    ids: dict[str, int] = {}
    while len(set(ids.values())) != len(names) or 0 in ids.values():
        ids = {n: int.from_bytes(os.urandom(4), "little") & ~PHONE_SENDER_BIT for n in names}
    return ids


def write_secure_common(common: Path, key: NetworkKey, names: list[str]) -> dict[str, int]:
    """Copy crossl_secure.h and write the key files into ``common``; return the node ids.

    The key goes only into crossl_network_key.c (mode 0600), never into reports or logs."""
    shutil.copyfile(HEADER_PATH, common / HEADER_PATH.name)
    ids = node_ids(names)
    macros = "\n".join(f"#define CROSSL_{n.upper()}_NODE_ID 0x{i:08X}u" for n, i in ids.items())
    (common / KEY_H).write_text(f"""/* This firmware's network (crossl-edge firmware --key-file).
 * Its key is in crossl_network_key.c: keep that file secret, never commit it. */
#ifndef CROSSL_NETWORK_KEY_H
#define CROSSL_NETWORK_KEY_H

#include <stdint.h>

#define CROSSL_NETWORK_ID 0x{key.network_id:08X}u
/* Node ids (the sender part of each node's nonces), random per generated firmware. */
{macros}

extern const uint8_t crossl_network_key[32];

#endif /* CROSSL_NETWORK_KEY_H */
""")
    body = ",\n".join("    " + ", ".join(f"0x{b:02x}" for b in key.key[k:k + 8])
                      for k in range(0, len(key.key), 8))
    path = common / KEY_C
    path.write_text(f"""/* SECRET: the network key (crossl-edge firmware --key-file). */
#include "crossl_network_key.h"

const uint8_t crossl_network_key[32] = {{
{body}
}};
""")
    path.chmod(0o600)
    return ids
