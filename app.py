"""Start the browser app: `python app.py [--host 127.0.0.1] [--port 7860] [--index DIR] [--corpus PATH …]`.

A thin shell over ``rag.app.startup.serve``; the same as `rag serve`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def build_parser() -> argparse.ArgumentParser:
    from rag.app.startup import DEFAULT_HOST, DEFAULT_PORT
    from rag.app.state import DEFAULT_UPLOADS

    parser = argparse.ArgumentParser(
        description="Start the browser app (ask, check citations, add articles) on loopback. "
        "Builds the index first when it is missing or stale."
    )
    parser.add_argument("--host", default=DEFAULT_HOST, help=f"address to listen on (default {DEFAULT_HOST})")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT})")
    parser.add_argument("--index", help="index folder (default: $RAG_INDEX or ./index)")
    parser.add_argument(
        "--corpus", nargs="*", help="article folders or files (default: the index's corpus, else seeds/)"
    )
    parser.add_argument(
        "--uploads", default=str(DEFAULT_UPLOADS), help=f"folder for uploaded articles (default {DEFAULT_UPLOADS})"
    )
    parser.add_argument(
        "--max-upload-mb", help="largest file the app accepts, in MB (default: $RAG_MAX_UPLOAD_MB, else 5)"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    from rag.cli import main as rag_main

    args = build_parser().parse_args(argv)
    forwarded = ["serve", "--host", args.host, "--port", str(args.port), "--uploads", args.uploads]
    if args.index:
        forwarded += ["--index", args.index]
    if args.corpus:
        forwarded += ["--corpus", *args.corpus]
    if args.max_upload_mb:
        forwarded += ["--max-upload-mb", args.max_upload_mb]
    return rag_main(forwarded)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    sys.exit(main())
