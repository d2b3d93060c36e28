"""Comparing two run folders of `rag eval`: metric deltas, questions whose status changed, and
questions whose answer or citations changed while their status did not."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rag.errors import RagError
from rag.evaluate.metrics import flatten


def _read_run(run_dir: Path) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    try:
        metrics = json.loads((run_dir / "metrics.json").read_text())
        rows = {}
        for line in (run_dir / "results.jsonl").read_text().splitlines():
            if line.strip():
                row = json.loads(line)
                rows[row["id"]] = row
    except (OSError, ValueError, KeyError) as exc:
        raise RagError(
            f"{run_dir} is not a run folder of `rag eval` ({exc}): give two folders written by `rag eval --out`"
        ) from None
    return metrics, rows


def compare_runs(old_dir: Path, new_dir: Path) -> dict[str, Any]:
    """Per-metric deltas, the questions whose status changed between two runs, and those whose answer or
    citations changed under the same status ("reworded")."""
    old_metrics, old_rows = _read_run(Path(old_dir))
    new_metrics, new_rows = _read_run(Path(new_dir))
    old_flat = flatten({k: v for k, v in old_metrics.items() if k not in ("run", "intervals_95")})
    new_flat = flatten({k: v for k, v in new_metrics.items() if k not in ("run", "intervals_95")})
    deltas = {
        name: {
            "old": old_flat.get(name),
            "new": new_flat.get(name),
            "delta": (new_flat[name] - old_flat[name]) if name in old_flat and name in new_flat else None,
        }
        for name in sorted(set(old_flat) | set(new_flat))
    }
    fixed: list[dict[str, Any]] = []
    broken: list[dict[str, Any]] = []
    changed: list[dict[str, Any]] = []
    reworded: list[dict[str, Any]] = []
    for qid in sorted(set(old_rows) & set(new_rows)):
        old, new = old_rows[qid], new_rows[qid]
        before, after = old["scores"].get("status"), new["scores"].get("status")
        entry = {
            "id": qid,
            "question": new["question"],
            "old": before,
            "new": after,
            "old_answer": old["answer"],
            "new_answer": new["answer"],
        }
        if before != after:
            (fixed if after == "correct" else broken if before == "correct" else changed).append(entry)
        elif _said(old) != _said(new):
            reworded.append(entry)
    return {
        "old": str(old_dir),
        "new": str(new_dir),
        "old_run": old_metrics.get("run", {}),
        "new_run": new_metrics.get("run", {}),
        "metrics": deltas,
        "fixed": fixed,
        "broken": broken,
        "changed": changed,
        "reworded": reworded,
        "only_old": sorted(set(old_rows) - set(new_rows)),
        "only_new": sorted(set(new_rows) - set(old_rows)),
    }


def _said(row: dict[str, Any]) -> tuple[Any, ...]:
    """What a question's answer showed: its text, short answer and cited spans."""
    cited = tuple((c["doc_id"], c["start"], c["end"]) for c in row.get("citations") or [])
    return row["answer"], row.get("short_answer"), cited


def format_comparison(comparison: dict[str, Any]) -> str:
    """A readable table of metric deltas and changed questions."""
    lines = [
        f"old: {comparison['old']}",
        f"new: {comparison['new']}",
        "",
        f"{'metric':<32} {'old':>9} {'new':>9} {'delta':>9}",
    ]
    for name, values in comparison["metrics"].items():
        if name.startswith("latency") or name in ("questions", "answerable") or name.startswith("abstention.abstained"):
            fmt = lambda v: "–" if v is None else f"{v:.1f}"  # noqa: E731
        else:
            fmt = lambda v: "–" if v is None else f"{v:.3f}"  # noqa: E731
        delta = values["delta"]
        sign = "" if delta is None or delta <= 0 else "+"
        lines.append(f"{name:<32} {fmt(values['old']):>9} {fmt(values['new']):>9} {sign + fmt(delta):>9}")
    for title, key in (
        ("fixed", "fixed"),
        ("broken", "broken"),
        ("changed otherwise", "changed"),
        ("same status, other answer or citations", "reworded"),
    ):
        entries = comparison.get(key, [])
        lines += ["", f"{title}: {len(entries)}"]
        for e in entries:
            lines.append(f"  {e['id']}: {e['old']} → {e['new']}  {e['question']}")
    if comparison["only_old"] or comparison["only_new"]:
        lines += [
            "",
            f"only in old: {', '.join(comparison['only_old']) or '–'}; only in new: {', '.join(comparison['only_new']) or '–'}",
        ]
    return "\n".join(lines)
