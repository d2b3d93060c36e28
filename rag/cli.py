"""The `rag` command line: options, one-line errors and exit codes; each command is a function of
``rag.commands``, which is loaded only once a command runs, so `rag --help` answers at once.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from rag.errors import RagError
from rag.redaction import install_log_redaction, redact
from rag.validation import parse_date


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


def _date(value: str):
    """An argparse type: a calendar date (YYYY-MM-DD, YYYY/MM/DD or YYYYMMDD)."""
    try:
        return parse_date(value, "")
    except RagError as exc:
        raise argparse.ArgumentTypeError(str(exc).strip()) from None


def _add_answerer_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--answerer",
        default=os.environ.get("RAG_ANSWERER", "reader"),
        help="reader (default; or $RAG_ANSWERER): the learned answer reader; extractive: the older rules; "
        "llm: an OpenAI-compatible model, verified sentence by sentence",
    )
    group = parser.add_argument_group("LLM answerer (--answerer llm; any OpenAI-compatible server)")
    group.add_argument(
        "--llm-url", help="API root, e.g. http://127.0.0.1:11434/v1 (default: $RAG_LLM_BASE_URL, else Ollama's)"
    )
    group.add_argument("--llm-model", help="model name (default: $RAG_LLM_MODEL, else llama3.1)")
    group.add_argument(
        "--llm-api-key-env",
        metavar="VAR",
        help="environment variable holding the API key (default: RAG_LLM_API_KEY, else OPENAI_API_KEY)",
    )
    group.add_argument(
        "--llm-timeout",
        type=float,
        help="seconds to wait for the first word of the reply, and then between words "
        "(default: $RAG_LLM_TIMEOUT, else 120)",
    )
    group.add_argument(
        "--llm-retries",
        type=int,
        help="retries after connection errors, 429 and 5xx (default: $RAG_LLM_RETRIES, else 2)",
    )


def _add_index_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--index", help="index folder (default: $RAG_INDEX or ./index)")
    parser.add_argument(
        "--store",
        metavar="STORE",
        help="where chunk vectors are searched: local (FAISS + BM25 in the index folder) or milvus:PATH_OR_URI "
        "(a Milvus Lite file or a server; token in $RAG_MILVUS_TOKEN) (default: $RAG_STORE, else local)",
    )
    parser.add_argument("--chunk-tokens", type=int, help="chunk size in tiktoken tokens (default 160)")
    parser.add_argument("--overlap-tokens", type=int, help="overlap between chunks in tokens (default 40)")


def _add_time_budget_option(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument(
        "--time-budget",
        type=_positive_number,
        metavar="SECONDS",
        help=f"stop {what} after this long (default: $RAG_TIME_BUDGET, else 120)",
    )


def _add_retrieval_options(parser: argparse.ArgumentParser) -> None:
    _add_index_options(parser)
    parser.add_argument("-k", type=_positive_int, default=5, help="number of passages (default 5)")
    parser.add_argument("--retriever", choices=["dense", "bm25", "hybrid"], default="hybrid", help="default hybrid")
    parser.add_argument("--no-rebuild", action="store_true", help="fail instead of rebuilding a stale index")
    parser.add_argument(
        "--as-of",
        type=_date,
        metavar="DATE",
        help="search only articles published on or before DATE (YYYY-MM-DD); undated articles are kept",
    )
    parser.add_argument("--json", action="store_true", help="print JSON")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="rag",
        description="Grounded question answering over a news corpus: answers cite the passages they come from.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="show debug logging")
    subcommands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    ingest = subcommands.add_parser(
        "ingest",
        help="build or update the index",
        description="Build or update the index from articles (.txt, .md, .html, .jsonl). Only new or changed "
        "articles are embedded; removed ones are dropped. Example: rag ingest seeds/",
    )
    ingest.add_argument("paths", nargs="*", help="folders or files (default: the index's corpus, else seeds/)")
    _add_index_options(ingest)
    ingest.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    ray = ingest.add_argument_group("on a Ray cluster (pip install 'rag-news[ray]'; docs/scale.md)")
    ray.add_argument(
        "--ray",
        nargs="?",
        const="auto",
        metavar="ADDRESS",
        help="read, cut and embed on Ray: auto (the default: $RAY_ADDRESS, a cluster started here, else a new "
        "local one) or a cluster's HOST:PORT or ray://HOST:PORT",
    )
    ray.add_argument(
        "--ray-batch-size", type=_positive_int, metavar="N", help="articles per embedding call (default 32)"
    )
    ray.add_argument(
        "--ray-workers",
        type=_positive_int,
        metavar="N",
        help="embedding actors (default: one per GPU, else one per two CPUs of the cluster)",
    )
    ingest.set_defaults(run="cmd_ingest")

    search = subcommands.add_parser(
        "search",
        help="show the passages that best match a question",
        description='Show numbered passages with document id, character span and score. Example: rag search "Who sold S-400s to Turkey?"',
    )
    search.add_argument("question")
    _add_retrieval_options(search)
    _add_time_budget_option(search, "the search")
    search.set_defaults(run="cmd_search")

    ask = subcommands.add_parser(
        "ask",
        help="answer a question with cited corpus sentences, or say that the corpus does not answer it",
        description="Answer from the corpus: every sentence is quoted from an article and cited [n] with its "
        'document and character span. Example: rag ask "Which law lets the US penalise buyers of Russian arms?"',
    )
    ask.add_argument("question")
    _add_retrieval_options(ask)
    _add_time_budget_option(ask, "the question")
    _add_answerer_options(ask)
    ask.set_defaults(run="cmd_ask")

    evaluate = subcommands.add_parser(
        "eval",
        help="score the system on a gold question set, or compare two runs",
        description="Run every gold question and write results.jsonl, metrics.json and report.md (with plots) "
        "into --out. Examples: rag eval --gold eval/seeds_gold.jsonl --out runs/base ; "
        "rag eval --compare runs/base runs/new",
    )
    evaluate.add_argument("--gold", help="gold questions (JSONL, see README)")
    evaluate.add_argument("--out", default="runs/latest", help="run folder to write (default runs/latest)")
    evaluate.add_argument(
        "--split", choices=["dev", "test", "all"], default="all", help="which gold questions (default all)"
    )
    evaluate.add_argument("--compare", nargs=2, metavar=("OLD_DIR", "NEW_DIR"), help="compare two run folders")
    evaluate.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    evaluate.add_argument(
        "--no-as-of",
        action="store_true",
        help="ignore the gold rows' as_of and week: search the whole corpus for every question",
    )
    evaluate.add_argument(
        "--week-slack",
        type=int,
        metavar="DAYS",
        help="a row with a week (no as_of) is searched as of week + DAYS (default 5, see eval/README.md)",
    )
    _add_retrieval_options(evaluate)
    _add_answerer_options(evaluate)
    _add_time_budget_option(evaluate, "each question (it then counts as an abstention)")
    evaluate.set_defaults(run="cmd_eval")

    serve = subcommands.add_parser(
        "serve",
        help="start the browser app",
        description="Start the browser app on 127.0.0.1:7860 (ask, check citations, add articles); the index "
        "is built first when missing or stale. Never opens a public link. Example: rag serve --port 8000",
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=7860, help="port (default 7860)")
    serve.add_argument(
        "--corpus", nargs="*", help="article folders or files (default: the index's corpus, else seeds/)"
    )
    serve.add_argument(
        "--uploads", default="corpus/uploads", help="folder for uploaded articles (default corpus/uploads)"
    )
    serve.add_argument(
        "--max-upload-mb",
        type=_positive_number,
        metavar="MB",
        help="largest file the app accepts (default: $RAG_MAX_UPLOAD_MB, else 5)",
    )
    _add_time_budget_option(serve, "each question and check")
    _add_index_options(serve)
    serve.set_defaults(run="cmd_serve")

    check = subcommands.add_parser(
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
    check.set_defaults(run="cmd_check")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `rag` console script."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exit_:  # --help, or a one-line argument error (exit code 2)
        return exit_.code if isinstance(exit_.code, int) else 0
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING, format="%(levelname)s: %(message)s")
    for noisy in (
        "sentence_transformers",
        "transformers",
        "faiss",
        "bm25s",
        "httpx",
        "httpx2",
        "openai",
        "urllib3",
        "filelock",
    ):
        logging.getLogger(noisy).setLevel(logging.ERROR if not args.verbose else logging.DEBUG)
    install_log_redaction()  # API keys and URL credentials never reach the log (-v logs every request's URL)
    try:
        # The library is loaded only now, once a command runs: `rag --help` and argument errors answer at once.
        from rag import commands

        return getattr(commands, args.run)(args)
    except RagError as exc:
        print(f"error: {redact(str(exc))}", file=sys.stderr)
        return exc.exit_code  # 2 bad input; 3 a service (the LLM server) unavailable
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
