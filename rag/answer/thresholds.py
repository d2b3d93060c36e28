"""The calibrated abstention thresholds, one per answerer (``rag/data/abstention.json``)."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

from rag.errors import RagError
from rag.settings import DATA_DIR

ABSTENTION_FILE = DATA_DIR / "abstention.json"


@lru_cache(maxsize=4)
def load_threshold(answerer: str = "extractive", path: Path = ABSTENTION_FILE) -> float:
    """The calibrated abstention threshold for an answerer (see eval/calibrate.py)."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise RagError(f"cannot read the abstention threshold {path}: {exc}; run `python eval/calibrate.py`") from exc
    if answerer not in data:
        raise RagError(f"{path} holds no threshold for the '{answerer}' answerer: run `python eval/calibrate.py`")
    return float(data[answerer]["threshold"])
