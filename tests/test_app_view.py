"""The app's HTML views: corpus and user text is escaped, highlights follow character offsets."""

from __future__ import annotations

import re
from html import escape, unescape

from rag.app.views import Span, answer_html, articles_html, emphasised, marked, report_html, streaming_html
from rag.records import (
    Abstention,
    Answer,
    AnswerSentence,
    CheckReport,
    Citation,
    Document,
    Evidence,
    Passage,
    RemovedSentence,
    SentenceVerdict,
)

HOSTILE = (
    "Officials met on Monday. <script>alert('owned')</script> The minister said "
    '<img src=x onerror=alert(1)> nothing & left. "Quotes" stay.'
)


def _hostile_answer() -> tuple[Answer, dict[str, Document]]:
    doc = Document(id="evil<1>", title="<b>Breaking</b> & <script>x()</script>", text=HOSTILE)
    start = HOSTILE.index("The minister")
    end = HOSTILE.index("left.") + len("left.")
    passage = Passage(doc.id, 0, 0, len(HOSTILE), HOSTILE, 0.5, 1)
    citation = Citation(doc.id, start, end, HOSTILE[start:end], 1)
    answer = Answer(
        "What did the minister say?",
        (AnswerSentence(HOSTILE[start:end], (citation,)),),
        (passage,),
        short_answer="<img src=x onerror=alert(1)>",
        score=0.9,
    )
    return answer, {doc.id: doc}


def _tags(html: str) -> set[str]:
    return {m.lower() for m in re.findall(r"<\s*([a-zA-Z][a-zA-Z0-9]*)", html)}


def test_marked_escapes_each_piece_and_marks_the_span():
    assert marked("a <b> c", [Span(2, 5)]) == "a <mark>&lt;b&gt;</mark> c"


def test_marked_uses_document_offsets_and_clips():
    text = "0123456789"
    # The text starts at offset 100 of its document; the span runs past its end.
    assert marked(text, [Span(104, 200, "s1")], offset=100) == '0123<mark id="s1">456789</mark>'
    assert marked(text, [Span(0, 50)], offset=100) == text  # outside the text: nothing marked


def test_marked_drops_overlapping_spans():
    assert marked("abcdef", [Span(0, 3), Span(2, 5)]) == "<mark>abc</mark><mark>de</mark>f"


def test_emphasised_escapes_the_phrase():
    assert emphasised("paid <$5> billion", "<$5>") == "paid <strong>&lt;$5&gt;</strong> billion"
    assert emphasised("no match", "elsewhere") == "no match"


def test_emphasised_marks_whole_words_only():
    # "no", the short answer to a yes/no question, is no quote of "not".
    assert emphasised("They would not strain ties", "no") == "They would not strain ties"
    assert emphasised("There is no deal", "no") == "There is <strong>no</strong> deal"


def test_article_with_script_and_img_renders_as_text():
    answer, documents = _hostile_answer()
    html = answer_html(answer, documents, seconds=0.1)
    assert "<script" not in html.lower() and "<img" not in html.lower()
    assert "onerror=alert(1)&gt;" in html  # shown to the reader, as text
    assert escape("<script>alert('owned')</script>") in html
    # Only markup this module writes appears as tags.
    assert _tags(html) <= {"div", "p", "a", "h3", "h4", "span", "mark", "strong", "details", "summary"}
    titles = articles_html(documents, {"evil<1>": 1})
    assert "<script" not in titles.lower() and "&lt;b&gt;Breaking&lt;/b&gt;" in titles


def test_cited_sentence_is_marked_from_its_offsets():
    answer, documents = _hostile_answer()
    citation = answer.citations[0]
    html = answer_html(answer, documents)
    marks = re.findall(r"<mark[^>]*>(.*?)</mark>", html, flags=re.S)
    # The passage card, the whole article and the retrieved passage all mark exactly the cited span.
    assert marks and all(unescape(m) == documents[citation.doc_id].text[citation.start : citation.end] for m in marks)
    assert 'id="rag-span-1"' in html and 'href="#rag-cite-1"' in html and 'id="rag-cite-1"' in html


def test_abstention_is_a_distinct_state_with_the_closest_passages():
    answer, documents = _hostile_answer()
    abstained = Answer(answer.question, (), answer.passages, abstention=Abstention("below the abstention threshold"))
    html = answer_html(abstained, documents)
    assert 'class="rag-abstain"' in html and "The corpus does not answer this question." in html
    assert "Closest passages" in html and "score 0.5000" in html
    assert "rag-cite" not in html


def test_check_report_is_coloured_and_escaped():
    _, documents = _hostile_answer()
    doc = next(iter(documents.values()))
    start = HOSTILE.index("<img")
    evidence = Evidence(doc.id, start, start + 28, HOSTILE[start : start + 28])
    report = CheckReport(
        (
            SentenceVerdict("<b>bold</b> claim", "supported", 0.9, evidence, (), (1,)),
            SentenceVerdict("Another <i>claim</i>", "unsupported", 0.1, None, ("the number <5> is missing",), (2,)),
        ),
        citation_recall=0.5,
        citation_precision=0.5,
    )
    html = report_html(report, documents)
    assert 'class="rag-verdict supported"' in html and 'class="rag-verdict unsupported"' in html
    assert "<img" not in html and "<b>bold" not in html and "&lt;5&gt;" in html
    assert f"<mark>{escape(evidence.text)}</mark>" in html


def test_removed_sentences_are_struck_out_and_escaped():
    answer, documents = _hostile_answer()
    removed = RemovedSentence("It cost <b>$7</b> billion.", "unsupported", ("the amount $7 is not in [1]",), (1,))
    html = answer_html(
        Answer(answer.question, answer.sentences, answer.passages, score=0.9, removed=(removed,)), documents
    )
    assert "<del>It cost &lt;b&gt;$7&lt;/b&gt; billion.</del>" in html and "<b>$7" not in html
    assert html.count('class="rag-removed"') == 1 and "Removed: 1 sentence(s)" in html
    events = [
        {"type": "sentence", "kept": False, "text": removed.text, "sentence": None, "removed": removed},
        {
            "type": "sentence",
            "kept": True,
            "text": answer.sentences[0].text,
            "sentence": answer.sentences[0],
            "removed": None,
        },
    ]
    partial = streaming_html(events)
    assert escape(answer.sentences[0].text) in partial and "[1]" in partial
    assert partial.count("<del>It cost &lt;b&gt;") == 1


def test_example_questions_come_from_the_packaged_examples_for_the_corpus_they_fit(seed_index, tmp_path):
    from dataclasses import replace

    from rag.app.startup import EXAMPLES_FILE, example_questions

    examples = example_questions(seed_index)
    assert len(examples) == 5 and "What is the value of India's S-400 contract?" in examples
    assert "eval" not in str(EXAMPLES_FILE) and EXAMPLES_FILE.is_file()  # not the gold set
    one_article = {k: v for k, v in seed_index.documents.items() if k.startswith("000_")}
    fewer = example_questions(replace(seed_index, documents=one_article))
    assert "What is the value of India's S-400 contract?" in fewer
    assert "Where did Erdogan meet Putin this week?" not in fewer  # its article is not in the index
    assert example_questions(replace(seed_index, documents={})) == []
