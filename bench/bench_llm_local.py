"""The LLM answerer with a real local model beside the extractive answerer and the reader (a bench, never
a test or CI).

Needs an OpenAI-compatible server on loopback, e.g. llama.cpp's Python server with the 1.5B GGUF of
../shared/MODELS.md (docs/llm.md, "A real local model", says how to build and check it):

    RAG_LLM_BASE_URL=http://127.0.0.1:8089/v1 RAG_LLM_MODEL=qwen \\
        .venv/bin/python bench/bench_llm_local.py --dev-index /work/scratch/idx-dev --dev-limit 100

Each gold set (eval/seeds_gold.jsonl over an index of seeds/, then the first --dev-limit dev-2023
news-quiz questions over --dev-index, and with --train-index --train-limit evenly spaced train-2024
questions, the set to try prompt changes on) goes through `rag eval` once per answerer, in a separate process,
with `--no-rebuild` (the dev index is used as it is). Printed per set and answerer: correct answers (of
the answerable), correct abstentions, abstention F1, the share of answerable questions whose gold answer
is inside the sentences shown, latency p50 / p95, sentences shown that the citation checker does not
call supported (should be 0), and failed questions. Then why the LLM abstained on answerable questions
(`abstention_reason` counted) and every wrong answer the LLM shows (for newsqa
only ids: its questions stay in ../shared). Run folders go to bench/out/ (ignored by git).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from common import OUT, ROOT, machine, percentile, table

SEEDS = ROOT / "eval" / "seeds_gold.jsonl"
DEV = ROOT.parent / "shared" / "benchmarks" / "newsqa" / "dev-2023" / "questions.jsonl"
TRAIN = ROOT.parent / "shared" / "benchmarks" / "newsqa" / "train-2024" / "questions.jsonl"


def subset(path: Path, limit: int | None, name: str, spread: bool = False) -> Path:
    """The first ``limit`` questions of a gold file, or with ``spread`` ``limit`` evenly spaced ones (the
    seeds file lists its unanswerable questions last); repeated ids suffixed (`rag eval` refuses repeats)."""
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    seen: dict[str, int] = {}
    for row in rows:
        seen[row["id"]] = seen.get(row["id"], 0) + 1
        if seen[row["id"]] > 1:
            row["id"] = f"{row['id']}~{seen[row['id']]}"
    target = OUT / f"llm-local-{name}.jsonl"
    if spread and limit and limit < len(rows):
        rows = [rows[i * len(rows) // limit] for i in range(limit)]
    target.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows[:limit]), encoding="utf-8")
    return target


def run_eval(gold: Path, index: str, answerer: str, out: Path, args: argparse.Namespace) -> tuple[int, float]:
    """`rag eval` in its own process; (exit code, seconds)."""
    command = [sys.executable, "-m", "rag", "eval", "--gold", str(gold), "--index", index, "--no-rebuild"]
    command += ["--quiet", "--out", str(out), "--answerer", answerer, "--time-budget", f"{args.time_budget:g}"]
    if answerer == "llm":
        command += ["--llm-timeout", f"{args.llm_timeout:g}", "--llm-retries", "0"]
    print("$ " + " ".join(command[2:]).replace(str(ROOT) + "/", ""), flush=True)
    started = time.perf_counter()
    code = subprocess.run(command, cwd=ROOT, env={**os.environ, "HF_HUB_OFFLINE": "1"}, check=False).returncode
    return code, time.perf_counter() - started


def figures(out: Path) -> tuple[dict[str, str], list[dict]]:
    """The bench's figures from a run folder, and its rows."""
    rows = [json.loads(line) for line in (out / "results.jsonl").read_text(encoding="utf-8").splitlines()]
    metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    answerable = [r for r in rows if r["scores"]["answerable"]]
    unanswerable = [r for r in rows if not r["scores"]["answerable"]]
    # The gold answer inside what is shown: the kept sentences (an abstention shows none).
    inside = [r for r in answerable if not r["abstained"] and not r["error"] and r["scores"].get("answer_in_text")]
    shown = [v for r in rows if not r["abstained"] and not r["error"] for v in r["scores"].get("verdicts", [])]
    latencies = [r["latency_ms"] / 1000 for r in rows if not r["error"]]
    correct = sum(1 for r in answerable if r["scores"]["status"] == "correct")
    return {
        "questions (answerable)": f"{len(rows)} ({len(answerable)})",
        "correct answers": f"{correct} of {len(answerable)}",
        "correct abstentions": f"{sum(1 for r in unanswerable if r['abstained'])} of {len(unanswerable)}",
        "abstained on answerable": str(sum(1 for r in answerable if r["abstained"])),
        "abstention F1": f"{metrics['abstention']['f1']:.3f}",
        "gold answer in shown sentences": f"{len(inside)} of {len(answerable)}",
        "latency p50 / p95 (s)": (
            f"{percentile(latencies, 50):.1f} / {percentile(latencies, 95):.1f}" if latencies else "–"
        ),
        "sentences shown / not supported": f"{len(shown)} / {sum(1 for v in shown if v != 'supported')}",
        "failed questions": str(sum(1 for r in rows if r["error"])),
    }, rows


def add_answer_in_text(out: Path, gold: Path) -> None:
    """Marks each row ``answer_in_text``: a gold answer occurs in the answer shown (rag's own matching)."""
    sys.path.insert(0, str(ROOT))
    from rag.evaluate.metrics import answer_in_text

    answers = {}
    for line in gold.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        answers[row["id"]] = row.get("answers") or []
    path = out / "results.jsonl"
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    for row in rows:
        shown = row["answer"] if not row["abstained"] and not row["error"] else ""
        row["scores"]["answer_in_text"] = bool(answers[row["id"]]) and answer_in_text(answers[row["id"]], shown) == 1.0
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds-limit", type=int, help="N evenly spaced seeds questions (default all)")
    parser.add_argument("--dev-limit", type=int, default=100, help="first N dev-2023 questions (default 100; 0: none)")
    parser.add_argument("--dev-index", help="an index of the dev-2023 articles (needed for dev questions)")
    parser.add_argument("--seeds-index", default=str(OUT / "idx-seeds"), help="an index of seeds/ (built if missing)")
    parser.add_argument("--time-budget", type=float, default=600.0, help="seconds per question (default 600)")
    parser.add_argument("--llm-timeout", type=float, default=300.0, help="seconds to the first word (default 300)")
    parser.add_argument(
        "--train-index", help="an index of the train-2024 articles: also runs --train-limit train questions"
    )
    parser.add_argument("--train-limit", type=int, default=20, help="N evenly spaced train-2024 questions (default 20)")
    parser.add_argument("--only", choices=["seeds", "dev", "train"], help="one gold set only")
    args = parser.parse_args()
    if "RAG_LLM_BASE_URL" not in os.environ:
        raise SystemExit("set RAG_LLM_BASE_URL and RAG_LLM_MODEL to a running OpenAI-compatible server first")
    OUT.mkdir(parents=True, exist_ok=True)
    if not Path(args.seeds_index).exists():
        ingest = [sys.executable, "-m", "rag", "ingest", "seeds", "--index", args.seeds_index]
        subprocess.run(ingest, cwd=ROOT, env={**os.environ, "HF_HUB_OFFLINE": "1"}, check=True)
    sets = [("seeds", subset(SEEDS, args.seeds_limit, "seeds", spread=True), args.seeds_index)]
    if args.dev_limit and args.only != "seeds":
        if not args.dev_index:
            raise SystemExit("give --dev-index DIR (an index of the dev-2023 articles), or --dev-limit 0")
        sets.append(("dev", subset(DEV, args.dev_limit, "dev"), args.dev_index))
    if args.train_index:  # the design set: prompt and relevance changes are tried here, never on seeds or dev
        sets.append(("train", subset(TRAIN, args.train_limit, "train", spread=True), args.train_index))
    print(machine())
    print(f"LLM: {os.environ.get('RAG_LLM_MODEL')} at {os.environ['RAG_LLM_BASE_URL']}", flush=True)
    for name, gold, index in sets:
        if args.only and name != args.only:
            continue
        columns: dict[str, dict[str, str]] = {}
        llm_rows: list[dict] = []
        for answerer in ("extractive", "reader", "llm"):
            out = OUT / f"llm-local-{name}-{answerer}"
            code, seconds = run_eval(gold, index, answerer, out, args)
            if not (out / "results.jsonl").is_file():
                print(f"{name} / {answerer}: no run written (exit {code})")
                continue
            add_answer_in_text(out, gold)
            columns[answerer], rows = figures(out)
            columns[answerer]["exit code, wall time"] = f"{code}, {seconds:.0f} s"
            if answerer == "llm":
                llm_rows = rows
        keys = list(next(iter(columns.values()))) if columns else []
        print(f"\n## {name}: {gold.name}\n")
        print(table(["", *columns], [[k, *(c[k] for c in columns.values())] for k in keys]))
        reasons = Counter(r.get("abstention_reason") for r in llm_rows if r["scores"]["answerable"] and r["abstained"])
        print(f"\nWhy the LLM abstained on answerable questions ({sum(reasons.values())}):")
        for reason, count in reasons.most_common():
            print(f"- {count}: {reason}")
        wrong = [r for r in llm_rows if r["scores"]["status"] in ("wrong", "answered_unanswerable")]
        print(f"\nWrong answers the LLM shows ({len(wrong)}):")
        golds = {q["id"]: q.get("answers") for q in map(json.loads, gold.read_text(encoding="utf-8").splitlines())}
        for r in wrong:
            if name == "seeds":  # newsqa questions stay in ../shared
                print(
                    f"- {r['id']} [{r['scores']['status']}] {r['question']} -> {r['answer']} (gold: {golds[r['id']]})"
                )
            else:
                print(f"- {r['id']} [{r['scores']['status']}]")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
