"""Replies a real small model writes (issue 13), each reproduced on the scripted loopback server: markers at
the start of a line, citations to the wrong passage, declines mixed with passage dumps, true sentences that
do not answer the question, replies made only of markers.
"""

from __future__ import annotations

import json
import re
from dataclasses import replace

import pytest

from rag.answer.llm.reply import missing_names, parse_reply
from rag.answer.pipeline import ask, retrieve
from rag.answer.relevance import short_answer, stated
from rag.records import NO_ANSWER, Answer, AnswerSentence, Citation, IrrelevantSentence, Reattribution

from .llm_server import Step, passage_with
from .test_llm_answerer import INDIA, assert_citations_valid, faithful

# ---------------------------------------------------------------------------
# Defect 1: a marker at the start of a line belongs to the sentence after it


def test_a_marker_at_the_start_of_a_line_cites_the_sentence_that_follows():
    sentences = parse_reply("[1] Alpha signed in 2019.\n[2] Beta paid $5 billion.")
    assert [(s.text, s.labels) for s in sentences] == [("Alpha signed in 2019.", (1,)), ("Beta paid $5 billion.", (2,))]
    # The same after a list mark, after two markers, and beside the usual trailing markers.
    sentences = parse_reply("1. [3] Alpha signed.\n- [1][2] Beta paid. Gamma left [4].\nDelta came.\n[5]")
    assert [(s.text, s.labels) for s in sentences] == [
        ("Alpha signed.", (3,)),
        ("Beta paid.", (1, 2)),
        ("Gamma left.", (4,)),
        ("Delta came.", (5,)),  # a marker alone on its line still closes the sentence before it
    ]


def test_a_reply_with_markers_leading_each_line_keeps_both_sentences(script, answerer, retriever, seed_index):
    def reply(body: dict) -> str:
        """The faithful reply with each marker moved to the start of its sentence's line."""
        return re.sub(r"\s*(.+?) \[(\d+)\]\.", r"[\2] \1.\n", faithful(body)).strip()

    script.steps = [Step("reply", reply)]
    answer = ask(INDIA, retriever, answerer, k=5)
    shown = [(s.text, s.citations) for s in answer.sentences] + [(s.text, s.citations) for s in answer.irrelevant]
    assert [text for text, _ in shown] == [
        "India signed a $5 billion contract for the S-400 and expects its first shipment next year.",
        "China already has S-400 surface-to-air missiles.",  # true, listed apart: no answer to the question
    ]
    assert answer.removed == () and answer.reattributed == ()
    assert_citations_valid(answer, seed_index)
    passages = retrieve(INDIA, retriever, 5)
    assert [citations[0].passage_rank for _, citations in shown] == [
        next(p.rank for p in passages if "$5 billion contract" in p.text),
        next(p.rank for p in passages if "China already has S-400" in p.text),
    ]


# ---------------------------------------------------------------------------
# Defect 2: a true sentence citing the wrong passage is re-attributed, and the change is shown

KOFMAN = "What kind of analyst is Michael Kofman?"
KOFMAN_SENTENCE = "Kofman is a security analyst who focuses on Russia."


def passage_ids(body: dict) -> dict[int, str]:
    """The passage blocks of a request: id -> text."""
    user = body["messages"][-1]["content"]
    return {int(n): text for n, text in re.findall(r'<passage id="(\d+)"[^>]*>\n(.*?)\n</passage>', user, re.S)}


def cites_a_passage_without(phrase: str, sentence: str):
    """A "model" that writes ``sentence`` citing the first passage that does not hold ``phrase``."""

    def reply(body: dict) -> str:
        wrong = min(n for n, text in passage_ids(body).items() if phrase not in text)
        return f"{sentence.rstrip('.')} [{wrong}]."

    return reply


def test_a_true_sentence_citing_the_wrong_passage_is_reattributed(script, answerer, retriever, seed_index):
    passages = retrieve(KOFMAN, retriever, 5)
    holder = next(p.rank for p in passages if "Michael Kofman, a security analyst" in p.text)
    wrong = min(p.rank for p in passages if "Kofman" not in p.text)
    script.steps = [Step("reply", cites_a_passage_without("Kofman", KOFMAN_SENTENCE))]
    answer = answerer.answer(KOFMAN, passages, seed_index)
    assert answer.text == KOFMAN_SENTENCE and answer.removed == ()
    assert [c.passage_rank for c in answer.sentences[0].citations] == [holder]
    assert_citations_valid(answer, seed_index)
    (change,) = answer.reattributed
    assert (change.text, change.cited, change.supported_by) == (KOFMAN_SENTENCE, (wrong,), (holder,))
    assert change.describe() == f"cited [{wrong}], supported by [{holder}]"
    assert answer.to_dict()["extra"]["reattributed"] == [
        {"text": KOFMAN_SENTENCE, "cited": [wrong], "supported_by": [holder]}
    ]


def test_names_the_entity_tagger_misses_must_be_in_the_cited_text():
    analysts = "Thus, some analysts contend that Erdogan may be seeking to strengthen ties with Russia."
    assert missing_names(KOFMAN_SENTENCE, [analysts]) == ["Kofman"]
    assert missing_names(KOFMAN_SENTENCE, ["says Michael Kofman, a security analyst"]) == []
    # Names spaCy tags are the checker's business; an untagged one may be written as in the text or as a stem.
    assert missing_names("Lamrani works at Stratfor.", ["says Omar Lamrani, a senior military analyst"]) == []
    assert missing_names("Lamrani works at Stratfor.", ["says Omar Lamranis"]) == []
    assert missing_names("Lamrani works at Stratfor.", ["says Kofman"]) == ["Lamrani"]


def test_a_citation_out_of_range_is_corrected_too_and_unsupported_claims_stay_removed(
    script, answerer, retriever, seed_index
):
    passages = retrieve(KOFMAN, retriever, 5)
    script.steps = [Step("reply", f"{KOFMAN_SENTENCE[:-1]} [9]. Kofman was born in Sochi in 1961 [1].")]
    answer = answerer.answer(KOFMAN, passages, seed_index)
    assert answer.text == KOFMAN_SENTENCE
    assert [(r.cited, r.text) for r in answer.reattributed] == [((9,), KOFMAN_SENTENCE)]
    (removed,) = answer.removed
    assert removed.text == "Kofman was born in Sochi in 1961." and removed.verdict != "supported"
    assert "no other retrieved passage supports it" in removed.reasons


def test_reattributions_are_shown_by_the_cli_and_the_app(script, server, seed_settings, seed_index, capsys):
    from rag.app.views import answer_html, streaming_html
    from rag.cli import main

    options = ["--index", str(seed_settings.index_dir), "--no-rebuild", "--answerer", "llm"]
    options += ["--llm-url", f"http://127.0.0.1:{server.server_address[1]}/v1", "--llm-model", "scripted"]
    script.steps = [Step("reply", cites_a_passage_without("Kofman", KOFMAN_SENTENCE)) for _ in range(2)]
    assert main(["ask", KOFMAN, *options]) == 0
    out = capsys.readouterr().out
    assert re.search(
        r"Citations corrected \(passage numbers as the model saw them\):\n"
        r"  ✓ Kofman is a security analyst who focuses on Russia\. \(cited \[\d\], supported by \[\d\]\)",
        out,
    ), out
    assert main(["ask", KOFMAN, *options, "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    (change,) = record["extra"]["reattributed"]
    assert change["cited"] != change["supported_by"] == [record["sentences"][0]["citations"][0]["passage_rank"]]
    answer = Answer(
        KOFMAN,
        (AnswerSentence(KOFMAN_SENTENCE, ()),),
        (),
        answerer="llm",
        reattributed=(Reattribution(KOFMAN_SENTENCE, (2,), (4,)),),
    )
    html = answer_html(answer, seed_index.documents)
    assert "cited [2], supported by [4]" in html and html.count('class="rag-reattributed"') == 1
    event = {"kept": True, "sentence": answer.sentences[0], "reattributed": answer.reattributed[0]}
    assert "cited [2], supported by [4]" in streaming_html([event])


# ---------------------------------------------------------------------------
# Defect 3: a reply that declines is an abstention, even when it also dumps passages


def dump(body: dict) -> str:
    """What a small model adds to a decline: the passages it read, restated and cited."""
    return faithful(body)


@pytest.mark.parametrize(
    "reply",
    [
        lambda body: f"{NO_ANSWER} However, the passages say this. {dump(body)}",
        lambda body: f"{dump(body)}\n\n{NO_ANSWER}",
        lambda body: f"The passages do not answer the question. {dump(body)}",
    ],
    ids=["decline first", "decline last", "decline in other words"],
)
def test_a_reply_that_declines_is_an_abstention_even_with_a_passage_dump(script, answerer, retriever, reply):
    script.steps = [Step("reply", reply)]
    answer = ask(INDIA, retriever, answerer, k=5)
    assert answer.abstained and answer.sentences == () and answer.generation.declined is True
    assert answer.abstention.reason == "the model said the passages do not answer the question"
    # What it dumped was supported, and is recorded as the rejected answer, not shown.
    assert "India signed a $5 billion contract" in answer.abstention.rejected.answer
    assert answer.to_dict()["extra"]["rejected"]["answer"] == answer.abstention.rejected.answer


def test_a_caveat_after_an_answer_is_not_a_decline(script, answerer, retriever):
    script.steps = [Step("reply", lambda body: f"{faithful(body)} The passages do not say when it was signed.")]
    answer = ask(INDIA, retriever, answerer, k=5)
    assert not answer.abstained and answer.generation.declined is False
    assert answer.text.startswith("India signed a $5 billion contract")
    assert [v.verdict for v in answer.verdicts][-1] == "declined" and answer.removed == ()


def test_a_stream_shows_nothing_after_the_reply_declines(script, answerer, retriever, seed_index):
    passages = retrieve(INDIA, retriever, 5)
    script.steps = [Step("reply", lambda body: f"{NO_ANSWER} {dump(body)}")]
    events = list(answerer.stream(INDIA, passages, seed_index))
    assert [e["type"] for e in events] == ["sentence"] * 3 + ["answer"]
    assert events[0]["verdict"] == "declined" and not any(e["kept"] for e in events[:3])
    assert events[-1]["answer"].abstained


# ---------------------------------------------------------------------------
# Defect 6 (in part): a reply made only of markers is not "empty"


def test_a_reply_of_markers_only_says_so(script, answerer, retriever):
    script.steps = [Step("reply", "[1][2]"), Step("reply", "")]
    answer = ask(INDIA, retriever, answerer, k=5)
    assert answer.abstained and answer.abstention.reason == "the model's reply held only citation markers, no sentence"
    assert ask(INDIA, retriever, answerer, k=5).abstention.reason == "the model's reply was empty"


# ---------------------------------------------------------------------------
# Defect 4: a true sentence that does not answer the question is listed apart, not shown as the answer

LAMRANI = "Where does Omar Lamrani work?"
CAATSA = (
    "The Countering America's Adversary through Sanctions Act (CAATSA) allows the US government to penalise "
    "countries making significant transactions with Russia's state-owned defence companies."
)
STRATFOR = "Omar Lamrani is a senior military analyst at Stratfor."


def caatsa_then(sentence: str):
    """A "model" that restates the CAATSA sentence, then ``sentence``, each citing the passage that holds it."""

    def reply(body: dict) -> str:
        text = f"{CAATSA[:-1]} [{passage_with(body, 'allows the US government to penalise')}]."
        return text + (f" {sentence[:-1]} [{passage_with(body, 'analyst at Stratfor')}]." if sentence else "")

    return reply


def test_relevance_and_short_answer_are_judged_on_what_the_sentence_says(retriever, seed_index, embedder):
    passages = retrieve(LAMRANI, retriever, 5)
    lamrani = next(p for p in passages if "analyst at Stratfor" in p.text)
    caatsa = next(p for p in passages if "allows the US government to penalise" in p.text)

    def judged(sentence: str, passage):
        evidence = Citation(passage.doc_id, passage.start, passage.end, passage.text, passage.rank)
        return stated(LAMRANI, sentence, [evidence], passages, seed_index, embedder)

    assert judged(STRATFOR, lamrani).answers and judged("Stratfor.", lamrani).answers
    assert not judged(CAATSA, caatsa).answers
    # A sentence that names the man but not where he works does not answer "where".
    assert judged("Omar Lamrani spoke about the Gulf.", lamrani).relevance < judged(STRATFOR, lamrani).relevance
    cited = Citation(lamrani.doc_id, lamrani.start, lamrani.end, lamrani.text, lamrani.rank)
    sentences = [AnswerSentence(CAATSA, (cited,)), AnswerSentence(STRATFOR, (cited,))]
    assert short_answer(LAMRANI, sentences, passages, seed_index, embedder) == "Stratfor"
    assert short_answer(LAMRANI, sentences[:1], passages, seed_index, embedder) is None


def test_a_sentence_stating_the_readers_answer_answers_though_the_rules_miss_it(retriever, seed_index, embedder):
    """The reader judges too: a sentence that gives the candidate it would answer with answers, and its
    short answer is that candidate as the sentence words it."""
    question = "Which country bought 76 percent of its arms from the US between 2008 and 2011?"
    passages = retrieve(question, retriever, 5)
    holder = next(p for p in passages if "76 percent" in p.text)
    evidence = Citation(holder.doc_id, holder.start, holder.end, holder.text, holder.rank)
    sentence = "Egypt, through Cairo, bought most of its arms from the US."
    judged = stated(question, sentence, [evidence], passages, seed_index, embedder)
    assert judged.answers


def test_a_list_question_gets_the_whole_list_the_sentence_gives_as_its_short_answer(retriever, seed_index, embedder):
    question = "Which countries already operate the older S-300 system?"
    passages = retrieve(question, retriever, 5)
    holder = next(p for p in passages if "Algeria" in p.text)
    cited = Citation(holder.doc_id, holder.start, holder.end, holder.text, holder.rank)
    sentence = "The S-300 is already deployed in Algeria, Greece, Bulgaria, Belarus, Egypt, Syria and Vietnam."
    found = short_answer(question, [AnswerSentence(sentence, (cited,))], passages, seed_index, embedder)
    assert found == "Algeria, Greece, Bulgaria, Belarus, Egypt, Syria and Vietnam"


def test_a_true_sentence_that_does_not_answer_is_listed_apart(script, answerer, retriever, seed_index):
    script.steps = [Step("reply", caatsa_then(""))]
    answer = ask(LAMRANI, retriever, answerer, k=5)
    assert answer.abstained and answer.removed == ()
    assert answer.abstention.reason == "no supported sentence of the model's reply answers the question"
    (aside,) = answer.irrelevant
    assert aside.text == CAATSA and aside.relevance < 0.3
    assert_citations_valid(replace(answer, sentences=(AnswerSentence(aside.text, aside.citations),)), seed_index)


def test_the_answer_is_the_sentence_that_answers_with_its_short_answer(script, answerer, retriever, seed_index):
    script.steps = [Step("reply", caatsa_then(STRATFOR))]
    answer = ask(LAMRANI, retriever, answerer, k=5)
    assert answer.text == STRATFOR and answer.short_answer == "Stratfor"
    assert [s.text for s in answer.irrelevant] == [CAATSA]
    record = answer.to_dict()
    assert record["short_answer"] == "Stratfor"
    (aside,) = record["extra"]["irrelevant"]
    assert aside["text"] == CAATSA and aside["citations"][0]["passage_rank"] >= 1 and aside["relevance"] < 0.3
    assert_citations_valid(answer, seed_index)


def test_sentences_listed_apart_are_shown_apart_by_the_cli_and_the_app(
    script, server, seed_settings, seed_index, capsys
):
    from rag.app.views import answer_html
    from rag.cli import main

    options = ["--index", str(seed_settings.index_dir), "--no-rebuild", "--answerer", "llm"]
    options += ["--llm-url", f"http://127.0.0.1:{server.server_address[1]}/v1", "--llm-model", "scripted"]
    script.steps = [Step("reply", caatsa_then(STRATFOR))]
    assert main(["ask", LAMRANI, *options]) == 0
    out = capsys.readouterr().out
    first, _, rest = out.partition("\n")
    assert first.startswith(STRATFOR) and "CAATSA" not in first and "Short answer: Stratfor" in rest
    assert f"Not an answer to the question (supported, listed apart):\n  · {CAATSA} (relevance 0." in rest
    aside = IrrelevantSentence(CAATSA, 0.05, ())
    html = answer_html(Answer(LAMRANI, (AnswerSentence(STRATFOR, ()),), (), irrelevant=(aside,)), seed_index.documents)
    assert html.count('class="rag-irrelevant"') == 1 and "relevance 0.05" in html
    assert html.index(STRATFOR) < html.index('class="rag-irrelevant"') < html.index("Sanctions Act")


# ---------------------------------------------------------------------------
# Defect 7: the prompt's closing words ask for a cited answer; the decline comes before, as the exception


def test_the_prompt_ends_by_asking_for_a_cited_answer_and_only_the_rules_mention_the_decline(retriever, seed_index):
    """A small model repeats the decline sentence wherever the user message holds it (11 of 16 answerable
    train-2024 news questions declined): the user message ends on the question and the request to answer."""
    from rag.answer.llm.prompt import SYSTEM_PROMPT, build_messages

    system, user = build_messages(
        "Who heads Turkey's Defense Industry Directorate?", retrieve(INDIA, retriever, 3), seed_index
    )
    closing = user["content"].rsplit("Question: ", 1)[1]
    assert NO_ANSWER not in user["content"]
    last = closing.strip().splitlines()[-1]
    assert last.startswith("Answer the question from the passages above")
    assert last.endswith("End every sentence with the [n] of the passage that states it.")
    assert "Only if no passage answers the question, not even in part" in system["content"] == SYSTEM_PROMPT
