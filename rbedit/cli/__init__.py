"""The `rbedit` command line: a thin typer shell over the Python API (one module per command)."""
