"""Cold start of the browser app: from `python app.py` (index present) to the first answer via gradio_client.

Builds an index of seeds/ once (not timed), then starts the app --runs times as a fresh process and
times, from the moment the process is spawned:
  ready   the first moment gradio_client can connect (the page and API are up),
  answer  the first /ask answer returned (what a user waits for).
Also prints the app's own start-up steps (stderr) from the last run.

    python bench/bench_app_start.py [--runs 3] [--question "…"]
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import ROOT, machine

QUESTION = "What is the value of India's S-400 contract?"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def one_start(
    index: Path, uploads: Path, question: str, timeout: float = 180.0
) -> tuple[float, float, float, str, str]:
    """(seconds to ready, to first answer, CPU seconds used by then, short answer, app output) for one fresh app."""
    from gradio_client import Client

    port = free_port()
    log = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115  (the app writes to it while it runs; closed below)
    started = time.perf_counter()
    process = subprocess.Popen(
        [
            sys.executable,
            str(ROOT / "app.py"),
            "--port",
            str(port),
            "--index",
            str(index),
            "--corpus",
            str(ROOT / "seeds"),
            "--uploads",
            str(uploads),
        ],
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        client = None
        while client is None:
            if process.poll() is not None or time.perf_counter() - started > timeout:
                log.seek(0)
                raise SystemExit(f"the app did not start:\n{log.read()}")
            try:
                client = Client(f"http://127.0.0.1:{port}/", verbose=False)
            except Exception:  # not listening yet
                time.sleep(0.05)
        ready = time.perf_counter() - started
        _, record = client.predict(question, 5, "extractive", api_name="/ask")
        answered = time.perf_counter() - started
        cpu = cpu_seconds(process.pid)
    finally:
        process.terminate()
        process.wait(timeout=30)
    log.seek(0)
    return (
        ready,
        answered,
        cpu,
        record.get("short_answer") or ("(abstained)" if record["abstained"] else ""),
        log.read(),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--question", default=QUESTION)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="app-start-"))
    try:
        index, uploads = work / "index", work / "uploads"
        subprocess.run(
            [sys.executable, "-m", "rag", "ingest", str(ROOT / "seeds"), "--index", str(index), "-q"],
            cwd=ROOT,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        print(machine())
        print(f"question: {args.question}\n")
        print("run  ready (s)  first answer (s)  app CPU (s)  short answer")
        readies, answers, cpus, log = [], [], [], ""
        for run in range(1, args.runs + 1):
            ready, answered, cpu, short, log = one_start(index, uploads, args.question)
            readies.append(ready)
            answers.append(answered)
            cpus.append(cpu)
            print(f"{run:>3}  {ready:9.1f}  {answered:16.1f}  {cpu:11.1f}  {short}")
        print(
            f"\nmedian: ready {statistics.median(readies):.1f} s, first answer {statistics.median(answers):.1f} s "
            f"(target ≤ 15 s), app CPU {statistics.median(cpus):.1f} s, over {args.runs} runs"
        )
        print("(wall times include waiting for cores: compare them with the load average above)")
        print(
            "\napp start-up steps (last run):\n" + "\n".join("  " + line for line in log.splitlines() if line.strip())
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
