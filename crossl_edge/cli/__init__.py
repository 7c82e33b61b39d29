"""The `crossl-edge` click group; each verb lives in its own module and calls one library call."""

from __future__ import annotations

import contextlib
import importlib
import logging
import signal
import sys

import click

from crossl_edge import __version__

# verb -> module:attribute; modules import their stage lazily so `--help` stays fast.
VERBS = {
    "train": "crossl_edge.cli.train_cmd:train",
    "evaluate": "crossl_edge.cli.train_cmd:evaluate_cmd",
    "export": "crossl_edge.cli.export_cmd:export_cmd",
    "parity": "crossl_edge.cli.export_cmd:parity_cmd",
    "firmware": "crossl_edge.cli.firmware_cmd:firmware_cmd",
    "bench": "crossl_edge.cli.bench_cmd:bench_cmd",
    "serve": "crossl_edge.cli.runtime_cmd:serve_cmd",
    "simulate": "crossl_edge.cli.runtime_cmd:simulate_cmd",
    "plan": "crossl_edge.cli.plan_cmd:plan_cmd",
    "demo": "crossl_edge.cli.demo_cmd:demo_cmd",
    "keys": "crossl_edge.cli.keys_cmd:keys_cmd",
}


class LazyGroup(click.Group):
    """A group whose commands are imported only when invoked or listed."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(VERBS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in VERBS:
            return None
        module, attr = VERBS[name].split(":")
        return getattr(importlib.import_module(module), attr)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="crossl-edge")
@click.option("-v", "--verbose", count=True, help="More logging (-v info, -vv debug).")
def cli(verbose: int) -> None:
    """Train CroSSL, export per-modality int8 encoders, and fuse latents on a phone.

    \b
    Quick start (BasicMotions, shipped inside sktime):
      crossl-edge demo --out demo-out
    """
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")


class Terminated(BaseException):
    """SIGTERM arrived: unwinds like Ctrl-C so temp outputs are removed on the way out."""


_TERMINATED: list[int] = []  # set by the handler: a library may turn Terminated into its own error


def _on_sigterm(signum: int, frame: object) -> None:
    _TERMINATED.append(signum)
    raise Terminated()


def main(argv: list[str] | None = None) -> None:
    """Console entry point: user errors become one line on stderr and exit code 1 or 2; SIGTERM
    unwinds like Ctrl-C so temporary outputs are removed."""
    previous = None
    with contextlib.suppress(ValueError):  # only the main thread may set handlers
        previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        _run(argv)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    sys.exit(0)


def _run(argv: list[str] | None) -> None:
    """Run the group; every user-caused failure ends in one `error:` line and its exit code."""
    from crossl_edge.errors import CrosslError
    from crossl_edge.outputs import DISK_ERRNOS, disk_error

    try:
        try:
            cli.main(args=argv, prog_name="crossl-edge", standalone_mode=False)
        except Exception as e:
            if _TERMINATED:  # the interrupted code may have turned Terminated into its own error
                raise Terminated() from e
            raise
    except CrosslError as e:
        click.echo(f"error: {e}", err=True)
        sys.exit(e.exit_code)
    except OSError as e:
        if e.errno not in DISK_ERRNOS:
            raise
        err = disk_error(e)
        click.echo(f"error: {err}", err=True)
        sys.exit(err.exit_code)
    except Terminated:
        click.echo("terminated.", err=True)
        sys.exit(143)
    except click.exceptions.Abort as e:
        if isinstance(e.__context__, EOFError):  # click turns an EOFError into Abort
            click.echo(f"error: a file ended early ({e.__context__}); check the input files.",
                       err=True)
            sys.exit(2)
        click.echo("aborted.", err=True)
        sys.exit(130)
    except click.ClickException as e:
        e.show()
        sys.exit(e.exit_code)
    except click.exceptions.Exit as e:
        sys.exit(e.exit_code)
    except KeyboardInterrupt:
        click.echo("interrupted.", err=True)
        sys.exit(130)
