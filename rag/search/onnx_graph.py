"""Transformer graphs exported from torch, made leaner before onnxruntime runs them.

torch's export of BERT attention (scaled dot-product attention, ``torch.onnx.export`` at opset 17) adds
to every layer a guard, ``Where(IsNaN(p), 0, p)`` over the attention probabilities, that turns the NaN
of a row whose keys are all masked into zeros, and rebuilds the same additive mask, ``Where(mask, 0,
-inf)``, from the same boolean mask. Our inputs always let a row attend to its first token ([CLS]), so
the guard never fires, and one mask serves every layer: without them the outputs are equal bit for
bit and the span head reads in about 15 % less time (docs/answers.md, Speed). Both are the work of
elementwise passes over (batch, heads, tokens, tokens) tensors that onnxruntime does not remove itself.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def lean_graph(path: Path) -> bytes | str:
    """The serialised graph at ``path`` without torch's attention guards and repeated masks, or the path
    itself when it has neither (onnxruntime takes either)."""
    import onnx

    model = onnx.load(str(path))
    return model.SerializeToString() if drop_attention_guards(model.graph) else str(path)


def drop_attention_guards(graph: Any) -> int:
    """Removes from ``graph`` (an ``onnx.GraphProto``, in place) every ``Where(IsNaN(p), 0, p)`` and every
    ``Where`` that repeats an earlier one (same inputs, same constants); returns the nodes removed."""
    from onnx import AttributeProto, numpy_helper

    nested = (AttributeProto.GRAPH, AttributeProto.GRAPHS)
    if any(attribute.type in nested for node in graph.node for attribute in node.attribute):
        return 0  # names a subgraph reads are not renamed here: leave such a graph as it is
    kept_names = {output.name for output in graph.output}
    producers = {output: node for node in graph.node for output in node.output}

    readers: dict[str, int] = {}
    for node in graph.node:
        for name in node.input:
            readers[name] = readers.get(name, 0) + 1

    def constant(name: str) -> tuple | None:
        node = producers.get(name)
        if node is None or node.op_type != "Constant" or not node.attribute or not node.attribute[0].HasField("t"):
            return None
        value = numpy_helper.to_array(node.attribute[0].t)
        return (value.dtype.str, value.shape, value.tobytes())

    def is_zero(name: str) -> bool:
        value = constant(name)
        return value is not None and not any(value[2])

    renamed: dict[str, str] = {}
    dropped: set[int] = set()
    seen: dict[tuple, str] = {}
    for node in graph.node:
        if node.op_type != "Where" or node.output[0] in kept_names:
            continue
        condition, if_true, if_false = node.input
        guard = producers.get(condition)
        if (
            guard is not None
            and guard.op_type == "IsNaN"
            and guard.input[0] == if_false
            and readers[condition] == 1
            and is_zero(if_true)
        ):
            renamed[node.output[0]] = if_false
            dropped |= {id(node), id(guard)}
            continue
        key = tuple(constant(name) or name for name in node.input)
        if key in seen:
            renamed[node.output[0]] = seen[key]
            dropped.add(id(node))
        else:
            seen[key] = node.output[0]
    if not dropped:
        return 0
    kept = [node for node in graph.node if id(node) not in dropped]
    for node in kept:  # constants left unread are onnxruntime's to drop, as it drops any
        node.input[:] = [_resolved(name, renamed) for name in node.input]
    del graph.node[:]
    graph.node.extend(kept)
    return len(dropped)


def _resolved(name: str, renamed: dict[str, str]) -> str:
    while name in renamed:  # a removed node's output may stand for another removed node's
        name = renamed[name]
    return name
