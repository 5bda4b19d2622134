#!/usr/bin/env python3
"""
Logits of a Hugging Face model folder (model.safetensors + config.json) computed in HF's own layout, to check what
`llmc export hf` writes:

    python3 hf_logits.py --folder DIR --tokens 1,2,3 --out logits.bin      # fp32 (T, V), little-endian

- GPT-2 (config "model_type": "gpt2"): gpt2_reference.model_from_safetensors, which reads HF's names and Conv1D
  (in, out) weights; the head count from config.json's n_head.
- Llama (config "model_type": "llama"): a forward written here over the HF tensors as they are, in HF's convention:
  q/k rows in rotate-half order, RoPE as x*cos + rotate_half(x)*sin with the angles of each pair (i, i + hd/2), GQA,
  SwiGLU (down(silu(gate) * up)), RMSNorm, lm_head (or the embedding when tie_word_embeddings). Frequencies, with
  Llama 3.1's scaling from config.json's rope_scaling, come from llama3_reference.rope_frequencies.
"""
import argparse
import json
import math
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)


def gpt2_logits(folder, config, tokens):
    import gpt2_reference
    model = gpt2_reference.model_from_safetensors(os.path.join(folder, "model.safetensors"), n_head=config["n_head"])
    model.eval()
    logits, _ = model(tokens)
    return logits


def rms_norm(x, weight, eps):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * weight


def rotate_half(x):
    half = x.shape[-1] // 2
    return torch.cat([-x[..., half:], x[..., :half]], dim=-1)


def llama_logits(folder, config, tokens):
    import llama3_reference
    w = llama3_reference.read_safetensors(os.path.join(folder, "model.safetensors"))
    C, NH, NKV = config["hidden_size"], config["num_attention_heads"], config["num_key_value_heads"]
    hd, L, eps = C // NH, config["num_hidden_layers"], config["rms_norm_eps"]
    scaling = config.get("rope_scaling")
    shape = llama3_reference.Config(max_seq_len=config["max_position_embeddings"], vocab_size=config["vocab_size"],
                                    n_layer=L, n_head=NH, n_kv_head=NKV, n_embd=C, ffn_dim_multiplier=1.0,
                                    multiple_of=1, norm_eps=eps, rope_theta=config["rope_theta"],
                                    use_scaled_rope=bool(scaling) and scaling.get("rope_type") == "llama3")
    B, T = tokens.shape
    cos, sin = llama3_reference.rope_tables(shape, T)                 # (T, hd/2)
    cos = torch.cat([cos, cos], dim=-1)[None, :, None, :]              # HF: pair (i, i + hd/2) shares angle i
    sin = torch.cat([sin, sin], dim=-1)[None, :, None, :]
    x = w["model.embed_tokens.weight"][tokens]
    causal = torch.ones(T, T, dtype=torch.bool).tril()
    for l in range(L):
        p = f"model.layers.{l}."
        h = rms_norm(x, w[p + "input_layernorm.weight"], eps)
        q = (h @ w[p + "self_attn.q_proj.weight"].t()).view(B, T, NH, hd)
        k = (h @ w[p + "self_attn.k_proj.weight"].t()).view(B, T, NKV, hd)
        v = (h @ w[p + "self_attn.v_proj.weight"].t()).view(B, T, NKV, hd)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        k = k.repeat_interleave(NH // NKV, dim=2)
        v = v.repeat_interleave(NH // NKV, dim=2)
        q, k, v = (t.transpose(1, 2) for t in (q, k, v))               # (B, NH, T, hd)
        scores = (q @ k.transpose(-2, -1)) / math.sqrt(hd)
        y = F.softmax(scores.masked_fill(~causal, float("-inf")), dim=-1) @ v
        x = x + y.transpose(1, 2).reshape(B, T, C) @ w[p + "self_attn.o_proj.weight"].t()
        h = rms_norm(x, w[p + "post_attention_layernorm.weight"], eps)
        gate = h @ w[p + "mlp.gate_proj.weight"].t()
        up = h @ w[p + "mlp.up_proj.weight"].t()
        x = x + (F.silu(gate) * up) @ w[p + "mlp.down_proj.weight"].t()
    x = rms_norm(x, w["model.norm.weight"], eps)
    head = w["model.embed_tokens.weight"] if config.get("tie_word_embeddings") else w["lm_head.weight"]
    return x @ head.t()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--folder", required=True)
    parser.add_argument("--tokens", required=True, help="comma-separated token ids (one row)")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))
    with open(os.path.join(args.folder, "config.json")) as f:
        config = json.load(f)
    tokens = torch.tensor([[int(t) for t in args.tokens.split(",")]], dtype=torch.long)
    forward = {"gpt2": gpt2_logits, "llama": llama_logits}[config["model_type"]]
    with torch.no_grad():
        logits = forward(args.folder, config, tokens)[0]
    with open(args.out, "wb") as f:
        f.write(logits.float().numpy().astype("<f4").tobytes())
    print(f"wrote {args.out}: logits {tuple(logits.shape)}")


if __name__ == "__main__":
    main()
