"""The span head: the bundled MiniLM fine-tuned on SQuAD, then on news-quiz passages, to say where in a
passage an answer starts and ends (``eval/train_span_reader.py``). Its logits at a candidate are three
of the ranker's features.

It reads the question with each of the first few passages (one ONNX int8 call, the passages batched;
how many is the fitted reader's ``span_reads``) on a worker thread, while the reader computes its other
features; candidates of the passages it does not read get no value (missing, as LightGBM expects).
The graph, ``rag/data/span_reader.int8.onnx``, is checked against the SHA-256 in ``span_reader.json``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from rag.answer.reader.model import checked_card
from rag.errors import RagError
from rag.records import Passage
from rag.search.query_encoder import cpu_session
from rag.settings import DATA_DIR, env_number

if TYPE_CHECKING:
    from rag.answer.reader.features import Occurrence

GRAPH_FILE = DATA_DIR / "span_reader.int8.onnx"
CARD_FILE = GRAPH_FILE.with_name("span_reader.json")
MAX_PIECES = 320  # question and passage, word pieces; a 160-token chunk takes about 200
SPAN_READS = 4  # passages read, best first, when fitting (chosen on dev-2023 against time: docs/answers.md)
READS_VARIABLE = "RAG_SPAN_READS"  # fewer passages for a slow CPU (unset: as fitted)
# The span against the passage's [CLS] score means something only for a head tuned with passages that hold
# no answer (``train_span_reader.py --news-negatives``: tried, not shipped; docs/answers.md), so
# eval/train_reader.py fits on it only for such a head; the shipped ranker does not read it.
NO_ANSWER_FEATURE = "span_vs_none"
SPAN_FEATURES = ("span_start", "span_end", "span", NO_ANSWER_FEATURE)
# Two threads: reading 4 passages on one core takes longer than the reader's other features on the other,
# so the head is what the answer waits for (bench p50 158 against 141-149 ms; docs/answers.md, Speed).
THREADS = 2
UNREAD = dict.fromkeys(SPAN_FEATURES, math.nan)
T = TypeVar("T")


@dataclass(frozen=True)
class PassageLogits:
    """The head's view of one passage: per word piece of the passage, its character span in the document
    and its start and end logits; and the score of "no answer in this passage" (start and end at [CLS])."""

    spans: np.ndarray  # (pieces, 2) document offsets
    starts: np.ndarray
    ends: np.ndarray
    none: float

    def at(self, start: int, end: int) -> dict[str, float]:
        """The features of the text at document offsets [start, end): the start logit of its first word
        piece, the end logit of its last, their sum, and the sum against the passage's no-answer score;
        missing when the passage was cut before it."""
        first = np.flatnonzero(self.spans[:, 1] > start)
        last = np.flatnonzero(self.spans[:, 0] < end)
        if not len(first) or not len(last) or first[0] > last[-1]:
            return dict(UNREAD)
        s, e = float(self.starts[first[0]]), float(self.ends[last[-1]])
        return {"span_start": s, "span_end": e, "span": s + e, NO_ANSWER_FEATURE: s + e - self.none}


class SpanHead:
    """The fine-tuned span head on onnxruntime, with the MiniLM's own tokenizer (its vocabulary)."""

    def __init__(self, tokenizer_file: Path, graph_file: Path = GRAPH_FILE, card_file: Path = CARD_FILE):
        from tokenizers import Tokenizer

        names = ("the span head", "the trained span head")
        self.card = checked_card(graph_file, card_file, "sha256", names, "eval/train_span_reader.py")
        self.session: Any = cpu_session(graph_file, THREADS, lean=True)
        self.tokenizer = Tokenizer.from_file(str(tokenizer_file))
        self.tokenizer.enable_truncation(MAX_PIECES, strategy="only_second")
        self.tokenizer.enable_padding()

    def read(self, question: str, passages: list[Passage]) -> list[PassageLogits]:
        """Start and end logits over each passage's word pieces, read with the question."""
        if not passages:
            return []
        encodings = self.tokenizer.encode_batch([(question, p.text) for p in passages])
        feeds = {
            name: np.asarray([getattr(e, attribute) for e in encodings], dtype=np.int64)
            for name, attribute in (
                ("input_ids", "ids"),
                ("attention_mask", "attention_mask"),
                ("token_type_ids", "type_ids"),
            )
        }
        starts, ends = self.session.run(["start_logits", "end_logits"], feeds)
        read = []
        for row, (encoding, passage) in enumerate(zip(encodings, passages)):
            pieces = np.array([i for i, s in enumerate(encoding.sequence_ids) if s == 1], dtype=np.int64)
            spans = np.array([encoding.offsets[i] for i in pieces], dtype=np.int64).reshape(-1, 2) + passage.start
            none = float(starts[row, 0] + ends[row, 0])  # piece 0 is [CLS]
            read.append(PassageLogits(spans, starts[row, pieces], ends[row, pieces], none))
        return read

    def start_reading(self, question: str, passages: list[Passage], reads: int) -> Future[SpanReading]:
        """Reads the passages ranked among the first ``reads`` on a worker thread and returns at once:
        onnxruntime releases the GIL, so the reader's spaCy features are computed meanwhile."""
        first = [p for p in passages if p.rank <= reads]
        return _WORKER.submit(
            lambda: SpanReading(dict(zip(((p.doc_id, p.start) for p in first), self.read(question, first))))
        )


@dataclass(frozen=True)
class SpanReading:
    """The head's logits for the passages it read, by (document, passage start)."""

    logits: dict[tuple[str, int], PassageLogits]

    def add_features(self, occurrences: list[Occurrence]) -> None:
        """The span features of every occurrence: read in its passage, or missing when the head did not
        read that passage."""
        for o in occurrences:
            logits = self.logits.get((o.doc_id, o.sentence.passage.start))
            o.features.update(logits.at(o.start, o.end) if logits is not None else UNREAD)


# One worker for every reader of the process: the head's reads queue rather than oversubscribe the
# cores the question's thread shares with them.
_WORKER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="span-head")


def in_background(call: Callable[[], T]) -> Future[T]:
    """Runs ``call`` on the head's worker, after the reads queued before it (a core the reader's own
    Python work leaves free once the head is done)."""
    return _WORKER.submit(call)


def reads_asked(fitted: int) -> int:
    """The passages ``RAG_SPAN_READS`` asks the head to read (``fitted`` when unset). Fewer is faster on a
    slow CPU and answers worse (docs/answers.md, Speed); RagError when not between 0 and ``fitted``."""
    reads = int(env_number(READS_VARIABLE, fitted, int))
    if not 0 <= reads <= fitted:
        raise RagError(
            f"{READS_VARIABLE}={reads} is not between 0 and {fitted}, the passages the reader was fitted to "
            f"read with its span head: set it like {READS_VARIABLE}=2 (0 turns the head off), or unset it"
        )
    return reads


@lru_cache(maxsize=2)
def load_span_head(tokenizer_file: Path) -> SpanHead:
    """The shipped span head (one per process); RagError naming the fix when its graph is missing or altered."""
    return SpanHead(tokenizer_file)
