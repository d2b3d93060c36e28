"""Citation checking against the real seed articles, the real embedder and the real index."""

from __future__ import annotations

import pytest

from rag.check.checker import CitationChecker
from rag.check.claims import NameIndex, extract_quantities, name_found
from rag.check.formats import parse_check_input
from rag.check.judge import LexicalEmbeddingJudge
from rag.errors import RagError
from rag.records import CitedSentence, Evidence
from rag.text import locate_quote

ARMS = "000_bbbc7011c7c84b3f"  # the S-400 / arms-exports article
ERDOGAN = "002_16737bcee59f1979"  # Erdogan may buy more S-400s


@pytest.fixture(scope="module")
def checker(seed_index, embedder, retriever):
    return CitationChecker(seed_index, embedder, retriever=retriever)


def quote(index, doc_id: str, text: str) -> Evidence:
    """Evidence for a quote that must be in the document."""
    found = locate_quote(index.documents[doc_id].text, text)
    assert found is not None, text
    start, end = found
    return Evidence(doc_id, start, end, index.documents[doc_id].text[start:end])


CAIRO = "Cairo bought 76 percent of its arms and equipment from the US between 2008 and 2011."
INDIA = "India is expected to receive the first shipment next year after signing a $5 billion contract."
GULF = "Saudi Arabia and the UAE, heavily reliant on the American security guarantee, would not strain ties with Washington"
JULY = "On July 12, doubts over Turkey’s intention to buy Russian surface-to-air missiles were settled."
LAMRANI = "says Omar Lamrani, a senior military analyst at Stratfor."


# ---------------------------------------------------------------------------
# Normalisation


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("76 percent", "76%"),
        ("$5 billion", "5 billion dollars"),
        ("five", "5"),
        ("49 per cent", "49%"),
        ("US$4.97bn", "$5 billion"),
        ("July 12, 2019", "12 July 2019"),
    ],
)
def test_equal_quantities_normalise_alike(a, b):
    qa, qb = extract_quantities(a), extract_quantities(b)
    assert qa and qb
    assert any(x.matches(y) for x in qa for y in qb) or any(y.matches(x) for x in qa for y in qb)


@pytest.mark.parametrize(
    ("a", "b"), [("76 percent", "67%"), ("$5 billion", "$5 million"), ("July 12", "July 21"), ("2019", "2020")]
)
def test_different_quantities_do_not_match(a, b):
    assert not any(x.matches(y) for x in extract_quantities(a) for y in extract_quantities(b))


def test_names_match_surnames_aliases_and_acronyms():
    evidence = NameIndex.of(
        "Turkish President Recep Tayyip Erdogan met officials of the North Atlantic Treaty "
        "Organization and the U.S. in Sochi."
    )
    assert name_found("Erdogan", "PERSON", evidence)
    assert name_found("Turkey", "GPE", evidence)
    assert name_found("the United States", "GPE", evidence)
    assert name_found("NATO", "ORG", evidence)
    assert not name_found("Vladimir Putin", "PERSON", evidence)
    assert not name_found("China", "GPE", evidence)


def test_initials_match_with_or_without_spaces():
    # A model may write "U. S." where the article has "U.S." (seen with a 1.5B model's reply).
    assert name_found("U. S.", "GPE", NameIndex.of("during the recent U.S. troop withdrawal"))
    assert name_found("J.K. Rowling", "PERSON", NameIndex.of("the author J. K. Rowling said"))
    assert not name_found("U. K.", "GPE", NameIndex.of("during the recent U.S. troop withdrawal"))


# ---------------------------------------------------------------------------
# Verdicts


@pytest.mark.parametrize(
    ("claim", "cited"),
    [
        ("Cairo bought 76% of its arms and equipment from the United States between 2008 and 2011.", CAIRO),
        ("After signing a 5 billion dollars contract, India is expected to get its first shipment next year.", INDIA),
        ("Omar Lamrani is a senior military analyst at Stratfor.", LAMRANI),
    ],
)
def test_supported_paraphrases(checker, seed_index, claim, cited):
    verdict = checker.check_sentence(claim, [quote(seed_index, ARMS, cited)])
    assert verdict.verdict == "supported", verdict
    assert verdict.evidence is not None and verdict.evidence.doc_id == ARMS


@pytest.mark.parametrize(
    ("claim", "cited", "reason"),
    [
        (
            "Cairo bought 67 percent of its arms and equipment from the US between 2008 and 2011.",
            CAIRO,
            "percent differs",
        ),
        (
            "India is expected to receive the first shipment next year after signing a $9 billion contract.",
            INDIA,
            "money",
        ),
        (
            "On July 21, doubts over Turkey's intention to buy Russian surface-to-air missiles were settled.",
            JULY,
            "date differs",
        ),
        ("Cairo bought 76 percent of its arms and equipment from the US between 2008 and 2014.", CAIRO, "year"),
        (
            "Pakistan is expected to receive the first shipment next year after signing a $5 billion contract.",
            INDIA,
            "Pakistan",
        ),
        ("Omar Lamrani is a senior military analyst at Brookings.", LAMRANI, "Brookings"),
        ("Saudi Arabia and the UAE would strain ties with Washington.", GULF, "negation"),
        (
            "It became obvious that Turkey has not taken the inevitable step.",
            "it became obvious that Turkey has taken the inevitable step despite threats of sanctions from the US.",
            "negation",
        ),
    ],
)
def test_changed_facts_are_unsupported(checker, seed_index, claim, cited, reason):
    doc = ARMS
    verdict = checker.check_sentence(claim, [quote(seed_index, doc, cited)], propose=False)
    assert verdict.verdict == "unsupported", verdict
    assert any(reason.lower() in r.lower() for r in verdict.reasons), verdict.reasons


def test_a_copula_is_negated_after_it(checker, seed_index):
    # "is not": a negation follows a copula, where it precedes any other verb ("did not buy").
    cited = [
        quote(seed_index, ERDOGAN, "This is not the first time that Turkey has dealt with missile sales from Russia.")
    ]
    same = "It is not the first time that Turkey has dealt with missile sales from Russia."
    assert checker.check_sentence(same, cited, propose=False).verdict == "supported"
    flipped = checker.check_sentence(
        "This is the first time that Turkey has dealt with missile sales from Russia.", cited, propose=False
    )
    assert flipped.verdict == "unsupported"
    assert any("negation differs" in r for r in flipped.reasons), flipped.reasons


def test_evidence_is_the_best_window_inside_a_long_passage(checker, seed_index, retriever):
    passages = retriever.search("How much of its arms did Cairo buy from the US between 2008 and 2011?", k=3)
    passage = next(p for p in passages if "76 percent" in p.text)
    cited = Evidence(passage.doc_id, passage.start, passage.end, passage.text)
    verdict = checker.check_sentence("Cairo bought 76 percent of its arms from the US between 2008 and 2011.", [cited])
    evidence = verdict.evidence
    assert verdict.verdict == "supported"
    assert passage.start <= evidence.start < evidence.end <= passage.end
    assert seed_index.documents[evidence.doc_id].text[evidence.start : evidence.end] == evidence.text
    assert "76 percent" in evidence.text and len(evidence.text) < len(passage.text)


def test_uncited_sentence_gets_a_proposed_citation(checker, seed_index):
    verdict = checker.check_sentence("Cairo bought 76 percent of its arms from the US between 2008 and 2011.", [])
    assert verdict.verdict == "uncited"
    assert verdict.proposed is not None and "76 percent" in verdict.proposed.text
    doc = seed_index.documents[verdict.proposed.doc_id]
    assert doc.text[verdict.proposed.start : verdict.proposed.end] == verdict.proposed.text


def test_wrong_citation_is_unsupported_and_a_better_one_is_proposed(checker, seed_index):
    verdict = checker.check_sentence(
        "Cairo bought 76 percent of its arms from the US between 2008 and 2011.", [quote(seed_index, ARMS, LAMRANI)]
    )
    assert verdict.verdict == "unsupported"
    assert verdict.proposed is not None and "76 percent" in verdict.proposed.text


# ---------------------------------------------------------------------------
# Input formats and ALCE metrics


def test_quotes_are_located_across_quote_styles_and_whitespace(seed_index):
    text = seed_index.documents[ARMS].text
    curly = "“In Russia this [Turkey deal] is seen as a major defence sales victory"
    assert curly in text
    straight = '"In Russia  this [Turkey deal]\nis seen as a major defence sales victory'
    start, end = locate_quote(text, straight)
    assert text[start:end] == curly
    assert locate_quote(text, "Turkey’s intention") == locate_quote(text, "Turkey's intention")
    assert locate_quote(text, "a sentence that is not in the article") is None


def test_out_of_range_citation_is_unsupported_with_the_reason(checker, seed_index):
    raw = f'Cairo bought 76 percent of its arms from the US between 2008 and 2011 [3].\n\n[1] {ARMS}: "{CAIRO}"\n'
    items = parse_check_input(raw, seed_index)
    report = checker.check_answer(items, propose=False)
    (verdict,) = report.verdicts
    assert verdict.verdict == "unsupported"
    assert any("[3] is out of range" in r for r in verdict.reasons)
    assert report.citation_recall == 0.0 and not report.ok


def test_alce_precision_counts_an_irrelevant_citation(checker, seed_index):
    sentence = CitedSentence(
        "Cairo bought 76 percent of its arms from the US between 2008 and 2011.",
        (quote(seed_index, ARMS, CAIRO), quote(seed_index, ERDOGAN, "Turkey has continued to work with Russia")),
        (1, 2),
    )
    report = checker.check_answer([sentence], propose=False)
    assert report.verdicts[0].verdict == "supported"
    assert report.citation_recall == 1.0
    assert report.citation_precision == 0.5


def test_check_record_reads_our_answer_json(checker, seed_index):
    evidence = quote(seed_index, ARMS, CAIRO)
    passage = {
        "doc_id": ARMS,
        "chunk_id": 0,
        "start": evidence.start,
        "end": evidence.end,
        "text": evidence.text,
        "score": 1.0,
        "rank": 1,
    }
    answer = {
        "question": "How much of its arms did Cairo buy from the US?",
        "answer": CAIRO,
        "sentences": [
            {"text": CAIRO, "citations": [{**evidence.to_dict(), "passage_rank": 1}]},
            {
                "text": "Cairo bought 90 percent of its arms from China.",
                "citations": [{**evidence.to_dict(), "passage_rank": 1}],
            },
        ],
        "passages": [passage],
    }
    report = checker.check_record(answer, propose=False)
    assert [v.verdict for v in report.verdicts] == ["supported", "unsupported"]
    assert report.citation_recall == 0.5 and not report.ok


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("", "empty"),
        ("{not json", "does not parse"),
        ('{"foo": 1}', "neither"),
        ("An answer without sources [1].", "no numbered source list"),
        ('{"answer": "", "citations": []}', "no 'answer'"),
    ],
)
def test_bad_input_raises_a_one_line_error(seed_index, raw, message):
    with pytest.raises(RagError, match=message) as error:
        parse_check_input(raw, seed_index)
    assert "\n" not in str(error.value)


def test_another_judge_can_be_plugged_in(seed_index, embedder):
    class ExactQuoteJudge:
        """Supports only claims quoted verbatim (stands in for an entailment model)."""

        def judge(self, claim, evidence_texts):
            hits = [claim.rstrip(".") in text for text in evidence_texts]
            return (1.0, hits.index(True), ()) if any(hits) else (0.0, 0, ("not quoted",))

    checker = CitationChecker(seed_index, embedder, judge=ExactQuoteJudge())
    cited = [quote(seed_index, ARMS, CAIRO)]
    assert checker.check_sentence(CAIRO, cited, propose=False).verdict == "supported"
    assert checker.check_sentence("Cairo bought arms.", cited, propose=False).verdict == "unsupported"


def test_default_judge_implements_the_protocol(embedder):
    judge = LexicalEmbeddingJudge(embedder)
    score, best, _reasons = judge.judge("Cairo bought 76% of its arms from the US.", ["Egypt is in Africa.", CAIRO])
    assert 0.0 <= score <= 1.0 and best == 1
