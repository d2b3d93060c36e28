"""The LLM answerer's verification, measured with scripted "models" on loopback (no real LLM runs here).

    .venv/bin/python bench/bench_llm_answerer.py              # gold questions, then 60 WiCE claims
    .venv/bin/python bench/bench_llm_answerer.py --wice 0     # gold questions only

1. Gold questions (eval/seeds_gold.jsonl and eval/dev_questions.jsonl, answerable, with evidence
   quotes). For each question the passages are retrieved (k=5) and a scripted server streams a reply
   built from the gold quotes, one "model" per row of the table:
   - *faithful*: each quote sentence, cited to the passage that holds it -> should be kept as cited;
   - *wrong passage*: the same sentences cited to another retrieved passage -> should be kept with the
     citation corrected to the passage that supports them (re-attributed);
   - *changed number*: a quote sentence with a number altered, correct citation -> should be removed;
   - *no such passage*: cited [9] of 5 -> should be re-attributed like a wrong passage.
   Reported: share kept as cited, share kept re-attributed, and the time our side adds per reply (parse +
   verify, streamed), p50 / p95.
   The quotes are verbatim, so "faithful" is an upper bound for paraphrasing models.
2. WiCE dev claims (web pages, many news): how often the instruction filter (imperative sentences are
   not evidence) drops a gold supporting sentence, and how many sentences it flags overall. The filter
   has no parameter; nothing here is tuned.
"""

from __future__ import annotations

import argparse
import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from common import ROOT, WICE, machine, percentile, table

GOLD = [ROOT / "eval" / "seeds_gold.jsonl", ROOT / "eval" / "dev_questions.jsonl"]


class _Handler(BaseHTTPRequestHandler):
    """Streams ``server.reply`` as server-sent events, a few characters at a time."""

    def log_message(self, *args):
        pass

    def do_POST(self):
        self.rfile.read(int(self.headers.get("content-length", 0)))
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        for piece in re.findall(r"\S+\s*|\s+", self.server.reply):  # type: ignore[attr-defined]
            event = {"choices": [{"index": 0, "delta": {"content": piece}}]}
            self.wfile.write(f"data: {json.dumps(event)}\n\n".encode())
        self.wfile.write(b"data: [DONE]\n\n")


def _gold_questions() -> list[dict]:
    rows = []
    for path in GOLD:
        if path.exists():
            rows += [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [r for r in rows if r["answerable"] and r.get("evidence")]


def _change_number(sentence: str) -> str | None:
    match = re.search(r"\d+", sentence)
    if not match:
        return None
    value = int(match.group())
    return sentence[: match.start()] + str(value + 3 if value < 1000 else value + 100) + sentence[match.end() :]


def bench_gold(k: int) -> None:
    from rag.answer.llm.answerer import LLMAnswerer
    from rag.answer.llm.config import LLMConfig
    from rag.answer.pipeline import retrieve
    from rag.ingest.sentences import sentence_spans
    from rag.search.embedding import default_embedder
    from rag.search.index import open_index
    from rag.search.retrieval import Retriever
    from rag.settings import Settings
    from rag.text import locate_quote as locate_gold_quote

    embedder = default_embedder()
    index = open_index(Settings(), embedder)
    retriever = Retriever(index, embedder)
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    answerer = LLMAnswerer(LLMConfig(base_url=f"http://127.0.0.1:{httpd.server_address[1]}/v1", retries=0), embedder)

    # Per sentence: "cited" (kept as the model cited it), "moved" (kept, re-attributed) or "removed".
    kept: dict[str, list[str]] = {m: [] for m in ("faithful", "wrong passage", "changed number", "no such passage")}
    timings: dict[str, list[float]] = {m: [] for m in kept}
    skipped = 0
    for row in _gold_questions():
        passages = retrieve(row["question"], retriever, k)
        quoted = []  # (sentence, rank of the passage holding it)
        for evidence in row["evidence"]:
            doc = index.documents.get(evidence["doc_id"])
            span = locate_gold_quote(doc.text, evidence["quote"]) if doc else None
            holder = next(
                (p for p in passages if span and p.doc_id == doc.id and p.start <= span[0] and span[1] <= p.end), None
            )
            if holder is None:
                continue
            quote = doc.text[span[0] : span[1]]
            quoted += [(quote[a:b], holder.rank) for a, b in sentence_spans(quote)]
        if not quoted:
            skipped += 1  # retrieval missed the evidence: nothing to cite faithfully
            continue
        others = [p.rank for p in passages]
        replies = {
            "faithful": [(s, n) for s, n in quoted],
            "wrong passage": [(s, next((o for o in others if o != n), None)) for s, n in quoted],
            "changed number": [(_change_number(s), n) for s, n in quoted if _change_number(s)],
            "no such passage": [(s, 9) for s, _ in quoted],
        }
        for model, sentences in replies.items():
            sentences = [(s, n) for s, n in sentences if s and n is not None]
            if not sentences:
                continue
            httpd.reply = " ".join(f"{s.rstrip('.')} [{n}]." for s, n in sentences)  # type: ignore[attr-defined]
            started = time.perf_counter()
            events = list(answerer.stream(row["question"], passages, index))
            timings[model].append((time.perf_counter() - started) * 1000)
            kept[model] += [
                ("moved" if e["reattributed"] else "cited") if e["kept"] else "removed"
                for e in events
                if e["type"] == "sentence"
            ]
    httpd.shutdown()

    rows = []
    for model, flags in kept.items():
        ms = timings[model]
        rows.append(
            [
                model,
                len(ms),
                len(flags),
                f"{flags.count('cited') / len(flags):.1%}" if flags else "–",
                f"{flags.count('moved') / len(flags):.1%}" if flags else "–",
                f"{percentile(ms, 50):.0f}" if ms else "–",
                f"{percentile(ms, 95):.0f}" if ms else "–",
            ]
        )
    print(f"\nGold questions, k={k} ({skipped} skipped: evidence not retrieved)")
    headers = ["scripted model", "replies", "sentences", "kept as cited", "kept, re-attributed", "ms/reply p50", "p95"]
    print(table(headers, rows))


def bench_wice(limit: int) -> None:
    from rag.answer.llm.injection import not_evidence
    from rag.ingest.sentences import nlp

    pipeline = nlp()
    claims = [json.loads(line) for line in WICE.read_text().splitlines()[:limit]]
    flagged_all = flagged_gold = total = gold_total = 0
    examples = []
    for claim in claims:
        gold = {i for group in claim["supporting_sentences"] for i in group}
        for i, doc in enumerate(pipeline.pipe(claim["evidence"], disable=["ner"])):
            flagged = not_evidence(doc)
            total += 1
            flagged_all += flagged
            if i in gold:
                gold_total += 1
                flagged_gold += flagged
                if flagged:
                    examples.append(claim["evidence"][i])
    print(f"\nInstruction filter (imperatives, text addressed to an AI) on {len(claims)} WiCE dev claims")
    print(
        table(
            ["sentences", "flagged", "gold supporting", "gold flagged"],
            [
                [
                    total,
                    f"{flagged_all} ({flagged_all / total:.1%})",
                    gold_total,
                    f"{flagged_gold} ({flagged_gold / max(gold_total, 1):.1%})",
                ]
            ],
        )
    )
    for text in examples:
        print(f"  gold sentence flagged: {text[:110]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-k", type=int, default=5)
    parser.add_argument("--wice", type=int, default=60, help="WiCE claims for the instruction filter (0: skip)")
    args = parser.parse_args()
    print(machine())
    bench_gold(args.k)
    if args.wice:
        bench_wice(args.wice)


if __name__ == "__main__":
    main()
