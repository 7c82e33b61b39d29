"""`crossl-edge firmware`: C sources, op resolver, measured arena, resource report per encoder."""

from __future__ import annotations

import click

from crossl_edge.cli.common import echo_json
from crossl_edge.errors import CheckFailed, UsageError


@click.command("firmware")
@click.argument("bundle", type=click.Path(exists=True, file_okay=False))
@click.option("--out", required=True, type=click.Path(file_okay=False),
              help="Directory for the generated sources (replaced atomically).")
@click.option("--flash-budget", default="256KiB", show_default=True, metavar="SIZE",
              help="Flash each node may use (model + code); K/KB/KiB = 1024.")
@click.option("--ram-budget", default="64KiB", show_default=True, metavar="SIZE",
              help="RAM each node may use (arena + node state + stack).")
@click.option("--build", is_flag=True,
              help="Also compile TFLite Micro and the node images (host, Cortex-M4F), run every "
                   "sample window on them (QEMU for the M4), check the frames against LiteRT and "
                   "report measured figures.")
@click.option("--kernels", default="reference,cmsis-nn", show_default=True, metavar="LIST",
              help="With --build: Cortex-M4 kernel sets, comma-separated (reference, cmsis-nn).")
@click.option("--tflm", type=click.Path(exists=True), default=None, metavar="PATH",
              help="With --build: TFLite Micro source folder or tarball (default: "
                   "$CROSSL_TFLM_SRC, then shared/third_party/tflite-micro-*.tar.gz above the "
                   "checkout; scripts/fetch-tflm.sh fetches one).")
@click.option("--jobs", default=2, show_default=True, type=click.IntRange(1, 64),
              help="With --build: parallel compile jobs.")
@click.option("--mcu", default=None, metavar="NAME|FILE",
              help="Energy estimate for this MCU profile only (shipped: nrf52840, stm32l476, "
                   "esp32c3; or a JSON file like firmware_bridge/profiles/mcu-*.json). "
                   "Default: every shipped MCU with its own radio.")
@click.option("--radio", default=None, metavar="NAME|FILE",
              help="Radio profile for the energy estimate (shipped: nrf52840-ble, "
                   "bluenrg-ms-ble, esp32c3-wifi; or a JSON file). Default: the MCU's own.")
@click.option("--hop", default=None, type=int, metavar="SAMPLES",
              help="New samples between two windows (window - overlap) for the energy "
                   "estimate. Default: the window (non-overlapping, the node's default HOP).")
@click.option("--key-file", type=click.Path(dir_okay=False), default=None,
              help="Network key (crossl-edge keys new): the nodes seal their frames and verify "
                   "beacons; the key goes only into OUT/common/crossl_network_key.c.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def firmware_cmd(bundle: str, out: str, flash_budget: str, ram_budget: str, build: bool,
                 kernels: str, tflm: str | None, jobs: int, mcu: str | None, radio: str | None,
                 hop: int | None, as_json: bool, key_file: str | None = None) -> None:
    """Generate microcontroller sources for every encoder of BUNDLE.

    Per modality, OUT/<name>/ gets the int8 model as a C array, its input contract, a TFLite
    Micro op resolver with exactly the model's ops, the tensor arena measured on the TFLite
    Micro interpreter (plus a stated margin), and a node loop that packs latent frames.
    OUT/crossl.mk builds it all (TFLite Micro with only the model's kernels). OUT/resources.json
    holds flash, RAM and latency estimates, or with --build the figures measured on the real
    TFLite Micro (link map, QEMU instruction counts; libraries cached in ~/.cache/crossl-edge).
    Both print the energy per window (an estimate) of encoding + sending the latent frame vs
    streaming the raw samples, per MCU/radio profile, with CPU duty cycle and battery life.
    The files are written even when a budget is exceeded; the exit code is then 1.

    \b
    Example:
      crossl-edge firmware demo-out/bundle --out fw --flash-budget 512KiB --ram-budget 128KiB
      crossl-edge firmware demo-out/bundle --out fw --build --kernels cmsis-nn
      crossl-edge firmware demo-out/bundle --out fw --mcu nrf52840 --hop 50
      crossl-edge firmware demo-out/bundle --out fw --key-file net.key
    """
    from crossl_edge.firmware_bridge.energy import node_profiles
    from crossl_edge.firmware_bridge.firmware import generate_firmware
    from crossl_edge.firmware_bridge.measure import BuildOptions, check_kernels
    from crossl_edge.firmware_bridge.resources import parse_size
    from crossl_edge.outputs import prepare_output, write_marker

    flash, ram = parse_size(flash_budget), parse_size(ram_budget)
    opts = BuildOptions(kernels=check_kernels(kernels.split(",")), tflm=tflm, jobs=jobs) \
        if build else None
    if hop is not None and hop < 1:
        raise UsageError(f"--hop must be at least 1 sample, not {hop}.")
    profiles = node_profiles(mcu, radio)
    key = None
    if key_file:
        from crossl_edge.runtime.keys import read_key_file
        if build:
            raise UsageError("--build measures the plain node image; build without --key-file "
                             "(benchmarks/secure_frames.py measures the cost of sealing).")
        key = read_key_file(key_file)
    prepare_output(out, kind="firmware", inputs=(bundle,))
    report = generate_firmware(bundle, out, flash_budget=flash, ram_budget=ram, build=opts,
                               profiles=profiles, hop=hop, key=key)
    write_marker(out, "firmware")
    if as_json:
        echo_json(report.to_json())
    else:
        click.echo(report.table())
        click.echo(f"wrote {out}/ ({', '.join(report.modalities)}, common, resources.json)")
    if report.over_budget:
        more = f" (and {len(report.over_budget) - 1} more)" if len(report.over_budget) > 1 else ""
        raise CheckFailed(f"{report.over_budget[0]}{more}; files were written to {out}, shrink "
                          "the encoder or raise --flash-budget/--ram-budget.")
