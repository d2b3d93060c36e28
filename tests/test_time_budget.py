"""A time budget per request: `ask`, `check`, `eval` and the app's handlers stop with one line when it runs out.

A budget of a nanosecond has run out by the first check, whatever the machine's speed; a slow LLM is
a loopback server that answers only when the test lets it. No test measures a duration.
"""

from __future__ import annotations

import json

import pytest

from rag.answer.pipeline import ask
from rag.budget import TimeBudgetExceeded, time_budget

from .llm_server import Script, Step, base_url

NOW = "1e-9"  # seconds: spent before the first check
INDIA = "How much was India's S-400 contract worth?"


def test_ask_stops_when_its_budget_runs_out(retriever):
    with time_budget(float(NOW), "the question"), pytest.raises(TimeBudgetExceeded) as stopped:
        ask(INDIA, retriever)
    message = str(stopped.value)
    assert message.startswith("the question took longer than its time budget") and "\n" not in message
    assert "--time-budget" in message and "RAG_TIME_BUDGET" in message
    assert not ask(INDIA, retriever).abstained  # outside a budget nothing is stopped


def test_checking_stops_when_its_budget_runs_out(retriever):
    from rag.check.checker import CitationChecker

    checker = CitationChecker(retriever.index, retriever.embedder)
    answer = ask(INDIA, retriever)
    with time_budget(float(NOW)), pytest.raises(TimeBudgetExceeded):
        checker.check_record(answer.to_dict())


def _cli(capsys, *args):
    from rag.cli import main

    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_ask_and_check_stop_with_one_line(seed_settings, capsys, tmp_path):
    index = ["--index", str(seed_settings.index_dir), "--no-rebuild"]
    code, out, err = _cli(capsys, "ask", INDIA, *index, "--time-budget", NOW)
    assert code == 2 and out == "" and err.startswith("error: the question took longer than its time budget")
    assert err.count("\n") == 1
    code, out, _ = _cli(capsys, "ask", INDIA, *index, "--json")
    answer = tmp_path / "answer.json"
    answer.write_text(out)
    code, out, err = _cli(capsys, "check", str(answer), *index, "--time-budget", NOW)
    assert code == 2 and "time budget" in err and err.count("\n") == 1


def test_a_budget_that_is_not_a_number_is_one_line(seed_settings, capsys, monkeypatch):
    monkeypatch.setenv("RAG_TIME_BUDGET", "soon")
    code, _, err = _cli(capsys, "ask", INDIA, "--index", str(seed_settings.index_dir), "--no-rebuild")
    assert code == 2 and "RAG_TIME_BUDGET='soon' is not a number" in err and err.count("\n") == 1
    code, _, err = _cli(capsys, "ask", INDIA, "--time-budget", "0")
    assert code == 2 and "--time-budget" in err and err.count("\n") == 1


def test_eval_records_questions_that_run_out_of_time_and_goes_on(seed_settings, capsys, tmp_path):
    gold = tmp_path / "gold.jsonl"
    rows = [
        {"id": f"q{n}", "question": q, "answers": ["x"], "evidence": [], "answerable": True}
        for n, q in enumerate([INDIA, "Which organisation does Omar Lamrani work for?"])
    ]
    gold.write_text("".join(json.dumps(r) + "\n" for r in rows))
    code, _out, err = _cli(
        capsys,
        "eval",
        "--gold",
        str(gold),
        "--out",
        str(tmp_path / "run"),
        "--index",
        str(seed_settings.index_dir),
        "--no-rebuild",
        "--quiet",
        "--time-budget",
        NOW,
    )
    assert code == 0 and "2 questions ran out of their time budget" in err
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["timed_out"] == 2
    results = [json.loads(line) for line in (tmp_path / "run" / "results.jsonl").read_text().splitlines()]
    assert all(r["abstained"] and "time budget" in r["answer"] and r["scores"]["timed_out"] for r in results)


def test_a_slow_llm_is_stopped_by_the_budget_not_left_waiting(llm_server, seed_settings, capsys):
    llm = llm_server
    llm.script = Script(steps=[Step("wait", "India signed a $5 billion contract [1].")])
    try:
        code, _, err = _cli(
            capsys,
            "ask",
            INDIA,
            "--index",
            str(seed_settings.index_dir),
            "--no-rebuild",
            "--answerer",
            "llm",
            "--llm-url",
            base_url(llm),
            "--llm-model",
            "scripted",
            "--llm-timeout",
            "600",
            "--llm-retries",
            "0",
            "--time-budget",
            "5",  # room for retrieval on a busy machine before the request is sent
        )
    finally:
        llm.script.release.set()
    assert code == 2 and err.startswith("error: the question took longer than its time budget of 5 s")
    assert llm.script.received.is_set()  # it did reach the server, and did not wait the 600 s


# ---------------------------------------------------------------------------
# The app


@pytest.fixture(scope="module")
def app(tmp_path_factory, embedder):
    """(state, client) for the real app on a free loopback port over a private copy of the seeds."""
    import shutil
    from dataclasses import replace

    from gradio_client import Client

    from rag.app.startup import start
    from rag.app.state import AppState, app_settings
    from rag.search.index import open_index
    from rag.settings import Settings

    from .conftest import SEEDS
    from .test_webapp import free_port

    base = tmp_path_factory.mktemp("budget-app")
    shutil.copytree(SEEDS, base / "corpus")
    settings = app_settings(replace(Settings(), corpus=(base / "corpus",), index_dir=base / "index"), base / "uploads")
    state = AppState(settings, embedder, open_index(settings, embedder), base / "uploads")
    port = free_port()
    server = start(state, "127.0.0.1", port)
    yield state, Client(f"http://127.0.0.1:{port}/", verbose=False)
    server.close()


@pytest.fixture
def llm_env(llm_server, monkeypatch):
    """The app's LLM answerer pointed at the scripted server; returns the script, fresh."""
    monkeypatch.setenv("RAG_LLM_BASE_URL", base_url(llm_server))
    monkeypatch.setenv("RAG_LLM_MODEL", "scripted")
    monkeypatch.setenv("RAG_LLM_RETRIES", "0")
    llm_server.script = Script()
    return llm_server.script


def test_a_slow_llm_answer_never_holds_up_extractive_questions(app, llm_env):
    from .conftest import time_limit

    _state, client = app
    llm_env.steps = [Step("wait", "India signed a $5 billion contract for the S-400 [1].")]
    slow = client.submit(INDIA, 5, "llm", api_name="/ask")
    try:
        assert llm_env.received.wait(timeout=60)
        with time_limit(120, "extractive questions while an LLM answer is pending"):
            jobs = [
                client.submit(q, 5, "extractive", api_name="/ask")
                for q in (INDIA, "Which organisation does Omar Lamrani work for?")
            ]
            results = [job.result(timeout=110) for job in jobs]
            _, report = client.predict(json.dumps(results[0][1]), api_name="/check")
        assert "5 billion" in results[0][1]["short_answer"] and report["sentences"]
        assert not slow.done()  # the LLM answer was still being written all that time
    finally:
        llm_env.release.set()
    _, record = slow.result(timeout=60)
    assert record["answerer"] == "llm"


def test_app_handlers_stop_with_one_line_when_the_budget_runs_out(app, llm_env, monkeypatch):
    from dataclasses import replace

    from gradio_client.exceptions import AppError

    state, client = app
    monkeypatch.setattr(state, "settings", replace(state.settings, time_budget=float(NOW)))
    with pytest.raises(AppError, match="took longer than its time budget"):
        client.predict(INDIA, 5, "extractive", api_name="/ask")
    with pytest.raises(AppError, match="took longer than its time budget"):
        client.predict(
            json.dumps(
                {
                    "answer": "Turkey bought S-400s [1].",
                    "citations": [{"doc_id": "000_bbbc7011c7c84b3f", "quote": "Turkey"}],
                }
            ),
            api_name="/check",
        )
    monkeypatch.setattr(state, "settings", replace(state.settings, time_budget=1.0))
    llm_env.steps = [Step("wait", "India signed a $5 billion contract [1].")]
    try:
        with pytest.raises(AppError, match="time budget of 1 s"):
            client.predict(INDIA, 5, "llm", api_name="/ask")
    finally:
        llm_env.release.set()
