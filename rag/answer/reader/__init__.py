"""The learned answer reader: candidate short answers from the retrieved passages, ranked by a model.

Takes a question and its passages (with the spaCy analysis of their paragraphs); gives an Answer whose
short answer is the best-ranked candidate span, whose sentence is the one holding it (quoted verbatim,
exact offsets), and whose score is the calibrated probability that the short answer is right.

* ``questions``: what the question asks (wh-word, type noun, the role of the asked thing);
* ``spans``: candidate spans of a sentence (entities, noun phrases, names, numbers);
* ``features``: one feature row per candidate occurrence; ``agreement``: features over all occurrences
  of the same string and relative to the question's other candidates;
* ``model``: the fitted LightGBM ranker and its calibration, hash-checked (``rag/data/reader*``);
* ``answerer``: the ``reader`` answerer the pipeline calls. ``eval/train_reader.py`` fits the model.
"""
