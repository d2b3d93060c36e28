"""Lean transformer graphs: torch's attention guards come out of an exported graph, and what the graph
computes stays the same bit for bit (the shipped span head, read with passages of unequal length)."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper

from rag.answer.reader.span_head import GRAPH_FILE, SpanHead
from rag.records import Passage
from rag.search.embedding import model_path
from rag.search.onnx_graph import drop_attention_guards, lean_graph
from rag.search.query_encoder import cpu_session

QUESTION = "How much was India's S-400 deal worth?"
PASSAGES = [
    "India signed a $5 billion deal for five S-400 units in 2018.",
    "The United States has threatened sanctions on countries that buy Russian arms, and Turkey, a NATO "
    "member, was the first to be sanctioned under the law after it took delivery of the system in 2019.",
]


def op_types(graph) -> list[str]:
    return [node.op_type for node in graph.node]


def test_the_span_head_loses_its_nan_guards_and_repeated_masks():
    graph = onnx.load(str(GRAPH_FILE)).graph
    layers = op_types(graph).count("Softmax")
    assert op_types(graph).count("IsNaN") == layers  # as torch exported it: one guard a layer

    removed = drop_attention_guards(graph)

    assert "IsNaN" not in op_types(graph)
    assert removed >= 2 * layers + (layers - 1)  # each guard's IsNaN and Where, and all but one mask Where
    assert drop_attention_guards(graph) == 0  # nothing left to remove


def test_the_lean_span_head_gives_the_same_logits_bit_for_bit():
    head = SpanHead(model_path() / "tokenizer.json")  # its session is the lean one
    passages = [Passage("doc", 0, 0, len(text), text, 0.0, rank) for rank, text in enumerate(PASSAGES, 1)]
    lean = head.read(QUESTION, passages)  # read together: the shorter passage padded, its padding masked
    head.session = cpu_session(GRAPH_FILE, 1)
    as_exported = head.read(QUESTION, passages)

    assert len(lean[0].starts) < len(lean[1].starts)
    for lean_logits, exported_logits in zip(lean, as_exported):
        assert np.array_equal(lean_logits.starts, exported_logits.starts)
        assert np.array_equal(lean_logits.ends, exported_logits.ends)


def test_a_where_that_is_no_guard_stays(tmp_path):
    # Where(IsNaN(x), 1, x) replaces NaN by one: not the guard, whose zero only a fully masked row sees
    one = helper.make_node("Constant", [], ["one"], value=helper.make_tensor("v", TensorProto.FLOAT, [], [1.0]))
    nodes = [one, helper.make_node("IsNaN", ["x"], ["nan"]), helper.make_node("Where", ["nan", "one", "x"], ["y"])]
    x, y = (helper.make_tensor_value_info(n, TensorProto.FLOAT, [2]) for n in ("x", "y"))
    model = helper.make_model(
        helper.make_graph(nodes, "not-a-guard", [x], [y]), opset_imports=[helper.make_opsetid("", 17)]
    )
    model.ir_version = 8
    path = tmp_path / "graph.onnx"
    onnx.save(model, str(path))

    assert lean_graph(path) == str(path)  # the file as it is
    output = cpu_session(path, 1, lean=True).run(None, {"x": np.array([np.nan, 2.0], dtype=np.float32)})[0]
    assert output.tolist() == [1.0, 2.0]
