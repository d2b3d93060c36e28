"""What a question asks for, whatever shape it comes in: context sentences, emoji, several questions.

News quizzes often open with a context sentence ("Gas prices hit a record this week. How much does a
gallon cost?"); the analysis takes the question sentence for its structure and every sentence for its
content words, and never loops however the parser links the tokens.
"""

from __future__ import annotations

import pytest

from rag.answer.pipeline import ask
from rag.answer.question import analyse_question

from .conftest import time_limit

CONTEXT_FIRST = "Turkey bought missiles. How much was India's S-400 contract worth?"


def test_a_context_sentence_before_the_question_is_analysed_without_hanging():
    with time_limit(30, "analysing a two-sentence question"):
        info = analyse_question(CONTEXT_FIRST)
    assert info.kind == "how much" and "MONEY" in info.expected
    # The names of the question sentence constrain the answer; the context's names only need support.
    assert {"india", "s-400"} <= set(info.slot_names)
    assert "turkey" in info.other_names and "turkey" not in info.slot_names
    assert {"buy", "missile", "contract"} <= info.content


def test_the_question_sentence_is_found_after_or_before_the_context():
    with time_limit(30, "analysing questions with context"):
        before = analyse_question("Who heads Turkey's Defense Industry Directorate? It was sanctioned in 2020.")
        after = analyse_question(
            "The directorate was sanctioned in 2020. Who heads Turkey's Defense Industry Directorate?"
        )
    assert before.kind == after.kind == "who"
    assert before.expected == after.expected and "PERSON" in before.expected
    assert set(before.slot_names) == set(after.slot_names) and "turkey" in before.slot_names


@pytest.mark.parametrize(
    "question",
    [
        "🚀🚀 Who heads Turkey's Defense Industry Directorate? 🇹🇷🔥",
        "Who heads Turkey's Defense Industry Directorate 🤔? 😀 Tell me!",
        "😀. 😀. When were the doubts settled?",
        "Turkey. Russia. India. China. Which law? Really? What?",
    ],
)
def test_emoji_and_fragments_around_a_question_do_not_hang(question):
    with time_limit(30, f"analysing {question!r}"):
        info = analyse_question(question)
    assert info.text == question


def test_ask_answers_a_question_that_opens_with_a_context_sentence(retriever):
    with time_limit(60, "asking a two-sentence question"):
        answer = ask(
            "Turkey was sanctioned over its S-400 purchase. Who is the chief of Turkey's Defense Industry Directorate?",
            retriever,
        )
    assert not answer.abstained and answer.short_answer == "Ismail Demir"


def test_which_with_an_untyped_noun_accepts_any_named_thing():
    info = analyse_question("Which streaming service raised its prices this week?")
    assert info.kind == "which" and {"ORG", "PRODUCT", "PERSON", "GPE"} <= set(info.expected)
    assert analyse_question("Which country raised its prices?").expected == ("GPE", "LOC")  # a typed noun


def test_who_is_a_name_asks_for_a_person_like_entity_not_a_definition():
    info = analyse_question("Who is Maria Lopez?")
    assert info.kind == "who" and info.expected[0] == "PERSON"
