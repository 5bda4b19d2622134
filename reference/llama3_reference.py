#!/usr/bin/env python3
"""
Our own PyTorch Llama 3 (3.1 / 3.2), the reference the Java model is checked against.

Written for clarity, in the spirit of nanoGPT; it runs on torch 1.13 (Debian) and on current torch, and uses no
fused attention (no scaled_dot_product_attention) so every step is the plain math the Java code repeats:

    x = wte[tokens]                                                   (B, T, C)
    per layer:  x = x + c_proj(attention(rope(q), rope(k), v))        q, k, v from c_attn(rmsnorm_1(x))
                x = x + mlp_c_proj(silu(c_fc2(h)) * c_fc(h))          h = rmsnorm_2(x)
    logits = lm_head(rmsnorm_f(x))                                    (B, T, V)

- RMSNorm: x * rsqrt(mean(x^2) + eps) * w, computed in fp32.
- RoPE: rotates INTERLEAVED pairs (2i, 2i+1) of every q/k head, i.e. a complex multiply by e^(i t f_i), with the
  Llama 3.1 frequency scaling (factor 8, low 1, high 4, original context 8192). The angles are computed in float64
  and cos/sin rounded once to fp32 (the Java model does the same).
- GQA: each of the NKV key/value heads serves NH/NKV consecutive query heads (kv head j -> q heads j*rep..).
- SwiGLU MLP with hidden size H = multiple_of * ceil(int(ffn_mult * int(2 * 4C / 3)) / multiple_of).
- No biases anywhere; lm_head is a separate (V, C) matrix (a tied 3.2 model gets a copy of wte).

Random init (torch.Generator seeded with --seed, default 42, one normal_ call per tensor slice, mean 0), in this
order: wte (V*C, std 0.02); lm_head (V*C, 0.02); then for each layer l: c_attn[l] (0.02), attn c_proj[l]
(0.02/sqrt(2L)), c_fc[l] (0.02), c_fc2[l] (0.02), mlp c_proj[l] (0.02/sqrt(2L)). RMSNorm weights are 1.

Files (see the spec, section 1.5 b, llm.c's llama3 branch layout):
- model checkpoint: int32[256] header + float32[256] header, then the 16 GPT-2 slots (bias slots zero, slot 1 is
  lm_head, fcw holds c_fc then c_fc2 per layer), version 3 = fp32, version 5 = bf16 (round to nearest even).
- debug state v3: int32[256] header [20240803, 3, B, T, S], x, y (int32), logits (B,T,V), loss, the gradients in the
  16-slot layout (fp32), then S losses and S gradient norms from S training steps on the same batch.
  Training rule: llm.c's (train_llama3.py's defaults, replayed by test_llama3.cu), see train_llmc_rule: AdamW
  lr 1e-5, betas (0.9, 0.95), eps 1e-8, weight decay 0, gradients clipped to global norm 1.0; the recorded norm is
  the one before clipping; loss k is the forward loss before update k.
- Hugging Face safetensors (Llama 3.2 names) in and out, parsed and written by hand. HF stores q_proj/k_proj with
  the rows of every head permuted for its rotate-half RoPE; we undo that on import and redo it on export.

Examples:
    python3 llama3_reference.py --config custom --layers 2 --heads 4 --kv-heads 2 --channels 64 --vocab 512 \
        --write-model m.bin --write-model-bf16 m_bf16.bin --write-debug-state m_debug_state.bin
    python3 llama3_reference.py --config 3.2-1B --safetensors model.safetensors --write-model llama3.2_1B.bin
"""
import argparse
import copy
import json
import math
import os
import struct
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

MODEL_MAGIC = 20240803
DEBUG_MAGIC = 20240803

# ----------------------------------------------------------------------------------------------------------------
# configuration


class Config:
    def __init__(self, max_seq_len, vocab_size, n_layer, n_head, n_kv_head, n_embd, ffn_dim_multiplier,
                 multiple_of, norm_eps=1e-5, rope_theta=500000.0, use_scaled_rope=True, major=3, minor=1):
        assert n_embd % n_head == 0, "channels must be a multiple of heads"
        assert n_head % n_kv_head == 0, "heads must be a multiple of kv heads"
        assert (n_embd // n_head) % 2 == 0, "head size must be even for RoPE"
        self.max_seq_len = max_seq_len
        self.vocab_size = vocab_size
        self.n_layer = n_layer
        self.n_head = n_head
        self.n_kv_head = n_kv_head
        self.n_embd = n_embd
        self.ffn_dim_multiplier = ffn_dim_multiplier
        self.multiple_of = multiple_of
        self.norm_eps = norm_eps
        self.rope_theta = rope_theta
        self.use_scaled_rope = use_scaled_rope
        self.major = major
        self.minor = minor

    @property
    def head_size(self):
        return self.n_embd // self.n_head

    @property
    def ffn_hidden(self):
        h = 4 * self.n_embd
        h = int(2 * h / 3)
        h = int(self.ffn_dim_multiplier * h)
        return self.multiple_of * ((h + self.multiple_of - 1) // self.multiple_of)

    @property
    def qkv_rows(self):
        return (self.n_head + 2 * self.n_kv_head) * self.head_size


NAMED_CONFIGS = {
    "3.1-8B": dict(n_layer=32, n_head=32, n_embd=4096, ffn_dim_multiplier=1.3, minor=1),
    "3.2-1B": dict(n_layer=16, n_head=32, n_embd=2048, ffn_dim_multiplier=1.4, minor=2),
    "3.2-3B": dict(n_layer=28, n_head=24, n_embd=3072, ffn_dim_multiplier=1.0, minor=2),
}


def config_from_args(args):
    if args.config == "custom":
        return Config(max_seq_len=args.max_seq_len, vocab_size=args.vocab, n_layer=args.layers, n_head=args.heads,
                      n_kv_head=args.kv_heads, n_embd=args.channels, ffn_dim_multiplier=args.ffn_multiplier,
                      multiple_of=args.multiple_of, norm_eps=args.norm_eps, rope_theta=args.rope_theta,
                      use_scaled_rope=not args.no_scaled_rope, major=3, minor=1)
    named = NAMED_CONFIGS[args.config]
    return Config(max_seq_len=8192, vocab_size=128256, n_kv_head=8, multiple_of=1024, norm_eps=1e-5,
                  rope_theta=500000.0, use_scaled_rope=True, major=3, **named)


# ----------------------------------------------------------------------------------------------------------------
# the model


class RMSNorm(nn.Module):
    def __init__(self, dim, eps):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        x32 = x.float()
        normed = x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + self.eps)
        return (normed * self.weight.float()).type_as(x)


def rope_frequencies(config):
    """f_i = 1 / theta^(2i/hd) for i < hd/2, with Llama 3.1's scaling of the long wavelengths (float64)."""
    hd = config.head_size
    freqs = [1.0 / (config.rope_theta ** (2 * i / hd)) for i in range(hd // 2)]
    if config.use_scaled_rope:
        scale_factor, low_freq_factor, high_freq_factor, old_context = 8.0, 1.0, 4.0, 8192.0
        low_freq_wavelen = old_context / low_freq_factor    # 8192
        high_freq_wavelen = old_context / high_freq_factor  # 2048
        scaled = []
        for f in freqs:
            wavelen = 2 * math.pi / f
            if wavelen < high_freq_wavelen:
                scaled.append(f)
            elif wavelen > low_freq_wavelen:
                scaled.append(f / scale_factor)
            else:
                smooth = (old_context / wavelen - low_freq_factor) / (high_freq_factor - low_freq_factor)
                scaled.append((1 - smooth) * f / scale_factor + smooth * f)
        freqs = scaled
    return torch.tensor(freqs, dtype=torch.float64)


def rope_tables(config, seq_len):
    """cos and sin of t * f_i, shape (seq_len, hd/2), rounded to fp32 once."""
    t = torch.arange(seq_len, dtype=torch.float64)
    angles = torch.outer(t, rope_frequencies(config))
    return torch.cos(angles).float(), torch.sin(angles).float()


def apply_rope(x, cos, sin):
    """x: (B, T, heads, hd). Rotates each interleaved pair (x[2i], x[2i+1]) by the angle t*f_i (complex multiply)."""
    even, odd = x[..., 0::2], x[..., 1::2]              # (B, T, heads, hd/2)
    cos = cos[None, :, None, :]
    sin = sin[None, :, None, :]
    rotated_even = even * cos - odd * sin
    rotated_odd = even * sin + odd * cos
    return torch.stack((rotated_even, rotated_odd), dim=-1).flatten(3)


class CausalSelfAttention(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.n_head = config.n_head
        self.n_kv_head = config.n_kv_head
        self.hd = config.head_size
        self.c_attn = nn.Linear(config.n_embd, config.qkv_rows, bias=False)   # rows: Q heads, K heads, V heads
        self.c_proj = nn.Linear(config.n_embd, config.n_embd, bias=False)

    def forward(self, x, cos, sin):
        B, T, C = x.size()
        qkv = self.c_attn(x)
        q, k, v = qkv.split([self.n_head * self.hd, self.n_kv_head * self.hd, self.n_kv_head * self.hd], dim=-1)
        q = apply_rope(q.view(B, T, self.n_head, self.hd), cos, sin)
        k = apply_rope(k.view(B, T, self.n_kv_head, self.hd), cos, sin)
        v = v.view(B, T, self.n_kv_head, self.hd)
        rep = self.n_head // self.n_kv_head                 # GQA: kv head j serves q heads j*rep .. j*rep+rep-1
        k = k.repeat_interleave(rep, dim=2)
        v = v.repeat_interleave(rep, dim=2)
        q, k, v = (t.transpose(1, 2) for t in (q, k, v))    # (B, NH, T, hd)
        scores = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(self.hd))
        mask = torch.ones(T, T, dtype=torch.bool).tril()
        scores = scores.masked_fill(~mask, float("-inf"))
        y = F.softmax(scores, dim=-1) @ v                   # (B, NH, T, hd)
        y = y.transpose(1, 2).contiguous().view(B, T, C)
        return self.c_proj(y)


class MLP(nn.Module):
    def __init__(self, config):
        super().__init__()
        hidden = config.ffn_hidden
        self.c_fc = nn.Linear(config.n_embd, hidden, bias=False)    # "up" (Meta w3)
        self.c_fc2 = nn.Linear(config.n_embd, hidden, bias=False)   # "gate" (Meta w1)
        self.c_proj = nn.Linear(hidden, config.n_embd, bias=False)  # "down" (Meta w2)

    def forward(self, x):
        return self.c_proj(F.silu(self.c_fc2(x)) * self.c_fc(x))


class Block(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.ln_1 = RMSNorm(config.n_embd, config.norm_eps)
        self.attn = CausalSelfAttention(config)
        self.ln_2 = RMSNorm(config.n_embd, config.norm_eps)
        self.mlp = MLP(config)

    def forward(self, x, cos, sin):
        x = x + self.attn(self.ln_1(x), cos, sin)
        return x + self.mlp(self.ln_2(x))


class Llama3(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.config = config
        self.wte = nn.Embedding(config.vocab_size, config.n_embd)
        self.h = nn.ModuleList([Block(config) for _ in range(config.n_layer)])
        self.ln_f = RMSNorm(config.n_embd, config.norm_eps)
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)

    def forward(self, idx, targets=None):
        B, T = idx.size()
        cos, sin = rope_tables(self.config, T)
        x = self.wte(idx)
        for block in self.h:
            x = block(x, cos, sin)
        logits = self.lm_head(self.ln_f(x)).float()
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1))
        return logits, loss

    @torch.no_grad()
    def init_random(self, seed):
        """Seeded init in the documented order (module docstring); every slice is one normal_ call."""
        generator = torch.Generator().manual_seed(seed)
        L = self.config.n_layer
        residual_std = 0.02 / math.sqrt(2 * L)
        self.wte.weight.normal_(0.0, 0.02, generator=generator)
        self.lm_head.weight.normal_(0.0, 0.02, generator=generator)
        for block in self.h:
            block.attn.c_attn.weight.normal_(0.0, 0.02, generator=generator)
            block.attn.c_proj.weight.normal_(0.0, residual_std, generator=generator)
            block.mlp.c_fc.weight.normal_(0.0, 0.02, generator=generator)
            block.mlp.c_fc2.weight.normal_(0.0, 0.02, generator=generator)
            block.mlp.c_proj.weight.normal_(0.0, residual_std, generator=generator)
        for norm in [b.ln_1 for b in self.h] + [b.ln_2 for b in self.h] + [self.ln_f]:
            norm.weight.fill_(1.0)


# ----------------------------------------------------------------------------------------------------------------
# the 16-slot layout shared by the checkpoint and the debug state


def slot_tensors(model, grads=False):
    """The 16 tensors of the llama3-branch layout (fp32, layer-major); bias slots are zeros."""
    c = model.config
    L, C, H = c.n_layer, c.n_embd, c.ffn_hidden

    def get(p):
        t = p.grad if grads else p
        return (t if t is not None else torch.zeros_like(p)).detach().float()

    def stack(fn):
        return torch.stack([get(fn(b)) for b in model.h])

    zeros = lambda *shape: torch.zeros(*shape)
    fcw = torch.stack([torch.cat([get(b.mlp.c_fc.weight), get(b.mlp.c_fc2.weight)], dim=0) for b in model.h])
    return [
        get(model.wte.weight),                              # 0  wte (V, C)
        get(model.lm_head.weight),                          # 1  lm_head (V, C), in the wpe slot
        stack(lambda b: b.ln_1.weight),                     # 2  ln1w (L, C)
        zeros(L, C),                                        # 3  ln1b
        stack(lambda b: b.attn.c_attn.weight),              # 4  qkvw (L, (NH+2NKV)*hd, C)
        zeros(L, c.qkv_rows),                               # 5  qkvb
        stack(lambda b: b.attn.c_proj.weight),              # 6  attprojw (L, C, C)
        zeros(L, C),                                        # 7  attprojb
        stack(lambda b: b.ln_2.weight),                     # 8  ln2w (L, C)
        zeros(L, C),                                        # 9  ln2b
        fcw,                                                # 10 fcw (L, 2H, C): c_fc then c_fc2
        zeros(L, 2 * H),                                    # 11 fcb
        stack(lambda b: b.mlp.c_proj.weight),               # 12 fcprojw (L, C, H)
        zeros(L, C),                                        # 13 fcprojb
        get(model.ln_f.weight),                             # 14 lnfw (C)
        zeros(C),                                           # 15 lnfb
    ]


@torch.no_grad()
def load_slot_tensors(model, slots):
    c = model.config
    H = c.ffn_hidden
    model.wte.weight.copy_(slots[0].view_as(model.wte.weight))
    model.lm_head.weight.copy_(slots[1].view_as(model.lm_head.weight))
    for l, b in enumerate(model.h):
        b.ln_1.weight.copy_(slots[2][l])
        b.attn.c_attn.weight.copy_(slots[4][l])
        b.attn.c_proj.weight.copy_(slots[6][l])
        b.ln_2.weight.copy_(slots[8][l])
        b.mlp.c_fc.weight.copy_(slots[10][l][:H])
        b.mlp.c_fc2.weight.copy_(slots[10][l][H:])
        b.mlp.c_proj.weight.copy_(slots[12][l])
    model.ln_f.weight.copy_(slots[14])


def slot_shapes(c):
    L, C, V, H = c.n_layer, c.n_embd, c.vocab_size, c.ffn_hidden
    return [(V, C), (V, C), (L, C), (L, C), (L, c.qkv_rows, C), (L, c.qkv_rows), (L, C, C), (L, C), (L, C), (L, C),
            (L, 2 * H, C), (L, 2 * H), (L, C, H), (L, C), (C,), (C,)]


# ----------------------------------------------------------------------------------------------------------------
# file writers and readers


def to_bf16_bytes(t):
    """Round to nearest even (torch's cast) and write the upper 16 bits as little-endian uint16."""
    return t.detach().float().to(torch.bfloat16).view(torch.int16).numpy().astype("<i2").tobytes()


def to_f32_bytes(t):
    return t.detach().float().numpy().astype("<f4").tobytes()


def write_atomically(path, chunks):
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        for chunk in chunks:
            f.write(chunk)
    os.replace(tmp, path)


def model_header(c, version):
    ints = np.zeros(256, dtype="<i4")
    ints[:12] = [MODEL_MAGIC, version, c.max_seq_len, c.vocab_size, c.n_layer, c.n_head, c.n_kv_head, c.n_embd,
                 c.multiple_of, int(c.use_scaled_rope), c.major, c.minor]
    floats = np.zeros(256, dtype="<f4")
    floats[:3] = [c.ffn_dim_multiplier, c.norm_eps, c.rope_theta]
    return ints.tobytes() + floats.tobytes()


def write_model(model, path, version):
    assert version in (3, 5)
    encode = to_f32_bytes if version == 3 else to_bf16_bytes
    write_atomically(path, [model_header(model.config, version)] + [encode(t) for t in slot_tensors(model)])
    print(f"wrote {path} (version {version})")


def read_model(path):
    with open(path, "rb") as f:
        data = f.read()
    ints = np.frombuffer(data, dtype="<i4", count=256)
    floats = np.frombuffer(data, dtype="<f4", count=256, offset=1024)
    if ints[0] != MODEL_MAGIC or ints[1] not in (3, 5):
        sys.exit(f"{path}: not a llama3-branch checkpoint (magic {ints[0]}, version {ints[1]})")
    c = Config(max_seq_len=int(ints[2]), vocab_size=int(ints[3]), n_layer=int(ints[4]), n_head=int(ints[5]),
               n_kv_head=int(ints[6]), n_embd=int(ints[7]), multiple_of=int(ints[8]),
               use_scaled_rope=bool(ints[9]), major=int(ints[10]), minor=int(ints[11]),
               ffn_dim_multiplier=float(floats[0]), norm_eps=float(floats[1]), rope_theta=float(floats[2]))
    width = 4 if ints[1] == 3 else 2
    offset = 2048
    slots = []
    for shape in slot_shapes(c):
        n = int(np.prod(shape))
        raw = np.frombuffer(data, dtype="<f4" if width == 4 else "<u2", count=n, offset=offset)
        if width == 2:
            raw = (raw.astype(np.uint32) << 16).view(np.float32)
        slots.append(torch.from_numpy(raw.astype(np.float32).copy()).view(shape))
        offset += n * width
    if offset != len(data):
        sys.exit(f"{path}: size {len(data)} does not match the header (expected {offset})")
    model = Llama3(c)
    load_slot_tensors(model, slots)
    return model


# ----------------------------------------------------------------------------------------------------------------
# Hugging Face safetensors (parsed and written by hand: u64 header length, JSON header, raw little-endian data)

SAFETENSORS_DTYPES = {"F32": (torch.float32, 4), "BF16": (torch.bfloat16, 2), "F16": (torch.float16, 2)}


def read_safetensors(path):
    with open(path, "rb") as f:
        (header_len,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(header_len))
        data = bytearray(f.read())
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        if info["dtype"] not in SAFETENSORS_DTYPES:
            sys.exit(f"{path}: tensor {name}: unsupported dtype {info['dtype']}")
        dtype, width = SAFETENSORS_DTYPES[info["dtype"]]
        start, end = info["data_offsets"]
        count = (end - start) // width
        t = torch.frombuffer(data, dtype=dtype, count=count, offset=start) if count else torch.zeros(0, dtype=dtype)
        tensors[name] = t.view(info["shape"]).float()
    return tensors


def write_safetensors(path, tensors):
    header, offset, chunks = {}, 0, []
    for name, t in tensors.items():
        raw = to_f32_bytes(t.contiguous())
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [offset, offset + len(raw)]}
        offset += len(raw)
        chunks.append(raw)
    header_bytes = json.dumps(header, separators=(",", ":")).encode("utf-8")
    header_bytes += b" " * ((8 - len(header_bytes) % 8) % 8)   # data starts 8-aligned
    write_atomically(path, [struct.pack("<Q", len(header_bytes)), header_bytes] + chunks)
    print(f"wrote {path}")


def hf_permute(w, heads):
    """Meta/our interleaved row order -> HF rotate-half order, per head: rows (0,1,2,3..) -> (0,2,4..,1,3,5..)."""
    rows, cols = w.shape
    return w.view(heads, rows // heads // 2, 2, cols).transpose(1, 2).reshape(rows, cols)


def hf_unpermute(w, heads):
    """Inverse of hf_permute: HF rotate-half row order -> interleaved pairs."""
    rows, cols = w.shape
    return w.view(heads, 2, rows // heads // 2, cols).transpose(1, 2).reshape(rows, cols)


@torch.no_grad()
def import_hf(model, tensors, path):
    c = model.config

    def take(name, shape):
        if name not in tensors:
            sys.exit(f"{path}: missing tensor {name}")
        t = tensors[name]
        if tuple(t.shape) != tuple(shape):
            sys.exit(f"{path}: tensor {name}: expected shape {tuple(shape)}, found {tuple(t.shape)}")
        return t

    C, V, H, hd = c.n_embd, c.vocab_size, c.ffn_hidden, c.head_size
    model.wte.weight.copy_(take("model.embed_tokens.weight", (V, C)))
    head = tensors.get("lm_head.weight", tensors.get("model.embed_tokens.weight"))   # tied 3.2 models have none
    model.lm_head.weight.copy_(head.view(V, C))
    for l, b in enumerate(model.h):
        p = f"model.layers.{l}."
        q = hf_unpermute(take(p + "self_attn.q_proj.weight", (c.n_head * hd, C)), c.n_head)
        k = hf_unpermute(take(p + "self_attn.k_proj.weight", (c.n_kv_head * hd, C)), c.n_kv_head)
        v = take(p + "self_attn.v_proj.weight", (c.n_kv_head * hd, C))
        b.attn.c_attn.weight.copy_(torch.cat([q, k, v], dim=0))
        b.attn.c_proj.weight.copy_(take(p + "self_attn.o_proj.weight", (C, C)))
        b.mlp.c_fc2.weight.copy_(take(p + "mlp.gate_proj.weight", (H, C)))
        b.mlp.c_fc.weight.copy_(take(p + "mlp.up_proj.weight", (H, C)))
        b.mlp.c_proj.weight.copy_(take(p + "mlp.down_proj.weight", (C, H)))
        b.ln_1.weight.copy_(take(p + "input_layernorm.weight", (C,)))
        b.ln_2.weight.copy_(take(p + "post_attention_layernorm.weight", (C,)))
    model.ln_f.weight.copy_(take("model.norm.weight", (C,)))


def export_hf(model):
    c = model.config
    hd = c.head_size
    out = {"model.embed_tokens.weight": model.wte.weight.detach()}
    for l, b in enumerate(model.h):
        p = f"model.layers.{l}."
        q, k, v = b.attn.c_attn.weight.detach().split([c.n_head * hd, c.n_kv_head * hd, c.n_kv_head * hd], dim=0)
        out[p + "self_attn.q_proj.weight"] = hf_permute(q, c.n_head)
        out[p + "self_attn.k_proj.weight"] = hf_permute(k, c.n_kv_head)
        out[p + "self_attn.v_proj.weight"] = v
        out[p + "self_attn.o_proj.weight"] = b.attn.c_proj.weight.detach()
        out[p + "mlp.gate_proj.weight"] = b.mlp.c_fc2.weight.detach()
        out[p + "mlp.up_proj.weight"] = b.mlp.c_fc.weight.detach()
        out[p + "mlp.down_proj.weight"] = b.mlp.c_proj.weight.detach()
        out[p + "input_layernorm.weight"] = b.ln_1.weight.detach()
        out[p + "post_attention_layernorm.weight"] = b.ln_2.weight.detach()
    out["model.norm.weight"] = model.ln_f.weight.detach()
    out["lm_head.weight"] = model.lm_head.weight.detach()
    return out


def hf_rotate_half_check(model, idx):
    """Self-test: HF's rotate-half RoPE on permuted q/k rows gives the same q.k scores as our interleaved RoPE."""
    c = model.config
    hd, T = c.head_size, idx.size(1)
    b = model.h[0]
    x = b.ln_1(model.wte(idx))
    q_w, k_w, _ = b.attn.c_attn.weight.split([c.n_head * hd, c.n_kv_head * hd, c.n_kv_head * hd], dim=0)
    cos, sin = rope_tables(c, T)
    ours_q = apply_rope((x @ q_w.t()).view(*idx.shape, c.n_head, hd), cos, sin)
    hf_q = (x @ hf_permute(q_w, c.n_head).t()).view(*idx.shape, c.n_head, hd)
    cos_hf = torch.cat([cos, cos], dim=-1)[None, :, None, :]
    sin_hf = torch.cat([sin, sin], dim=-1)[None, :, None, :]
    rotate_half = torch.cat([-hf_q[..., hd // 2:], hf_q[..., :hd // 2]], dim=-1)
    hf_q = hf_q * cos_hf + rotate_half * sin_hf
    # the two differ only by the same per-head permutation of the hd components, so dot products agree
    ours_sorted = torch.cat([ours_q[..., 0::2], ours_q[..., 1::2]], dim=-1)
    err = (ours_sorted - hf_q).abs().max().item()
    print(f"hf rotate-half vs interleaved RoPE: max abs diff {err:.3e}")
    assert err < 1e-5


# ----------------------------------------------------------------------------------------------------------------
# main


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", choices=["3.1-8B", "3.2-1B", "3.2-3B", "custom"], default="custom")
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--kv-heads", type=int, default=2)
    parser.add_argument("--channels", type=int, default=64)
    parser.add_argument("--vocab", type=int, default=512)
    parser.add_argument("--max-seq-len", type=int, default=128)
    parser.add_argument("--ffn-multiplier", type=float, default=1.3)
    parser.add_argument("--multiple-of", type=int, default=32)
    parser.add_argument("--norm-eps", type=float, default=1e-5)
    parser.add_argument("--rope-theta", type=float, default=500000.0)
    parser.add_argument("--no-scaled-rope", action="store_true")
    parser.add_argument("--seed", type=int, default=42, help="seed of the random init")
    parser.add_argument("--data-seed", type=int, default=1337, help="seed of the random token batch")
    parser.add_argument("--load", help="start from this llama3-branch checkpoint instead of a random init")
    parser.add_argument("--safetensors", help="start from a Hugging Face Llama 3 .safetensors file")
    parser.add_argument("--write-safetensors", help="write the model as a Hugging Face .safetensors file (F32)")
    parser.add_argument("--write-model", help="write the fp32 checkpoint (version 3)")
    parser.add_argument("--write-model-bf16", help="write the bf16 checkpoint (version 5)")
    parser.add_argument("--write-debug-state", help="write the debug state (version 3)")
    parser.add_argument("--write-debug-state-as-train-llama3",
                        help="write the debug state the way llm.c's train_llama3.py does (for the tests)")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--seq-len", type=int, default=64)
    parser.add_argument("--steps", type=int, default=10, help="training steps recorded in the debug state")
    parser.add_argument("--self-test", action="store_true", help="check the HF RoPE permutation equivalence")
    args = parser.parse_args()
    torch.manual_seed(0)   # nothing below draws from the global generator; this only makes that explicit

    if args.load:
        model = read_model(args.load)
    else:
        model = Llama3(config_from_args(args))
        if args.safetensors:
            import_hf(model, read_safetensors(args.safetensors), args.safetensors)
        else:
            model.init_random(args.seed)
    c = model.config
    print(f"Llama 3 L={c.n_layer} NH={c.n_head} NKV={c.n_kv_head} C={c.n_embd} V={c.vocab_size} "
          f"H={c.ffn_hidden} maxT={c.max_seq_len} params={sum(p.numel() for p in model.parameters())}")

    if args.write_model:
        write_model(model, args.write_model, 3)
    if args.write_model_bf16:
        write_model(model, args.write_model_bf16, 5)
    if args.write_safetensors:
        write_safetensors(args.write_safetensors, export_hf(model))

    B, T = args.batch_size, args.seq_len
    assert T <= c.max_seq_len, "seq-len exceeds max-seq-len"
    tokens = torch.randint(c.vocab_size, (B * T + 1,), generator=torch.Generator().manual_seed(args.data_seed))
    x, y = tokens[:-1].view(B, T), tokens[1:].view(B, T)
    if args.self_test:
        hf_rotate_half_check(model, x)

    if args.write_debug_state_as_train_llama3:
        write_debug_state_as_train_llama3(copy.deepcopy(model), x, y, args.steps,
                                          args.write_debug_state_as_train_llama3)
    if args.write_debug_state:
        logits, loss = model(x, y)
        model.zero_grad()
        loss.backward()
        first_logits, first_loss = logits.detach().clone(), loss.detach().clone()
        grads = [g.clone() for g in slot_tensors(model, grads=True)]
        losses, norms = train_llmc_rule(model, x, y, args.steps)
        write_debug_state(args.write_debug_state, x, y, first_logits, first_loss, grads, losses, norms)


def train_llmc_rule(model, x, y, steps):
    """
    The S recorded training steps, by the rule of llm.c's llama3 branch (train_llama3.py's defaults, which
    test_llama3.cu replays): the same batch every step; torch's AdamW with lr 1e-5, betas (0.9, 0.95), eps 1e-8 and
    weight decay 0 (in two groups, the 2-D tensors and the rest, as train_llama3.py makes them; with decay 0 they
    update alike); gradients clipped to global norm 1.0 by clip_grad_norm_. Step k records the forward loss before
    update k and the global gradient norm before clipping. Returns (losses, norms) as Python floats.
    """
    parameters = list(model.parameters())
    groups = [{"params": [p for p in parameters if p.dim() >= 2], "weight_decay": 0.0},
              {"params": [p for p in parameters if p.dim() < 2], "weight_decay": 0.0}]
    optimizer = torch.optim.AdamW(groups, lr=1e-5, betas=(0.9, 0.95), eps=1e-8)
    losses, norms = [], []
    for step in range(steps):
        optimizer.zero_grad(set_to_none=True)
        _, loss = model(x, y)
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(parameters, 1.0)   # returns the norm before clipping
        optimizer.step()
        losses.append(loss.item())
        norms.append(norm.item())
        print(f"step {step}: loss {loss.item():.6f} grad norm {norm.item():.6f}")
    return losses, norms


def write_debug_state_as_train_llama3(model, x, y, steps, path):
    """
    The same debug state, made the way llm.c's train_llama3.py makes it (restated, not its code), so the tests can
    check that our writer and our Java check agree with llm.c's: one forward/backward, the state written with
    header[4] = 0 and no history; then its training loop (an optimizer built like its configure_optimizers, the lr of
    its cosine schedule, which with warmup 0 and decay fraction 1.0 is 1e-5 at every step, set on each param group
    before the step; the loss divided by its 1 accumulation step; clip_grad_norm_ at 1.0); then the file amended in
    place: header[4] = S, the S losses and S norms appended. Not atomic, as llm.c's is not; only for tests.
    """
    logits, loss = model(x, y)
    loss.backward()
    header = np.zeros(256, dtype="<i4")
    header[:4] = [DEBUG_MAGIC, 3, x.size(0), x.size(1)]
    with open(path, "wb") as f:
        f.write(header.tobytes())
        f.write(x.numpy().astype("<i4").tobytes())
        f.write(y.numpy().astype("<i4").tobytes())
        f.write(to_f32_bytes(logits))
        f.write(to_f32_bytes(loss.view(1)))
        for g in slot_tensors(model, grads=True):
            f.write(to_f32_bytes(g))

    learning_rate, final_fraction, accumulation = 1e-5, 1.0, 1
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW([{"params": [p for _, p in named if p.dim() >= 2], "weight_decay": 0.0},
                                   {"params": [p for _, p in named if p.dim() < 2], "weight_decay": 0.0}],
                                  lr=learning_rate, betas=(0.9, 0.95))
    losses, norms = [], []
    for step in range(steps):
        optimizer.zero_grad(set_to_none=True)
        mean_loss = 0.0
        for _ in range(accumulation):
            _, loss = model(x, y)
            loss = loss / accumulation
            mean_loss += loss.detach()
            loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        lowest = learning_rate * final_fraction
        lr = lowest + 0.5 * (1.0 + math.cos(math.pi * step / steps)) * (learning_rate - lowest)
        for group in optimizer.param_groups:
            group["lr"] = lr
        optimizer.step()
        losses.append(mean_loss.item())
        norms.append(norm.item())

    with open(path, "r+b") as f:
        header = np.frombuffer(f.read(1024), dtype="<i4").copy()
        header[4] = len(losses)
        f.seek(0)
        f.write(header.tobytes())
        f.seek(0, os.SEEK_END)
        f.write(np.asarray(losses).astype(np.float32).tobytes())
        f.write(np.asarray(norms).astype(np.float32).tobytes())
    print(f"wrote {path} (as train_llama3.py writes it, S={len(losses)})")


def write_debug_state(path, x, y, logits, loss, grads, losses, norms):
    B, T = x.shape
    header = np.zeros(256, dtype="<i4")
    header[:5] = [DEBUG_MAGIC, 3, B, T, len(losses)]
    chunks = [header.tobytes(), x.numpy().astype("<i4").tobytes(), y.numpy().astype("<i4").tobytes(),
              to_f32_bytes(logits), to_f32_bytes(loss.view(1))]
    chunks += [to_f32_bytes(g) for g in grads]
    chunks += [np.array(losses, dtype="<f4").tobytes(), np.array(norms, dtype="<f4").tobytes()]
    write_atomically(path, chunks)
    print(f"wrote {path} (B={B}, T={T}, S={len(losses)})")


if __name__ == "__main__":
    main()
