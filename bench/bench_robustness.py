"""Robustness smoke run: every dev-2023 news-quiz question through `rag eval`, once.

What it shows: no crash and no hang on real questions (a quarter open with a context sentence). `rag eval`
runs as a separate process with a time budget per question and an overall watchdog; the script prints
questions, failures, questions stopped by the time budget, seconds per question (p50 / p95 / max), the
total, and the slowest questions by id.

    .venv/bin/python bench/bench_robustness.py --index /work/scratch/idx-dev

The questions and articles stay in ../shared: the run folder and the per-question times go to bench/out/
(ignored by git), and only ids and figures are printed.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
from pathlib import Path

from common import OUT, ROOT, machine, percentile, table

QUESTIONS = ROOT.parent / "shared" / "benchmarks" / "newsqa" / "dev-2023" / "questions.jsonl"
_SENTENCE_END = re.compile(r"[.!?]\s+\S")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--index", required=True, help="an index of the dev-2023 articles (built with rag ingest)")
    parser.add_argument("--questions", type=Path, default=QUESTIONS, help=f"gold questions (default {QUESTIONS})")
    parser.add_argument("--time-budget", type=float, default=60.0, help="seconds per question (default 60)")
    args = parser.parse_args()
    if not args.questions.is_file():
        raise SystemExit(f"{args.questions} is missing: the benchmark lives in ../shared/benchmarks/newsqa/")
    gold = [json.loads(line) for line in args.questions.read_text(encoding="utf-8").splitlines() if line.strip()]
    # `rag eval` refuses a gold file with a repeated id (dev-2023 repeats one line): every line still runs,
    # the repeat under a suffixed id, from a copy in bench/out/ (ignored by git).
    seen: dict[str, int] = {}
    for q in gold:
        seen[q["id"]] = seen.get(q["id"], 0) + 1
        if seen[q["id"]] > 1:
            q["id"] = f"{q['id']}~{seen[q['id']]}"
    repeated = sum(n - 1 for n in seen.values())
    OUT.mkdir(parents=True, exist_ok=True)
    questions = OUT / "robustness_questions.jsonl"
    questions.write_text("".join(json.dumps(q, ensure_ascii=False) + "\n" for q in gold), encoding="utf-8")
    several = {q["id"] for q in gold if _SENTENCE_END.search(q["question"].strip())}
    out = OUT / "robustness-run"
    command = [
        sys.executable,
        "-m",
        "rag",
        "eval",
        "--gold",
        str(questions),
        "--index",
        args.index,
        "--no-rebuild",
        "--quiet",
        "--out",
        str(out),
        "--time-budget",
        f"{args.time_budget:g}",
    ]
    watchdog = len(gold) * args.time_budget + 900  # model and index loading, then every question at its budget
    print(machine())
    print(f"{len(gold)} questions from {args.questions} ({repeated} repeated id(s) suffixed)")
    print("$ " + " ".join(command[1:]).replace(str(ROOT) + "/", ""))
    started = time.perf_counter()
    try:
        run = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=watchdog)
        code, stderr = run.returncode, run.stderr
    except subprocess.TimeoutExpired as expired:
        code, stderr = "hung (watchdog)", (expired.stderr or b"").decode(errors="replace")
    total = time.perf_counter() - started
    rows = []
    if (out / "results.jsonl").is_file():
        rows = [json.loads(line) for line in (out / "results.jsonl").read_text(encoding="utf-8").splitlines()]
    seconds = [r["latency_ms"] / 1000 for r in rows]
    stopped = [r["id"] for r in rows if r["scores"].get("timed_out")]
    missing = len(gold) - len(rows)
    with open(OUT / "robustness_times.tsv", "w", encoding="utf-8") as times:
        times.write("id\tseconds\ttimed_out\tstatus\tsentences\n")
        for r in rows:
            times.write(
                f"{r['id']}\t{r['latency_ms'] / 1000:.3f}\t{r['scores'].get('timed_out')}\t"
                f"{r['scores'].get('status')}\t{'several' if r['id'] in several else 'one'}\n"
            )
    print()
    print(
        table(
            [
                "questions",
                "of them several sentences",
                "rag eval exit",
                "failures (no result)",
                "stopped by the time budget",
                "p50 s/question",
                "p95 s/question",
                "max s/question",
                "total wall s",
            ],
            [
                [
                    len(gold),
                    len(several),
                    code,
                    missing,
                    len(stopped),
                    percentile(seconds, 50) if seconds else "-",
                    percentile(seconds, 95) if seconds else "-",
                    max(seconds, default=0.0),
                    total,
                ]
            ],
        )
    )
    multi = [r["latency_ms"] / 1000 for r in rows if r["id"] in several]
    if multi:
        print(
            f"\nquestions of several sentences: {len(multi)} answered or abstained, p50 {percentile(multi, 50):.2f} s, "
            f"max {max(multi):.2f} s"
        )
    slowest = sorted(rows, key=lambda r: -r["latency_ms"])[:10]
    print("\nslowest questions (all per-question times: bench/out/robustness_times.tsv):")
    print(
        table(
            ["id", "seconds", "status"], [[r["id"], r["latency_ms"] / 1000, r["scores"].get("status")] for r in slowest]
        )
    )
    if code != 0:
        print("\nrag eval stderr (last lines):\n" + "\n".join(stderr.strip().splitlines()[-5:]))
    print(machine())
    return 0 if code == 0 and not missing else 1


if __name__ == "__main__":
    sys.exit(main())
