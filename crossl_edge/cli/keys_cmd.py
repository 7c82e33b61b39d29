"""`crossl-edge keys`: make the per-network key that seals frames and beacons (mode 0600)."""

from __future__ import annotations

import click

from crossl_edge.cli.common import echo_json


@click.group("keys")
def keys_cmd() -> None:
    """Network keys for sealed (authenticated, encrypted) frames and beacons.

    \b
    Example:
      crossl-edge keys new --out net.key
      crossl-edge firmware bundle/ --out fw --key-file net.key
      crossl-edge serve bundle/ --listen udp://0.0.0.0:9000 --key-file net.key
    """


@keys_cmd.command("new")
@click.option("--out", required=True, type=click.Path(dir_okay=False),
              help="Key file to write (mode 0600).")
@click.option("--force", is_flag=True, help="Replace an existing key file.")
@click.option("--json", "as_json", is_flag=True, help="Print the network id as JSON.")
def keys_new(out: str, force: bool, as_json: bool) -> None:
    """Write a new random network key to OUT (refuses to overwrite without --force).

    Prints the network id (not the key): every node and the phone of one network share the
    key; a frame sealed with another key is counted as "other_network".

    \b
    Example:
      crossl-edge keys new --out net.key
    """
    from crossl_edge.runtime.keys import new_key, write_key_file

    key = new_key()
    path = write_key_file(out, key, force=force)
    if as_json:
        echo_json({"key_file": str(path), "network_id": f"{key.network_id:08x}", "mode": "0600"})
    else:
        click.echo(f"wrote {path} (mode 0600): network id {key.network_id:08x}; keep it secret")
