"""``vidagent index build | search | info``: the example bank from the command line.

A thin shell over :mod:`vidagent.retrieval`; mounted by :mod:`vidagent.cli.main` as ``vidagent
index``. ``build --format <benchmark>`` gets its examples from that benchmark object
(:meth:`~vidagent.evals.benchmark.Benchmark.bank_examples`) and hands them to the bank. User
mistakes raise :class:`~vidagent.core.errors.VidagentError` subclasses, which the main entry
point prints as one line with a non-zero exit.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, cast

import typer
from rich.console import Console
from rich.table import Table

from vidagent.cli.bounds import at_least, between
from vidagent.cli.eval import names_help, setting_help
from vidagent.core.errors import ConfigError
from vidagent.evals.benchmark import Params
from vidagent.evals.registry import bank_formats

if TYPE_CHECKING:
    from vidagent.retrieval.bank import Example

app = typer.Typer(
    help="Build, search and inspect example banks (in-context examples in a FAISS index).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
out = Console()
err = Console(stderr=True)

BankArg = Annotated[
    Path, typer.Argument(metavar="BANK_DIR", help="Directory of a saved example bank.")
]
EmbedderOpt = Annotated[
    str | None,
    typer.Option(
        "--embedder",
        metavar="MODEL",
        help="sentence-transformers model id or directory (default: bundled all-MiniLM-L6-v2; "
        "for search: the one the bank was built with).",
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", metavar="", help="Print JSON instead of a table.")]


@app.command()
def build(
    ctx: typer.Context,
    source: Annotated[
        Path,
        typer.Option("--source", metavar="FILE", help="Annotation file to read examples from."),
    ],
    source_format: Annotated[
        str,
        typer.Option(
            "--format",
            metavar="FORMAT",
            help=names_help(
                "jsonl (one input/target/video_id object per line) or a benchmark:", bank_formats()
            ),
        ),
    ],
    out_dir: Annotated[
        Path, typer.Option("--out", "-o", metavar="DIR", help="Directory to write the bank to.")
    ],
    task: Annotated[
        str | None,
        typer.Option(
            metavar="TASK",
            help="Task name of the examples (default: the benchmark's, e.g. qa or lta; jsonl: "
            "each line's own).",
        ),
    ] = None,
    embedder: EmbedderOpt = None,
    index_type: Annotated[
        str,
        typer.Option(
            "--index-type", metavar="TYPE", help="flat (exact), hnsw or ivf (large banks)."
        ),
    ] = "flat",
    n_observed: Annotated[
        int | None,
        typer.Option(
            "--n-observed",
            callback=at_least(1),
            metavar="N",
            help=setting_help("Observed actions per example (default 8)", "observed"),
        ),
    ] = None,
    z: Annotated[
        int | None,
        typer.Option(
            "--z",
            callback=at_least(1),
            metavar="N",
            help=setting_help("Future actions per example (default 20)", "z"),
        ),
    ] = None,
    limit: Annotated[
        int | None,
        typer.Option(callback=at_least(1), metavar="N", help="Use only the first N examples."),
    ] = None,
    batch_size: Annotated[
        int, typer.Option(callback=at_least(1), metavar="N", help="Texts per embedding batch.")
    ] = 64,
    device: Annotated[
        str, typer.Option(metavar="DEVICE", help="Torch device for the embedder.")
    ] = "cpu",
    force: Annotated[
        bool, typer.Option("--force", metavar="", help="Replace an existing bank.")
    ] = False,
) -> None:
    """Build an example bank: read examples, embed their inputs, index them, save to --out."""
    from vidagent.cli.progress import steps_progress
    from vidagent.retrieval.bank import ExampleBank
    from vidagent.retrieval.faiss_index import INDEX_TYPES, IndexType
    from vidagent.retrieval.text_embedder import SentenceTransformerEmbedder

    if index_type not in INDEX_TYPES:
        raise ConfigError(f"--index-type {index_type!r}: choose one of {', '.join(INDEX_TYPES)}")
    if (out_dir / "manifest.json").exists() and not force:
        raise ConfigError(f"--out {out_dir} already holds an example bank (use --force to replace)")
    _check_out(out_dir)
    examples = _examples(source, source_format, task, Params(z=z, observed=n_observed))
    if limit is not None:
        examples = examples[:limit]
    if not examples:
        raise ConfigError(f"--source {source}: no examples found in {source_format} format")
    embedded, saving = [0], [False]
    try:
        text_embedder = SentenceTransformerEmbedder(embedder, device=device, batch_size=batch_size)
        started = time.perf_counter()
        with steps_progress("embedding examples") as bar:

            def on_progress(done: int, total: int) -> None:
                embedded[0] = done
                bar(done, total)

            bank = ExampleBank.build(
                examples,
                text_embedder,
                index_type=cast(IndexType, index_type),
                batch_size=max(batch_size, 256),
                progress=on_progress,
            )
        saving[0] = True
        bank.save(out_dir, overwrite=force)
    except KeyboardInterrupt:
        from vidagent.cli.run_display import command_line

        where = (
            f"the bank in {out_dir} is incomplete"
            if saving[0]
            else f"none saved (a bank is written whole at the end: {out_dir} is unchanged)"
        )
        err.print(
            f"interrupted: {embedded[0]} of {len(examples)} examples embedded, {where}; run "
            f"again: {command_line(ctx, 'vidagent index build')}",
            highlight=False,
            soft_wrap=True,
        )
        raise typer.Exit(130) from None
    tasks = ", ".join(f"{name}: {count}" for name, count in bank.manifest.tasks.items())
    err.print(
        f"wrote {out_dir}: {len(bank)} examples ({tasks}), embedder {bank.manifest.embedder} "
        f"({bank.dim}-d), {index_type} index, {time.perf_counter() - started:.1f} s",
        highlight=False,
    )


def _check_out(out_dir: Path) -> None:
    """``--out`` must be (or become) a folder: nothing on its path may be a file."""
    for path in (out_dir, *out_dir.parents):
        if path.exists():
            if not path.is_dir():
                raise ConfigError(f"--out {out_dir}: {path} is a file, not a folder")
            return


def _examples(source: Path, source_format: str, task: str | None, params: Params) -> list[Example]:
    """The examples of ``source``: from the benchmark named by ``source_format``, or JSONL."""
    from vidagent.cli.eval import FLAGS, check_settings
    from vidagent.evals.registry import benchmark
    from vidagent.retrieval.builders import jsonl_examples

    formats = [*bank_formats(), "jsonl"]
    if source_format not in formats:
        raise ConfigError(f"--format {source_format!r}: choose one of {', '.join(formats)}")
    if source_format == "jsonl":
        if params.given():
            raise ConfigError(f"{FLAGS[params.given()[0]]} does not apply to jsonl")
        return list(jsonl_examples(source, task=task))
    bench = benchmark(source_format)
    check_settings(bench, params)
    return list(bench.bank_examples(source, task=task, params=params))


@app.command()
def search(
    bank_dir: BankArg,
    query: Annotated[
        str, typer.Argument(metavar="QUERY", help="Query text (as the prompt would show it).")
    ],
    examples: Annotated[
        int,
        typer.Option(
            "--examples", callback=at_least(1), metavar="N", help="In-context examples to select."
        ),
    ] = 8,
    use_mmr: Annotated[
        bool, typer.Option("--mmr", metavar="", help="Maximal marginal relevance (default).")
    ] = False,
    use_topk: Annotated[
        bool, typer.Option("--topk", metavar="", help="The N most similar.")
    ] = False,
    use_random: Annotated[
        bool, typer.Option("--random", metavar="", help="N at random (ablation).")
    ] = False,
    lambda_: Annotated[
        float,
        typer.Option(
            "--lambda", callback=between(0, 1), metavar="WEIGHT", help="MMR relevance weight (0-1)."
        ),
    ] = 0.5,
    fetch_k: Annotated[
        int,
        typer.Option("--fetch-k", callback=at_least(1), metavar="N", help="MMR candidate pool."),
    ] = 20,
    exclude_video: Annotated[
        list[str] | None,
        typer.Option(
            "--exclude-video",
            metavar="ID",
            help="Video/clip id whose examples to skip (repeatable).",
        ),
    ] = None,
    task: Annotated[
        str | None, typer.Option(metavar="TASK", help="Only examples of this task.")
    ] = None,
    seed: Annotated[int | None, typer.Option(metavar="N", help="Seed for --random.")] = None,
    embedder: EmbedderOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Select in-context examples for QUERY from the bank in BANK_DIR."""
    from vidagent.retrieval.bank import ExampleBank
    from vidagent.retrieval.select import Strategy, select_examples
    from vidagent.retrieval.text_embedder import SentenceTransformerEmbedder

    options = (("mmr", use_mmr), ("topk", use_topk), ("random", use_random))
    flags = [name for name, on in options if on]
    if len(flags) > 1:
        raise ConfigError(f"--{' and --'.join(flags)} are exclusive: choose one strategy")
    strategy = cast(Strategy, flags[0] if flags else "mmr")
    manifest = ExampleBank.read_manifest(bank_dir)
    model = embedder if embedder is not None else manifest.embedder_model
    bank = ExampleBank.load(bank_dir, SentenceTransformerEmbedder(model))
    selected = select_examples(
        bank,
        query,
        examples,
        strategy=strategy,
        lambda_=lambda_,
        fetch_k=fetch_k,
        exclude_sources=exclude_video or (),
        task=task,
        seed=seed,
    )
    if json_out:
        print(json.dumps([s.model_dump(mode="json") for s in selected], indent=2))
        return
    table = Table(title=f"{strategy}: {len(selected)} of {len(bank)} examples for {query!r}")
    for col in ("#", "sim", "mmr", "video", "key", "input", "target"):
        table.add_column(col, overflow="fold")
    for s in selected:
        table.add_row(
            str(s.rank),
            f"{s.similarity:.3f}",
            "" if s.mmr_score is None else f"{round(s.mmr_score, 3) + 0.0:.3f}",  # no "-0.000"
            s.example.video_id,
            s.example.key or "",
            _short(s.example.input),
            _short(s.example.target),
        )
    out.print(table)


@app.command()
def info(bank_dir: BankArg, json_out: JsonOpt = False) -> None:
    """Show what a bank holds: count, tasks, embedder, dimension, index type and size."""
    from vidagent.retrieval.bank import ExampleBank
    from vidagent.retrieval.manifest import INDEX

    manifest = ExampleBank.read_manifest(bank_dir)
    index_file = bank_dir / INDEX
    size = index_file.stat().st_size if index_file.is_file() else None
    if json_out:
        print(json.dumps(manifest.model_dump(mode="json") | {"index_bytes": size}, indent=2))
        return
    table = Table(title=str(bank_dir), show_header=False)
    params = manifest.index.model_dump(exclude_defaults=True, exclude={"type"})
    rows = {
        "examples": str(manifest.count),
        "tasks": ", ".join(f"{t}: {n}" for t, n in manifest.tasks.items()),
        "embedder": manifest.embedder,
        "embedder model": manifest.embedder_model or "(default)",
        "dimension": str(manifest.dim),
        "metric": f"{manifest.metric} (normalized vectors: cosine)",
        "index": manifest.index.type + (f" {params}" if params else ""),
        "index size": "missing" if size is None else f"{size / 2**20:.1f} MiB",
        "format": f"{manifest.format} v{manifest.format_version}",
        "created": manifest.created,
    }
    for key, value in rows.items():
        table.add_row(key, value)
    out.print(table)


def _short(text: str, limit: int = 80) -> str:
    one_line = " ".join(text.split())
    return one_line if len(one_line) <= limit else one_line[: limit - 1] + "…"
