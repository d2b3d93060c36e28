"""Hybrid retrieval over the real seed index."""

import pytest

from rag.search.retrieval import Retriever, reciprocal_rank_fusion

# (question, text the passage that answers it must contain)
QUESTIONS = [
    ("When did Turkey's S-400 launchpads arrive?", "On July 12"),
    ("How big is India's missile deal with Russia?", "$5 billion contract"),
    ("What kind of analyst is Michael Kofman?", "a security analyst who focuses on Russia"),
    ("Where are older S-300 systems in service?", "Algeria, Greece, Bulgaria, Belarus, Egypt, Syria and Vietnam"),
    ("What does the CAATSA law allow Washington to do?", "allows the US government to penalise countries"),
    ("Which think tank employs Omar Lamrani?", "senior military analyst at Stratfor"),
    ("How much of Egypt's weaponry came from America before 2012?", "76 percent"),
    ("Which jet programme was Turkey expelled from?", "F-35 Lightning II jet program"),
    ("Who heads Turkey's defence procurement agency that was sanctioned?", "its chief Ismail Demir"),
    ("Which US official thanked Turkey for help with the Afghan evacuation?", "Antony Blinken"),
]


@pytest.mark.parametrize(("question", "answer"), QUESTIONS)
def test_the_passage_with_the_answer_ranks_in_the_top_3(retriever, question, answer):
    passages = retriever.search(question, k=3)
    assert any(answer in p.text for p in passages), [p.text[:80] for p in passages]


def test_passages_carry_exact_offsets_and_1_based_ranks(retriever, seed_documents):
    passages = retriever.search("What do analysts say about sanctions on buyers of Russian arms?", k=5)
    assert [p.rank for p in passages] == list(range(1, len(passages) + 1))
    for p in passages:
        assert seed_documents[p.doc_id].text[p.start : p.end] == p.text


@pytest.mark.parametrize("mode", ["dense", "bm25", "hybrid"])
def test_overlapping_chunks_never_show_the_same_text_twice(retriever, mode):
    passages = retriever.search("S-400 missile sales Russia Turkey sanctions", k=8, mode=mode)
    for a in passages:
        for b in passages:
            if a is not b and a.doc_id == b.doc_id:
                assert a.end <= b.start or b.end <= a.start


def test_every_mode_finds_an_exact_name(retriever):
    for mode in ("dense", "bm25", "hybrid"):
        assert "Ismail Demir" in retriever.search("Ismail Demir", k=3, mode=mode)[0].text


def test_a_question_with_no_known_word_still_gets_dense_results_but_no_bm25(retriever):
    assert retriever.search("zyxqv wrbl", k=3, mode="bm25") == []
    assert len(retriever.search("zyxqv wrbl", k=3, mode="hybrid")) == 3


def test_reciprocal_rank_fusion_adds_reciprocal_ranks():
    fused = reciprocal_rank_fusion([[7, 3], [3]], k=60)
    assert [item for item, _ in fused] == [3, 7]
    assert fused[0][1] == pytest.approx(1 / 62 + 1 / 61)


def test_an_unknown_mode_is_rejected(seed_index, embedder):
    with pytest.raises(ValueError, match="unknown retriever"):
        Retriever(seed_index, embedder, mode="magic")
