"""The learned reader (the default answerer) on the seed articles: short answers inside verbatim,
cited sentences, sentence answers for why/how, yes or no with the deciding sentence, a calibrated
score, a hash-checked model.

The reader was fitted on news-quiz questions (eval/train_reader.py), never on these articles; the
factoid questions below are the rule-based answerer's test questions (tests/test_answering.py), so the
two answerers can be compared on the same ground; the yes/no questions were written for these tests
from the two articles. Misses are strict xfails, not left out.
"""

from __future__ import annotations

import shutil

import pytest

from rag.answer.pipeline import ask, load_threshold
from rag.answer.reader.answerer import READS, ReaderAnswerer
from rag.answer.reader.model import CARD_FILE, MODEL_FILE, load_reader
from rag.answer.reader.yes_no import UNDECIDED
from rag.answer.registry import DEFAULT_ANSWERER, default_answerer
from rag.check.thresholds import Thresholds
from rag.errors import RagError
from rag.records import ReaderFeatures, YesNoFeatures


def test_the_reader_is_the_default_answerer(retriever):
    assert DEFAULT_ANSWERER == "reader"
    assert isinstance(default_answerer(retriever), ReaderAnswerer)


MISS = "known miss of the reader (docs/answers.md)"


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("When were the doubts about Turkey's plan to buy Russian air-defence missiles settled?", "July 12"),
        ("Who is the Turkish president?", "Erdogan"),
        ("In which year was Turkey's first batch of missiles officially delivered?", "2019"),
        ("Who heads Turkey's Defense Industry Directorate?", "Ismail Demir"),
        ("In which city did Erdogan and Putin hold their meeting?", "Sochi"),
        ("Which alliance's systems does Turkey say the S-400s would not be integrated into?", "NATO"),
        ("How much was India's S-400 deal worth?", "$5 billion"),
        ("Which security analyst focuses on Russia?", "Michael Kofman"),
        ("How many countries already have the S-300 deployed?", "14"),
        pytest.param(
            "Which law allows the US government to penalise countries that make significant transactions with "
            "Russia's defence companies?",
            "CAATSA",
            marks=pytest.mark.xfail(strict=True, reason=MISS + ": 'Sanctions Act', the end of the law's full name"),
        ),
        pytest.param(
            "From which American jet programme was Turkey expelled?",
            "F-35",
            marks=pytest.mark.xfail(strict=True, reason=MISS + ": 'Russia' and 'Afghanistan' rank above 'F-35'"),
        ),
    ],
)
def test_a_factoid_question_gets_a_short_answer_inside_its_cited_sentence(
    retriever, seed_documents, question, expected
):
    answer = ask(question, retriever)
    assert not answer.abstained
    assert expected.lower() in answer.short_answer.lower()
    (sentence,) = answer.sentences
    (citation,) = sentence.citations
    assert seed_documents[citation.doc_id].text[citation.start : citation.end] == citation.text == sentence.text
    assert answer.short_answer in citation.text
    passage = next(p for p in answer.passages if p.rank == citation.passage_rank)
    assert passage.doc_id == citation.doc_id and passage.start - 1 <= citation.start < citation.end <= passage.end + 1
    assert isinstance(answer.features, ReaderFeatures)
    assert answer.features.candidates[0].text == answer.short_answer
    assert 0.0 <= answer.score <= 1.0 and answer.score == answer.features.probability


def test_the_reader_reads_the_passages_it_was_fitted_on_whatever_k(retriever, seed_index):
    answer = ask("Who heads Turkey's Defense Industry Directorate?", retriever, k=2)
    assert len(answer.passages) == min(READS, len(seed_index))


def test_a_why_question_gets_a_sentence_and_no_forced_entity(retriever):
    answer = ask("Why did the US remove Turkey from the F-35 programme?", retriever, threshold=0.0)
    assert answer.short_answer is None
    assert len(answer.sentences) == 1


@pytest.mark.parametrize(
    ("question", "expected", "deciding"),
    [
        ("Did the US impose sanctions on Turkey?", "yes", "the U.S. imposed sanctions on Turkey’s Defense"),
        # a negative question asks about the same claim: yes, the US did
        ("Didn't the US impose sanctions on Turkey?", "yes", "the U.S. imposed sanctions on Turkey’s Defense"),
        ("Does China have S-400 missiles?", "yes", "China already has S-400 surface-to-air missiles"),
        ("Is Turkey considering buying more Russian S-400 missile systems?", "yes", "is considering buying more"),
        ("Would Saudi Arabia and the UAE strain ties with Washington?", "no", "would not strain ties with Washington"),
        ("Is this the first time Turkey has dealt with missile sales from Russia?", "no", "This is not the first time"),
        pytest.param(
            "Have talks with Joe Biden been fruitful?",
            "no",
            "have not proven to be very fruitful",
            marks=pytest.mark.xfail(
                strict=True, reason=MISS + ": the judge misses the negation of 'be' there, so it abstains"
            ),
        ),
        pytest.param(
            "Is Turkey a NATO ally?",
            "yes",
            "ally",
            marks=pytest.mark.xfail(
                strict=True, reason=MISS + ": 'the key NATO ally' has no verb whose polarity the judge can read"
            ),
        ),
    ],
)
def test_a_yes_no_question_gets_yes_or_no_with_the_sentence_that_decides_it(
    retriever, seed_documents, question, expected, deciding
):
    answer = ask(question, retriever)
    assert not answer.abstained
    assert answer.short_answer == expected
    (sentence,) = answer.sentences
    (citation,) = sentence.citations
    assert deciding in citation.text
    assert seed_documents[citation.doc_id].text[citation.start : citation.end] == citation.text == sentence.text
    assert citation.passage_rank in {p.rank for p in answer.passages}
    # the score is the support judge's for the answer given, at least its "supported" cut-off
    assert isinstance(answer.features, YesNoFeatures)
    assert Thresholds.load().supported <= answer.score == answer.features.support <= 1.0


@pytest.mark.parametrize(
    "question",
    [
        "Did Putin visit Ankara?",  # the articles have the two leaders meet in Sochi, no visit to Ankara
        "Does Brazil have S-400 missiles?",  # Brazil is in neither article
    ],
)
def test_a_yes_no_question_no_sentence_decides_abstains_with_the_passages(retriever, question):
    answer = ask(question, retriever)
    assert answer.abstained and answer.short_answer is None and not answer.sentences
    assert answer.abstention.reason == UNDECIDED
    assert answer.passages
    assert isinstance(answer.features, YesNoFeatures) and answer.features.claim


def test_an_off_topic_question_abstains(retriever):
    # Two articles on Turkey's missiles: every question finds a candidate; the calibration, fitted with
    # questions read against another question's passages, tells this one is not about them.
    answer = ask("Who won the 2018 FIFA World Cup?", retriever)
    assert answer.abstained
    assert answer.score < answer.threshold == load_threshold("reader")


def test_a_model_file_that_is_not_the_fitted_one_is_refused_with_the_fix(tmp_path):
    model, card = tmp_path / MODEL_FILE.name, tmp_path / CARD_FILE.name
    shutil.copy(CARD_FILE, card)
    model.write_text(MODEL_FILE.read_text().replace("tree", "Tree", 1))
    with pytest.raises(RagError, match=r"does not match the fitted reader .*eval/train_reader.py"):
        load_reader(model, card)


def test_the_stored_analysis_gives_the_same_candidates_as_parsing_at_question_time(retriever, seed_index, embedder):
    from dataclasses import replace

    from rag.answer.pipeline import retrieve

    assert "analysis" in seed_index.artefacts  # written at ingest
    question = "Who heads Turkey's Defense Industry Directorate?"
    passages = retrieve(question, retriever, READS)
    reader = ReaderAnswerer(embedder)
    _, stored = reader.read(question, passages, seed_index)
    _, parsed = reader.read(question, passages, replace(seed_index, artefacts={}))
    assert [(o.text, o.start, o.end) for o in stored] == [(o.text, o.start, o.end) for o in parsed]
    assert [o.features for o in stored] == [o.features for o in parsed]


def test_a_question_is_parsed_once_for_retrieval_and_the_reader(retriever, monkeypatch):
    from rag.answer.pipeline import ask
    from rag.ingest import sentences

    pipeline, parsed = sentences.nlp(), []

    class Counting:  # the pipeline, counting what it parses
        def __call__(self, text):
            parsed.append(text)
            return pipeline(text)

        def __getattr__(self, name):
            return getattr(pipeline, name)

    counting, light = Counting(), sentences.nlp(False)
    monkeypatch.setattr(sentences, "_pipeline", lambda full: counting if full else light)
    question = "Which company heads the S-400 deal with Turkey, and since when?"  # asked by no other test
    assert ask(question, retriever).answerer == "reader"
    assert parsed.count(question) == 1


def test_the_reader_computes_every_column_the_fitted_model_reads(retriever, seed_index, embedder):
    from rag.answer.pipeline import retrieve

    question = "Who heads Turkey's Defense Industry Directorate?"
    _, occurrences = ReaderAnswerer(embedder).read(question, retrieve(question, retriever, READS), seed_index)
    computed = set().union(*(o.features for o in occurrences))
    assert set(load_reader().columns) <= computed


def test_the_span_head_reads_the_passages_the_model_was_fitted_with(retriever, seed_index, embedder):
    import math

    from rag.answer.pipeline import retrieve

    question = "Who heads Turkey's Defense Industry Directorate?"
    reads = load_reader().card["span_reads"]
    _, occurrences = ReaderAnswerer(embedder).read(question, retrieve(question, retriever, READS), seed_index)
    read = {o.sentence.passage.rank for o in occurrences if not math.isnan(o.features["span"])}
    assert read and max(read) <= reads < READS
    assert all(math.isnan(o.features["span"]) for o in occurrences if o.sentence.passage.rank > reads)


@pytest.mark.parametrize("reads", [0, 2])
def test_rag_span_reads_has_the_head_read_fewer_passages(retriever, seed_index, embedder, monkeypatch, reads):
    import math

    from rag.answer.pipeline import retrieve

    monkeypatch.setenv("RAG_SPAN_READS", str(reads))
    question = "Who heads Turkey's Defense Industry Directorate?"
    _, occurrences = ReaderAnswerer(embedder).read(question, retrieve(question, retriever, READS), seed_index)
    read = {o.sentence.passage.rank for o in occurrences if not math.isnan(o.features.get("span", math.nan))}
    assert read == set(range(1, reads + 1)) & {o.sentence.passage.rank for o in occurrences}


@pytest.mark.parametrize("value", ["9", "-1", "two"])
def test_a_bad_rag_span_reads_is_a_one_line_error_naming_it(monkeypatch, embedder, value):
    monkeypatch.setenv("RAG_SPAN_READS", value)
    with pytest.raises(RagError, match=r"^RAG_SPAN_READS=.*set it like RAG_SPAN_READS=2[^\n]*$"):
        ReaderAnswerer(embedder).span_head_reads()
