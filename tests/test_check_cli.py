"""`rag check` end to end on the seed index: formats, table, --json, stdin and exit codes."""

from __future__ import annotations

import io
import json

import pytest

from rag.cli import main

ARMS = "000_bbbc7011c7c84b3f"
CAIRO = "Cairo bought 76 percent of its arms and equipment from the US between 2008 and 2011."


@pytest.fixture
def run(seed_index, seed_settings, capsys):
    def run(*args: str) -> tuple[int, str, str]:
        code = main(["check", *args, "--index", str(seed_settings.index_dir), "--no-rebuild"])
        out, err = capsys.readouterr()
        return code, out, err

    return run


def test_supported_markdown_answer_exits_0(run, tmp_path):
    path = tmp_path / "answer.md"
    path.write_text(
        f"Cairo bought 76% of its arms and equipment from the US between 2008 and 2011 [1].\n\n"
        f'## Sources\n[1] {ARMS}: "{CAIRO}"\n'
    )
    code, out, _ = run(str(path))
    assert code == 0, out
    assert "supported" in out and f"{ARMS} [" in out and "citation recall 1.00" in out


def test_unsupported_quote_json_exits_1_with_json_report(run, tmp_path):
    path = tmp_path / "answer.json"
    path.write_text(
        json.dumps(
            {
                "answer": "Cairo bought 76 percent of its arms from the US between 2008 and 2011 [1]. "
                "Cairo bought 30 percent of its arms from France in 2015 [1].",
                "citations": [{"doc_id": ARMS, "quote": CAIRO.replace(" ", "  ")}],
            }
        )
    )
    code, out, _ = run(str(path), "--json", "--no-propose")
    assert code == 1
    report = json.loads(out)
    assert [s["verdict"] for s in report["sentences"]] == ["supported", "unsupported"]
    assert report["citation_recall"] == 0.5 and report["ok"] is False
    evidence = report["sentences"][0]["evidence"]
    assert evidence["doc_id"] == ARMS and "76 percent" in evidence["text"]


def test_stdin_is_read_for_dash(run, monkeypatch):
    monkeypatch.setattr(
        "sys.stdin", io.StringIO(f'Cairo bought 76 percent of its arms from the US [2].\n\n[1] {ARMS}: "{CAIRO}"\n')
    )
    code, out, _ = run("-", "--no-propose")
    assert code == 1
    assert "[2] is out of range" in out


@pytest.mark.parametrize("content", ["", "{broken", "Just text, no sources."])
def test_bad_input_exits_2_with_one_line(run, tmp_path, content):
    path = tmp_path / "bad.txt"
    path.write_text(content)
    code, out, err = run(str(path))
    assert code == 2 and out == ""
    assert err.startswith("error: ") and err.count("\n") == 1


def test_missing_file_exits_2(run, tmp_path):
    code, _, err = run(str(tmp_path / "nope.md"))
    assert code == 2 and "no file" in err


@pytest.mark.parametrize("rank", ["x", 1.5, [1], True])
def test_answer_json_with_a_passage_rank_that_is_no_number_exits_2(run, tmp_path, rank):
    path = tmp_path / "answer.json"
    path.write_text(
        json.dumps(
            {
                "sentences": [
                    {
                        "text": "Cairo bought 76 percent of its arms from the US.",
                        "citations": [{"doc_id": ARMS, "start": 0, "end": 10, "text": "x", "passage_rank": rank}],
                    }
                ],
                "passages": [],
            }
        )
    )
    code, out, err = run(str(path))
    assert code == 2 and out == ""
    assert err.startswith("error: ") and "passage_rank" in err and err.count("\n") == 1
