"""Check: answer sentences with the evidence they cite in, a verdict per sentence (a CheckReport) out.

``formats`` reads the three input formats into CitedSentences (quotes located in ``Document.text``),
``claims`` extracts the checkable facts (quantities, dates, names), ``judge`` scores how well a text
supports a claim, and ``checker`` finds the best evidence window and adds ALCE citation recall and
precision.
"""
