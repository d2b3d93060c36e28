"""The span head's second stage: the news-quiz train set read as the product reads it.

SQuAD teaches the head to read Wikipedia paragraphs; news-quiz questions ("… this week. He is a valued
member of which team?") and search-result passages read differently. Each train-2024 question is
searched as ``rag eval`` searches it (as of its week, the shipped k); every retrieved passage holding
a gold answer (case-insensitive, whole words) becomes a training window with the answer's first
occurrence marked (distant supervision: no one marked these spans). A passage that holds none (of an
answerable question or of an unanswerable one) can be a window too, marked as answering nothing (the
[CLS] piece, as SQuAD 2.0 marks its unanswerable questions): SQuAD v1.1 shows the head an answer in
every paragraph, so its logits in a passage without one say nothing about that passage against others.

The ranker (eval/train_reader.py) must not learn from span features the head saw the answers of, so the
questions are cut into FOLDS folds by a hash of their id: a fold head is tuned without its fold and
reads that fold's questions when the ranker's features are collected (``--span-folds``).
"""

from __future__ import annotations

import hashlib
import random
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

FOLDS = 2


@dataclass(frozen=True)
class NewsExample:
    """A question with one retrieved passage and the gold answer's first occurrence in it; ``answer`` is
    None when the passage holds no gold answer (a window that answers nothing)."""

    question_id: str
    question: str
    passage: str
    answer_start: int
    answer: str | None


def fold_of(question_id: str, folds: int = FOLDS) -> int:
    """The fold of a question: a hash of its id, the same on every machine and in both scripts."""
    return int(hashlib.sha256(question_id.encode()).hexdigest(), 16) % folds


def first_answer(text: str, answers: list[str]) -> tuple[int, str] | None:
    """(start, text) of the earliest whole-word, case-insensitive occurrence of any answer in the text."""
    found = []
    for answer in answers:
        match = re.search(rf"(?<!\w){re.escape(answer)}(?!\w)", text, flags=re.IGNORECASE) if answer else None
        if match:
            found.append((match.start(), match.group()))
    return min(found) if found else None


def set_retriever(split_dir: Path, index_dir: Path) -> tuple[Any, Any, Any]:
    """(embedder, index, retriever) of a newsqa set: the index at ``index_dir`` as it is, or built there
    from the set's articles.jsonl when missing (45–65 min on 2 cores)."""
    from rag.search.embedding import default_embedder
    from rag.search.index import open_index
    from rag.search.retrieval import Retriever
    from rag.settings import Settings

    embedder = default_embedder()
    if index_dir.exists():  # as it is: a corpus path spelled differently must not trigger a rebuild
        index = open_index(Settings(index_dir=index_dir), embedder, rebuild=False)
    else:
        index = open_index(Settings(index_dir=index_dir).with_corpus([split_dir / "articles.jsonl"]), embedder)
    return embedder, index, Retriever(index, embedder)


def news_examples(split_dir: Path, index_dir: Path, k: int, negatives: float = 0.0) -> list[NewsExample]:
    """Every (answerable question, retrieved passage holding a gold answer) of the set, and ``negatives``
    times as many retrieved passages that hold none (drawn with a fixed seed from every question's)."""
    from rag.answer.pipeline import retrieve
    from rag.evaluate.gold import WEEK_SLACK_DAYS, dated, load_gold

    _, _, retriever = set_retriever(split_dir, index_dir)
    examples, empty = [], []
    for gold in dated(load_gold(split_dir / "questions.jsonl"), None, use_gold=True, week_slack=WEEK_SLACK_DAYS):
        for passage in retrieve(gold.question, retriever.dated(gold.as_of), k):
            hit = first_answer(passage.text, list(gold.answers))
            if hit:
                examples.append(NewsExample(gold.id, gold.question, passage.text, *hit))
            else:
                empty.append(NewsExample(gold.id, gold.question, passage.text, 0, None))
    wanted = min(len(empty), round(negatives * len(examples)))
    return examples + random.Random(0).sample(empty, wanted)
