"""``vidagent llm ...`` commands (mounted by the main CLI with ``add_typer(app, name="llm")``)."""

from __future__ import annotations

import asyncio

import typer
from rich.console import Console
from rich.table import Table

from agent.llm.check import CheckReport, check_server

DEFAULT_URL = "http://127.0.0.1:8000"

app = typer.Typer(help="Talk to the LLM server vidagent uses.", no_args_is_help=True)


@app.callback()
def _group() -> None:
    """Talk to the LLM server vidagent uses."""


@app.command()
def check(
    url: str = typer.Option(
        DEFAULT_URL,
        "--url",
        envvar="VIDAGENT_LLM_URL",
        help="Base URL of the OpenAI-compatible server",
    ),
    model: str | None = typer.Option(None, "--model", help="Model to test (default: the first)"),
    api_key: str = typer.Option("EMPTY", "--api-key", envvar="VIDAGENT_LLM_API_KEY"),
    timeout: float = typer.Option(30.0, "--timeout", min=0.1, help="Seconds per request"),
) -> None:
    """Check that the server answers, list its models, and verify guided decoding constrains."""
    report = asyncio.run(check_server(url, model=model, api_key=api_key, timeout_s=timeout))
    if not report.reachable:
        typer.echo(f"error: {report.error}", err=True)
        raise typer.Exit(1)
    Console(soft_wrap=True).print(_table(report))
    if report.error:
        typer.echo(f"error: {report.error}", err=True)
    raise typer.Exit(0 if report.ok else 1)


def _table(report: CheckReport) -> Table:
    table = Table(title=f"LLM server {report.url}", show_header=True)
    table.add_column("check")
    table.add_column("result")
    table.add_column("detail")
    table.add_row("reachable", _mark(report.reachable), "")
    table.add_row("models", ", ".join(report.models) or "-", f"testing {report.model}")
    table.add_row("choice constrained", _mark(report.choice_ok), report.choice_detail)
    table.add_row("JSON schema constrained", _mark(report.json_ok), report.json_detail)
    return table


def _mark(value: bool | None) -> str:
    return {True: "[green]yes[/green]", False: "[red]NO[/red]", None: "[yellow]not run[/yellow]"}[
        value
    ]
