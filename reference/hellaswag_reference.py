#!/usr/bin/env python3
"""
HellaSwag as llm.c does it, restated in our own code, for checking `llmc data hellaswag` and `llmc eval hellaswag`:

1. The eval file (llm.c's dev/data/hellaswag.py + data_common.write_evalfile):
       python3 hellaswag_reference.py --input examples.jsonl --output hellaswag_val.bin [--ranks r50k_base.tiktoken]
   Each JSON line gives ctx, endings (4) and label. Context tokens = encode(ctx), completion c = encode(" " + endings[c])
   (GPT-2 BPE). Then an int32[256] header [20240522, 1, n, longest example bytes] and per example the uint16 stream
   65535, example bytes, index, label, 4, len(ctx), ctx..., then per completion len, tokens... .
   The GPT-2 encoder is tiktoken's when it is installed; otherwise a plain-Python byte-level BPE over the r50k_base
   ranks file given with --ranks (jtokkit ships it), with GPT-2's split pattern written for Python's `re`
   (letters = [^\\W\\d_], digits = \\d): the same tokens for text whose letters and digits `re` classifies as
   Unicode does, which the made test examples are.

2. The evaluation (hellaswag.py's evaluate, "acc_norm", which llm.c's trainer reports with -h 1):
       python3 hellaswag_reference.py --evaluate hellaswag_val.bin --gpt2-safetensors model.safetensors --heads NH \
           --json out.json
       python3 hellaswag_reference.py --evaluate hellaswag_val.bin --llama3-model llama3.bin --json out.json
   Per example, 4 rows ctx + completion; cross-entropy at every position predicting a completion token; a
   completion's score is the mean over those positions; the prediction is the lowest score (the first on a tie).
   Writes {"losses": [[4 floats] per example], "predictions": [...], "correct": n, "total": n}.
"""
import argparse
import base64
import json
import os
import re
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
MAGIC, VERSION, START_EXAMPLE = 20240522, 1, 65535

# ----------------------------------------------------------------------------------------------------------------
# GPT-2 encoding


class PlainBpe:
    """tiktoken's byte-level BPE: split with GPT-2's pattern, then merge each piece's bytes by lowest rank first."""

    PATTERN = re.compile(r"""'s|'t|'re|'ve|'m|'ll|'d| ?[^\W\d_]+| ?\d+| ?(?:[^\s\w]|_)+|\s+(?!\S)|\s+""")

    def __init__(self, ranks_path):
        self.ranks = {}
        with open(ranks_path, "rb") as f:
            for line in f:
                if line.strip():
                    token, rank = line.split()
                    self.ranks[base64.b64decode(token)] = int(rank)

    def encode(self, text):
        out = []
        for piece in self.PATTERN.findall(text):
            out.extend(self.merge(piece.encode("utf-8")))
        return out

    def merge(self, data):
        if data in self.ranks:
            return [self.ranks[data]]
        parts = [data[i:i + 1] for i in range(len(data))]
        while len(parts) > 1:
            best, best_rank = -1, None
            for i in range(len(parts) - 1):
                rank = self.ranks.get(parts[i] + parts[i + 1])
                if rank is not None and (best_rank is None or rank < best_rank):
                    best, best_rank = i, rank
            if best < 0:
                break
            parts[best:best + 2] = [parts[best] + parts[best + 1]]
        return [self.ranks[p] for p in parts]


def gpt2_encoder(ranks_path):
    try:
        import tiktoken
        return tiktoken.get_encoding("gpt2").encode
    except ImportError:
        if not ranks_path:
            sys.exit("tiktoken is not installed: pass --ranks r50k_base.tiktoken for the plain-Python encoder")
        return PlainBpe(ranks_path).encode


# ----------------------------------------------------------------------------------------------------------------
# the eval file


def render_example(example, encode):
    """The tokens llm.c keeps of one example: its label, the context tokens and the 4 completions' tokens."""
    ctx_tokens = encode(example["ctx"])
    ending_tokens = [encode(" " + ending) for ending in example["endings"]]   # the space goes with the completion
    return {"label": example["label"], "ctx_tokens": ctx_tokens, "ending_tokens": ending_tokens}


def write_eval_file(path, datas):
    """write_evalfile's layout; each example's size field counts its whole record in bytes."""
    assert len(datas) < 2 ** 16
    stream, longest = [], 0
    for index, data in enumerate(datas):
        assert len(data["ending_tokens"]) == 4
        record = [START_EXAMPLE, 0, index, data["label"], len(data["ending_tokens"]), len(data["ctx_tokens"])]
        record += data["ctx_tokens"]
        for tokens in data["ending_tokens"]:
            record += [len(tokens)] + tokens
        assert all(0 <= t < START_EXAMPLE for t in data["ctx_tokens"] + sum(data["ending_tokens"], []))
        record[1] = 2 * len(record)
        assert record[1] < 2 ** 16
        longest = max(longest, record[1])
        stream += record
    header = np.zeros(256, dtype="<i4")
    header[:4] = [MAGIC, VERSION, len(datas), longest]
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(header.tobytes())
        f.write(np.array(stream, dtype="<u2").tobytes())
    os.replace(tmp, path)


def read_eval_file(path):
    with open(path, "rb") as f:
        data = f.read()
    header = np.frombuffer(data, dtype="<i4", count=256)
    assert header[0] == MAGIC and header[1] == VERSION, f"{path}: not an llm.c eval file"
    values = np.frombuffer(data, dtype="<u2", offset=1024).tolist()
    examples, at = [], 0
    for index in range(int(header[2])):
        assert values[at] == START_EXAMPLE and values[at + 2] == index
        end = at + values[at + 1] // 2
        label, count, n = values[at + 3], values[at + 4], values[at + 5]
        ctx = values[at + 6:at + 6 + n]
        pos, endings = at + 6 + n, []
        for _ in range(count):
            m = values[pos]
            endings.append(values[pos + 1:pos + 1 + m])
            pos += 1 + m
        assert pos == end
        examples.append((label, ctx, endings))
        at = end
    return examples


# ----------------------------------------------------------------------------------------------------------------
# the evaluation


def evaluate(examples, logits_of):
    """logits_of(tokens (1, n) int64) -> logits (1, n, V). Returns per-example mean completion losses and predictions."""
    import torch
    import torch.nn.functional as F
    losses, predictions, correct = [], [], 0
    with torch.no_grad():
        for label, ctx, endings in examples:
            scores = []
            for ending in endings:
                row = torch.tensor([ctx + ending], dtype=torch.long)
                logits = logits_of(row)[0]                                   # (n, V)
                per_position = F.cross_entropy(logits[:-1], row[0, 1:], reduction="none")
                completion = per_position[len(ctx) - 1:]                     # positions that predict ending tokens
                scores.append(completion.mean().item())
            prediction = int(np.argmin(scores))                              # the first of equal minima
            losses.append(scores)
            predictions.append(prediction)
            correct += int(prediction == label)
    return {"losses": losses, "predictions": predictions, "correct": correct, "total": len(examples)}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--input", help="HellaSwag JSON lines")
    parser.add_argument("--output", help="the eval file to write")
    parser.add_argument("--ranks", help="r50k_base.tiktoken, for the plain-Python GPT-2 encoder")
    parser.add_argument("--evaluate", help="an eval file to evaluate a model on")
    parser.add_argument("--gpt2-safetensors", help="a GPT-2 in Hugging Face layout (our reference's reader)")
    parser.add_argument("--heads", type=int, default=12, help="GPT-2 heads (not in the safetensors file)")
    parser.add_argument("--llama3-model", help="a llama3-branch checkpoint")
    parser.add_argument("--json", help="where to write the evaluation")
    args = parser.parse_args()

    if args.input:
        encode = gpt2_encoder(args.ranks)
        with open(args.input, encoding="utf-8") as f:
            datas = [render_example(json.loads(line), encode) for line in f if line.strip()]
        write_eval_file(args.output, datas)
        print(f"wrote {len(datas)} examples to {args.output}")
    if args.evaluate:
        import torch
        torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))
        sys.path.insert(0, HERE)
        if args.gpt2_safetensors:
            import gpt2_reference
            model = gpt2_reference.model_from_safetensors(args.gpt2_safetensors, n_head=args.heads)
        else:
            import llama3_reference
            model = llama3_reference.read_model(args.llama3_model)
        model.eval()
        result = evaluate(read_eval_file(args.evaluate), lambda tokens: model(tokens)[0])
        with open(args.json, "w") as f:
            json.dump(result, f)
        print(f"HellaSwag: {result['correct']}/{result['total']}")


if __name__ == "__main__":
    main()
