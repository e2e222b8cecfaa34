"""`python -m rbedit.cli …` is the same as `rbedit …`."""

from rbedit.cli.app import main

main()
