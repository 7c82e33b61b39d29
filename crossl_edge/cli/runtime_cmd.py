"""`crossl-edge serve` and `crossl-edge simulate`: the phone runtime from the command line."""

from __future__ import annotations

import signal
import sys
import threading

import click

from crossl_edge.cli.common import echo_json
from crossl_edge.errors import UsageError
from crossl_edge.tables import ms as _ms


@click.command("serve")
@click.argument("bundle", type=click.Path(exists=True, file_okay=False))
@click.option("--listen", metavar="udp://HOST:PORT", help="Receive frames as UDP datagrams.")
@click.option(
    "--serial",
    "serial_dev",
    metavar="DEVICE",
    help="Read COBS frames from a serial device (or a pyserial URL).",
)
@click.option("--baud", type=int, default=115200, show_default=True, help="Serial baud rate.")
@click.option(
    "--replay",
    type=click.Path(exists=True, dir_okay=False),
    help="Replay a capture file written with --capture.",
)
@click.option("--realtime", is_flag=True, help="Pace a --replay at its recorded timing.")
@click.option(
    "--deadline",
    type=float,
    default=0.5,
    show_default=True,
    help="Seconds after a window's first frame before it is classified anyway.",
)
@click.option(
    "--max-open",
    type=int,
    default=64,
    show_default=True,
    help="Cap on windows waiting for frames (oldest is evicted).",
)
@click.option(
    "--backend",
    type=click.Choice(["tflite", "onnx"]),
    default=None,
    help="Phone model runtime (default: TFLite if installed, else ONNX).",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False),
    help="Write predictions (JSON lines) here instead of stdout.",
)
@click.option(
    "--capture",
    type=click.Path(dir_okay=False),
    help="Record every arriving frame to this capture file (replay it later with --replay).",
)
@click.option("--beacon", type=float, default=1.0, show_default=True,
              help="Seconds between sync beacons to the nodes (time base, frame v2); 0: none.")
@click.option("--duration", type=float, help="Stop after this many seconds.")
@click.option("--max-frames", type=int, help="Stop after this many frames.")
@click.option("--key-file", type=click.Path(dir_okay=False), default=None,
              help="Network key (crossl-edge keys new): accept only frames sealed with it, seal "
                   "the beacons, and send them only to nodes whose frames verified.")
@click.option(
    "--json", "as_json", is_flag=True, help="Print the shutdown summary as JSON on stderr."
)
def serve_cmd(
    bundle: str,
    listen: str | None,
    serial_dev: str | None,
    baud: int,
    replay: str | None,
    realtime: bool,
    deadline: float,
    max_open: int,
    backend: str | None,
    out: str | None,
    capture: str | None,
    duration: float | None,
    max_frames: int | None,
    as_json: bool,
    beacon: float = 1.0,
    key_file: str | None = None,
) -> None:
    """Fuse latent frames from sensor nodes and print one JSON prediction per window.

    \b
    Example:
      crossl-edge serve bundle/ --listen udp://0.0.0.0:9000 --deadline 0.3
      crossl-edge serve bundle/ --serial /dev/ttyUSB0 --baud 921600 --out preds.jsonl
      crossl-edge serve bundle/ --listen udp://0.0.0.0:9000 --key-file net.key
    Stop with Ctrl-C; counters and latency percentiles are printed on stderr.
    """
    from crossl_edge.cli.common import check_deadline
    from crossl_edge.outputs import prepare_file
    from crossl_edge.runtime.serve import serve
    from crossl_edge.runtime.transports import ReplaySource, SerialReceiver, open_source

    if sum(x is not None for x in (listen, serial_dev, replay)) != 1:
        raise UsageError(
            "pass exactly one of --listen udp://HOST:PORT, --serial DEVICE or --replay FILE."
        )
    check_deadline(deadline)
    from crossl_edge.runtime.keys import read_key_file
    key = read_key_file(key_file) if key_file else None
    for flag, path in (("--out", out), ("--capture", capture)):
        if path:
            prepare_file(path, inputs=(bundle, replay), flag=flag)
    if listen:
        source = open_source(listen if "://" in listen else f"udp://{listen}")
    elif serial_dev:
        source = SerialReceiver(serial_dev, baud)
    else:
        if replay is None:  # only with an empty --listen or --serial: what Path(None) raises
            raise TypeError("expected str, bytes or os.PathLike object, not NoneType")
        source = ReplaySource(replay, realtime=realtime)
    stop = threading.Event()
    previous = {s: signal.signal(s, lambda *_: stop.set()) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        stats = serve(
            bundle,
            source=source,
            deadline_s=deadline,
            max_open_windows=max_open,
            backend=backend,
            out=out or sys.stdout,
            capture=capture,
            duration_s=duration,
            max_frames=max_frames,
            stop_event=stop,
            beacon_interval_s=beacon or None,
            key=key,
        )
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
        source.close()
    if as_json:
        click.echo(__import__("json").dumps(stats.to_json(), indent=2, sort_keys=True), err=True)
        return
    c, lat = stats.counters, stats.latency_s
    errors = ", ".join(f"{k} {v}" for k, v in sorted(c["decode_errors"].items())) or "none"
    click.echo(
        f"stopped ({stats.stopped_by}) after {stats.duration_s:.1f} s: {stats.frames} "
        f"frames ({stats.frames_per_s:.0f}/s), {stats.predictions} predictions, "
        f"{stats.empty_windows} empty windows",
        err=True,
    )
    click.echo(
        f"  duplicates {c['duplicates']}, late {c['late']}, unknown modality "
        f"{c['unknown_modality']}, fingerprint mismatch {c['fingerprint_mismatch']}, "
        f"bad latent {c['bad_latent']}, evicted {c['evicted']}; decode errors: {errors}",
        err=True,
    )
    click.echo(
        f"  latency ms: p50 {_ms(lat['p50'])}  p90 {_ms(lat['p90'])}  p99 {_ms(lat['p99'])}",
        err=True,
    )
    if stats.security:
        sec = stats.security
        why = ", ".join(f"{k} {v}" for k, v in sec["rejected"].items()) or "none"
        click.echo(f"  sealed: {sec['opened']} verified, {sec['rejected_total']} rejected "
                   f"({why})", err=True)
    if stats.lost_writes:
        lost = ", ".join(f"{v} {k}" for k, v in sorted(stats.lost_writes.items()))
        click.echo(f"  not written (disk full or failing): {lost}", err=True)


def _floats(text: str, what: str) -> tuple[float, ...]:
    try:
        return tuple(float(x) for x in text.split(",") if x.strip())
    except ValueError as e:
        raise UsageError(
            f"cannot read {what} {text!r}; write comma-separated numbers like 0,0.1,0.3."
        ) from e


def _outage(text: str | None) -> dict[str, tuple[float, float]]:
    if not text:
        return {}
    out = {}
    try:
        for part in text.split(","):
            name, rng = part.split(":")
            a, b = rng.split("-")
            out[name.strip()] = (float(a), float(b))
    except ValueError as e:
        raise UsageError(
            f"cannot read --outage {text!r}; write it as gyro:0.2-0.6 (fractions of the run)."
        ) from e
    return out


@click.command("simulate")
@click.argument("bundle", type=click.Path(exists=True, file_okay=False))
@click.option(
    "--data",
    type=click.Path(exists=True, dir_okay=False),
    help=".npz of raw windows (x_<modality> (N, C, T), y); default: the run's test split.",
)
@click.option(
    "--loss", default="0,0.1,0.3,0.5", show_default=True, help="Frame loss rates to sweep."
)
@click.option("--outage", help="Outages as fractions of the run, e.g. gyro:0.2-0.6; a device's "
              "name (export --devices) takes all its modalities out together.")
@click.option("--device-loss", default=None, metavar="RATES",
              help="Device loss rates to sweep, e.g. 0.1,0.3: each window, each device loses "
              "all its modalities' frames together with this probability; with a device map, "
              "each device fully out is also run.")
@click.option("--jitter", type=float, default=0.0, show_default=True, help="Max jitter (s).")
@click.option(
    "--duplicate",
    type=float,
    default=0.0,
    show_default=True,
    help="Probability a frame is delivered twice.",
)
@click.option(
    "--reorder",
    type=float,
    default=0.0,
    show_default=True,
    help="Probability a frame is held back behind later windows.",
)
@click.option(
    "--deadline", type=float, default=0.25, show_default=True, help="Aggregator deadline (s)."
)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "--transport",
    type=click.Choice(["inproc", "udp"]),
    default="inproc",
    show_default=True,
    help="In-process, or UDP loopback to a serve loop.",
)
@click.option(
    "--backend", type=click.Choice(["tflite", "onnx"]), default=None, help="Phone model runtime."
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.option("--out", type=click.Path(dir_okay=False), help="Also write the JSON result here.")
@click.option("--plot", type=click.Path(dir_okay=False), help="Save a PNG plot (matplotlib).")
@click.option("--clocks", is_flag=True,
              help="Also simulate node clocks and radios: drift sweep, offsets, a restart.")
@click.option("--drift", default="0,20,100,1000,20000", show_default=True,
              help="(--clocks) crystal errors to sweep, ppm (nodes get +d and -d).")
@click.option("--start-spread", type=float, default=3.0, show_default=True,
              help="(--clocks) seconds between the first and the last node's boot.")
@click.option("--restarts", type=int, default=1, show_default=True,
              help="(--clocks) reboots of the first node during the run.")
@click.option("--beacon", type=float, default=1.0, show_default=True,
              help="(--clocks) seconds between the phone's sync beacons.")
@click.option("--conn-interval", type=float, default=0.03, show_default=True,
              help="(--clocks) BLE connection interval, seconds.")
@click.option("--frames-per-event", type=int, default=4, show_default=True,
              help="(--clocks) BLE packets per connection event.")
@click.option("--mtu", type=int, default=247, show_default=True,
              help="(--clocks) BLE ATT MTU; a notification carries MTU - 3 bytes.")
def simulate_cmd(
    bundle: str,
    data: str | None,
    loss: str,
    outage: str | None,
    jitter: float,
    duplicate: float,
    reorder: float,
    deadline: float,
    seed: int,
    transport: str,
    backend: str | None,
    as_json: bool,
    out: str | None,
    plot: str | None,
    clocks: bool = False,
    drift: str = "0,20,100,1000,20000",
    start_spread: float = 3.0,
    restarts: int = 1,
    beacon: float = 1.0,
    conn_interval: float = 0.03,
    frames_per_event: int = 4,
    mtu: int = 247,
    device_loss: str | None = None,
) -> None:
    """Simulate sensor nodes over a lossy radio and score the phone's fused predictions.

    \b
    Example:
      crossl-edge simulate bundle/ --loss 0,0.1,0.3,0.5 --jitter 0.01 --plot sim.png
      crossl-edge simulate bundle/ --data windows.npz --transport udp --json
      crossl-edge simulate bundle/ --clocks --drift 0,100,20000 --start-spread 3 --restarts 1
      crossl-edge simulate bundle/ --device-loss 0.1,0.3 --outage wrist:0.2-0.6
    """
    from crossl_edge.atomic import write_json
    from crossl_edge.cli.common import check_deadline, check_outage, check_rates
    from crossl_edge.outputs import prepare_file, removed_on_failure
    from crossl_edge.sim.simulate import simulate
    from crossl_edge.tables import format_simulation

    rates = check_rates(_floats(loss, "--loss"), "--loss")
    dev_rates = check_rates(_floats(device_loss, "--device-loss"), "--device-loss") \
        if device_loss else ()
    check_deadline(deadline)
    check_rates((jitter,), "--jitter", upper=None)
    check_rates((duplicate,), "--duplicate")
    check_rates((reorder,), "--reorder")
    for flag, path in (("--out", out), ("--plot", plot)):
        if path:
            prepare_file(path, inputs=(bundle, data), flag=flag)  # before the simulation
    res = simulate(
        bundle,
        data=data,
        loss_rates=rates,
        outage=check_outage(_outage(outage)) or None,
        jitter_s=jitter,
        duplicate_rate=duplicate,
        reorder_rate=reorder,
        seed=seed,
        transport=transport,
        deadline_s=deadline,
        backend=backend,
        clocks=_clock_sweep(clocks, drift=drift, start_spread=start_spread, restarts=restarts,
                            beacon=beacon, conn_interval=conn_interval,
                            frames_per_event=frames_per_event, mtu=mtu),
        device_loss_rates=dev_rates,
    )
    if out:
        write_json(out, res.to_json())
    with removed_on_failure(plot or ""):
        drawn = res.plot(plot) if plot else True
    if drawn is None:
        click.echo("note: matplotlib is not installed; no plot written.", err=True)
    if as_json:
        echo_json(res.to_json())
        return
    click.echo(format_simulation(res))


def _clock_sweep(on: bool, *, drift: str, start_spread: float, restarts: int, beacon: float,
                 conn_interval: float, frames_per_event: int, mtu: int) -> object | None:
    """The --clocks options as a ClockSweep (None without --clocks)."""
    if not on:
        return None
    from crossl_edge.sim.clock_scenarios import ClockSweep
    from crossl_edge.sim.netsim import BleLink

    return ClockSweep(drift_ppm=_floats(drift, "--drift"), start_spread_s=start_spread,
                      restarts=restarts, beacon_interval_s=beacon,
                      link=BleLink(conn_interval_s=conn_interval,
                                   frames_per_event=frames_per_event, mtu=mtu))
