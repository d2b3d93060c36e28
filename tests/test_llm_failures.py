"""When the LLM server fails (issue 13, defects 5 and 6): `rag eval` records the failed question and goes on;
exit codes tell bad input (2) from a service that is unavailable (3) and from a run written with gaps (4).
"""

from __future__ import annotations

import json
import socket
from dataclasses import replace

import pytest

from rag.answer.llm.answerer import LLMAnswerer
from rag.answer.pipeline import ask, stream_ask
from rag.errors import ServiceUnavailableError

from .llm_server import Step, _pieces
from .test_llm_answerer import INDIA, faithful

KOFMAN = "Which security analyst described the Turkey deal as a major defence sales victory for Russia?"


def gold_file(tmp_path, questions: list[str]):
    rows = [
        {"id": f"q{n}", "question": q, "answers": ["x"], "answerable": True, "evidence": [], "split": "test"}
        for n, q in enumerate(questions, start=1)
    ]
    path = tmp_path / "gold.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def rag(capsys, *args: str) -> tuple[int, str, str]:
    from rag.cli import main

    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def llm_options(url: str, timeout: str = "5") -> list[str]:
    return ["--answerer", "llm", "--llm-url", url, "--llm-model", "scripted", "--llm-timeout", timeout]


@pytest.mark.parametrize(
    ("failure", "message"),
    [
        (Step("status", "model overloaded", status=500), "answered HTTP 500: model overloaded"),
        (Step("sleep", seconds=3), "sent nothing within 0.5 s"),
    ],
    ids=["HTTP 500 after retries", "read timeout"],
)
def test_a_failed_question_is_recorded_and_the_run_goes_on(
    failure, message, script, server, seed_settings, seed_index, tmp_path, capsys
):
    url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    script.steps = [failure, Step("reply", faithful)]
    index = ["--index", str(seed_settings.index_dir), "--no-rebuild", "--quiet"]
    gold = gold_file(tmp_path, [KOFMAN, INDIA])
    code, out, err = rag(
        capsys, "eval", "--gold", str(gold), "--out", str(tmp_path / "run"), *index, *llm_options(url, "0.5"),
        "--llm-retries", "0",
    )  # fmt: skip
    assert code == 4  # the run is written, with a gap
    assert err.startswith("error: 1 of 2 questions failed") and message in err and err.count("\n") == 1
    assert "Traceback" not in err and "questions failed" in out
    rows = [json.loads(line) for line in (tmp_path / "run" / "results.jsonl").read_text().splitlines()]
    assert [r["id"] for r in rows] == ["q1", "q2"]
    assert message in rows[0]["error"] and rows[0]["scores"]["status"] == "failed"
    assert rows[1]["error"] is None and rows[1]["answer"].startswith("India signed")
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["questions"] == 2 and metrics["failed"] == 1
    assert metrics["abstention"]["abstained"] == 0  # a failure is no abstention
    report = (tmp_path / "run" / "report.md").read_text()
    assert "## Failed questions (1 of 2)" in report and message in report


def test_a_server_that_is_not_running_stops_the_run_at_once(seed_settings, seed_index, tmp_path, capsys):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{s.getsockname()[1]}/v1"
    gold = gold_file(
        tmp_path, [INDIA, KOFMAN, INDIA + " ", KOFMAN + " ", "Which organisation does Omar Lamrani work for?"]
    )
    index = ["--index", str(seed_settings.index_dir), "--no-rebuild", "--quiet"]
    code, _, err = rag(
        capsys, "eval", "--gold", str(gold), "--out", str(tmp_path / "run"), *index, *llm_options(url),
        "--llm-retries", "0",
    )  # fmt: skip
    assert code == 3 and err.startswith("error: cannot connect to the LLM server")
    assert "the first 3 questions all failed" in err and err.count("\n") == 1
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    ("step", "code"),
    [
        (Step("status", status=503), 3),  # the server is there but failing: try again later
        (Step("status", status=404), 2),  # a wrong URL or model: the user fixes the command
        (Step("status", status=401), 2),  # a wrong key
        (Step("garbage"), 2),  # not an OpenAI-compatible API: a wrong URL
    ],
    ids=["503", "404", "401", "not OpenAI-compatible"],
)
def test_exit_codes_tell_bad_input_from_an_unavailable_service(
    step, code, script, server, seed_settings, seed_index, capsys
):
    url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    script.steps = [step]
    index = ["--index", str(seed_settings.index_dir), "--no-rebuild"]
    result = rag(capsys, "ask", INDIA, *index, *llm_options(url), "--llm-retries", "0")
    assert result[0] == code, result[2]


# ---------------------------------------------------------------------------
# Timeouts for local models (issue 13, deliverable 6): the first word times out, not the whole reply.


def test_the_first_word_times_out_even_while_the_server_pings(script, config, embedder, retriever):
    # Headers at once, then only keep-alive comments for 3 s: a plain read timeout would never fire.
    script.steps = [Step("late", faithful, seconds=3)]
    answerer = LLMAnswerer(replace(config, timeout=0.5), embedder)
    with pytest.raises(ServiceUnavailableError, match=r"sent nothing within 0.5 s .*raise --llm-timeout"):
        ask(INDIA, retriever, answerer)


def test_a_first_word_after_pings_within_the_timeout_is_answered(script, config, embedder, retriever):
    script.steps = [Step("late", faithful, seconds=0.5)]
    answer = ask(INDIA, retriever, LLMAnswerer(replace(config, timeout=5.0), embedder))
    assert not answer.abstained and answer.short_answer == "$5 billion"


def test_a_slow_but_steady_reply_is_not_cut_off(script, config, embedder, retriever):
    # A reply that takes several times the timeout to arrive, with each piece well within it.
    gap, timeout = 0.05, 0.6
    script.steps = [Step("slow", faithful, seconds=gap), Step("slow", faithful, seconds=gap)]
    answerer = LLMAnswerer(replace(config, timeout=timeout), embedder)
    answer = ask(INDIA, retriever, answerer)
    assert len(_pieces(faithful(script.requests[0]["body"]))) * gap > 3 * timeout
    assert not answer.abstained and answer.short_answer == "$5 billion"
    assert answer.sentences[0].text.startswith("India signed a $5 billion contract")
    events = list(stream_ask(INDIA, retriever, answerer))
    assert events[-1]["type"] == "answer" and not events[-1]["answer"].abstained
