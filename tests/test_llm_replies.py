"""Replies a real small model writes (issue 13), each reproduced on the scripted loopback server: markers at
the start of a line, citations to the wrong passage, declines mixed with passage dumps, true sentences that
do not answer the question, replies made only of markers.
"""

from __future__ import annotations

import re

from rag.answer.llm.reply import parse_reply
from rag.answer.pipeline import ask, retrieve

from .llm_server import Step
from .test_llm_answerer import INDIA, assert_citations_valid, faithful

# ---------------------------------------------------------------------------
# Defect 1: a marker at the start of a line belongs to the sentence after it


def test_a_marker_at_the_start_of_a_line_cites_the_sentence_that_follows():
    sentences = parse_reply("[1] Alpha signed in 2019.\n[2] Beta paid $5 billion.")
    assert [(s.text, s.labels) for s in sentences] == [("Alpha signed in 2019.", (1,)), ("Beta paid $5 billion.", (2,))]
    # The same after a list mark, after two markers, and beside the usual trailing markers.
    sentences = parse_reply("1. [3] Alpha signed.\n- [1][2] Beta paid. Gamma left [4].\nDelta came.\n[5]")
    assert [(s.text, s.labels) for s in sentences] == [
        ("Alpha signed.", (3,)),
        ("Beta paid.", (1, 2)),
        ("Gamma left.", (4,)),
        ("Delta came.", (5,)),  # a marker alone on its line still closes the sentence before it
    ]


def test_a_reply_with_markers_leading_each_line_keeps_both_sentences(script, answerer, retriever, seed_index):
    def reply(body: dict) -> str:
        """The faithful reply with each marker moved to the start of its sentence's line."""
        return re.sub(r"\s*(.+?) \[(\d+)\]\.", r"[\2] \1.\n", faithful(body)).strip()

    script.steps = [Step("reply", reply)]
    answer = ask(INDIA, retriever, answerer, k=5)
    assert [s.text for s in answer.sentences] == [
        "India signed a $5 billion contract for the S-400 and expects its first shipment next year.",
        "China already has S-400 surface-to-air missiles.",
    ]
    assert answer.removed == ()
    assert_citations_valid(answer, seed_index)
    passages = retrieve(INDIA, retriever, 5)
    assert [s.citations[0].passage_rank for s in answer.sentences] == [
        next(p.rank for p in passages if "$5 billion contract" in p.text),
        next(p.rank for p in passages if "China already has S-400" in p.text),
    ]
