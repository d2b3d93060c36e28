"""The browser app: the library behind a Gradio page (ask, check citations, add articles).

``state`` holds the models and the live index and does the work, ``views`` turns records into
escaped HTML, ``layout`` lays out the page and wires its events, ``startup`` loads everything and
starts the server on loopback.
"""
