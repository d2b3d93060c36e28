"""The LLM answerer: an OpenAI-compatible model writes from the numbered passages, the checker verifies.

``client`` talks to the server (the ``openai`` SDK), ``prompt`` builds the messages, ``reply`` reads
the model's sentences and their [n] markers, ``injection`` keeps text addressed to an AI out of the
evidence, and ``answerer`` keeps only the sentences the citation checker supports.
"""
