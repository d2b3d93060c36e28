"""What each `rag` command does: a few lines over the library per command (the parser is ``rag.cli``)."""

from __future__ import annotations

import argparse
import json
import resource
import sys
from dataclasses import replace
from pathlib import Path

from rag.answer.llm.config import LLMConfig
from rag.answer.pipeline import ask
from rag.answer.registry import answerer_for
from rag.app.startup import serve
from rag.budget import time_budget
from rag.check.checker import CitationChecker, report_table
from rag.check.formats import parse_check_input, read_input
from rag.errors import PARTIAL_RUN, RagError
from rag.evaluate.compare import compare_runs, format_comparison
from rag.evaluate.gold import WEEK_SLACK_DAYS, dated, load_gold
from rag.evaluate.report import format_summary
from rag.evaluate.run import run_evaluation, run_folder, run_manifest, write_run
from rag.records import Answer
from rag.search.embedding import default_embedder
from rag.search.index import ingest, open_index
from rag.search.ray_ingest import DEFAULT_BATCH_SIZE, RayOptions, ray_engine
from rag.search.retrieval import Retriever
from rag.settings import ChunkSettings, Settings, StoreChoice
from rag.validation import clean_question


def _settings(args: argparse.Namespace, corpus: list[str] | None = None) -> Settings:
    """The settings of a command: environment defaults, then its options."""
    settings = Settings().with_corpus(corpus)
    if getattr(args, "index", None):
        settings = replace(settings, index_dir=Path(args.index))
    if getattr(args, "store", None):
        settings = replace(settings, store=StoreChoice.parse(args.store))
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
    settings = _settings(args, args.paths)
    if (args.ray_batch_size or args.ray_workers) and not args.ray:
        raise RagError("--ray-batch-size and --ray-workers go with --ray [auto|ADDRESS]")
    if args.ray:
        options = RayOptions(args.ray, args.ray_batch_size or DEFAULT_BATCH_SIZE, args.ray_workers)
        with ray_engine(options) as engine:
            _, report = ingest(settings, progress=not args.quiet, engine=engine)
    else:
        _, report = ingest(settings, progress=not args.quiet)  # bars from the start: building may take long
    print(f"indexed {report.summary()} → {report.path}")
    # ru_maxrss is in KiB on Linux; for children it is the largest waited-for process (a parsing worker).
    main, worker = (
        resource.getrusage(who).ru_maxrss / 1024 for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
    )
    # Ray's workers are the cluster's processes, not children of this one.
    workers = f", {worker:,.0f} MiB (largest parsing worker)" if worker and not args.ray else ""
    print(f"peak memory: {main:,.0f} MiB (this process){workers}", file=sys.stderr)
    return 0


def _retriever(args: argparse.Namespace) -> Retriever:
    settings = _settings(args)
    embedder = default_embedder()
    index = open_index(settings, embedder, rebuild=not args.no_rebuild)
    # `rag eval` dates each question itself (rag.evaluate.gold.dated); search and ask take --as-of here.
    as_of = None if args.run == "cmd_eval" else getattr(args, "as_of", None)
    return Retriever(index, embedder, mode=args.retriever, rrf_k=settings.rrf_k, as_of=as_of)


def cmd_search(args: argparse.Namespace) -> int:
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
    if args.compare:
        print(format_comparison(compare_runs(Path(args.compare[0]), Path(args.compare[1]))))
        return 0
    if not args.gold:
        raise RagError("give a gold file with --gold FILE, or two run folders with --compare OLD NEW")

    if args.as_of and args.no_as_of:
        raise RagError("give --as-of DATE (one date for every question) or --no-as-of (no dates), not both")
    slack = WEEK_SLACK_DAYS if args.week_slack is None else args.week_slack
    questions = load_gold(args.gold, args.split)  # validated whole before anything runs
    questions = dated(questions, args.as_of, use_gold=not args.no_as_of, week_slack=slack)
    run_folder(args.out)  # so is --out: a run never replaces what the user made
    retriever = _retriever(args)
    answerer = answerer_for(args.answerer, retriever, _llm_config(args))
    checker = CitationChecker(retriever.index, retriever.embedder)
    budget = _settings(args).time_budget
    results, metrics = run_evaluation(
        questions, retriever, answerer, checker, k=args.k, progress=not args.quiet, time_budget=budget
    )
    manifest = run_manifest(Path(args.gold), retriever, answerer.name, args.k, args.split, answerer)
    manifest["settings"]["as_of"] = (
        args.as_of.isoformat() if args.as_of else "none" if args.no_as_of else f"gold as_of, else week + {slack} days"
    )
    out = write_run(Path(args.out), results, metrics, manifest)
    if metrics["timed_out"]:
        print(
            f"warning: {metrics['timed_out']} questions ran out of their time budget of {budget:g} s "
            "(counted as abstentions; see results.jsonl)",
            file=sys.stderr,
        )
    print(format_summary(metrics))
    print(f"\nwrote {out}/results.jsonl, metrics.json, report.md")
    failed = [r.row["error"] for r in results if r.error is not None]  # redacted
    if failed:
        # The run is written, with gaps: an exit code of its own, distinct from 2 and 3, which mean that nothing
        # was written.
        print(
            f"error: {len(failed)} of {len(results)} questions failed and are marked so in {out}/results.jsonl "
            f"(the first: {failed[0]})",
            file=sys.stderr,
        )
        return PARTIAL_RUN
    return 0


def cmd_ask(args: argparse.Namespace) -> int:
    retriever = _retriever(args)
    answerer = answerer_for(args.answerer, retriever, _llm_config(args))
    with time_budget(_settings(args).time_budget, "the question"):
        answer = ask(args.question, retriever, answerer, k=args.k)
    if args.json:
        print(json.dumps(answer.to_dict(), ensure_ascii=False, indent=2))
        return 0
    if answer.abstained:
        print(answer.message)
        if answer.passages:
            print("\nClosest passages:")
        for p in answer.passages:
            print(f"[{p.rank}] {p.doc_id} [{p.start}:{p.end}]")
            print("    " + p.text.replace("\n", "\n    "))
        _print_irrelevant(answer)
        _print_removed(answer)
        return 0
    sources = {(c.doc_id, c.start, c.end): n for n, c in enumerate(answer.citations, start=1)}
    print(
        " ".join(
            f"{s.text} " + "".join(f"[{sources[(c.doc_id, c.start, c.end)]}]" for c in s.citations)
            for s in answer.sentences
        )
    )
    if answer.short_answer:
        print(f"\nShort answer: {answer.short_answer}")
    print("\nSources:")
    for _c, n in sources.items():
        citation = answer.citations[n - 1]
        print(
            f"[{n}] {citation.doc_id} [{citation.start}:{citation.end}] “{citation.text}” (passage {citation.passage_rank})"
        )
    _print_reattributed(answer)
    _print_irrelevant(answer)
    _print_removed(answer)
    return 0


def _print_reattributed(answer: Answer) -> None:
    """The LLM's sentences kept with another passage than the one the model cited (or with one, if it cited none)."""
    if answer.reattributed:
        print("\nCitations corrected (passage numbers as the model saw them):")
    for change in answer.reattributed:
        print(f"  ✓ {change.text} ({change.describe()})")


def _print_irrelevant(answer: Answer) -> None:
    """The LLM's supported sentences that do not answer the question."""
    if answer.irrelevant:
        print("\nNot an answer to the question (supported, listed apart):")
    for item in answer.irrelevant:
        print(f"  · {item.text} (relevance {item.relevance:.2f})")


def _print_removed(answer: Answer) -> None:
    """The LLM's sentences that the citation checker removed, with the first reason for each."""
    if answer.removed:
        print("\nRemoved (not supported by the passages they cite):")
    for item in answer.removed:
        reason = item.reasons[0] if item.reasons else item.verdict
        print(f"  ✗ {item.text} ({item.verdict}: {reason})")


def cmd_check(args: argparse.Namespace) -> int:
    raw = read_input(args.file)
    settings = _settings(args)
    embedder = default_embedder()
    index = open_index(settings, embedder, rebuild=not args.no_rebuild)
    retriever = None if args.no_propose else Retriever(index, embedder, rrf_k=settings.rrf_k)
    checker = CitationChecker(index, embedder, retriever=retriever)
    with time_budget(settings.time_budget, "the check"):
        report = checker.check_answer(parse_check_input(raw, index), propose=not args.no_propose)
    print(json.dumps(report.to_dict(), ensure_ascii=False, indent=2) if args.json else report_table(report))
    return 0 if report.ok else 1


def cmd_serve(args: argparse.Namespace) -> int:
    serve(
        _settings(args, args.corpus),
        host=args.host,
        port=args.port,
        uploads=Path(args.uploads),
        max_upload_mb=args.max_upload_mb,
    )
    return 0


def _llm_config(args: argparse.Namespace) -> LLMConfig | None:
    """The LLM endpoint from RAG_LLM_* variables and --llm-* options, when the LLM answerer is chosen."""
    if getattr(args, "answerer", None) != "llm":
        return None

    return LLMConfig.from_env(
        key_env=args.llm_api_key_env,
        base_url=args.llm_url,
        model=args.llm_model,
        timeout=args.llm_timeout,
        retries=args.llm_retries,
    )
