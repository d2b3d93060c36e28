"""The span head (MiniLM fine-tuned on SQuAD, int8): where it says answers start and end in retrieved seed
passages, the features it gives candidates, and its hash check."""

from __future__ import annotations

import math
import shutil

import numpy as np
import pytest

from rag.answer.pipeline import retrieve
from rag.answer.reader.span_head import CARD_FILE, GRAPH_FILE, SPAN_FEATURES, SpanHead, load_span_head
from rag.errors import RagError
from rag.search.embedding import model_path

TOKENIZER = model_path() / "tokenizer.json"


@pytest.fixture(scope="module")
def head() -> SpanHead:
    return load_span_head(TOKENIZER)


def best_span(head, question, passage, document_text) -> str:
    [logits] = head.read(question, [passage])
    first = int(np.argmax(logits.starts))
    last = first + int(np.argmax(logits.ends[first : first + 30]))
    return document_text[logits.spans[first, 0] : logits.spans[last, 1]]


@pytest.mark.parametrize(
    ("question", "answer"),
    [
        ("Who heads Turkey's Defense Industry Directorate?", "Ismail Demir"),
        ("How much was India's S-400 deal worth?", "$5 billion"),
    ],
)
def test_its_best_span_in_the_passage_holding_the_answer_is_the_answer(head, retriever, seed_index, question, answer):
    passage = next(p for p in retrieve(question, retriever, 10) if answer in p.text)
    text = seed_index.documents[passage.doc_id].text
    assert best_span(head, question, passage, text) == answer


def test_a_candidate_gets_the_start_logit_of_its_first_word_piece_and_the_end_logit_of_its_last(
    head, retriever, seed_index
):
    question = "Who heads Turkey's Defense Industry Directorate?"
    passage = next(p for p in retrieve(question, retriever, 10) if "Ismail Demir" in p.text)
    [logits] = head.read(question, [passage])
    start = passage.start + passage.text.index("Ismail Demir")
    answer = logits.at(start, start + len("Ismail Demir"))
    first_name = logits.at(start, start + len("Ismail"))
    assert answer["span_start"] == first_name["span_start"]
    assert answer["span"] == pytest.approx(answer["span_start"] + answer["span_end"])
    assert answer["span_vs_none"] == pytest.approx(answer["span"] - logits.none)  # against "no answer here"
    assert set(answer) == set(SPAN_FEATURES)
    # every word piece maps back inside its passage, in order
    assert passage.start <= logits.spans[0, 0] and logits.spans[-1, 1] <= passage.end
    assert np.all(np.diff(logits.spans[:, 0]) >= 0)


def test_text_the_head_did_not_read_has_no_value(head, retriever):
    question = "Who heads Turkey's Defense Industry Directorate?"
    passage = retrieve(question, retriever, 1)[0]
    [logits] = head.read(question, [passage])
    beyond = logits.at(passage.end + 10, passage.end + 20)
    assert all(math.isnan(v) for v in beyond.values())


def test_an_altered_graph_is_refused_with_the_fix(tmp_path):
    graph = tmp_path / GRAPH_FILE.name
    shutil.copyfile(GRAPH_FILE, graph)
    with graph.open("ab") as handle:
        handle.write(b"\0")
    with pytest.raises(RagError, match=r"does not match the trained span head.*eval/train_span_reader\.py"):
        SpanHead(TOKENIZER, graph, CARD_FILE)


def test_a_missing_graph_is_refused_with_the_fix(tmp_path):
    with pytest.raises(RagError, match=r"cannot read the span head.*eval/train_span_reader\.py"):
        SpanHead(TOKENIZER, tmp_path / "absent.onnx", CARD_FILE)
