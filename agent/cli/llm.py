"""``vidagent llm ...`` commands (mounted by the main CLI with ``add_typer(app, name="llm")``)."""

from __future__ import annotations

import asyncio
import os
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from vidagent.cli.options import LLMModelOpt, LLMUrlOpt
from vidagent.llm.check import CheckReport, check_server
from vidagent.tasks.steps import DEFAULT_LLM_MODEL

DEFAULT_URL = "http://127.0.0.1:8000"
URL_ENV = "VIDAGENT_LLM_URL"

app = typer.Typer(help="Talk to the LLM server vidagent uses.", no_args_is_help=True)


@app.callback()
def _group() -> None:
    """Talk to the LLM server vidagent uses."""


@app.command()
def check(
    llm_url: LLMUrlOpt = None,
    llm_model: LLMModelOpt = DEFAULT_LLM_MODEL,
    llm_api_key: Annotated[
        str,
        typer.Option(
            "--llm-api-key",
            envvar="VIDAGENT_LLM_API_KEY",
            help="API key of the LLM server (env VIDAGENT_LLM_API_KEY).",
            metavar="KEY",
        ),
    ] = "EMPTY",
    timeout: Annotated[
        float, typer.Option("--timeout", min=0.1, help="Seconds per request.", metavar="SECONDS")
    ] = 30.0,
    url: Annotated[
        str | None, typer.Option("--url", hidden=True, help="Deprecated: use --llm-url.")
    ] = None,
    model: Annotated[
        str | None, typer.Option("--model", hidden=True, help="Deprecated: use --llm-model.")
    ] = None,
    api_key: Annotated[
        str | None, typer.Option("--api-key", hidden=True, help="Deprecated: use --llm-api-key.")
    ] = None,
) -> None:
    """Check that the server answers, list its models, and verify guided decoding constrains.

    Checks each --llm-url (default: $VIDAGENT_LLM_URL, else http://127.0.0.1:8000); the default
    --llm-model tests the server's first model.
    """
    urls = list(llm_url or []) or [url or os.environ.get(URL_ENV) or DEFAULT_URL]
    tested = model or (None if llm_model == DEFAULT_LLM_MODEL else llm_model)
    key = api_key or llm_api_key
    ok = True
    for base in urls:
        report = asyncio.run(check_server(base, model=tested, api_key=key, timeout_s=timeout))
        if not report.reachable:
            typer.echo(f"error: {report.error}", err=True)
            ok = False
            continue
        Console(soft_wrap=True).print(_table(report))
        if report.error:
            typer.echo(f"error: {report.error}", err=True)
        ok = ok and report.ok
    raise typer.Exit(0 if ok else 1)


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
