"""The answer reader's parts: what a question asks, which spans are candidates, how occurrences agree."""

from __future__ import annotations

import pytest

from rag.answer.reader.agreement import add_group_features, add_relative_features
from rag.answer.reader.context import RELATIVE_TIME, UNDATED, add_context_features
from rag.answer.reader.features import Sentence, sentence_occurrences
from rag.answer.reader.questions import asked_for
from rag.answer.reader.spans import SentenceTokens, candidate_spans, entities, noun_chunks
from rag.answer.reader.yes_no import NO, UNDECIDED, YES, Claim, decide, yes_no_claim
from rag.check.thresholds import Thresholds
from rag.ingest.sentences import nlp
from rag.records import Passage


def ask(text):
    return asked_for(nlp()(text))


@pytest.mark.parametrize(
    ("question", "kind", "type_phrase"),
    [
        ("Which law lets the US penalise buyers of Russian arms?", "which", "law"),
        ("Who heads Turkey's defence industry directorate?", "who", "person"),
        ("How many refugees crossed the border last week?", "how many", "refugee"),
        ("What is the name of the ship that sank?", "what", "ship"),
        ("When did the strike end?", "when", "date"),
        ("Why did the talks collapse?", "why", None),
    ],
)
def test_the_question_type_and_the_words_naming_the_answer(question, kind, type_phrase):
    q = ask(question)
    assert (q.kind, q.type_phrase) == (kind, type_phrase)


def test_a_context_sentence_before_the_question_does_not_decide_its_type():
    q = ask("Gas prices hit a record this week. How much does a gallon cost in California?")
    assert q.kind == "how much"
    assert q.sentences == 2
    assert "record" in q.lemmas and "record" not in q.focus  # context words count for overlap only


def test_a_when_clause_inside_the_question_is_not_what_it_asks():
    assert ask("What did the minister say when the vote failed?").kind == "what"


def spans_of(text):
    sentence = next(iter(nlp()(text).sents))
    return {sentence.doc[a:b].text: label for (a, b), label in candidate_spans(sentence).items()}


def test_candidates_are_trimmed_to_what_an_answer_is():
    spans = spans_of("More than 40 people died when the storm hit Florida, costing $5 billion.")
    assert spans["Florida"] == "GPE"
    assert "$5 billion" in spans
    assert "40" in spans and "More than 40" not in spans


def test_a_noun_phrase_gives_its_head_with_modifiers_and_alone():
    spans = spans_of("Divers saw a six-foot long great white shark near the pier.")
    assert {"great white shark", "shark"} <= set(spans)


def test_each_sentence_gets_the_entities_and_noun_chunks_spacy_finds_in_it_though_its_paragraph_is_read_once():
    doc = nlp()(
        "The mayor of Springfield opened a new bridge. Local traders said the old ferry had lost money. "
        "Officials in Ohio expect heavy traffic on Monday."
    )
    for sentence in doc.sents:
        assert noun_chunks(sentence) == [(c.start, c.end, c.root.i) for c in sentence.noun_chunks]
        assert entities(sentence) == [(e.start, e.end, e.label_) for e in sentence.ents]
    assert sum(len(entities(s)) for s in doc.sents) >= 3  # Springfield, Ohio, Monday


def test_finding_candidates_leaves_the_parsed_paragraph_as_it_was():
    doc = nlp()("The mayor of Springfield opened a new bridge. Officials in Ohio expect heavy traffic.")
    stored = doc.to_bytes()
    for sentence in doc.sents:
        candidate_spans(sentence)
    assert doc.to_bytes() == stored


def test_a_candidate_text_is_the_documents_text_between_its_tokens_spaces_included():
    sentence = next(iter(nlp()("Prices rose 4.5% in New  York, J.P. Morgan's analysts said on Friday.").sents))
    tokens = SentenceTokens.of(sentence)
    spans = candidate_spans(sentence, tokens)
    assert spans, "the sentence has candidates"
    for a, b in spans:
        assert tokens.span_text(a - tokens.first, b - tokens.first) == sentence.doc[a:b].text


def occurrences_of(question, sentences):
    """Occurrences for sentences given as (doc_id, text), each its own passage."""
    q = ask(question)
    found = []
    for rank, (doc_id, text) in enumerate(sentences, 1):
        span = next(iter(nlp()(text).sents))
        passage = Passage(doc_id, 0, 0, len(text), text, score=0.5, rank=rank)
        found += sentence_occurrences(q, Sentence(span, 0, len(text), 0, passage, 0.5), lambda lemma: 1.0)
    add_group_features(found, q.words)
    add_relative_features(found)
    return {o.text: o for o in found}


def test_occurrences_of_one_answer_in_several_articles_agree():
    found = occurrences_of(
        "Who won the Singapore Grand Prix?",
        [("a", "Carlos Sainz won the Singapore Grand Prix."), ("b", "Sainz held off Lando Norris in Singapore.")],
    )
    assert found["Carlos Sainz"].features["n_docs"] == 1
    assert found["Sainz"].features["n_docs"] == 2  # the surname alone is a candidate in both articles
    assert found["Sainz"].features["n_super"] == 1  # "Sainz" is part of the longer "Carlos Sainz"
    # "won the Singapore Grand Prix" right beside it; only "Singapore" near the runner-up
    assert found["Carlos Sainz"].features["w5"] > found["Lando Norris"].features["w5"] > 0


def test_offsets_of_an_occurrence_are_those_of_its_text():
    text = "Officials said Carlos Sainz won the race."
    o = occurrences_of("Who won the race?", [("a", text)])["Carlos Sainz"]
    assert text[o.start : o.end] == "Carlos Sainz"


@pytest.mark.parametrize(
    ("question", "plural", "yes_no"),
    [
        ("Which two countries signed the accord?", True, False),
        ("Which country signed the accord?", False, False),
        ("Did Turkey buy the S-400 system?", False, True),
        ("Russia launched a new offensive. Is Kyiv under attack?", False, True),
    ],
)
def test_lists_and_yes_no_questions_are_recognised(question, plural, yes_no):
    q = ask(question)
    assert (q.plural, q.yes_no) == (plural, yes_no)


@pytest.mark.parametrize(
    ("question", "claim"),
    [
        ("Did Turkey buy the S-400 system?", "Turkey did buy the S-400 system"),
        ("Russia launched a new offensive. Is Kyiv under attack?", "Kyiv is under attack"),
        ("Has the central bank raised interest rates again?", "The central bank has raised interest rates again"),
        ("Was the minister removed from office?", "The minister was removed from office"),
        ("Will the two leaders meet in Geneva next week?", "The two leaders will meet in Geneva next week"),
        ("Is there a ceasefire in Gaza?", "There is a ceasefire in Gaza"),
        # A negative question asks about the positive claim: "yes" to it means the strike did end.
        ("Didn't the strike end on Friday?", "The strike did end on Friday"),
        ("Won't the company cut jobs?", "The company will cut jobs"),
        ("Did the union not accept the offer?", "The union did accept the offer"),
    ],
)
def test_a_yes_no_question_asks_about_a_claim_and_its_negation(question, claim):
    found = yes_no_claim(nlp()(question))
    assert found is not None and found.text == claim
    assert " not " in found.negation and found.negation.replace(" not ", " ", 1) == claim


def test_a_wh_question_has_no_yes_no_claim():
    assert yes_no_claim(nlp()("Who won the race?")) is None


class ScriptedJudge:
    """A support judge that gives fixed scores to (claim, sentence) pairs, 0 to the rest."""

    def __init__(self, scores):
        self.scores = scores

    def judge(self, claim, evidence_texts):
        return self.scores.get((claim, evidence_texts[0]), 0.0), 0, ()


THRESHOLDS = Thresholds({}, 0.0, supported=0.5, partial=0.2, hard_cap=0.1)
CLAIM = Claim("The strike did end", "The strike did not end")


@pytest.mark.parametrize(
    ("scores", "answer", "sentence"),
    [
        ({(CLAIM.text, "b"): 0.8, (CLAIM.negation, "b"): 0.05}, YES, 1),
        ({(CLAIM.text, "a"): 0.05, (CLAIM.negation, "a"): 0.7}, NO, 0),
        # supports both polarities: the judge cannot read its polarity, so it decides nothing
        ({(CLAIM.text, "a"): 0.8, (CLAIM.negation, "a"): 0.8}, None, -1),
        # the other polarity is only "partially supported", not refuted
        ({(CLAIM.text, "a"): 0.8, (CLAIM.negation, "a"): 0.3}, None, -1),
        # two deciding sentences: the better supported answer is kept
        ({(CLAIM.text, "a"): 0.6, (CLAIM.negation, "b"): 0.9}, NO, 1),
        ({}, None, -1),
    ],
)
def test_a_sentence_decides_when_the_judge_supports_one_polarity_and_refutes_the_other(scores, answer, sentence):
    decision = decide(CLAIM, ["a", "b"], ScriptedJudge(scores), THRESHOLDS)
    assert (decision.answer, decision.sentence) == (answer, sentence)
    assert decision.reason == ("" if answer else UNDECIDED)
    assert decision.score == (max(scores.values()) if answer else 0.0)


def test_how_fresh_a_candidate_s_report_is_and_how_its_title_fits_the_question_are_features():
    question = "Which automaker recalled two million cars this week?"
    q = ask(question)
    articles = [  # (doc_id, published, title, text)
        ("new", "2023-12-14", "Tesla recalls two million cars", "Tesla recalled two million cars on Wednesday."),
        ("old", "2023-03-02", "A bad year for car makers", "Ford recalled cars in March."),
        ("undated", None, "Recalls", "Ford said more recalls would follow."),
    ]
    found = []
    for rank, (doc_id, published, _title, text) in enumerate(articles, 1):
        span = next(iter(nlp()(text).sents))
        passage = Passage(doc_id, 0, 0, len(text), text, score=0.5, rank=rank, published=published)
        found += sentence_occurrences(q, Sentence(span, 0, len(text), 0, passage, 0.5), lambda lemma: 1.0)
    titles = {doc_id: title for doc_id, _, title, _ in articles}
    add_context_features(found, question, q.lemmas, titles.__getitem__, lambda lemma: 1.0)
    tesla = next(o for o in found if o.text == "Tesla")
    ford_old, ford_undated = (o for o in found if o.text == "Ford")
    assert tesla.features["age_gap"] == 0 and tesla.features["fresh_docs"] == 1
    assert ford_old.features["age_gap"] == 287  # days behind the newest retrieved report
    assert ford_undated.features["age_gap"] == UNDATED
    assert ford_undated.features["age_gap_gmin"] == 287  # the string's freshest dated report
    assert tesla.features["title_overlap"] > ford_old.features["title_overlap"]
    assert tesla.features["q_recent"] == 1


@pytest.mark.parametrize(
    ("question", "recent"),
    [
        ("Who won the election last week?", True),
        ("What did the minister say recently?", True),
        ("Who founded the company in 1998?", False),
        ("Which week of the year is the busiest?", False),
    ],
)
def test_questions_that_point_at_the_present_are_recognised(question, recent):
    assert bool(RELATIVE_TIME.search(question)) == recent
