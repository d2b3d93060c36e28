"""The `rag` command: a thin shell over the library.

Heavy libraries (torch, FAISS, spaCy) are imported inside the commands, so
`rag --help` answers at once.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors, like every other error of the command."""

    def error(self, message: str):
        self.exit(2, f"error: {message} (see `{self.prog} --help`)\n")


def _positive_int(value: str) -> int:
    """An argparse type: a whole number from 1 up."""
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number from 1 up, not {value!r}")
    return number


def _positive_number(value: str) -> float:
    """An argparse type: a number above 0."""
    try:
        number = float(value)
    except ValueError:
        number = 0.0
    if not number > 0:
        raise argparse.ArgumentTypeError(f"must be a number above 0, not {value!r}")
    return number


def _settings(args: argparse.Namespace, corpus: list[str] | None = None):
    from dataclasses import replace

    from rag.settings import ChunkSettings, Settings

    settings = Settings().with_corpus(corpus)
    if getattr(args, "index", None):
        settings = replace(settings, index_dir=Path(args.index))
    if getattr(args, "time_budget", None):
        settings = replace(settings, time_budget=args.time_budget)
    if getattr(args, "chunk_tokens", None) or getattr(args, "overlap_tokens", None):
        default = ChunkSettings()
        settings = replace(
            settings,
            chunking=ChunkSettings(
                max_tokens=args.chunk_tokens or default.max_tokens,
                overlap_tokens=args.overlap_tokens if args.overlap_tokens is not None else default.overlap_tokens,
            ),
        )
    return settings


def cmd_ingest(args: argparse.Namespace) -> int:
    from rag.search.index import ingest

    settings = _settings(args, args.paths)
    _, report = ingest(settings, progress=not args.quiet)  # bars from the start: building may take long
    print(f"indexed {report.summary()} → {report.path}")
    return 0


def _retriever(args: argparse.Namespace):
    from rag.search.embedding import default_embedder
    from rag.search.index import open_index
    from rag.search.retrieval import Retriever

    settings = _settings(args)
    embedder = default_embedder()
    index = open_index(settings, embedder, rebuild=not args.no_rebuild)
    return Retriever(index, embedder, mode=args.retriever, rrf_k=settings.rrf_k)


def cmd_search(args: argparse.Namespace) -> int:
    from rag.budget import time_budget
    from rag.validation import clean_question

    question = clean_question(args.question)
    retriever = _retriever(args)
    with time_budget(_settings(args).time_budget, "the search"):
        passages = retriever.search(question, k=args.k)
    if args.json:
        print(json.dumps([p.to_dict() for p in passages], ensure_ascii=False, indent=2))
        return 0
    if not passages:
        print("no passage matches the question")
    for p in passages:
        print(f"[{p.rank}] {p.doc_id} [{p.start}:{p.end}] score {p.score:.4f}")
        print("    " + p.text.replace("\n", "\n    "))
        print()
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from rag.evaluate.report import format_comparison, format_summary

    if args.compare:
        from rag.evaluate.run import compare_runs

        print(format_comparison(compare_runs(Path(args.compare[0]), Path(args.compare[1]))))
        return 0
    if not args.gold:
        from rag.errors import RagError

        raise RagError("give a gold file with --gold FILE, or two run folders with --compare OLD NEW")
    from rag.answer.registry import answerer_for
    from rag.check.checker import CitationChecker
    from rag.evaluate.run import run_evaluation, run_folder, run_manifest, write_run
    from rag.evaluate.metrics import load_gold

    questions = load_gold(args.gold, args.split)  # validated whole before anything runs
    run_folder(args.out)  # so is --out: a run never replaces what the user made
    retriever = _retriever(args)
    answerer = answerer_for(args.answerer, retriever, _llm_config(args))
    checker = CitationChecker(retriever.index, retriever.embedder)
    budget = _settings(args).time_budget
    results, metrics = run_evaluation(questions, retriever, answerer, checker, k=args.k, progress=not args.quiet,
                                      time_budget=budget)
    manifest = run_manifest(Path(args.gold), retriever, answerer.name, args.k, args.split, answerer)
    out = write_run(Path(args.out), results, metrics, manifest)
    if metrics["timed_out"]:
        print(f"warning: {metrics['timed_out']} questions ran out of their time budget of {budget:g} s "
              "(counted as abstentions; see results.jsonl)", file=sys.stderr)
    print(format_summary(metrics))
    print(f"\nwrote {out}/results.jsonl, metrics.json, report.md")
    return 0


def cmd_ask(args: argparse.Namespace) -> int:
    from rag.answer.registry import answerer_for
    from rag.answer.extractive import ask
    from rag.budget import time_budget

    retriever = _retriever(args)
    answerer = answerer_for(args.answerer, retriever, _llm_config(args))
    with time_budget(_settings(args).time_budget, "the question"):
        answer = ask(args.question, retriever, answerer, k=args.k)
    if args.json:
        print(json.dumps(answer.to_dict(), ensure_ascii=False, indent=2))
        return 0
    if answer.abstained:
        print(answer.extra.get("message", "The corpus does not answer this question."))
        if answer.passages:
            print("\nClosest passages:")
        for p in answer.passages:
            print(f"[{p.rank}] {p.doc_id} [{p.start}:{p.end}]")
            print("    " + p.text.replace("\n", "\n    "))
        _print_removed(answer)
        return 0
    sources = {(c.doc_id, c.start, c.end): n for n, c in enumerate(answer.citations, start=1)}
    print(" ".join(f"{s.text} " + "".join(f"[{sources[(c.doc_id, c.start, c.end)]}]" for c in s.citations)
                   for s in answer.sentences))
    if answer.short_answer:
        print(f"\nShort answer: {answer.short_answer}")
    print("\nSources:")
    for c, n in sources.items():
        citation = answer.citations[n - 1]
        print(f"[{n}] {citation.doc_id} [{citation.start}:{citation.end}] “{citation.text}” (passage {citation.passage_rank})")
    _print_removed(answer)
    return 0


def _print_removed(answer) -> None:
    """The LLM's sentences that the citation checker removed, with the first reason for each."""
    removed = answer.extra.get("removed") or []
    if removed:
        print("\nRemoved (not supported by the passages they cite):")
    for item in removed:
        reason = item["reasons"][0] if item["reasons"] else item["verdict"]
        print(f"  ✗ {item['text']} ({item['verdict']}: {reason})")


def cmd_check(args: argparse.Namespace) -> int:
    from rag.budget import time_budget
    from rag.check.formats import parse_check_input, read_input
    from rag.check.checker import CitationChecker
    from rag.search.embedding import default_embedder
    from rag.search.index import open_index
    from rag.search.retrieval import Retriever

    raw = read_input(args.file)
    settings = _settings(args)
    embedder = default_embedder()
    index = open_index(settings, embedder, rebuild=not args.no_rebuild)
    retriever = None if args.no_propose else Retriever(index, embedder, rrf_k=settings.rrf_k)
    checker = CitationChecker(index, embedder, retriever=retriever)
    with time_budget(settings.time_budget, "the check"):
        report = checker.check_answer(parse_check_input(raw, index), propose=not args.no_propose)
    print(json.dumps(report.to_dict(), ensure_ascii=False, indent=2) if args.json else report.table())
    return 0 if report.ok else 1


def cmd_serve(args: argparse.Namespace) -> int:
    from rag.app.state import serve

    serve(_settings(args, args.corpus), host=args.host, port=args.port, uploads=Path(args.uploads),
          max_upload_mb=args.max_upload_mb)
    return 0


def _llm_config(args: argparse.Namespace):
    """The LLM endpoint from RAG_LLM_* variables and --llm-* options, when the LLM answerer is chosen."""
    if getattr(args, "answerer", None) != "llm":
        return None
    from rag.answer.llm.client import LLMConfig

    return LLMConfig.from_env(
        key_env=args.llm_api_key_env, base_url=args.llm_url, model=args.llm_model,
        timeout=args.llm_timeout, retries=args.llm_retries,
    )


def _add_answerer_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--answerer", default=os.environ.get("RAG_ANSWERER", "extractive"),
                        help="extractive (default; or $RAG_ANSWERER) or llm: an OpenAI-compatible model, "
                        "verified sentence by sentence")
    group = parser.add_argument_group("LLM answerer (--answerer llm; any OpenAI-compatible server)")
    group.add_argument("--llm-url", help="API root, e.g. http://127.0.0.1:11434/v1 (default: $RAG_LLM_BASE_URL, else Ollama's)")
    group.add_argument("--llm-model", help="model name (default: $RAG_LLM_MODEL, else llama3.1)")
    group.add_argument("--llm-api-key-env", metavar="VAR",
                       help="environment variable holding the API key (default: RAG_LLM_API_KEY, else OPENAI_API_KEY)")
    group.add_argument("--llm-timeout", type=float, help="seconds to wait for the server (default: $RAG_LLM_TIMEOUT, else 60)")
    group.add_argument("--llm-retries", type=int, help="retries after connection errors, 429 and 5xx (default: $RAG_LLM_RETRIES, else 2)")


def _add_index_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--index", help="index folder (default: $RAG_INDEX or ./index)")
    parser.add_argument("--chunk-tokens", type=int, help="chunk size in tiktoken tokens (default 160)")
    parser.add_argument("--overlap-tokens", type=int, help="overlap between chunks in tokens (default 40)")


def _add_time_budget_option(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("--time-budget", type=_positive_number, metavar="SECONDS",
                        help=f"stop {what} after this long (default: $RAG_TIME_BUDGET, else 120)")


def _add_retrieval_options(parser: argparse.ArgumentParser) -> None:
    _add_index_options(parser)
    parser.add_argument("-k", type=_positive_int, default=5, help="number of passages (default 5)")
    parser.add_argument("--retriever", choices=["dense", "bm25", "hybrid"], default="hybrid", help="default hybrid")
    parser.add_argument("--no-rebuild", action="store_true", help="fail instead of rebuilding a stale index")
    parser.add_argument("--json", action="store_true", help="print JSON")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="rag",
        description="Grounded question answering over a news corpus: answers cite the passages they come from.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="show debug logging")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    ingest = commands.add_parser(
        "ingest",
        help="build or update the index",
        description="Build or update the index from articles (.txt, .md, .html, .jsonl). Only new or changed "
        "articles are embedded; removed ones are dropped. Example: rag ingest seeds/",
    )
    ingest.add_argument("paths", nargs="*", help="folders or files (default: the index's corpus, else seeds/)")
    _add_index_options(ingest)
    ingest.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    ingest.set_defaults(func=cmd_ingest)

    search = commands.add_parser(
        "search",
        help="show the passages that best match a question",
        description='Show numbered passages with document id, character span and score. Example: rag search "Who sold S-400s to Turkey?"',
    )
    search.add_argument("question")
    _add_retrieval_options(search)
    _add_time_budget_option(search, "the search")
    search.set_defaults(func=cmd_search)

    ask = commands.add_parser(
        "ask",
        help="answer a question with cited corpus sentences, or say that the corpus does not answer it",
        description='Answer from the corpus: every sentence is quoted from an article and cited [n] with its '
        'document and character span. Example: rag ask "Which law lets the US penalise buyers of Russian arms?"',
    )
    ask.add_argument("question")
    _add_retrieval_options(ask)
    _add_time_budget_option(ask, "the question")
    _add_answerer_options(ask)
    ask.set_defaults(func=cmd_ask)

    evaluate = commands.add_parser(
        "eval",
        help="score the system on a gold question set, or compare two runs",
        description="Run every gold question and write results.jsonl, metrics.json and report.md (with plots) "
        "into --out. Examples: rag eval --gold eval/seeds_gold.jsonl --out runs/base ; "
        "rag eval --compare runs/base runs/new",
    )
    evaluate.add_argument("--gold", help="gold questions (JSONL, see README)")
    evaluate.add_argument("--out", default="runs/latest", help="run folder to write (default runs/latest)")
    evaluate.add_argument("--split", choices=["dev", "test", "all"], default="all", help="which gold questions (default all)")
    evaluate.add_argument("--compare", nargs=2, metavar=("OLD_DIR", "NEW_DIR"), help="compare two run folders")
    evaluate.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    _add_retrieval_options(evaluate)
    _add_answerer_options(evaluate)
    _add_time_budget_option(evaluate, "each question (it then counts as an abstention)")
    evaluate.set_defaults(func=cmd_eval)

    serve = commands.add_parser(
        "serve",
        help="start the browser app",
        description="Start the browser app on 127.0.0.1:7860 (ask, check citations, add articles); the index "
        "is built first when missing or stale. Never opens a public link. Example: rag serve --port 8000",
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=7860, help="port (default 7860)")
    serve.add_argument("--corpus", nargs="*", help="article folders or files (default: the index's corpus, else seeds/)")
    serve.add_argument("--uploads", default="corpus/uploads", help="folder for uploaded articles (default corpus/uploads)")
    serve.add_argument("--max-upload-mb", type=_positive_number, metavar="MB",
                       help="largest file the app accepts (default: $RAG_MAX_UPLOAD_MB, else 5)")
    _add_time_budget_option(serve, "each question and check")
    _add_index_options(serve)
    serve.set_defaults(func=cmd_serve)

    check = commands.add_parser(
        "check",
        help="check that each sentence of an answer is supported by what it cites",
        description="Check citations sentence by sentence. FILE (or - for stdin) is our answer JSON, text with [n] "
        'markers and a numbered source list ([1] DOC_ID "quote"), or {"answer": str, "citations": [{"doc_id", '
        '"quote"}]}. Exit code 0: every sentence supported; 1: some are not; 2: bad input. Example: rag check answer.md',
    )
    check.add_argument("file", metavar="FILE", help="the answer to check, or - for standard input")
    _add_index_options(check)
    check.add_argument("--no-rebuild", action="store_true", help="fail instead of rebuilding a stale index")
    check.add_argument("--no-propose", action="store_true", help="do not search the index for better citations")
    check.add_argument("--json", action="store_true", help="print JSON")
    _add_time_budget_option(check, "the check")
    check.set_defaults(func=cmd_check)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `rag` console script."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exit_:  # --help, or a one-line argument error (exit code 2)
        return exit_.code if isinstance(exit_.code, int) else 0
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(levelname)s: %(message)s",
    )
    for noisy in ("sentence_transformers", "transformers", "faiss", "bm25s", "httpx", "urllib3", "filelock"):
        logging.getLogger(noisy).setLevel(logging.ERROR if not args.verbose else logging.DEBUG)
    try:
        from rag.errors import RagError
        from rag.redaction import install_log_redaction, redact
    except ImportError as exc:  # pragma: no cover - broken install
        print(f"error: {exc}", file=sys.stderr)
        return 2
    install_log_redaction()  # API keys and URL credentials never reach the log (-v logs every request's URL)
    try:
        return args.func(args)
    except RagError as exc:
        print(f"error: {redact(str(exc))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except OSError as exc:  # the disk or the system refused (full, gone, no permission): one line, not a traceback
        print(f"error: {redact(str(exc))}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
