"""Sets the rules' relevance threshold of generated sentences (``rag.answer.rules_relevance``) on development
questions.

A supported sentence of an LLM answer is shown only when the reader or these rules say it answers
(``rag.answer.relevance``); the rules say so when their score reaches this threshold. Otherwise it is listed
apart as true but no answer. No real model runs here: each sentence of
the passages retrieved for a dev question stands for a generated sentence that restates it, cited to itself.

* an *answer* sentence: the question is answerable, the sentence lies on a gold evidence quote and holds a
  gold answer;
* a *non-answer*: the question is unanswerable, or the sentence holds no gold answer and lies on no quote;
* anything else (a gold answer outside the quotes, a quote without the answer) is left out.

The threshold chosen maximises the share of answer sentences kept minus the share of non-answers kept
(Youden's J: the two classes are weighed alike, though non-answers are thirty times as many); ties go to
the lower threshold, as dropping a true answer costs a correct answer while keeping a non-answer costs
less (the citation checker has already vouched for it). It is put half-way between the two scores it
separates and written to rag/data/relevance.json.

Dev sets: the dev split of eval/seeds_gold.jsonl (its test split is never read here) plus
eval/dev_questions.jsonl, as eval/calibrate.py.

    .venv/bin/python eval/calibrate_relevance.py            # prints the table, writes the threshold
    .venv/bin/python eval/calibrate_relevance.py --dry-run  # prints only
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path

from calibrate import DEFAULT_SETS, ROOT, load_dev


def choose_threshold(scored: list[tuple[float, bool]]) -> tuple[float, list[dict]]:
    """(threshold, table) from (relevance, is an answer) rows; one table row per cut just below an answer."""
    answers = sorted((s for s, positive in scored if positive), reverse=True)
    others = [s for s, positive in scored if not positive]
    table = []
    for position in range(len(answers)):
        # Half-way below the answer at this position, so it and every higher one are kept.
        below = max((s for s in [*answers, *others] if s < answers[position]), default=answers[position] - 0.02)
        cut = round((answers[position] + below) / 2, 4)
        kept = (position + 1) / len(answers)
        others_kept = sum(1 for s in others if s >= cut) / max(len(others), 1)
        table.append({"threshold": cut, "answers_kept": kept, "non_answers_kept": others_kept})
    best = max(table, key=lambda r: (round(r["answers_kept"] - r["non_answers_kept"], 6), -r["threshold"]))
    return best["threshold"], table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dev", type=Path, nargs="+", default=DEFAULT_SETS, help="gold-format jsonl files")
    parser.add_argument("-k", type=int, default=5, help="passages per question (default 5, as `rag ask`)")
    parser.add_argument("--out", type=Path, default=ROOT / "rag" / "data" / "relevance.json")
    parser.add_argument("--dry-run", action="store_true", help="print the table, write nothing")
    args = parser.parse_args(argv)

    from rag.answer.extractive import ExtractiveAnswerer
    from rag.answer.pipeline import retrieve
    from rag.answer.rules_relevance import rules_relevance
    from rag.evaluate.metrics import answer_in_text
    from rag.records import Citation
    from rag.search.embedding import default_embedder
    from rag.search.index import open_index
    from rag.search.retrieval import Retriever
    from rag.settings import Settings
    from rag.text import locate_quote

    rows = load_dev(args.dev)
    embedder = default_embedder()
    index = open_index(Settings(), embedder)
    retriever = Retriever(index, embedder)
    sentences_of = ExtractiveAnswerer(embedder)
    scored: list[tuple[float, bool]] = []
    for row in rows:
        passages = retrieve(row["question"], retriever, args.k)
        quotes = []
        for evidence in row["evidence"]:
            doc = index.documents.get(evidence["doc_id"])
            located = locate_quote(doc.text, evidence["quote"]) if doc else None
            if located:
                quotes.append((evidence["doc_id"], *located))
        for candidate in sentences_of.candidates(row["question"], passages, index):
            s = candidate.sentence
            on_quote = any(d == s.doc_id and a < s.end and s.start < b for d, a, b in quotes)
            holds_answer = bool(row["answers"]) and answer_in_text(row["answers"], s.text) == 1.0
            if row["answerable"] and on_quote != holds_answer:
                continue  # ambiguous: left out
            positive = row["answerable"] and on_quote and holds_answer
            citation = Citation(s.doc_id, s.start, s.end, s.text, candidate.passage.rank)
            score, _ = rules_relevance(row["question"], s.text, [citation], passages, index, embedder)
            scored.append((score, positive))
            if positive:
                print(f"{row['id']:<10} answer {score:.3f}  {s.text[:90]}")

    n_answers = sum(1 for _, p in scored if p)
    threshold, table = choose_threshold(scored)
    print(f"\n{len(scored)} sentences ({n_answers} answers) of {len(rows)} dev questions")
    print(f"{'threshold':>9} {'answers kept':>13} {'non-answers kept':>17}")  # Youden's J is their difference
    for r in table:
        mark = "  ← chosen" if r["threshold"] == threshold else ""
        print(f"{r['threshold']:>9.4f} {r['answers_kept']:>13.2f} {r['non_answers_kept']:>17.2f}{mark}")
    chosen = next(r for r in table if r["threshold"] == threshold)
    if args.dry_run:
        return 0
    record = {
        "threshold": threshold,
        "rule": "maximise answer sentences kept minus non-answer sentences kept on the dev set; ties to the lower",
        "dev_sets": sorted({r["source"] for r in rows}),
        "n_questions": len(rows),
        "n_sentences": len(scored),
        "n_answer_sentences": n_answers,
        "answers_kept": round(chosen["answers_kept"], 4),
        "non_answers_kept": round(chosen["non_answers_kept"], 4),
        "k": args.k,
        "calibrated": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    args.out.write_text(json.dumps(record, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
