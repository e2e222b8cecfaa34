"""`rbedit models list|download|info`: the models this machine can use."""

from typing import Annotated, Optional

import typer

app = typer.Typer(help="List, download and inspect models.", invoke_without_command=True, rich_markup_mode=None)


@app.callback()
def _default(ctx: typer.Context) -> None:
    """List, download and inspect models (no subcommand: list)."""
    if ctx.invoked_subcommand is None:
        list_models()


@app.command("list")
def list_models() -> None:
    """Embedded models and the rbedit models in the Hugging Face cache (no network)."""
    import json

    from rich.console import Console
    from rich.table import Table

    from rbedit.hub import CONFIG_NAME, default_model_ref, list_models as entries

    table = Table("model", "source", "domain", "size", "weights", box=None, header_style="bold")
    table.add_column("folder", overflow="fold")
    default = default_model_ref()
    for entry in entries():
        try:
            config = json.loads((entry.folder / CONFIG_NAME).read_text())
        except (OSError, ValueError):
            config = {}
        name = f"{entry.name} (default)" if entry.name == default else entry.name
        table.add_row(
            name,
            entry.source,
            str(config.get("domain", "?")),
            str(config.get("image_size", "?")),
            "yes" if entry.has_weights else "[red]missing[/red]",
            str(entry.folder),
        )
    Console().print(table)


@app.command("download")
def download(
    ref: Annotated[str, typer.Argument(metavar="REPO[@REV]", help="Hub model id, optionally pinned.", show_default=False)],
) -> None:
    """Fetch a Hub checkpoint into the Hugging Face cache (then usable offline)."""
    from rbedit.hub import HUB_ID, resolve_model

    if not HUB_ID.match(ref):
        raise typer.BadParameter(f"{ref!r} is not a Hub id ORG/REPO[@REV]", param_hint="REPO[@REV]")
    resolved = resolve_model(ref)
    typer.echo(str(resolved.folder))


@app.command("info")
def info(
    model: Annotated[
        Optional[str],
        typer.Argument(help="Embedded name, folder or ORG/REPO[@REV] (default: the default model).", show_default=False),
    ] = None,
) -> None:
    """Print a model's config and the evaluation table of its model card."""
    import json

    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from rbedit.hub import CONFIG_NAME, WEIGHTS_NAME, evaluation_table, read_card, resolve_model

    console = Console()
    resolved = resolve_model(model, require_weights=False)
    config = json.loads((resolved.folder / CONFIG_NAME).read_text())
    console.print(f"[bold]{escape(resolved.ref)}[/bold] ({resolved.source}) {escape(str(resolved.folder))}")
    table = Table("field", "value", box=None, header_style="bold")
    for key, value in config.items():
        if key == "template" and value is not None:
            value = f"{len(value)} landmarks"
        table.add_row(key, escape(json.dumps(value) if not isinstance(value, str) else value))
    weights = resolved.folder / WEIGHTS_NAME
    table.add_row("weights", escape(_describe_weights(weights)) if weights.is_file() else "[red]missing[/red]")
    console.print(table)
    card = read_card(resolved.folder)
    evaluation = evaluation_table(card) if card else None
    if evaluation:
        console.print("\n[bold]Evaluation[/bold] (from the model card)")
        console.print(escape(evaluation), highlight=False)
    else:
        console.print("\nno evaluation table in the model card" if card else "\nno model card (README.md)")


def _describe_weights(path) -> str:
    """Size, tensor count and dtypes from the safetensors header (no torch needed)."""
    import json
    import struct

    with open(path, "rb") as f:
        (length,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(length))
    tensors = {k: v for k, v in header.items() if k != "__metadata__"}
    dtypes = sorted({v["dtype"] for v in tensors.values()})
    params = sum(_numel(v["shape"]) for v in tensors.values())
    size = path.stat().st_size
    return f"{path.name}: {size / 2**20:.1f} MiB, {len(tensors)} tensors, {params:,} parameters, {'/'.join(dtypes)}"


def _numel(shape) -> int:
    n = 1
    for d in shape:
        n *= d
    return n
