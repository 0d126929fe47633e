"""`python -m archive` runs the `annals` command."""

from archive.cli import main

main()
