"""What every benchmark shares: the error type, file readers, rounding and the common records.

A :class:`Sample` is one unit of work of a benchmark run (a question with options, an observed
LTA window, or a localization query); its ``key`` is the benchmark's own prediction key, so the
results of a run can be written straight into the official prediction/submission format. A
:class:`SampleResult` is what a run records for one sample (a line of ``results.jsonl``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from vidagent.core.errors import VidagentError

SampleKind = Literal["qa", "lta", "moment"]
FailureKind = Literal["content", "transport"]


class EvalError(VidagentError):
    """A benchmark file or prediction file is unusable; the message names the file and cause."""

    def __init__(self, path: object, cause: str) -> None:
        super().__init__(f"{path}: {cause}")
        self.path = str(path)


class Sample(BaseModel):
    """One benchmark item: what is asked of which video, and (if known) the answer."""

    model_config = ConfigDict(extra="forbid")

    key: str = Field(description="The benchmark's prediction key (e.g. '<video>_<qid>')")
    video_id: str
    kind: SampleKind
    question: str = ""
    options: list[str] = Field(default_factory=list)
    answer: int | None = Field(default=None, description="Index of the right option (QA)")
    type: str = ""
    observed_end: float | None = Field(default=None, description="LTA: end of the observed part")
    windows: list[list[float]] = Field(default_factory=list, description="Moments: GT windows")
    duration: float | None = None
    target: dict[str, Any] = Field(default_factory=dict, description="Extra ground truth")


class SampleResult(BaseModel):
    """One line of ``results.jsonl``: a sample's prediction (or its error) and its cost."""

    model_config = ConfigDict(extra="forbid")

    key: str
    video_id: str
    ok: bool
    prediction: Any = None
    valid: bool = False
    error: str | None = None
    error_kind: FailureKind | None = Field(
        default=None,
        description="Why it failed: 'transport' (the LLM server was unreachable or kept failing; "
        "a plain re-run retries it) or 'content' (the sample's own problem)",
    )
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0

    @property
    def transport_failure(self) -> bool:
        """Failed because the LLM server could not answer (a record of an earlier version, which
        has no ``error_kind``, is recognised by its error type)."""
        if self.ok:
            return False
        if self.error_kind is not None:
            return self.error_kind == "transport"
        return any(f"{name}: " in (self.error or "") for name in TRANSPORT_ERRORS)


# The LLM layer's transport error types (vidagent.llm.errors.LLMConnectionError and its
# subclasses), by name: how records of earlier versions name them.
TRANSPORT_ERRORS = ("LLMConnectionError", "LLMTimeoutError")


class Taxonomy(BaseModel):
    """A verb/noun vocabulary, names as the file spells them (an index is a class label)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    verbs: list[str]
    nouns: list[str]


def read_taxonomy(path: Path | str) -> Taxonomy:
    """A ``{"verbs": [...], "nouns": [...]}`` JSON file (Ego4D's ``fho_lta_taxonomy.json``)."""
    data = load_json(path)
    if not isinstance(data, dict) or not {"verbs", "nouns"} <= set(data):
        raise EvalError(path, 'expected {"verbs": [...], "nouns": [...]}')
    return Taxonomy(verbs=[str(v) for v in data["verbs"]], nouns=[str(n) for n in data["nouns"]])


def pct(value: float) -> float:
    """A fraction as the official scripts print it: percent with two decimals."""
    return float(f"{100.0 * value:.2f}")


def ratio(num: float, den: float) -> float | None:
    """``num / den`` as a percentage (two decimals), or None when ``den`` is zero."""
    return pct(num / den) if den else None


def load_json(path: Path | str) -> Any:
    path = Path(path)
    try:
        with path.open(encoding="utf-8") as fh:
            return json.load(fh)
    except FileNotFoundError as exc:
        raise EvalError(path, "no such file") from exc
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise EvalError(path, f"not valid JSON ({exc})") from exc


def load_jsonl(path: Path | str) -> list[Any]:
    """One JSON value per non-blank line (a missing trailing newline is fine)."""
    return [value for _, value in numbered_jsonl(path)]


def numbered_jsonl(path: Path | str) -> list[tuple[int, Any]]:
    """``(line number, value)`` of each non-blank line (numbers count every line, from 1)."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError as exc:
        raise EvalError(path, "no such file") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise EvalError(path, f"not readable ({exc})") from exc
    out = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            out.append((number, json.loads(line)))
        except json.JSONDecodeError as exc:
            raise EvalError(path, f"line {number} is not JSON ({exc})") from exc
    return out
