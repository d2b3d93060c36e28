"""Features over all occurrences of one candidate string, and relative to the question's other candidates.

Several passages naming the same answer near the question's words is the strongest sign of a right
answer; a string that is part of a longer candidate ("Biden" in "Joe Biden") shares in its support.
"""

from __future__ import annotations

from collections import defaultdict

from rag.answer.reader.features import Occurrence
from rag.text import acronym

GROUP_MAX = ("prox", "w5", "w10", "sent_sim", "focus_overlap", "tn_near", "sent_overlap")
RELATIVE = ("sum_sim", "n_occ", "n_docs", "cand_q_sim", "cand_type_sim", "max_w10", "prox_gmax")
MAX_RANK_FEATURE = 50


def by_string(occurrences: list[Occurrence]) -> dict[str, list[Occurrence]]:
    """Occurrences grouped by normalised text, in order of first appearance."""
    groups: dict[str, list[Occurrence]] = defaultdict(list)
    for o in occurrences:
        groups[o.norm].append(o)
    return groups


def add_group_features(occurrences: list[Occurrence], question_words: frozenset[str]) -> None:
    """Agreement, containment and within-group maxima, written into each occurrence's features."""
    groups = by_string(occurrences)
    for group in groups.values():
        shared = {
            "n_occ": float(len(group)),
            "n_docs": float(len({o.doc_id for o in group})),
            "n_sents": float(len({(o.doc_id, o.sentence.start) for o in group})),
            "best_rank": min(o.features["p_rank"] for o in group),
            "sum_sim": sum(o.features["sent_sim"] for o in group),
            "max_w10": max(o.features["w10"] for o in group),
            "n_top3": float(sum(1 for o in group if o.features["p_rank"] <= 3)),
        }
        letters = acronym(group[0].text.split())
        shared["acro_in_q"] = float(len(letters) >= 2 and letters in question_words)
        for name in GROUP_MAX:
            shared[name + "_gmax"] = max(o.features[name] for o in group)
        for o in group:
            o.features.update(shared)
    longer_of, shorter_of = _containment(list(groups))
    for norm, group in groups.items():
        longer, shorter = longer_of[norm], shorter_of[norm]
        longer_sim = sum(o.features["sent_sim"] for m in longer for o in groups[m])
        shorter_sim = sum(o.features["sent_sim"] for m in shorter for o in groups[m])
        contained = {
            "n_super": float(sum(len(groups[m]) for m in longer)),
            "n_sub": float(sum(len(groups[m]) for m in shorter)),
            "super_sim": longer_sim,
            "sub_sim": shorter_sim,
            "family_sim": group[0].features["sum_sim"] + longer_sim + shorter_sim,
        }
        for o in group:
            o.features.update(contained)


def _containment(norms: list[str]) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """For each string, the strings whose words strictly contain its words, and those it contains."""
    words = {norm: frozenset(norm.split()) for norm in norms}
    holding: dict[str, set[str]] = defaultdict(set)  # word -> strings with it
    for norm, ws in words.items():
        for w in ws:
            holding[w].add(norm)
    longer: dict[str, list[str]] = {norm: [] for norm in norms}
    shorter: dict[str, list[str]] = {norm: [] for norm in norms}
    for norm, ws in words.items():
        if not ws:
            continue
        for other in set.intersection(*(holding[w] for w in ws)):
            if len(words[other]) > len(ws):
                longer[norm].append(other)
                shorter[other].append(norm)
    return longer, shorter


def add_relative_features(occurrences: list[Occurrence]) -> None:
    """Each value as a share of the question's best, and its rank among the question's distinct values."""
    if not occurrences:
        return
    for name in RELATIVE:
        values = [o.features.get(name, 0.0) for o in occurrences]
        best = max(values)
        position = {v: i for i, v in enumerate(sorted(set(values), reverse=True))}
        for o, v in zip(occurrences, values):
            o.features[name + "_rel"] = v / best if best > 0 else 0.0
            o.features[name + "_rk"] = float(min(position[v], MAX_RANK_FEATURE))
