"""Sets the extractive answerer's abstention threshold on development questions.

Every dev question is answered without abstention; an answer is *correct* when
the question is answerable and `rag eval` would call it correct
(``rag.evaluate.metrics.is_correct``: token F1 ≥ 0.5, or the gold answer
cited). Answering at threshold t covers the questions scoring ≥ t; its *risk* is the share of those that are wrong (an unanswerable question
answered, or a wrong answer). The threshold chosen maximises the accuracy of
the answer/abstain decision (answered and correct, or abstained and
unanswerable); ties go to the lower risk, and the threshold is put half-way
between the two scores it separates. It is written to rag/data/abstention.json,
which the answerer reads.

Dev sets: by default the dev split of eval/seeds_gold.jsonl (the evaluation
set; its test split is never read here) plus eval/dev_questions.jsonl. Every
row must say its ``split``: a file with a row that does not is refused, since
an unsplit row could be a test question.

    .venv/bin/python eval/calibrate.py            # prints the risk–coverage table, writes the threshold
    .venv/bin/python eval/calibrate.py --dry-run  # prints only
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rag.errors import RagError  # noqa: E402  (after the path is set)
from rag.evaluate.gold import load_gold  # noqa: E402
from rag.evaluate.metrics import is_correct  # noqa: E402

DEFAULT_SETS = [ROOT / "eval" / "seeds_gold.jsonl", ROOT / "eval" / "dev_questions.jsonl"]


def load_dev(paths: list[Path], split: str = "dev") -> list[dict]:
    """Rows of the given split from gold files, each with its file name as ``source`` (files that do not
    exist are skipped).

    Raises RagError for a malformed file (``rag eval``'s validation), or one with a row that has no ``split``.
    """
    rows = []
    for path in paths:
        if not path.exists():
            print(f"note: {path} not found, skipped", file=sys.stderr)
            continue
        unsplit = [q.id for q in load_gold(path) if q.split is None]
        if unsplit:
            raise RagError(
                f"{path}: {len(unsplit)} rows have no 'split' (first: {unsplit[0]}); "
                'give each row "split": "dev" or "test", calibration reads only dev rows'
            )
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip() and (row := json.loads(line))["split"] == split:
                rows.append({**row, "source": path.name})
    return rows


def choose_threshold(scored: list[tuple[float, bool, bool]]) -> tuple[float, list[dict]]:
    """(threshold, table) from (score, answerable, correct) rows; the table has one row per candidate cut."""
    scores = sorted({s for s, _, _ in scored})
    cuts = [scores[0] - 1e-3] + [(a + b) / 2 for a, b in itertools.pairwise(scores)] + [scores[-1] + 1e-3]
    table = []
    for t in cuts:
        answered = [(a, c) for s, a, c in scored if s >= t]
        wrong = sum(1 for _, c in answered if not c)
        abstained_ok = sum(1 for s, a, _ in scored if s < t and not a)
        table.append(
            {
                "threshold": round(t, 4),
                "coverage": len(answered) / len(scored),
                "risk": wrong / len(answered) if answered else 0.0,
                "accuracy": (len(answered) - wrong + abstained_ok) / len(scored),
            }
        )
    best = max(table, key=lambda r: (r["accuracy"], -r["risk"]))
    return best["threshold"], table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dev", type=Path, nargs="+", default=DEFAULT_SETS, help="gold-format jsonl files")
    parser.add_argument("-k", type=int, default=5, help="passages per question (default 5, as `rag ask`)")
    parser.add_argument("--out", type=Path, default=ROOT / "rag" / "data" / "abstention.json")
    parser.add_argument("--dry-run", action="store_true", help="print the table, write nothing")
    args = parser.parse_args(argv)

    from rag.answer.pipeline import ask
    from rag.answer.registry import default_answerer
    from rag.search.embedding import default_embedder
    from rag.search.index import open_index
    from rag.search.retrieval import Retriever
    from rag.settings import Settings

    try:
        rows = load_dev(args.dev)
    except RagError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not rows or all(r["answerable"] for r in rows) or not any(r["answerable"] for r in rows):
        print("error: the dev set needs both answerable and unanswerable questions", file=sys.stderr)
        return 2
    embedder = default_embedder()
    retriever = Retriever(open_index(Settings(), embedder), embedder)
    answerer = default_answerer(retriever)
    scored = []
    print(f"{'id':<10} {'ans':<5} {'ok':<5} score  question")
    for row in rows:
        answer = ask(row["question"], retriever, answerer, k=args.k, threshold=float("-inf"))
        correct = bool(row["answerable"]) and is_correct(answer, row["answers"])
        scored.append((answer.score, bool(row["answerable"]), correct))
        print(f"{row['id']:<10} {row['answerable']!s:<5} {correct!s:<5} {answer.score:.3f}  {row['question'][:70]}")

    threshold, table = choose_threshold(scored)
    n_un = sum(1 for _, a, _ in scored if not a)
    print(f"\n{len(scored)} dev questions ({n_un} unanswerable) from {', '.join(sorted({r['source'] for r in rows}))}")
    print("\nrisk–coverage (answer when score ≥ threshold)")
    print(f"{'threshold':>9} {'coverage':>9} {'risk':>6} {'accuracy':>9}")
    for r in table:
        mark = "  ← chosen" if r["threshold"] == threshold else ""
        print(f"{r['threshold']:>9.4f} {r['coverage']:>9.2f} {r['risk']:>6.2f} {r['accuracy']:>9.2f}{mark}")
    chosen = next(r for r in table if r["threshold"] == threshold)
    print(
        f"\nthreshold {threshold:.4f}: coverage {chosen['coverage']:.2f}, risk {chosen['risk']:.2f}, "
        f"decision accuracy {chosen['accuracy']:.2f}"
    )
    if args.dry_run:
        return 0
    data = json.loads(args.out.read_text()) if args.out.exists() else {}
    data[answerer.name] = {
        "threshold": threshold,
        "rule": "maximise answer/abstain decision accuracy on the dev set; ties to lower risk",
        "dev_sets": sorted({r["source"] for r in rows}),
        "n_questions": len(scored),
        "n_unanswerable": n_un,
        "coverage": round(chosen["coverage"], 4),
        "risk": round(chosen["risk"], 4),
        "decision_accuracy": round(chosen["accuracy"], 4),
        "k": args.k,
        "calibrated": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(data, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
