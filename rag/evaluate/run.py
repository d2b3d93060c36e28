"""Running a gold set through the whole system and writing a run folder.

A run folder holds results.jsonl (one line per question), metrics.json, report.md
and the plots. It is written to a temporary folder and moved into place whole.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rag.errors import RagError
from rag.evaluate.gold import GoldQuestion, QuestionResult
from rag.evaluate.metrics import Aggregate, clean_floats, file_sha256
from rag.evaluate.question import evaluate_question
from rag.evaluate.report import write_report

if TYPE_CHECKING:
    from rag.answer.pipeline import Answerer
    from rag.check.checker import CitationChecker
    from rag.search.retrieval import Retriever

log = logging.getLogger(__name__)

# When this many first questions all fail, the rest would too (a server not started, a wrong key): stop.
GIVE_UP_AFTER = 3
# Everything a run writes; a folder holding anything else is the user's and is never replaced.
RUN_FILES = ("results.jsonl", "metrics.json", "report.md", "scores.png", "risk_coverage.png", "latency.png")


def _git_commit() -> str | None:
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True, timeout=5
        ).stdout.strip()
        return commit + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


def run_evaluation(
    questions: list[GoldQuestion],
    retriever: Retriever,
    answerer: Answerer,
    checker: CitationChecker,
    k: int = 5,
    progress: bool = True,
    time_budget: float | None = None,
) -> tuple[list[QuestionResult], dict[str, Any]]:
    """Every question through the system, each within ``time_budget`` seconds; returns per-question
    results and the metrics. A question that fails is recorded as failed and the run goes on
    (``rag.evaluate.question``), unless the first ``GIVE_UP_AFTER`` all fail: that error is then raised."""
    from tqdm import tqdm

    unknown = sorted({e.doc_id for q in questions for e in q.evidence} - set(retriever.index.documents))
    if unknown:
        # Their quotes can never be retrieved: recall would read 0 beside a perfect answer accuracy.
        log.warning(
            "%d gold evidence documents are not in the index (%s%s): their quotes count as not retrieved; "
            "is --index the corpus the gold file was written for?",
            len(unknown),
            ", ".join(unknown[:3]),
            " …" if len(unknown) > 3 else "",
        )
    results: list[QuestionResult] = []
    aggregate = Aggregate()
    for gold in tqdm(questions, desc="questions", unit="q", disable=not progress, leave=False):
        result = evaluate_question(gold, retriever, answerer, checker, k, time_budget)
        if result.error is not None and len(results) + 1 == GIVE_UP_AFTER and all(r.error for r in results):
            raise type(result.error)(f"{result.error} (the first {GIVE_UP_AFTER} questions all failed; stopped)")
        scores = {**result.row["scores"], "latency_ms": result.row["latency_ms"], "abstained": result.row["abstained"]}
        aggregate.add(scores)
        results.append(result)
    return results, {**aggregate.metrics(), "evidence_documents_not_in_index": len(unknown)}


def is_run_folder(folder: Path) -> bool:
    """Whether ``folder`` holds a run of `rag eval` and nothing else (so replacing it loses nothing)."""
    names = {p.name for p in folder.iterdir()}
    if not {"metrics.json", "results.jsonl"} <= names or not names <= set(RUN_FILES):
        return False
    try:
        metrics = json.loads((folder / "metrics.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(metrics, dict) and "run" in metrics


def run_folder(out_dir: str | Path) -> Path:
    """Where a run may be written: a new folder, an empty one, or an earlier run folder (replaced whole).

    Raises RagError, before anything runs, for a file, a folder that holds anything else, or the current
    folder (or one above it): a run never deletes or renames what the user made.
    """
    given = Path(out_dir).expanduser()
    out = given.resolve()
    here = Path.cwd().resolve()
    if out.exists() and not out.is_dir():
        raise RagError(f"--out {given} is a file, not a folder: give a new folder for the run, e.g. runs/NAME")
    if out == here or out in here.parents:
        raise RagError(
            f"--out {given} is the current folder or holds it: give a new folder for the run, e.g. runs/NAME"
        )
    if out.is_dir():
        names = sorted(p.name for p in out.iterdir())
        if names and not is_run_folder(out):
            others = sorted(set(names) - set(RUN_FILES)) or names
            shown = ", ".join(others[:3]) + (f" and {len(others) - 3} more" if len(others) > 3 else "")
            raise RagError(
                f"--out {given} already holds {shown}, which `rag eval` did not write: "
                "give a new or empty folder, or an earlier run folder to replace"
            )
    return out


def write_run(out_dir: Path, results: list[QuestionResult], metrics: dict[str, Any], manifest: dict[str, Any]) -> Path:
    """Writes results.jsonl, metrics.json, report.md and plots into out_dir (see ``run_folder``).

    The run is written to a hidden folder beside out_dir and then moved into place, so an
    interrupted run leaves the earlier one as it was.
    """
    out_dir = run_folder(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        with open(staging / "results.jsonl", "w", encoding="utf-8") as out:
            for result in results:
                out.write(json.dumps(result.row, ensure_ascii=False) + "\n")
        (staging / "metrics.json").write_text(
            json.dumps(clean_floats({**metrics, "run": manifest}), indent=2, ensure_ascii=False)
        )
        write_report(staging, results, metrics, manifest)
        _swap_in(staging, out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return out_dir


def _swap_in(staging: Path, out_dir: Path) -> None:
    """Moves the finished run into place; an earlier run (or an empty folder) there is replaced."""
    if not out_dir.exists():
        os.rename(staging, out_dir)
        return
    retired = out_dir.with_name(f".{out_dir.name}.old-{os.getpid()}")
    os.rename(out_dir, retired)
    try:
        os.rename(staging, out_dir)
    except BaseException:
        os.rename(retired, out_dir)
        raise
    shutil.rmtree(retired, ignore_errors=True)


def run_manifest(
    gold_path: Path, retriever: Retriever, answerer_name: str, k: int, split: str | None, answerer: Any = None
) -> dict[str, Any]:
    """What a run was: code, index, settings, gold file, date (and the LLM endpoint and model, never its key)."""
    manifest = retriever.index.manifest
    settings: dict[str, Any] = {
        "k": k,
        "retriever": retriever.mode,
        "rrf_k": retriever.rrf_k,
        "answerer": answerer_name,
    }
    config = getattr(answerer, "config", None)
    if config is not None and hasattr(config, "model"):
        settings["llm"] = {"base_url": getattr(config, "where", None), "model": config.model}  # no credentials
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": _git_commit(),
        "gold": {"path": str(gold_path), "sha256": file_sha256(gold_path), "split": split or "all"},
        "settings": settings,
        "index": {
            key: manifest.get(key)
            for key in ("embedder", "tokenizer", "chunking", "corpus", "chunks", "faiss", "versions", "created")
        },
    }
