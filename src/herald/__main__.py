"""`python -m herald`: the same as the `herald` command."""

from herald.cli import main

main()
