"""eval/calibrate.py: it reads only rows that say their split, and judges answers as `rag eval` does."""

from __future__ import annotations

import inspect
import json

import pytest

from rag.evaluate import metrics
from rag.records import Abstention, Answer, AnswerSentence, Citation

from .conftest import load_eval_script


@pytest.fixture(scope="module")
def calibrate():
    return load_eval_script("calibrate")


def _row(id_: str, split: str | None, answerable: bool = True) -> dict:
    row = {
        "id": id_,
        "question": f"Question {id_}?",
        "answers": ["Ankara"] if answerable else [],
        "evidence": [],
        "answerable": answerable,
    }
    return row if split is None else {**row, "split": split}


def _write(path, rows) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def test_a_row_without_a_split_is_refused_with_one_line(calibrate, tmp_path, capsys):
    gold = tmp_path / "gold.jsonl"
    _write(gold, [_row("q1", "dev"), _row("q2", None, answerable=False), _row("q3", "test")])
    assert calibrate.main(["--dev", str(gold), "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1
    assert str(gold) in err and "q2" in err and "split" in err


def test_only_dev_rows_are_read(calibrate, tmp_path):
    gold = tmp_path / "gold.jsonl"
    _write(gold, [_row("d1", "dev"), _row("t1", "test"), _row("d2", "dev", answerable=False)])
    rows = calibrate.load_dev([gold])
    assert [(r["id"], r["source"]) for r in rows] == [("d1", "gold.jsonl"), ("d2", "gold.jsonl")]


def test_the_shipped_dev_sets_all_say_their_split(calibrate):
    rows = calibrate.load_dev(calibrate.DEFAULT_SETS)
    assert rows and {r["split"] for r in rows} == {"dev"}


def test_calibration_uses_the_eval_judgement_and_defines_none_of_its_own(calibrate):
    assert calibrate.is_correct is metrics.is_correct
    assert "def is_correct" not in inspect.getsource(calibrate)


def _answer(short: str | None, sentence: str, cited: str, abstained: bool = False) -> Answer:
    citation = Citation("d", 0, len(cited), cited, passage_rank=1)
    return Answer(
        question="q",
        sentences=(AnswerSentence(sentence, (citation,)),),
        passages=(),
        short_answer=short,
        abstention=Abstention("test") if abstained else None,
    )


@pytest.mark.parametrize(
    ("short", "sentence", "abstained", "expected"),
    [
        ("Ankara", "Talks were held in Ankara.", False, True),  # F1 1.0
        ("Ankara city", "Talks were held in Ankara city.", False, True),  # F1 0.67 ≥ 0.5
        # The gold answer is inside the short answer, but it is mostly other words: F1 0.33 < 0.5. (The
        # calibration's former "contains a gold answer" rule called this correct.)
        ("Ankara, Istanbul, Izmir, Bursa and Antalya", "Talks were held in five cities.", False, False),
        (None, "Talks were held in Ankara on Monday.", False, True),  # no short answer: the gold is cited
        ("Ankara", "Talks were held in Ankara.", True, False),  # abstained
    ],
)
def test_is_correct(short, sentence, abstained, expected):
    assert metrics.is_correct(_answer(short, sentence, sentence, abstained), ["Ankara"]) is expected


def test_a_wrong_short_answer_is_wrong_even_when_the_gold_is_cited():
    answer = _answer("Istanbul", "Talks moved from Ankara to Istanbul.", "Talks moved from Ankara to Istanbul.")
    assert not metrics.is_correct(answer, ["Ankara"])
