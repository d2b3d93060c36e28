"""`rag eval` end to end on a small gold file over the real seed index."""

import json

import pytest

from rag.evaluate.compare import compare_runs
from rag.evaluate.gold import load_gold
from rag.evaluate.run import run_evaluation, run_manifest, write_run

RESULT_FIELDS = {
    "id",
    "question",
    "answer",
    "short_answer",
    "abstained",
    "abstention_reason",
    "citations",
    "passages",
    "latency_ms",
    "error",
    "scores",
}

SMALL_GOLD = [
    {
        "id": "g1",
        "question": "Which organisation does Omar Lamrani work for?",
        "answers": ["Stratfor"],
        "evidence": [
            {"doc_id": "000_bbbc7011c7c84b3f", "quote": "Omar Lamrani, a senior military   analyst at Stratfor"}
        ],
        "answerable": True,
    },
    {
        "id": "g2",
        "question": "Who is the chief of Turkey's Defense Industry Directorate?",
        "answers": ["Ismail Demir"],
        "evidence": [{"doc_id": "002_16737bcee59f1979", "quote": "its chief Ismail\nDemir"}],
        "answerable": True,
    },
    {"id": "g3", "question": "What is the capital of Australia?", "answers": [], "evidence": [], "answerable": False},
]


@pytest.fixture(scope="module")
def run(tmp_path_factory, retriever):
    from rag.answer.registry import answerer_for
    from rag.check.checker import CitationChecker

    base = tmp_path_factory.mktemp("eval")
    gold_path = base / "gold.jsonl"
    gold_path.write_text("\n".join(json.dumps(g) for g in SMALL_GOLD) + "\n")
    questions = load_gold(gold_path)
    answerer = answerer_for("extractive", retriever)
    checker = CitationChecker(retriever.index, retriever.embedder)
    results, metrics = run_evaluation(questions, retriever, answerer, checker, k=5, progress=False)
    out = write_run(base / "run", results, metrics, run_manifest(gold_path, retriever, answerer.name, 5, None))
    return out


def test_results_have_exactly_the_documented_fields(run):
    rows = [json.loads(line) for line in (run / "results.jsonl").read_text().splitlines()]
    assert [r["id"] for r in rows] == ["g1", "g2", "g3"]
    for row in rows:
        assert set(row) == RESULT_FIELDS
        for citation in row["citations"]:
            assert set(citation) == {"doc_id", "start", "end", "text"}
        for passage in row["passages"]:
            assert set(passage) == {"doc_id", "start", "end", "score", "rank", "text"}
        assert (row["abstention_reason"] is None) == (not row["abstained"])


def test_gold_quotes_with_other_whitespace_are_found_in_the_retrieved_passages(run):
    rows = {r["id"]: r for r in map(json.loads, (run / "results.jsonl").read_text().splitlines())}
    assert rows["g1"]["scores"]["recall@10"] == 1.0
    assert rows["g2"]["scores"]["recall@10"] == 1.0
    assert rows["g1"]["scores"]["evidence_not_found"] == 0


def test_metrics_cover_every_family_and_name_the_run(run):
    metrics = json.loads((run / "metrics.json").read_text())
    assert {"retrieval", "answers", "abstention", "citations", "latency", "intervals_95", "run"} <= set(metrics)
    assert {"recall@1", "recall@3", "recall@5", "recall@10", "mrr"} <= set(metrics["retrieval"])
    assert {"exact_match", "token_f1", "answer_in_citation"} <= set(metrics["answers"])
    assert {"precision", "recall", "f1", "answered_accuracy"} <= set(metrics["abstention"])
    assert {"validity", "support_rate", "alce_recall", "alce_precision"} <= set(metrics["citations"])
    assert metrics["run"]["settings"]["k"] == 5 and metrics["run"]["index"]["embedder"]["dimension"] == 384


def test_the_report_puts_failures_first_and_has_its_plots(run):
    report = (run / "report.md").read_text()
    assert report.index("## Failures") < report.index("## All questions")
    for plot in ("scores.png", "risk_coverage.png", "latency.png"):
        assert (run / plot).stat().st_size > 1000 and plot in report


def test_a_run_compared_with_itself_changes_nothing(run):
    comparison = compare_runs(run, run)
    assert comparison["fixed"] == comparison["broken"] == comparison["changed"] == []
    assert all(v["delta"] in (0, None) for v in comparison["metrics"].values())


def test_comparison_lists_fixed_and_broken_questions(run, tmp_path):
    import shutil

    other = tmp_path / "other"
    shutil.copytree(run, other)
    rows = [json.loads(line) for line in (other / "results.jsonl").read_text().splitlines()]
    rows[0]["scores"]["status"] = "wrong" if rows[0]["scores"]["status"] == "correct" else "correct"
    (other / "results.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    comparison = compare_runs(run, other)
    assert [e["id"] for e in comparison["fixed"] + comparison["broken"]] == ["g1"]


def test_a_malformed_gold_line_stops_the_run_before_anything_is_written(tmp_path, capsys, monkeypatch):
    from rag.cli import main

    gold = tmp_path / "gold.jsonl"
    gold.write_text(json.dumps(SMALL_GOLD[0]) + "\n" + '{"id": "x", "question": 3}\n')
    code = main(["eval", "--gold", str(gold), "--out", str(tmp_path / "out"), "--index", str(tmp_path / "idx")])
    assert code == 2
    assert "line 2" in capsys.readouterr().err
    assert not (tmp_path / "out").exists() and not (tmp_path / "idx").exists()


# ---------------------------------------------------------------------------
# --out never destroys what the user made


@pytest.fixture
def eval_cli(seed_settings, tmp_path, capsys, monkeypatch):
    """Runs `rag eval` on the small gold set over the seed index; returns (exit code, stderr)."""
    from rag.cli import main

    gold = tmp_path / "gold.jsonl"
    gold.write_text("\n".join(json.dumps(g) for g in SMALL_GOLD) + "\n")
    monkeypatch.chdir(tmp_path)

    def run(out: str) -> tuple[int, str]:
        code = main(
            [
                "eval",
                "--gold",
                str(gold),
                "--out",
                out,
                "--index",
                str(seed_settings.index_dir),
                "--no-rebuild",
                "--quiet",
            ]
        )
        return code, capsys.readouterr().err

    return run


def _files(folder):
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_out_refuses_a_folder_of_other_files_and_leaves_it_untouched(eval_cli, tmp_path):
    folder = tmp_path / "thesis"
    (folder / "chapters").mkdir(parents=True)
    (folder / "notes.txt").write_text("my notes")
    (folder / "chapters" / "one.md").write_text("# Chapter one")
    before = _files(folder)
    code, err = eval_cli(str(folder))
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1
    assert "notes.txt" in err and "new or empty folder" in err
    assert _files(folder) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gold.jsonl", "thesis"]  # no staging left behind


def test_out_refuses_a_file_and_never_renames_it(eval_cli, tmp_path):
    target = tmp_path / "results.txt"
    target.write_text("keep me")
    code, err = eval_cli(str(target))
    assert code == 2 and "is a file" in err and err.count("\n") == 1
    assert target.read_text() == "keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gold.jsonl", "results.txt"]


def test_out_dot_is_a_one_line_error(eval_cli, tmp_path):
    code, err = eval_cli(".")
    assert code == 2 and err.startswith("error: ") and "Traceback" not in err and err.count("\n") == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gold.jsonl"]


def test_out_replaces_a_previous_run_and_fills_an_empty_folder(eval_cli, tmp_path):
    from rag.evaluate.run import RUN_FILES

    assert eval_cli("runs/base")[0] == 0
    first = _files(tmp_path / "runs" / "base")
    assert set(first) == set(RUN_FILES)
    assert eval_cli("runs/base")[0] == 0  # a run folder is replaced whole
    assert set(_files(tmp_path / "runs" / "base")) == set(RUN_FILES)
    (tmp_path / "empty").mkdir()
    assert eval_cli("empty")[0] == 0
    assert set(_files(tmp_path / "empty")) == set(RUN_FILES)
    assert not [p.name for p in (tmp_path / "runs").iterdir() if p.name.startswith(".")]


def test_out_refuses_a_run_folder_that_also_holds_notes(eval_cli, tmp_path):
    assert eval_cli("runs/base")[0] == 0
    (tmp_path / "runs" / "base" / "my-analysis.md").write_text("what I concluded")
    code, err = eval_cli("runs/base")
    assert code == 2 and "my-analysis.md" in err
    assert (tmp_path / "runs" / "base" / "my-analysis.md").read_text() == "what I concluded"


def test_gold_evidence_in_documents_the_index_lacks_is_warned_about(seed_settings, tmp_path, caplog):
    import logging

    from rag.cli import main

    gold = tmp_path / "gold.jsonl"
    rows = [
        dict(SMALL_GOLD[0], id="known"),
        dict(
            SMALL_GOLD[0],
            id="unknown",
            evidence=[{"doc_id": "rq_not_here", "quote": "something"}, {"doc_id": "rq_nor_here", "quote": "else"}],
        ),
    ]
    gold.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with caplog.at_level(logging.WARNING):
        code = main(
            [
                "eval",
                "--gold",
                str(gold),
                "--out",
                str(tmp_path / "run"),
                "--index",
                str(seed_settings.index_dir),
                "--no-rebuild",
                "--quiet",
            ]
        )
    assert code == 0
    assert "2 gold evidence documents are not in the index" in caplog.text and "rq_not_here" in caplog.text
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["evidence_documents_not_in_index"] == 2
