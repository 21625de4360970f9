"""`python -m mutualis …`: the `mutualis` command, as the console script runs it."""

import sys

from mutualis.cli import main

main(sys.argv[1:])
