"""The ``vidagent`` command line: a thin shell over the Python API (:mod:`vidagent.api`).

The only package that imports typer or rich consoles; one module per command group.
"""
