"""Loading articles: formats, normalisation of hard-wrapped text, and bad files."""

import json
import logging

import pytest

from rag.errors import CorpusError
from rag.ingest.normalising import normalise_text
from rag.ingest.reading import load_corpus

from .conftest import SEEDS

SECOND_SEED = "002_16737bcee59f1979"


def test_seed_articles_load_with_their_file_stems_as_ids():
    docs = {d.id: d for d in load_corpus([SEEDS])}
    assert set(docs) == {"000_bbbc7011c7c84b3f", SECOND_SEED}


def test_wrapped_lines_join_and_a_line_ending_in_a_hyphen_keeps_it():
    raw = (SEEDS / f"{SECOND_SEED}.txt").read_text()
    assert "S-\n400" in raw  # the file really breaks the name across lines
    text = {d.id: d for d in load_corpus([SEEDS])}[SECOND_SEED].text
    assert "buying more Russian S-400 missile systems" in text
    assert "S- 400" not in text and "S-\n400" not in text
    # Wrapped lines inside a paragraph are joined with a single space.
    assert "North Atlantic Treaty Organization (NATO) ally" in text
    assert "  " not in text


def test_the_two_line_headline_of_the_second_seed_becomes_its_title():
    doc = {d.id: d for d in load_corpus([SEEDS])}[SECOND_SEED]
    assert doc.title == (
        "Turkish President Erdogan Says the Country Could Buy More Russian S-400 Missile Systems "
        "Despite Strong Objections by the United States"
    )
    assert doc.text.startswith(doc.title + "\n\n")


def test_unwrapped_text_keeps_one_paragraph_per_line():
    raw = "First paragraph is a long line that ends here.\nSecond paragraph on its own line.\n"
    _, text = normalise_text(raw * 3)
    assert text.count("\n\n") == 5


def test_html_text_comes_from_a_parser_without_scripts(tmp_path):
    (tmp_path / "page.html").write_text(
        "<html><head><title>Site</title><script>var x = 'hidden';</script></head>"
        "<body><h1>Big &amp; News</h1><p>First <b>bold</b> paragraph.</p><p>Second one.</p></body></html>"
    )
    (doc,) = load_corpus([tmp_path])
    assert doc.id == "page" and doc.title == "Big & News"
    assert doc.text == "Big & News\n\nFirst bold paragraph.\n\nSecond one."


def test_jsonl_articles_use_their_own_ids_and_metadata(tmp_path):
    lines = [
        {"id": "a1", "title": "One", "text": "Alpha beta.", "url": "https://example.org/a1", "published": "2021-09-30"},
        {"id": "a2", "title": "Two", "text": "Gamma delta."},
    ]
    (tmp_path / "news.jsonl").write_text("\n".join(json.dumps(x) for x in lines) + "\n{broken\n")
    docs = {d.id: d for d in load_corpus([tmp_path])}
    assert set(docs) == {"a1", "a2"}
    assert docs["a1"].url == "https://example.org/a1" and docs["a1"].published == "2021-09-30"


def test_empty_binary_and_undecodable_files_are_skipped_with_a_warning(tmp_path, caplog):
    (tmp_path / "good.txt").write_text("A real article about something.")
    (tmp_path / "empty.txt").write_text("   \n")
    (tmp_path / "binary.txt").write_bytes(b"\x89PNG\x00\x00\x01")
    (tmp_path / "latin1.txt").write_bytes("caf\xe9 cr\xe8me".encode("latin-1"))
    with caplog.at_level(logging.WARNING):
        docs = load_corpus([tmp_path])
    assert [d.id for d in docs] == ["good"]
    for name in ("empty.txt", "binary.txt", "latin1.txt"):
        assert any(name in record.getMessage() for record in caplog.records)


def test_a_missing_path_is_a_clear_error(tmp_path):
    with pytest.raises(CorpusError, match="does not exist"):
        load_corpus([tmp_path / "nope"])


def test_jsonl_articles_without_a_usable_id_are_skipped_with_a_warning(tmp_path, caplog):
    lines = [
        {"id": None, "title": "Null", "text": "Text of a record whose id is null."},
        {"id": "", "title": "Empty", "text": "Text of a record whose id is empty."},
        {"id": ["a"], "title": "List", "text": "Text of a record whose id is a list."},
        {"id": 7, "title": "Seven", "text": "A numeric id is a fine id."},
    ]
    (tmp_path / "news.jsonl").write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    with caplog.at_level(logging.WARNING):
        docs = load_corpus([tmp_path])
    assert [d.id for d in docs] == ["7"] and "None" not in {d.id for d in docs}
    for number in (1, 2, 3):
        assert f"line {number}" in caplog.text
    assert "'id'" in caplog.text


def test_symbolic_links_that_loop_or_point_nowhere_are_skipped_with_a_warning(tmp_path, caplog):
    (tmp_path / "good.txt").write_text("A real article about something.")
    (tmp_path / "a.txt").symlink_to(tmp_path / "b.txt")
    (tmp_path / "b.txt").symlink_to(tmp_path / "a.txt")
    (tmp_path / "gone.txt").symlink_to(tmp_path / "deleted.txt")
    with caplog.at_level(logging.WARNING):
        docs = load_corpus([tmp_path])
    assert [d.id for d in docs] == ["good"]
    assert "a.txt" in caplog.text and "b.txt" in caplog.text and "loops" in caplog.text
    assert "gone.txt" in caplog.text and "points to nothing" in caplog.text
    with pytest.raises(CorpusError, match=r"a\.txt is a symbolic link that loops"):
        load_corpus([tmp_path / "a.txt"])
