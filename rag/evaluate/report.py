"""The human side of an evaluation run: report.md with plots, and the summary printed at the end."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from rag.evaluate.gold import QuestionResult

STATUS_ORDER = {"wrong": 0, "answered_unanswerable": 1, "missed": 2, "failed": 3, "correct": 4}
STATUS_TEXT = {
    "failed": "failed (no answer: see the error)",
    "wrong": "answered wrongly",
    "answered_unanswerable": "answered an unanswerable question",
    "missed": "abstained on an answerable question",
    "correct": "correct",
}


def _pct(value: float | None) -> str:
    return "–" if value is None or (isinstance(value, float) and np.isnan(value)) else f"{100 * value:.1f}%"


def _num(value: float | None, digits: int = 3) -> str:
    return "–" if value is None or (isinstance(value, float) and np.isnan(value)) else f"{value:.{digits}f}"


def _interval(metrics: dict[str, Any], name: str) -> str:
    low, high = metrics["intervals_95"].get(name, (None, None))
    return "" if low is None else f" [{_pct(low)}, {_pct(high)}]"


def headline_rows(metrics: dict[str, Any]) -> list[tuple[str, str]]:
    """(name, value) pairs of the figures a reader looks at first."""
    r, a, ab, c, lat = (
        metrics["retrieval"],
        metrics["answers"],
        metrics["abstention"],
        metrics["citations"],
        metrics["latency"],
    )
    return [
        ("questions (answerable)", f"{metrics['questions']} ({metrics['answerable']})"),
        ("questions failed (error recorded; counted as wrong)", str(metrics.get("failed", 0))),
        ("accuracy (correct answer or correct abstention)", _pct(metrics["accuracy"]) + _interval(metrics, "accuracy")),
        ("evidence recall@1 / @3 / @5 / @10", " / ".join(_pct(r[f"recall@{k}"]) for k in (1, 3, 5, 10))),
        ("evidence recall@5, 95% CI", _pct(r["recall@5"]) + _interval(metrics, "recall@5")),
        (
            "MRR",
            _num(r["mrr"])
            + (" [{}, {}]".format(*metrics["intervals_95"]["mrr"]) if metrics["intervals_95"].get("mrr") else ""),
        ),
        ("exact match", _pct(a["exact_match"]) + _interval(metrics, "exact_match")),
        ("token F1", _pct(a["token_f1"]) + _interval(metrics, "token_f1")),
        ("gold answer inside the cited text", _pct(a["answer_in_citation"])),
        ("abstention precision / recall / F1", " / ".join(_pct(ab[k]) for k in ("precision", "recall", "f1"))),
        ("accuracy on answered questions", _pct(ab["answered_accuracy"])),
        ("citation validity", _pct(c["validity"])),
        ("citation support rate (checker)", _pct(c["support_rate"]) + _interval(metrics, "support_rate")),
        ("ALCE citation recall / precision", f"{_pct(c['alce_recall'])} / {_pct(c['alce_precision'])}"),
        ("latency p50 / p95", f"{_num(lat['p50_ms'], 0)} ms / {_num(lat['p95_ms'], 0)} ms"),
    ]


def format_summary(metrics: dict[str, Any]) -> str:
    """The short table printed at the end of `rag eval`."""
    rows = headline_rows(metrics)
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)


def _escape_md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


# ---------------------------------------------------------------------------
# Plots


def _plots(out: Path, results: list[QuestionResult]) -> list[tuple[str, str]]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    made = []
    confidence = np.array([r.row["scores"].get("confidence") or 0.0 for r in results])
    answerable = np.array([r.gold.answerable for r in results])
    correct = np.array([r.row["scores"]["status"] == "correct" for r in results])

    fig, ax = plt.subplots(figsize=(6, 3.2))
    bins = np.linspace(min(0.0, confidence.min(initial=0)), max(1.0, confidence.max(initial=1)), 21).tolist()
    ax.hist(confidence[answerable], bins=bins, alpha=0.6, label="answerable")
    ax.hist(confidence[~answerable], bins=bins, alpha=0.6, label="unanswerable")
    thresholds = sorted({r.row["scores"].get("threshold") for r in results} - {None})
    for threshold in thresholds:
        ax.axvline(threshold, color="k", linestyle="--", label=f"abstention threshold {threshold:.3f}")
    ax.set_xlabel("answer confidence score")
    ax.set_ylabel("questions")
    ax.set_title("Confidence scores by question type")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "scores.png", dpi=110)
    plt.close(fig)
    made.append(("scores.png", "Confidence scores of answerable and unanswerable questions"))

    # Risk–coverage: answer the most confident questions first; risk = share wrong among those answered.
    order = np.argsort(-confidence)
    wrong = ~correct[order]
    answered = np.arange(1, len(order) + 1)
    fig, ax = plt.subplots(figsize=(6, 3.2))
    ax.plot(answered / len(order), np.cumsum(wrong) / answered, marker=".")
    ax.set_xlabel("coverage (share of questions answered, most confident first)")
    ax.set_ylabel("risk (share wrong)")
    ax.set_ylim(0, 1)
    ax.set_title("Risk–coverage")
    fig.tight_layout()
    fig.savefig(out / "risk_coverage.png", dpi=110)
    plt.close(fig)
    made.append(("risk_coverage.png", "Risk–coverage curve"))

    latencies = [r.row["latency_ms"] for r in results]
    fig, ax = plt.subplots(figsize=(6, 3.2))
    ax.hist(latencies, bins=20)
    ax.axvline(float(np.percentile(latencies, 50)), color="k", linestyle="--", label="p50")
    ax.axvline(float(np.percentile(latencies, 95)), color="r", linestyle=":", label="p95")
    ax.set_xlabel("latency per question (ms)")
    ax.set_ylabel("questions")
    ax.legend()
    ax.set_title("Latency")
    fig.tight_layout()
    fig.savefig(out / "latency.png", dpi=110)
    plt.close(fig)
    made.append(("latency.png", "Latency per question"))
    return made


# ---------------------------------------------------------------------------
# report.md


def write_report(out: Path, results: list[QuestionResult], metrics: dict[str, Any], manifest: dict[str, Any]) -> None:
    """Writes report.md and its plots into ``out``: summary, failures first, then everything else."""
    plots = _plots(out, results)
    settings = manifest["settings"]
    lines = [
        "# Evaluation report",
        "",
        f"Gold set `{manifest['gold']['path']}` (split: {manifest['gold']['split']}), "
        f"retriever **{settings['retriever']}**, answerer **{settings['answerer']}**, k = {settings['k']}; "
        f"commit `{manifest.get('commit') or 'unknown'}`, {manifest['date']}.",
        "",
        "| metric | value (95% bootstrap interval) |",
        "|---|---|",
        *[f"| {name} | {value} |" for name, value in headline_rows(metrics)],
        "",
    ]
    for name, caption in plots:
        lines += [f"![{caption}]({name})", ""]

    ordered = sorted(
        results,
        key=lambda r: (STATUS_ORDER.get(r.row["scores"]["status"], 9), -(r.row["scores"].get("confidence") or 0)),
    )
    failed = [r for r in results if r.row.get("error")]
    if failed:
        lines += [
            f"## Failed questions ({len(failed)} of {len(results)})",
            "",
            "| id | question | error |",
            "|---|---|---|",
        ]
        lines += [f"| {r.gold.id} | {_escape_md(r.gold.question)} | {_escape_md(r.row['error'])} |" for r in failed]
        lines.append("")
    failures = [r for r in ordered if r.row["scores"]["status"] not in ("correct", "failed")]
    lines += [f"## Failures ({len(failures)} of {len(results)}), worst first", ""]
    if not failures:
        lines += ["None.", ""]
    for result in failures:
        lines += _question_block(result)
    lines += [
        "## All questions",
        "",
        "| id | status | confidence | short answer | F1 | recall@5 | latency |",
        "|---|---|---|---|---|---|---|",
    ]
    for result in results:
        s = result.row["scores"]
        lines.append(
            f"| {result.gold.id} | {s['status']} | {_num(s.get('confidence'), 2)} | "
            f"{_escape_md(result.row['short_answer'] or '')} | {_num(s.get('token_f1'), 2)} | "
            f"{_num(s.get('recall@5'), 2)} | {result.row['latency_ms']:.0f} ms |"
        )
    (out / "report.md").write_text("\n".join(lines) + "\n", encoding="utf-8")


def _question_block(result: QuestionResult) -> list[str]:
    row, gold, s = result.row, result.gold, result.row["scores"]
    lines = [
        f"### {gold.id}: {STATUS_TEXT.get(s['status'], s['status'])}",
        "",
        f"- **Question:** {gold.question}",
        f"- **Gold:** {' | '.join(gold.answers) if gold.answerable else '(not answerable from the corpus)'}",
        f"- **Our answer:** {row['answer']}"
        + (f" — short answer: *{row['short_answer']}*" if row["short_answer"] else ""),
        f"- **Confidence:** {_num(s.get('confidence'), 3)}"
        + (f"; evidence ranks {s.get('evidence_ranks')}" if gold.answerable else ""),
    ]
    if result.extra.get("rejected"):
        lines.append(f"- **Rejected (below threshold):** {result.extra['rejected']}")
    for citation in row["citations"]:
        lines.append(
            f"- **Cited** `{citation['doc_id']}` [{citation['start']}:{citation['end']}]: “{citation['text']}”"
        )
    if result.extra.get("verdicts"):
        lines.append(f"- **Checker verdicts:** {', '.join(result.extra['verdicts'])}")
    for evidence in gold.evidence:
        lines.append(f"- **Gold evidence** `{evidence.doc_id}`: “{evidence.quote}”")
    return [*lines, ""]
