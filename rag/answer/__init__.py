"""Answer: a question and a Retriever in, an Answer out (cited sentences, or an abstention).

``pipeline.ask`` cleans the question, retrieves passages, lets an ``Answerer`` write the answer and
applies the calibrated abstention threshold; it does not care which answerer runs. Two answerers
exist: ``extractive`` (verbatim corpus sentences chosen with the rules of ``analysis`` and
``question``) and ``llm`` (a model's reply, kept only where the citation checker supports it).
Every citation is a span of ``Document.text`` inside one of the retrieved passages.
"""
