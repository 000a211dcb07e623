"""``python -m vidagent.cli``: the same as the ``vidagent`` command."""

from vidagent.cli.main import main

main()
