"""The `rbedit` application: registers one command per module and turns errors into one line.

Nothing here (nor in the command modules at import time) imports torch, numpy
or PIL, so `rbedit --help` and shell completion stay fast.
"""

import os
import sys
from typing import Annotated, Optional

import typer
from typer.core import TyperGroup

from rbedit import __version__
from rbedit.cli import align, encode, models, neutralize, reconstruct, sample, transfer

DEBUG_ENV = "RBEDIT_DEBUG"

# Before torch loads OpenMP: idle worker threads sleep instead of spinning. On a
# shared CPU (a training job beside us) spinning threads made each forward pass
# wait for a scheduler slice: 0.66 s instead of 0.11 s for one image (2 cores).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def debug_enabled() -> bool:
    return os.environ.get(DEBUG_ENV, "").strip() not in ("", "0")


class RbeditGroup(TyperGroup):
    """Runs a command; any error that is not a usage error becomes one line on stderr and exit 1."""

    def invoke(self, ctx: typer.Context):
        try:
            return super().invoke(ctx)
        except (typer.TyperException, typer.Exit, typer.Abort, SystemExit):
            raise  # usage errors (exit 2), explicit exits, Ctrl-C
        except Exception as err:
            if debug_enabled():
                raise
            message = " ".join(str(err).split()) or type(err).__name__
            typer.echo(f"rbedit: error: {message}", err=True)
            raise typer.Exit(1) from None


app = typer.Typer(
    name="rbedit",
    cls=RbeditGroup,
    help="Edit digits and faces with a reference-based VAE (sRb-VAE): transfer style/expression, sample, neutralize.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    # Plain click help: typer's rich help imports rich.markdown/pygments, ~40 % of `rbedit --help`.
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"rbedit {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        Optional[bool],
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit."),
    ] = None,
) -> None:
    """Edit digits and faces with a reference-based VAE (sRb-VAE): transfer style/expression, sample, neutralize."""


app.command("transfer")(transfer.transfer)
app.command("sample")(sample.sample)
app.command("neutralize")(neutralize.neutralize)
app.command("reconstruct")(reconstruct.reconstruct)
app.command("encode")(encode.encode)
app.command("align")(align.align)
app.add_typer(models.app, name="models")


def main() -> None:
    """Console entry point (`rbedit`)."""
    try:
        app()
    except KeyboardInterrupt:  # outside a command (e.g. during startup)
        exit_now(130)
    except SystemExit as done:
        exit_now(done.code)


def exit_now(code: int | str | None) -> None:
    """Exit with `code`; once torch is loaded, without tearing the interpreter down.

    Tearing down a process that imported torch and ran a model takes 0.5-1 s
    (2-core machine); by now every output is written and every file closed, so
    flushing stdout and stderr is all that is left to do.
    """
    if isinstance(code, str):  # sys.exit("message"): print it, exit 1
        print(code, file=sys.stderr)
        code = 1
    if "torch" not in sys.modules:
        sys.exit(code)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code or 0)
