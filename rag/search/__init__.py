"""Search: Documents and Chunks in, an index on disk and ranked Passages out.

``embedding`` turns texts into unit vectors (sentence-transformers in bulk, ``query_encoder``'s ONNX
graph for questions); ``store`` keeps documents, chunks, vectors, FAISS and BM25 as generations of an
index folder; ``retrieval`` fuses dense and BM25 rankings into Passages numbered 1..k, whose offsets
are still those of ``Document.text``.
"""
