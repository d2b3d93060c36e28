"""Evaluate: a gold question set and the whole system in, a run folder out.

``gold`` reads and validates gold questions, ``metrics`` scores retrieval, answers, abstention and
citations, ``run`` answers every question and writes results.jsonl and metrics.json, ``report``
writes report.md with plots, and ``compare`` shows what changed between two runs.
"""
