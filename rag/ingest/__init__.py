"""Ingest: article files in, normalised Documents and Chunks out.

Takes folders or files of .txt, .md, .html and .jsonl articles (``reading``), normalises their text
(``normalising``), finds sentence boundaries with spaCy (``sentences``) and packs whole sentences into
overlapping chunks sized in tiktoken tokens (``chunking``). Every offset from here on is a character
offset into ``Document.text``, the normalised text: ``doc.text[chunk.start:chunk.end] == chunk.text``.
"""
