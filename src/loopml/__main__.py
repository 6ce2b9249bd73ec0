"""`python -m loopml` is the `loopml` command."""

from loopml.cli import main

main()
