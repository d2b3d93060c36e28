"""Fits the answer reader (rag/data/reader.txt, reader.json) and its abstention threshold, and prints
the dev figures.

Data: the news-quiz sets in ../shared/benchmarks/newsqa (their README: fit on train-2024, choose on
dev-2023; the articles are never copied here). For each question the product itself retrieves the
passages (``rag.answer.pipeline.retrieve``, k=--k; as of the question's week, as ``rag eval`` does,
unless --no-as-of) and the reader lists every candidate with its features (``ReaderAnswerer.read``),
so training sees exactly what answering sees. Candidates are labelled by token F1 with the gold
answers (3: exact, 1: F1 ≥ 0.5, 0: else) and ranked by LightGBM lambdarank. The calibration (logistic
regression over the best candidate's score, lead and support, the transformer cosine of its sentence
with the question, and how much of the question the passages cover) is fitted on out-of-fold train
scores, plus every train question read against another question's passages (an off-topic read,
unanswerable: what a corpus that never reported the topic looks like); the abstention threshold is chosen on dev-2023 by risk–coverage: the highest abstention F1
that leaves at most 10 % of answerable questions abstained.

    .venv/bin/python eval/train_reader.py                       # the shipped model (static sentence vectors)
    .venv/bin/python eval/train_reader.py --train-index DIR --dev-index DIR --report runs/reader

The span head was tuned on train-2024 (eval/train_span_reader.py), so train's span features are read
by its fold heads, each tuned without the questions it reads: --span-folds names the folder that run
wrote them to (default runs/span-reader, its default --out); they are checked against the SHA-256s
in rag/data/span_reader.json.

An index missing at --train-index/--dev-index is built from the set's articles.jsonl first (about
45–65 min each on 2 cores). Collecting the features took 22 min a set (both sets at once, load 5–9);
they are cached under --cache, after which a fit with its 5 out-of-fold fits takes 13 min at load 3–8.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import pickle
import sys
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from eval.reader_fit import confidence_table, fit_calibration, fit_ranker, out_of_fold, pick, risk_coverage  # noqa: E402
from eval.span_news import fold_of, set_retriever  # noqa: E402
from rag.answer.pipeline import retrieve  # noqa: E402
from rag.answer.reader.answerer import ReaderAnswerer  # noqa: E402
from rag.answer.reader.model import CARD_FILE, MODEL_FILE, file_sha256  # noqa: E402
from rag.answer.reader.span_head import NO_ANSWER_FEATURE, SPAN_FEATURES, SPAN_READS, UNREAD, SpanHead, load_span_head  # noqa: E402
from rag.evaluate.gold import WEEK_SLACK_DAYS, dated, load_gold  # noqa: E402
from rag.evaluate.metrics import answer_in_text, exact_match, token_f1  # noqa: E402
from rag.search.embedding import default_embedder  # noqa: E402
from rag.settings import DATA_DIR  # noqa: E402

NEWSQA = ROOT.parent / "shared" / "benchmarks" / "newsqa"
SEED = 0
NEAR_MISS_DEPTH = 4  # a near-miss read searches this many times k deep, to fill k once the answer's articles go
SENTENCE_VECTORS = ("model", "static")
FEATURE_GROUPS = {
    "(none)": (),
    "agreement across passages": ("n_occ", "n_docs", "n_sents", "best_rank", "sum_sim", "max_w10", "n_top3",
                                  "n_super", "n_sub", "super_sim", "sub_sim", "family_sim"),
    "meaning (vectors)": ("cand_q_sim", "cand_type_sim", "type_label_sim", "sent_sim"),
    "syntax (dependency, verbs)": ("dep", "verb_in_q", "head_in_q", "qverb_match", "role_match", "wh_role"),
    "question words nearby": ("w5", "w10", "prox", "min_dist", "sent_overlap", "focus_overlap"),
    "expected type": ("qtype", "label", "tn_near", "root_is_tn", "has_tn"),
    "passage rank and score": ("p_rank", "p_score", "sent_pos"),
    "article date and title": ("age_gap", "q_recent", "fresh_docs", "title_overlap"),
    "span head": SPAN_FEATURES,
}  # fmt: skip


def collect(
    split_dir: Path,
    index_dir: Path,
    k: int,
    cache: Path,
    as_of: bool = True,
    off_topic: bool = False,
    heads: dict[int, SpanHead] | None = None,
    near_miss: bool = False,
) -> list[dict]:
    """Per question: gold, and every candidate (text, label, features) the reader lists, cached.

    With ``as_of`` each question is searched as of its week, as ``rag eval`` does by default. With
    ``off_topic`` each question is read against the passages retrieved for another question, half the
    set (about six months) away, and counts as unanswerable: what a corpus that never reported the
    topic looks like to the reader, which the calibration must learn to doubt. With ``near_miss`` each
    answerable question is read against its own passages less every article that holds a gold answer
    (the next ones fill the k), and counts as unanswerable: the topic is reported, the answer is not.
    ``heads``: the span head that reads each fold's questions (``eval/span_news.py``); None: the shipped
    head reads them all."""
    cache.mkdir(parents=True, exist_ok=True)
    heads = heads or {0: shipped_head()}
    heads_id = hashlib.sha256(" ".join(h.card["sha256"] for h in heads.values()).encode())
    name = f"{split_dir.name}-k{k}{'-asof' if as_of else ''}{'-offtopic' if off_topic else ''}"
    name += "-nearmiss" if near_miss else ""
    stored = cache / f"{name}-span-{heads_id.hexdigest()[:10]}.pkl"
    if stored.exists():
        return pickle.loads(stored.read_bytes())
    embedder, index, retriever = set_retriever(split_dir, index_dir)
    # The span head reads every passage here; how many it reads when answering is chosen at fit time
    # (``span_reads``), which only drops the features of the passages it would not read.
    readers = {
        (fold, mode): ReaderAnswerer(embedder, sentence_vectors=mode, span_reads=k, head=head)
        for fold, head in heads.items()
        for mode in SENTENCE_VECTORS
    }
    rows, started = [], time.monotonic()
    questions = dated(load_gold(split_dir / "questions.jsonl"), None, use_gold=as_of, week_slack=WEEK_SLACK_DAYS)
    if near_miss:
        questions = [q for q in questions if q.answerable]
    for number, gold in enumerate(questions, 1):
        source = questions[(number - 1 + len(questions) // 2) % len(questions)] if off_topic else gold
        if near_miss:
            passages = _without_the_answer(gold, retriever.dated(gold.as_of), index, k)
        else:
            passages = retrieve(source.question, retriever.dated(source.as_of), k)
        withheld = off_topic or near_miss
        row = {
            "id": f"{gold.id}~{source.id}" if off_topic else f"{gold.id}~near-miss" if near_miss else gold.id,
            "answerable": gold.answerable and not withheld,
            "answers": [] if withheld else list(gold.answers),
            "best_passage_score": max((p.score for p in passages), default=0.0),
        }
        fold = fold_of(gold.id) if len(heads) > 1 else 0
        for mode in SENTENCE_VECTORS:  # the parse is shared: the second costs little
            q, occurrences = readers[fold, mode].read(gold.question, passages, index)
            row[mode] = [(o.text, o.norm, o.label, o.features) for o in occurrences]
        row["kind"] = q.kind
        rows.append(row)
        if number % 50 == 0:
            print(f"  {split_dir.name}: {number}/{len(questions)} questions, {time.monotonic() - started:.0f} s")
    stored.write_bytes(pickle.dumps(rows))
    return rows


def _without_the_answer(gold, retriever, index, k: int) -> list:
    """The question's passages, retrieved deeper, less every article whose text holds a gold answer;
    the first k left, ranked 1..k."""
    found = retrieve(gold.question, retriever, k * NEAR_MISS_DEPTH)
    holding = {p.doc_id for p in found if answer_in_text(gold.answers, index.documents[p.doc_id].text)}
    kept = [p for p in found if p.doc_id not in holding][:k]
    return [replace(p, rank=rank) for rank, p in enumerate(kept, 1)]


def shipped_head() -> SpanHead:
    return load_span_head(default_embedder().path / "tokenizer.json")


def ranker_columns(rows: list[dict]) -> list[str]:
    """The features the ranker is fitted on: every one the rows' candidates carry, less the span against
    "no answer" unless the shipped span head was tuned on passages without one (for any other head its
    [CLS] score means nothing)."""
    names = {name for row in rows for *_, features in row["candidates"] for name in features}
    if not shipped_head().card.get("news", {}).get("windows_without_answer"):
        names.discard(NO_ANSWER_FEATURE)
    return sorted(names)


def fold_heads(folder: Path, card: dict | None = None) -> dict[int, SpanHead] | None:
    """The heads that read each fold of train when the span head (its ``card``, default the shipped one's)
    was tuned on it (the card's ``news``); None when it was not. Exits naming the fix when they are
    missing or not that head's folds."""
    news = (card or shipped_head().card).get("news")
    if not news:
        return None
    tokenizer = default_embedder().path / "tokenizer.json"
    heads = {}
    for fold, digest in news["fold_sha256"].items():
        graph = folder / f"fold-{fold}.int8.onnx"
        if not graph.exists() or file_sha256(graph) != digest:
            sys.exit(
                f"error: the span head was tuned on {news['set']}: its fold heads must read the train features, "
                f"and {graph} is missing or not that head's fold: pass --span-folds with the --out folder "
                "of the eval/train_span_reader.py run that wrote rag/data/span_reader.int8.onnx"
            )
        heads[int(fold)] = SpanHead(tokenizer, graph, graph.with_name(f"fold-{fold}.json"))
    return heads


def span_read(candidates: list[tuple], reads: int) -> list[tuple]:
    """The candidates as answering sees them when the span head reads only the first ``reads`` passages."""
    return [(t, n, label, f if f["p_rank"] <= reads else {**f, **UNREAD}) for t, n, label, f in candidates]


def short_answer_scores(rows: list[dict], picks: list[dict | None]) -> dict[str, float]:
    answerable = [(r, p) for r, p in zip(rows, picks) if r["answerable"]]
    f1 = [token_f1(p["text"], r["answers"]) if p else 0.0 for r, p in answerable]
    em = [exact_match(p["text"], r["answers"]) if p else 0.0 for r, p in answerable]
    return {"token_f1": float(np.mean(f1)), "exact_match": float(np.mean(em)), "questions": len(answerable)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--train", type=Path, default=NEWSQA / "train-2024")
    parser.add_argument("--dev", type=Path, default=NEWSQA / "dev-2023")
    parser.add_argument("--train-index", type=Path, default=ROOT / "runs" / "index-train-2024")
    parser.add_argument("--dev-index", type=Path, default=ROOT / "runs" / "index-dev-2023")
    parser.add_argument("--k", type=int, default=10, help="passages the reader reads (default 10)")
    parser.add_argument(
        "--span-reads", type=int, default=SPAN_READS, help=f"passages the span head reads (default {SPAN_READS})"
    )
    parser.add_argument(
        "--span-folds",
        type=Path,
        default=ROOT / "runs" / "span-reader",
        help="the fold heads eval/train_span_reader.py wrote (its --out), when the span head was tuned on train",
    )
    parser.add_argument("--cache", type=Path, default=ROOT / "runs" / "reader-cache")
    parser.add_argument("--report", type=Path, default=ROOT / "runs" / "reader", help="plots and tables")
    parser.add_argument("--max-false-abstention", type=float, default=0.10)
    parser.add_argument(
        "--sentence-vectors",
        choices=SENTENCE_VECTORS,
        default="static",
        help="question-sentence similarity (default static, as shipped)",
    )
    parser.add_argument(
        "--no-as-of",
        action="store_true",
        help="search every question in the whole corpus (default: as of its week, as rag eval does)",
    )
    parser.add_argument(
        "--no-off-topic",
        action="store_true",
        help="calibrate on train's own questions only (default: also on each read against another's passages)",
    )
    parser.add_argument(
        "--near-miss",
        action="store_true",
        help="also calibrate on each train question read without its answer's articles (tried, not shipped: docs/answers.md)",
    )
    parser.add_argument(
        "--ablation", action="store_true", help="print dev figures without each feature group (and fit nothing)"
    )
    parser.add_argument("--dry-run", action="store_true", help="print the figures, write nothing to rag/data")
    args = parser.parse_args(argv)
    for folder in (args.train, args.dev):
        if not (folder / "questions.jsonl").exists():
            sys.exit(f"error: no questions.jsonl in {folder}: pass --train/--dev with the newsqa folders")
    started = time.monotonic()
    heads = fold_heads(args.span_folds)  # train's questions read by heads that never saw their answers
    train = collect(args.train, args.train_index, args.k, args.cache, as_of=not args.no_as_of, heads=heads)
    dev = collect(args.dev, args.dev_index, args.k, args.cache, as_of=not args.no_as_of)
    unanswerable_reads = (
        []
        if args.no_off_topic
        else collect(args.train, args.train_index, args.k, args.cache, not args.no_as_of, off_topic=True, heads=heads)
    )
    if args.near_miss:  # unanswerable reads too: the calibration learns from them, never the ranker
        unanswerable_reads += collect(
            args.train, args.train_index, args.k, args.cache, not args.no_as_of, heads=heads, near_miss=True
        )
    print(f"features: {time.monotonic() - started:.0f} s ({len(train)} train, {len(dev)} dev questions)")
    if args.ablation:
        ablation(train, dev, args.span_reads, args.k, args.sentence_vectors)
        return 0
    for row in train + dev + unanswerable_reads:
        row["candidates"] = span_read(row[args.sentence_vectors], args.span_reads)
    columns = ranker_columns(train)
    ranker = fit_ranker(train, columns, seed=SEED)
    oof = out_of_fold(train, columns, seed=SEED)
    # Unanswerable reads are not in the ranker's data, so the full ranker's picks on them are honest.
    calibration = fit_calibration(
        confidence_table(train + unanswerable_reads, oof + pick(ranker, columns, unanswerable_reads))
    )
    dev_picks = pick(ranker, columns, dev)
    dev_table = confidence_table(dev, dev_picks, calibration)
    threshold, curve = risk_coverage(dev_table, args.max_false_abstention)
    train_fit = short_answer_scores(train, pick(ranker, columns, train))
    print(f"train (fit) short answers: {train_fit}")
    print(f"dev short answers, no abstention: {short_answer_scores(dev, dev_picks)}")
    chosen = next(row for row in curve if row["threshold"] == threshold)
    print(f"dev abstention at threshold {threshold:.4f}: {json.dumps(chosen)}")
    args.report.mkdir(parents=True, exist_ok=True)
    (args.report / "risk_coverage.json").write_text(json.dumps(curve, indent=1))
    _reliability_plot(dev_table, args.report / "reliability.png")
    print(f"elapsed {time.monotonic() - started:.0f} s; report in {args.report}")
    if args.dry_run:
        return 0
    MODEL_FILE.write_text(ranker.model_to_string())
    card = {
        "columns": columns,
        "calibration": calibration,
        "model_sha256": file_sha256(MODEL_FILE),
        "k": args.k,
        "fitted": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "train": str(args.train.name),
        "dev": str(args.dev.name),
        "seed": SEED,
        "sentence_vectors": args.sentence_vectors,
        "span_reads": args.span_reads,
    }
    CARD_FILE.write_text(json.dumps(card, indent=1) + "\n")
    thresholds_file = DATA_DIR / "abstention.json"
    thresholds = json.loads(thresholds_file.read_text())
    thresholds["reader"] = {
        "threshold": round(threshold, 4),
        "rule": f"highest abstention F1 on dev with at most {args.max_false_abstention:.0%} of answerable "
        "questions abstained (eval/train_reader.py)",
        "dev_set": args.dev.name,
        **{k: v for k, v in chosen.items() if k != "threshold"},
        "k": args.k,
        "calibrated": card["fitted"],
    }
    thresholds_file.write_text(json.dumps(thresholds, indent=2) + "\n")
    print(f"wrote {MODEL_FILE}, {CARD_FILE} and the 'reader' threshold in {thresholds_file}")
    return 0


def ablation(train: list[dict], dev: list[dict], span_reads: int, k: int, vectors: str) -> None:
    """Dev short-answer figures with the span head reading more or fewer passages, then with each feature
    group left out (sentence vectors as ``vectors``, the head reading ``span_reads`` passages), and with
    the other sentence vectors."""
    print("ablation (dev-2023 answerable, no abstention):")
    for reads in sorted({0, 1, 2, 3, span_reads, k}):
        for row in train + dev:
            row["candidates"] = span_read(row["static"], reads)
        columns = ranker_columns(train)
        scores = short_answer_scores(dev, pick(fit_ranker(train, columns, seed=SEED), columns, dev))
        print(f"  span head reading {reads:2d} passages: F1 {scores['token_f1']:.3f} EM {scores['exact_match']:.3f}")
    for mode in SENTENCE_VECTORS:
        for row in train + dev:
            row["candidates"] = span_read(row[mode], span_reads)
        columns = ranker_columns(train)
        groups = FEATURE_GROUPS if mode == vectors else {"(none)": ()}
        for group, names in groups.items():
            kept = [c for c in columns if not any(c == n or c.startswith(n + "_") for n in names)]
            scores = short_answer_scores(dev, pick(fit_ranker(train, kept, seed=SEED), kept, dev))
            print(
                f"  sentence vectors {mode:6s} without {group:28s} F1 {scores['token_f1']:.3f} EM {scores['exact_match']:.3f}"
            )


def _reliability_plot(table: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    p = np.array([row["probability"] for row in table])
    y = np.array([row["correct"] for row in table], dtype=float)
    bins = np.linspace(0, 1, 11)
    which = np.clip(np.digitize(p, bins) - 1, 0, 9)
    xs = [p[which == b].mean() for b in range(10) if (which == b).any()]
    ys = [y[which == b].mean() for b in range(10) if (which == b).any()]
    ns = [int((which == b).sum()) for b in range(10) if (which == b).any()]
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    ax.plot([0, 1], [0, 1], ":", color="grey")
    ax.plot(xs, ys, "o-")
    for x, y_, n in zip(xs, ys, ns):
        ax.annotate(str(n), (x, y_), textcoords="offset points", xytext=(4, -10), fontsize=7)
    ax.set(
        xlabel="predicted probability of a right answer", ylabel="share right (dev-2023)", title="Reader calibration"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())
