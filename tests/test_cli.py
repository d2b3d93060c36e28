"""The `rag` command as a user runs it: real processes, real index."""

import json
import os
import shutil
import subprocess
import sys

import pytest

from .conftest import ROOT, SEEDS

LAMRANI = "Which organisation does Omar Lamrani work for?"  # a dev-split gold question


class Result:
    def __init__(self, returncode, stdout, stderr):
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr


@pytest.fixture
def run(capsys, monkeypatch):
    """Runs `rag ARGS` in this process (models stay loaded), in the given folder."""
    from rag.cli import main

    def invoke(*args, cwd):
        monkeypatch.chdir(cwd)
        code = main(list(args))
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return invoke


def rag(*args, env=None, cwd=None, input=None):
    """Runs `rag ARGS` as a separate process, as a user would."""
    return subprocess.run(
        [sys.executable, "-m", "rag", *args],
        capture_output=True,
        text=True,
        cwd=cwd or ROOT,
        input=input,
        env={**os.environ, **(env or {})},
        timeout=300,
    )


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """A folder with its own copy of the seeds, indexed once by `rag ingest`."""
    base = tmp_path_factory.mktemp("cli")
    shutil.copytree(SEEDS, base / "seeds")
    result = rag("ingest", "seeds", "--quiet", cwd=base)  # a real process: the console entry point works
    assert result.returncode == 0, result.stderr
    assert "2 articles" in result.stdout and "chunks" in result.stdout
    return base


def test_help_does_not_import_torch():
    code = (
        "import sys, rag.cli; rag.cli.build_parser(); assert 'torch' not in sys.modules and 'faiss' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)
    assert "ingest" in rag("--help").stdout


def test_search_prints_numbered_passages_with_spans(workdir):
    result = rag("search", LAMRANI, "-k", "2", cwd=workdir)  # one real process end to end
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("[1] ") and "[2] " in result.stdout
    assert "Stratfor" in result.stdout


def test_search_json_has_offsets_into_the_documents(workdir, run):
    result = run("search", "Which law penalises buyers of Russian arms?", "--json", "-k", "3", cwd=workdir)
    passages = json.loads(result.stdout)
    assert [p["rank"] for p in passages] == [1, 2, 3]
    assert {"doc_id", "chunk_id", "start", "end", "score", "text"} <= set(passages[0])


def test_a_second_ingest_reuses_every_article(workdir, run):
    result = run("ingest", "--quiet", cwd=workdir)
    assert "0 embedded" in result.stdout and "2 articles reused" in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["search", "   "], "question is empty"),
        (["search", "x" * 5000], "characters long"),
        (["ingest", "no-such-folder"], "does not exist"),
        (["search", LAMRANI, "-k", "0"], "argument -k: must be a whole number from 1"),
        (["search", LAMRANI, "-k", "-3"], "argument -k: must be a whole number from 1"),
        (["search", LAMRANI, "-k", "many"], "argument -k: must be a whole number from 1"),
        (["ask", LAMRANI, "-k", "0"], "argument -k: must be a whole number from 1"),
        (["eval", "--gold", "eval/seeds_gold.jsonl", "-k", "0"], "argument -k: must be a whole number from 1"),
        (["ask"], "the following arguments are required: question"),
        (["serve", "--port", "http"], "invalid int value"),
    ],
)
def test_bad_input_is_one_clear_line_and_a_nonzero_exit(workdir, run, args, message):
    result = run(*args, cwd=workdir)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_searching_without_an_index_or_corpus_names_the_fix(tmp_path, run):
    result = run("search", "anything", "--index", str(tmp_path / "none"), cwd=tmp_path)
    assert result.returncode == 2 and "rag ingest" in result.stderr


def test_the_library_refuses_k_below_one_in_one_line(retriever):
    from rag.answer.pipeline import ask
    from rag.errors import RagError

    for call in (lambda: retriever.search(LAMRANI, k=0), lambda: ask(LAMRANI, retriever, k=-3)):
        with pytest.raises(RagError, match="k must be at least 1"):
            call()
