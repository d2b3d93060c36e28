"""The rule-based extractive answerer (``--answerer extractive``) on the seed articles: short answers, citations, abstention, bad input, `rag ask`.

These questions are not the ones the abstention threshold was calibrated on
(eval/dev_questions.jsonl and the dev split of eval/seeds_gold.jsonl), and are
worded differently from the gold test split. Questions the answerer gets wrong
today are kept as strict xfails, so the list is not cherry-picked and a fix
shows up as an unexpected pass.
"""

from __future__ import annotations

import json
import re

import pytest

from rag.answer.pipeline import ask, load_threshold
from rag.answer.registry import answerer_for
from rag.errors import RagError
from rag.records import NO_ANSWER


def extractive(retriever):
    return answerer_for("extractive", retriever)


KNOWN_MISS = "known miss of the extractive answerer (see docs/answers.md)"

ANSWERABLE = [
    ("When were the doubts about Turkey's plan to buy Russian air-defence missiles settled?", "July 12"),
    ("Which security analyst focuses on Russia?", "Michael Kofman"),
    ("How many countries already have the S-300 deployed?", "14"),
    (
        "Which law allows the US government to penalise countries that make significant transactions with "
        "Russia's defence companies?",
        "CAATSA",
    ),
    ("When is India due to get its first shipment of S-400s?", "next year"),
    ("Who is the Turkish president?", "Erdogan"),
    ("In which year was Turkey's first batch of missiles officially delivered?", "2019"),
    ("Who heads Turkey's Defense Industry Directorate?", "Ismail Demir"),
    ("When were sanctions imposed on the head of Turkey's defence procurement agency?", "December of 2020"),
    ("In which city did Erdogan and Putin hold their meeting?", "Sochi"),
    ("Which US Secretary of State thanked Turkish officials for their logistical support?", "Antony Blinken"),
    ("Which American rivals has Turkey shown a willingness to work with?", "Russia"),
    ("Which US president's administration held talks with Erdogan's government?", "Joe Biden"),
    ("Which alliance's systems does Turkey say the S-400s would not be integrated into?", "NATO"),
    pytest.param(
        "How many Turkish officials besides the directorate's chief were hit by US sanctions?",
        "three",
        marks=pytest.mark.xfail(
            strict=True, reason=KNOWN_MISS + ": 'officials' vs 'employees', synonyms count only through embeddings"
        ),
    ),
    pytest.param(
        "How much was India's S-400 deal worth?",
        "$5 billion",
        marks=pytest.mark.xfail(
            strict=True,
            reason=KNOWN_MISS
            + ": right answer found, but 'deal'/'worth' are not in the sentence ('contract'), so confidence falls below the threshold",
        ),
    ),
    pytest.param(
        "What share of its arms and equipment did Cairo buy from the US between 2012 and 2015?",
        "49 percent",
        marks=pytest.mark.xfail(
            strict=True, reason=KNOWN_MISS + ": the answer sentence says 'That figure', no coreference resolution"
        ),
    ),
    pytest.param(
        "Which senior military analyst at Stratfor commented on Gulf interest in the S-400s?",
        "Omar Lamrani",
        marks=pytest.mark.xfail(
            strict=True,
            reason=KNOWN_MISS
            + ": right answer found, but the quote and its speaker are split across two sentences and the confidence falls below the threshold",
        ),
    ),
    pytest.param(
        "Which country did the United States and Turkey coordinate on during the troop withdrawal?",
        "Afghanistan",
        marks=pytest.mark.xfail(
            strict=True,
            reason=KNOWN_MISS + ": a sentence about coordinating with Russia outscores the one naming Afghanistan",
        ),
    ),
    pytest.param(
        "From which American jet programme was Turkey expelled?",
        "F-35",
        marks=pytest.mark.xfail(
            strict=True,
            reason=KNOWN_MISS
            + ": 'expelled' is not in the answer sentence ('removing'), so confidence is below the threshold",
        ),
    ),
    pytest.param(
        "Which Russian city is Turkey seen as upgrading its relationship with?",
        "Moscow",
        marks=pytest.mark.xfail(
            strict=True,
            reason=KNOWN_MISS + ": 'Moscow' sits in a quotation that is not tied to Turkey; another sentence wins",
        ),
    ),
]

UNANSWERABLE = [
    "How much did China pay for its S-400 missiles?",  # the corpus gives India's contract value, not China's
    "How much did Turkey pay Russia for the S-400 systems?",
    "What percentage of India's weapons come from Russia?",  # Egypt's shares are given, not India's
    "Who is the chief of India's Defence Research and Development Organisation?",
    "How many S-400 batteries has China deployed?",
    "Who won the 2018 FIFA World Cup?",
    pytest.param(
        "When will Turkey receive its second batch of S-400 missiles?",
        marks=pytest.mark.xfail(
            strict=True,
            reason=KNOWN_MISS + ": a near miss on a noun ('second batch'), not a name, passes the threshold",
        ),
    ),
]


def _norm(text: str) -> str:
    return " ".join(text.replace("’", "'").lower().split())


def check_citations(answer, seed_documents) -> None:
    """Every citation quotes its document exactly and lies inside the retrieved passage it names."""
    passages = {p.rank: p for p in answer.passages}
    for sentence in answer.sentences:
        assert sentence.citations, f"uncited sentence: {sentence.text}"
        for c in sentence.citations:
            assert seed_documents[c.doc_id].text[c.start : c.end] == c.text
            p = passages[c.passage_rank]
            assert p.doc_id == c.doc_id and p.start <= c.start and c.end <= p.end


@pytest.mark.parametrize(("question", "expected"), ANSWERABLE)
def test_answerable_question_gets_short_answer_with_citation(retriever, seed_documents, question, expected):
    answer = ask(question, retriever, extractive(retriever))
    assert not answer.abstained, answer.abstention
    assert answer.short_answer is not None and _norm(expected) in _norm(answer.short_answer)
    assert any(_norm(expected) in _norm(c.text) for c in answer.citations)
    check_citations(answer, seed_documents)
    assert 1 <= len(answer.sentences) <= 3


@pytest.mark.parametrize("question", UNANSWERABLE)
def test_unanswerable_question_abstains_and_shows_passages(retriever, question):
    answer = ask(question, retriever, extractive(retriever))
    assert answer.abstained
    assert answer.sentences == () and answer.short_answer is None and answer.citations == []
    assert answer.passages and answer.message == NO_ANSWER
    assert answer.score < answer.threshold


def test_two_part_question_cites_both_articles(retriever, seed_documents):
    answer = ask(
        "Which law lets the US penalise buyers of Russian arms, and was Turkey sanctioned under it?",
        retriever,
        extractive(retriever),
    )
    assert not answer.abstained
    assert "CAATSA" in answer.short_answer
    assert {c.doc_id for c in answer.citations} == set(seed_documents)
    check_citations(answer, seed_documents)


def test_every_answer_word_is_corpus_text(retriever, seed_documents):
    """The answer is its cited sentences, verbatim: no word of it comes from anywhere else."""
    for question, _ in [q for q in ANSWERABLE if isinstance(q, tuple)][:8]:
        answer = ask(question, retriever, extractive(retriever))
        for sentence in answer.sentences:
            assert sentence.text == " ".join(c.text for c in sentence.citations)
        assert answer.text == " ".join(s.text for s in answer.sentences)
        quoted = " ".join(c.text for c in answer.citations)
        assert answer.short_answer in quoted
        words = re.findall(r"\w+", answer.text)
        assert all(w in quoted for w in words)


@pytest.mark.parametrize("k", [1, 2, 5, 8])
def test_citations_stay_inside_retrieved_passages(retriever, seed_documents, k):
    for question in [
        "Who sold S-400 missiles to Turkey?",
        "Why did the US sanction Turkey?",
        "Which law lets the US penalise buyers of Russian arms, and was Turkey sanctioned under it?",
    ]:
        answer = ask(question, retriever, extractive(retriever), k=k)
        assert len(answer.passages) <= k
        check_citations(answer, seed_documents)
        rejected = extractive(retriever).answer(question, list(answer.passages), retriever.index)
        check_citations(rejected, seed_documents)  # the answer before abstention too


def test_json_schema_fields(retriever):
    record = ask("Who heads Turkey's Defense Industry Directorate?", retriever, extractive(retriever)).to_dict()
    assert {"question", "answer", "short_answer", "abstained", "score", "sentences", "citations", "passages"} <= set(
        record
    )
    assert set(record["citations"][0]) >= {"doc_id", "start", "end", "text", "passage_rank"}
    assert record["extra"]["threshold"] == load_threshold("extractive")
    json.dumps(record)


def test_the_extra_object_keeps_its_keys_now_that_its_fields_are_typed(retriever):
    question = "What is the value of India's S-400 contract?"
    answered = ask(question, retriever, extractive(retriever)).to_dict()["extra"]
    assert set(answered) == {"features", "threshold"}
    assert set(answered["features"]) == {"question_type", "expected", "similarity", "support", "slot", "missing"}
    assert isinstance(answered["features"]["expected"], list) and isinstance(answered["features"]["missing"], list)
    refused = ask(
        question, retriever, extractive(retriever), threshold=1.0
    ).to_dict()  # nothing is good enough: an abstention
    assert refused["abstained"] and refused["answer"] == "" and refused["short_answer"] is None
    assert set(refused["extra"]) == {"features", "message", "reason", "rejected", "threshold"}
    assert refused["extra"]["message"] == NO_ANSWER and refused["extra"]["reason"] == "below the abstention threshold"
    assert refused["extra"]["rejected"] == {
        "answer": ask(question, retriever, extractive(retriever)).text,
        "short_answer": "$5 billion",
    }
    json.dumps(refused)


@pytest.mark.parametrize("question", ["", "   \n\t ", "x" * 100_000, "?" * 50])
def test_bad_questions_are_refused_or_abstained(retriever, question):
    try:
        answer = ask(question, retriever, extractive(retriever))
    except RagError as exc:
        refused = str(exc)
        assert refused and "\n" not in refused
    else:
        assert answer.abstained


def test_control_characters_are_cleaned(retriever):
    answer = ask("Who heads\x00 Turkey's\x07 Defense\u200b Industry Directorate?\x1b", retriever, extractive(retriever))
    assert answer.short_answer == "Ismail Demir"


@pytest.mark.parametrize(
    "question", ["Wer ist der Präsident der Türkei?", "¿Quién vendió misiles a Turquía?", "Кто продал ракеты Турции?"]
)
def test_question_in_another_language_abstains(retriever, question):
    assert ask(question, retriever, extractive(retriever)).abstained


def test_threshold_file_is_calibrated():
    from rag.answer.thresholds import ABSTENTION_FILE

    record = json.loads(ABSTENTION_FILE.read_text())["extractive"]
    assert 0 < record["threshold"] < 1 and record["n_unanswerable"] > 0


def test_cli_ask(seed_settings, retriever, capsys, monkeypatch):
    from rag.cli import main

    monkeypatch.setenv("RAG_INDEX", str(seed_settings.index_dir))
    argv = [
        "ask",
        "Who heads Turkey's Defense Industry Directorate?",
        "-k",
        "3",
        "--no-rebuild",
        "--index",
        str(seed_settings.index_dir),
        "--answerer",
        "extractive",
    ]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "Short answer: Ismail Demir" in out and "Sources:" in out and re.search(r"\[1\] \S+ \[\d+:\d+\] “", out)
    assert main([*argv[:1], "How much did China pay for its S-400 missiles?", *argv[2:], "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["abstained"] and record["passages"]
    assert main(["ask", "  ", "--index", str(seed_settings.index_dir)]) == 2
    assert "error: the question is empty" in capsys.readouterr().err
