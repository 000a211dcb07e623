"""``vidagent index build | search | info``: the example bank from the command line.

A thin shell over :mod:`agent.retrieval`; mounted by :mod:`agent.cli` as ``vidagent index``.
User mistakes raise :class:`~agent.errors.VidagentError` subclasses, which the main entry point
prints as one line with a non-zero exit.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Any, cast

import typer
from rich.console import Console
from rich.table import Table

from agent.errors import ConfigError

app = typer.Typer(
    help="Build, search and inspect example banks (in-context examples in a FAISS index).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
out = Console()
err = Console(stderr=True)

BankArg = Annotated[Path, typer.Argument(help="Directory of a saved example bank.")]
EmbedderOpt = Annotated[
    str | None,
    typer.Option(
        "--embedder",
        help="sentence-transformers model id or directory (default: bundled all-MiniLM-L6-v2; "
        "for search: the one the bank was built with).",
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def _progress() -> Any:
    """The project's progress bar (on stderr), or a plain rich one if the main CLI is absent."""
    try:
        from agent.cli import progress_bar

        return progress_bar()
    except ImportError:  # pragma: no cover - agent.cli ships with the package
        from rich.progress import Progress

        return Progress(console=err, transient=True)


@app.command()
def build(
    source: Annotated[
        Path, typer.Option("--source", help="Annotation file to read examples from.")
    ],
    source_format: Annotated[
        str, typer.Option("--format", help="Source format: lta, nextqa, intentqa or jsonl.")
    ],
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="Directory to write the bank to.")],
    task: Annotated[
        str | None,
        typer.Option(help="Task name of the examples (default: lta for lta, qa for QA CSVs)."),
    ] = None,
    embedder: EmbedderOpt = None,
    index_type: Annotated[
        str, typer.Option("--index-type", help="flat (exact), hnsw or ivf (large banks).")
    ] = "flat",
    n_observed: Annotated[int, typer.Option(min=1, help="lta: observed actions (N).")] = 8,
    n_future: Annotated[int, typer.Option(min=1, help="lta: future actions (Z).")] = 20,
    limit: Annotated[
        int | None, typer.Option(min=1, help="Use only the first LIMIT examples.")
    ] = None,
    batch_size: Annotated[int, typer.Option(min=1, help="Texts per embedding batch.")] = 64,
    device: Annotated[str, typer.Option(help="Torch device for the embedder.")] = "cpu",
    force: Annotated[bool, typer.Option("--force", help="Replace an existing bank.")] = False,
) -> None:
    """Build an example bank: read examples, embed their inputs, index them, save to --out."""
    from agent.retrieval.bank import ExampleBank
    from agent.retrieval.builders import SOURCE_FORMATS, SourceFormat, load_examples
    from agent.retrieval.embedder import SentenceTransformerEmbedder
    from agent.retrieval.faiss_index import INDEX_TYPES, IndexType

    if source_format not in SOURCE_FORMATS:
        raise ConfigError(f"--format {source_format!r}: choose one of {', '.join(SOURCE_FORMATS)}")
    if index_type not in INDEX_TYPES:
        raise ConfigError(f"--index-type {index_type!r}: choose one of {', '.join(INDEX_TYPES)}")
    if (out_dir / "manifest.json").exists() and not force:
        raise ConfigError(f"--out {out_dir} already holds an example bank (use --force to replace)")
    examples = load_examples(
        source,
        cast(SourceFormat, source_format),
        task=task,
        n_observed=n_observed,
        n_future=n_future,
    )
    if limit is not None:
        examples = examples[:limit]
    if not examples:
        raise ConfigError(f"--source {source}: no examples found in {source_format} format")
    text_embedder = SentenceTransformerEmbedder(embedder, device=device, batch_size=batch_size)
    started = time.perf_counter()
    with _progress() as bar:
        job = bar.add_task("embedding examples", total=len(examples))
        bank = ExampleBank.build(
            examples,
            text_embedder,
            index_type=cast(IndexType, index_type),
            batch_size=max(batch_size, 256),
            progress=lambda done, total: bar.update(job, completed=done, total=total),
        )
    bank.save(out_dir, overwrite=force)
    tasks = ", ".join(f"{name}: {count}" for name, count in bank.manifest.tasks.items())
    err.print(
        f"wrote {out_dir}: {len(bank)} examples ({tasks}), embedder {bank.manifest.embedder} "
        f"({bank.dim}-d), {index_type} index, {time.perf_counter() - started:.1f} s",
        highlight=False,
    )


@app.command()
def search(
    bank_dir: BankArg,
    query: Annotated[str, typer.Argument(help="Query text (as the prompt would show it).")],
    k: Annotated[int, typer.Option("--k", "-k", min=1, help="Examples to select.")] = 8,
    use_mmr: Annotated[
        bool, typer.Option("--mmr", help="Maximal marginal relevance (default).")
    ] = False,
    use_topk: Annotated[bool, typer.Option("--topk", help="The k most similar.")] = False,
    use_random: Annotated[bool, typer.Option("--random", help="k at random (ablation).")] = False,
    lambda_: Annotated[
        float, typer.Option("--lambda", min=0.0, max=1.0, help="MMR relevance weight.")
    ] = 0.5,
    fetch_k: Annotated[int, typer.Option("--fetch-k", min=1, help="MMR candidate pool.")] = 20,
    exclude_video: Annotated[
        list[str] | None,
        typer.Option("--exclude-video", help="Video/clip id whose examples to skip (repeatable)."),
    ] = None,
    task: Annotated[str | None, typer.Option(help="Only examples of this task.")] = None,
    seed: Annotated[int | None, typer.Option(help="Seed for --random.")] = None,
    embedder: EmbedderOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Select in-context examples for QUERY from the bank in BANK_DIR."""
    from agent.retrieval.bank import ExampleBank
    from agent.retrieval.embedder import SentenceTransformerEmbedder
    from agent.retrieval.select import Strategy, select_examples

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
        k,
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
    from agent.retrieval.bank import ExampleBank
    from agent.retrieval.manifest import INDEX

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
