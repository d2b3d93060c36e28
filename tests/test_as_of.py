"""Searching the corpus as of a date: later articles are left out, undated ones kept, nothing changes without
a date; `rag eval` dates each gold question by its as_of or week; bad dates are one-line errors."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import date

import pytest

from rag.errors import RagError
from rag.evaluate.gold import dated, load_gold
from rag.validation import as_date, parse_date

from .conftest import small_faiss

QUESTION = "When did the Harbour Bridge in Portsmouth reopen?"

# One story told over weeks, in the three date forms a corpus may use, plus an undated article and
# later articles that match the question best, so a date has something to leave out.
ARTICLES = [
    ("early", "2023/01/02", "Portsmouth's Harbour Bridge closed for repairs on Monday after cracks were found."),
    ("mid", "2023-01-09", "Engineers said the Harbour Bridge in Portsmouth would reopen within weeks."),
    ("undated", None, "The Harbour Bridge is the oldest crossing in Portsmouth, built in 1889."),
    ("late", "20230120", "The Harbour Bridge in Portsmouth reopened on Friday."),
    ("later", "2023-02-01", "Since the Harbour Bridge in Portsmouth reopened, traffic has been heavy on it."),
    ("latest", "2023-03-15T08:00:00Z", "A month after it reopened, the Harbour Bridge in Portsmouth closed again."),
]


@pytest.fixture(scope="module")
def dated_index(tmp_path_factory, embedder):
    from rag.search.index import open_index
    from rag.settings import Settings

    base = tmp_path_factory.mktemp("dated")
    corpus = base / "articles.jsonl"
    lines = [
        {"id": i, "title": i.title(), "text": text, **({"published": when} if when else {})}
        for i, when, text in ARTICLES
    ]
    corpus.write_text("".join(json.dumps(row) + "\n" for row in lines), encoding="utf-8")
    settings = replace(Settings(), corpus=(corpus,), index_dir=base / "index")
    return settings, open_index(settings, embedder)


@pytest.fixture(scope="module")
def dated_retriever(dated_index, embedder):
    from rag.search.retrieval import Retriever

    return Retriever(dated_index[1], embedder)


@pytest.mark.parametrize("mode", ["dense", "bm25", "hybrid"])
def test_articles_published_after_the_date_are_left_out_and_undated_ones_kept(dated_retriever, mode):
    everything = {p.doc_id for p in dated_retriever.search(QUESTION, k=6, mode=mode)}
    assert {"late", "later", "latest"} <= everything  # they are the best matches without a date
    passages = dated_retriever.dated(date(2023, 1, 9)).search(QUESTION, k=6, mode=mode)
    assert {p.doc_id for p in passages} == {"early", "mid", "undated"}
    assert [p.rank for p in passages] == list(range(1, len(passages) + 1))


def test_k_results_remain_when_the_best_matches_are_later(dated_retriever, embedder):
    chunks = dated_retriever.index.chunks
    as_of = dated_retriever.dated(date(2023, 1, 10))
    vector = embedder.encode_query(QUESTION)
    for rank in (lambda r, n: r.dense(vector, n), lambda r, n: r.lexical(QUESTION, n)):
        assert chunks[rank(dated_retriever, 1)[0][0]].doc_id in {"late", "later", "latest"}  # the best is later
        for n in (1, 2, 3):  # so the ranking is fetched deeper until n earlier or undated ones are found
            found = [chunks[i].doc_id for i, _ in rank(as_of, n)]
            assert len(found) == n and set(found) <= {"early", "mid", "undated"}


def test_the_rest_keep_their_order(dated_retriever):
    whole = [p.doc_id for p in dated_retriever.search(QUESTION, k=6, mode="dense")]
    as_of = [p.doc_id for p in dated_retriever.dated(date(2023, 1, 25)).search(QUESTION, k=6, mode="dense")]
    assert as_of == [d for d in whole if d not in ("later", "latest")]


def test_passages_carry_their_article_date_in_iso_form(dated_retriever, retriever):
    published = {p.doc_id: p.published for p in dated_retriever.search(QUESTION, k=6, mode="dense")}
    assert published == {
        "early": "2023-01-02",
        "mid": "2023-01-09",
        "undated": None,
        "late": "2023-01-20",
        "later": "2023-02-01",
        "latest": "2023-03-15",
    }
    assert all(p.published is None for p in retriever.search("Who sold S-400s to Turkey?", k=3))  # .txt: undated


@pytest.mark.parametrize("kind", ["flat", "ivf", "ivfpq"])
def test_each_faiss_kind_leaves_out_later_rows_inside_the_search(kind):
    import numpy as np

    from rag.search.backend import search_one

    rng = np.random.default_rng(1)
    vectors = rng.standard_normal((3_000, 32)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    index = small_faiss(vectors, kind)
    allowed = rng.random(len(vectors)) < 0.2  # most rows published too late, as for an early question week
    for query in vectors[:5]:
        query = query.reshape(1, -1)
        scores, ids = search_one(index, query, 25, allowed)
        whole_scores, whole_ids = search_one(index, query, len(vectors))  # every row the index would rank
        kept = [(i, s) for i, s in zip(whole_ids[0], whole_scores[0]) if i >= 0 and allowed[i]][:25]
        assert all(allowed[ids[0]]) and len(ids[0]) == 25
        # The same rows as filtering the whole ranking (scores compared: a quantised index has ties).
        assert np.allclose(scores[0], [s for _, s in kept])


@pytest.mark.parametrize("mode", ["dense", "bm25", "hybrid"])
def test_without_a_date_nothing_changes(dated_retriever, retriever, mode):
    for r, question in ((dated_retriever, QUESTION), (retriever, "Which law penalises buyers of Russian arms?")):
        plain = r.search(question, k=5, mode=mode)
        assert r.dated(None).search(question, k=5, mode=mode) == plain
        assert r.dated(date(2030, 1, 1)).search(question, k=5, mode=mode) == plain  # a date after every article


def test_rag_search_as_of_on_the_command_line(dated_index, capsys):
    from rag.cli import main

    settings, _ = dated_index
    argv = ["search", QUESTION, "--index", str(settings.index_dir), "--no-rebuild", "--json", "-k", "6"]
    assert main(argv) == 0
    plain = json.loads(capsys.readouterr().out)
    assert main([*argv, "--as-of", "2023/01/09"]) == 0
    assert {p["doc_id"] for p in json.loads(capsys.readouterr().out)} <= {"early", "mid", "undated"}
    assert main([*argv, "--as-of", "2031-01-01"]) == 0
    assert json.loads(capsys.readouterr().out) == plain


@pytest.mark.parametrize("value", ["2023-01-05", "2023/01/05", "20230105", "2023-01-05T23:59:00+02:00"])
def test_date_forms(value):
    assert as_date(value) == parse_date(value) == date(2023, 1, 5)


@pytest.mark.parametrize("value", ["2023-02-30", "2023/1/5", "5 January 2023", "2023-01/05", "202301055", ""])
def test_a_bad_date_is_a_one_line_error_naming_it(value, capsys):
    from rag.cli import main

    with pytest.raises(RagError, match="is not a date"):
        parse_date(value, "--as-of")
    assert main(["ask", "Who?", "--as-of", value]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and repr(value) in err and "--as-of" in err


def _gold_row(id_: str, **extra) -> dict:
    row = {"id": id_, "question": QUESTION, "answers": ["on Friday"], "answerable": True}
    return {**row, "evidence": [{"doc_id": "late", "quote": "reopened on Friday"}], **extra}


def test_a_bad_week_in_a_gold_file_names_the_line(tmp_path):
    gold = tmp_path / "gold.jsonl"
    gold.write_text(json.dumps(_gold_row("a", week="20230109")) + "\n" + json.dumps(_gold_row("b", week="2023013")))
    with pytest.raises(RagError, match=r"line 2: 'week' '2023013' is not a date"):
        load_gold(gold)


def test_gold_dates_week_plus_slack_as_of_overrides_and_no_as_of(tmp_path):
    gold = tmp_path / "gold.jsonl"
    rows = [_gold_row("w", week="20230109"), _gold_row("a", as_of="2023-01-21", week="20230109"), _gold_row("n")]
    gold.write_text("".join(json.dumps(r) + "\n" for r in rows))
    questions = load_gold(gold)
    assert [q.as_of for q in dated(questions, None, use_gold=True, week_slack=2)] == [
        date(2023, 1, 11),
        date(2023, 1, 21),
        None,
    ]
    assert [q.as_of for q in dated(questions, None, use_gold=False, week_slack=2)] == [None, None, None]
    assert {q.as_of for q in dated(questions, date(2023, 5, 1), use_gold=True, week_slack=2)} == {date(2023, 5, 1)}


def test_rag_eval_searches_each_question_as_of_its_week(dated_index, tmp_path, capsys):
    from rag.cli import main

    settings, _ = dated_index
    gold = tmp_path / "gold.jsonl"
    gold.write_text(json.dumps(_gold_row("before", week="20230110")) + "\n" + json.dumps(_gold_row("after")) + "\n")
    base = ["eval", "--gold", str(gold), "--index", str(settings.index_dir), "--no-rebuild", "-q", "--week-slack", "0"]

    def passages(out: str, *options: str) -> dict[str, set[str]]:
        assert main([*base, "--out", str(tmp_path / out), *options]) == 0
        rows = [json.loads(line) for line in (tmp_path / out / "results.jsonl").read_text().splitlines()]
        return {r["id"]: {p["doc_id"] for p in r["passages"]} for r in rows}

    weekly = passages("weekly")
    assert weekly["before"] <= {"early", "mid", "undated"} and "late" in weekly["after"]
    settings_run = json.loads((tmp_path / "weekly" / "metrics.json").read_text())["run"]["settings"]
    assert settings_run["as_of"] == "gold as_of, else week + 0 days"
    assert "late" in passages("undated", "--no-as-of")["before"]
    assert passages("fixed", "--as-of", "2023-01-02")["after"] <= {"early", "undated"}
    capsys.readouterr()
    assert main([*base, "--out", str(tmp_path / "both"), "--as-of", "2023-01-02", "--no-as-of"]) == 2
    assert "not both" in capsys.readouterr().err
