"""Evaluation metrics against hand-computed examples, and gold-file validation."""

import json

import pytest

from rag.errors import RagError
from rag.evaluate.gold import load_gold
from rag.evaluate.metrics import (
    Aggregate,
    abstention_scores,
    answer_in_text,
    bootstrap_interval,
    evidence_ranks,
    exact_match,
    normalize_answer,
    recall_at,
    reciprocal_rank,
    token_f1,
)


def test_squad_normalisation_drops_case_punctuation_and_articles():
    assert normalize_answer("The  U.S.-led Coalition!") == "u s led coalition"
    assert normalize_answer("76%") == normalize_answer("76 percent") == "76 percent"


def test_exact_match_takes_the_best_gold_answer():
    assert exact_match("the CAATSA", ["Countering America's Adversaries", "CAATSA"]) == 1.0
    assert exact_match("CAATSA law", ["CAATSA"]) == 0.0
    assert exact_match(None, ["x"]) == 0.0


def test_token_f1_by_hand():
    # "$5 billion" -> "dollars 5 billion": 2 of its 3 tokens match "5 billion" -> P 2/3, R 1, F1 0.8
    assert token_f1("$5 billion", ["5 billion"]) == pytest.approx(0.8)
    # "Michael Kofman, an analyst" -> "michael kofman analyst" (article dropped): P 2/3, R 1
    assert token_f1("Michael Kofman, an analyst", ["Michael Kofman"]) == pytest.approx(0.8)
    assert token_f1("Kofman", ["Michael Kofman", "Kofman"]) == 1.0
    assert token_f1("Sochi", ["Ankara"]) == 0.0


def test_gold_answer_inside_text_is_word_aligned():
    assert answer_in_text(["49%"], "That figure came down to 49 percent between 2012 and 2015") == 1.0
    assert answer_in_text(["49"], "It rose to 149 percent") == 0.0


def test_evidence_ranks_recall_and_reciprocal_rank():
    passages = [
        {"doc_id": "a", "start": 0, "end": 100, "rank": 1},
        {"doc_id": "b", "start": 50, "end": 200, "rank": 2},
        {"doc_id": "b", "start": 300, "end": 400, "rank": 3},
    ]
    spans = [("b", 320, 350), ("b", 40, 60), ("a", 10, 20), None]
    ranks = evidence_ranks(spans, passages)
    assert ranks == [3, None, 1, None]  # (b, 40-60) straddles a passage start: not contained
    assert recall_at(ranks, 1) == 0.25 and recall_at(ranks, 3) == 0.5
    assert reciprocal_rank(ranks) == 1.0
    assert reciprocal_rank([None, 4]) == 0.25 and reciprocal_rank([None]) == 0.0


def test_abstention_precision_recall_f1_treat_unanswerable_as_positive():
    abstained = [True, True, False, False, True]
    answerable = [False, True, False, True, False]
    scores = abstention_scores(abstained, answerable)
    assert scores["precision"] == pytest.approx(2 / 3)
    assert scores["recall"] == pytest.approx(2 / 3)
    assert scores["f1"] == pytest.approx(2 / 3)


def test_bootstrap_interval_brackets_the_mean():
    low, high = bootstrap_interval([0, 1] * 50)
    assert low < 0.5 < high and high - low < 0.3
    assert bootstrap_interval([1.0, 1.0]) == (1.0, 1.0)


def test_aggregate_answered_accuracy_and_latency():
    aggregate = Aggregate()
    aggregate.add(
        {
            "answerable": True,
            "abstained": False,
            "correct": True,
            "status": "correct",
            "latency_ms": 10,
            "token_f1": 1.0,
        }
    )
    aggregate.add({"answerable": False, "abstained": False, "status": "answered_unanswerable", "latency_ms": 30})
    aggregate.add({"answerable": False, "abstained": True, "status": "correct", "latency_ms": 20})
    metrics = aggregate.metrics()
    assert metrics["accuracy"] == pytest.approx(2 / 3)
    assert metrics["abstention"]["answered_accuracy"] == pytest.approx(0.5)
    assert metrics["abstention"]["precision"] == 1.0 and metrics["abstention"]["recall"] == 0.5
    assert metrics["latency"]["p50_ms"] == 20


GOOD = {
    "id": "q1",
    "question": "Who?",
    "answers": ["Ann"],
    "evidence": [{"doc_id": "d", "quote": "Ann did"}],
    "answerable": True,
}


@pytest.mark.parametrize(
    ("bad", "problem"),
    [
        ("{not json", "line 2: not valid JSON"),
        (json.dumps({**GOOD, "id": "q2", "answerable": "yes"}), "line 2: 'answerable' must be a bool"),
        (json.dumps({k: v for k, v in GOOD.items() if k != "question"}), "line 2: missing 'question'"),
        (json.dumps({**GOOD, "id": "q2", "answers": []}), "line 2: an answerable question needs at least one answer"),
        (json.dumps({**GOOD, "id": "q2", "answerable": False}), "line 2: an unanswerable question has empty"),
        (json.dumps({**GOOD, "question": "Who else?"}), "line 2: duplicate id 'q1'"),
    ],
)
def test_a_malformed_gold_line_is_named_in_the_error(tmp_path, bad, problem):
    path = tmp_path / "gold.jsonl"
    path.write_text(json.dumps(GOOD) + "\n" + bad + "\n")
    with pytest.raises(RagError, match=problem):
        load_gold(path)


def test_a_question_repeated_exactly_is_read_once_with_a_warning(tmp_path, caplog):
    path = tmp_path / "gold.jsonl"
    path.write_text(json.dumps(GOOD) + "\n" + json.dumps({**GOOD, "id": "q2"}) + "\n" + json.dumps(GOOD) + "\n")
    assert [q.id for q in load_gold(path)] == ["q1", "q2"]
    assert "line 3 repeats question 'q1' exactly" in caplog.text


def test_every_seed_gold_quote_is_in_its_article():
    from tests.conftest import ROOT, SEEDS

    articles = {p.stem: p.read_text(encoding="utf-8") for p in SEEDS.glob("*.txt")}
    questions = load_gold(ROOT / "eval" / "seeds_gold.jsonl")
    squashed = {doc_id: " ".join(text.split()) for doc_id, text in articles.items()}
    quotes = [(e.doc_id, e.quote, q.split) for q in questions for e in q.evidence]
    assert quotes and all(" ".join(quote.split()) in squashed[doc_id] for doc_id, quote, _ in quotes)
    # The test split's quotes are verbatim, line breaks included (the dev split's may wrap differently).
    assert all(quote in articles[doc_id] for doc_id, quote, split in quotes if split == "test")
    test = [q for q in questions if q.split == "test"]
    assert len(test) == 51 and sum(not q.answerable for q in test) == 13


def test_the_seed_gold_set_is_valid_and_split():
    from tests.conftest import ROOT

    questions = load_gold(ROOT / "eval" / "seeds_gold.jsonl")
    assert len(questions) >= 50
    assert sum(not q.answerable for q in questions) >= 0.2 * len(questions)
    assert {q.split for q in questions} == {"dev", "test"}
    assert len(load_gold(ROOT / "eval" / "seeds_gold.jsonl", "dev")) < len(questions)


@pytest.mark.parametrize(("text_form", "quote_form"), [("NFC", "NFD"), ("NFD", "NFC")])
def test_a_quote_in_another_unicode_form_is_located_at_the_exact_span(text_form, quote_form):
    import unicodedata

    from rag.text import locate_quote

    text = unicodedata.normalize(text_form, "Le café crème coûte 3 €. Zoë Ørsted a payé à Málaga.")
    quote = unicodedata.normalize(quote_form, "Zoë Ørsted a payé à Málaga")
    start, end = locate_quote(text, quote)
    assert unicodedata.normalize("NFC", text[start:end]) == unicodedata.normalize("NFC", quote)
