#!/usr/bin/python3
"""
llmc4j's own PyTorch GPT-2 reference: the numbers the Java code is checked against.

One file, all fp32, no tricks: a nanoGPT-sized GPT-2 (tanh GELU, LayerNorm eps 1e-5, hand-written causal
attention, lm_head tied to wte) plus the writers for llm.c's binary formats:

  DIR/gpt2_TAG.bin              checkpoint v3, fp32        (spec 1.1)
  DIR/gpt2_TAG_bf16.bin         checkpoint v5, bf16        (spec 1.1)
  DIR/gpt2_TAG_debug_state.bin  debug state v2             (spec 1.2) + S training losses appended, header[4] = S
  FILE.safetensors              Hugging Face style GPT-2   (--write-safetensors)

The model is either built from a descriptor / explicit shape with llm.c's seeded random init (spec 5.4), or read
from a Hugging Face GPT-2 model.safetensors (parsed by hand, the safetensors package is not needed).

Runs on Debian's torch 1.13 and on current torch (no API newer than 1.13 is used). numpy is only used to turn
tensors into bytes and back.

Examples (see README.md):
  OMP_NUM_THREADS=2 /usr/bin/python3 gpt2_reference.py --model d12 --out-dir /tmp/fx --tag d12
  OMP_NUM_THREADS=2 /usr/bin/python3 gpt2_reference.py --layers 2 --heads 4 --channels 128 --out-dir /tmp/fx \
      --tag small --write-safetensors /tmp/fx/gpt2_small.safetensors
"""
import argparse
import json
import math
import os
import re
import struct
import sys
import tempfile
import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

assert sys.byteorder == "little", "the llm.c formats are little-endian; this script assumes a little-endian host"

CHECKPOINT_MAGIC = 20240326     # spec 1.1
DEBUG_STATE_MAGIC = 20240327    # spec 1.2
SHARD_MAGIC = 20240520          # spec 1.4
HEADER_INTS = 256               # every llm.c file starts with 256 int32 = 1024 bytes


class ReferenceError(Exception):
    """A user error (bad file, bad argument): printed on one line, no stack trace."""


# ----------------------------------------------------------------------------------------------------------------
# Model

@dataclass
class GPTConfig:
    n_layer: int
    n_head: int
    n_embd: int
    vocab_size: int = 50257
    block_size: int = 1024       # maxT

    @property
    def padded_vocab_size(self):
        # llm.c pads the vocabulary to a multiple of 128 (50257 -> 50304); the extra wte rows are zeros
        return (self.vocab_size + 127) // 128 * 128


# llm.c's model descriptors (spec 1.1): dN -> (layers, heads, channels)
DESCRIPTORS = {
    "d6": (6, 6, 384), "d12": (12, 12, 768), "d24": (24, 16, 1024), "d36": (36, 20, 1280),
    "d48": (48, 25, 1600), "d60": (60, 30, 1920), "d72": (72, 30, 2880), "d84": (84, 36, 3456),
}


def gelu_tanh(x):
    # the tanh approximation GPT-2 was trained with, written out (llm.c's gelu_forward)
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x * x * x)))


class CausalSelfAttention(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.n_head = cfg.n_head
        self.c_attn = nn.Linear(cfg.n_embd, 3 * cfg.n_embd)   # weight (3C, C): rows Q block, K block, V block
        self.c_proj = nn.Linear(cfg.n_embd, cfg.n_embd)

    def forward(self, x):                                            # x (B, T, C)
        B, T, C = x.size()
        hs = C // self.n_head
        q, k, v = self.c_attn(x).split(C, dim=2)                     # each (B, T, C)
        q = q.view(B, T, self.n_head, hs).transpose(1, 2)            # (B, NH, T, hs)
        k = k.view(B, T, self.n_head, hs).transpose(1, 2)
        v = v.view(B, T, self.n_head, hs).transpose(1, 2)
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(hs))     # (B, NH, T, T)
        causal = torch.ones(T, T, dtype=torch.bool, device=x.device).tril()
        att = att.masked_fill(~causal, float("-inf"))                # token t sees tokens 0..t only
        att = F.softmax(att, dim=-1)
        y = att @ v                                                  # (B, NH, T, hs)
        y = y.transpose(1, 2).contiguous().view(B, T, C)             # heads side by side again
        return self.c_proj(y)


class MLP(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.c_fc = nn.Linear(cfg.n_embd, 4 * cfg.n_embd)
        self.c_proj = nn.Linear(4 * cfg.n_embd, cfg.n_embd)

    def forward(self, x):
        return self.c_proj(gelu_tanh(self.c_fc(x)))


class Block(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.ln_1 = nn.LayerNorm(cfg.n_embd, eps=1e-5)
        self.attn = CausalSelfAttention(cfg)
        self.ln_2 = nn.LayerNorm(cfg.n_embd, eps=1e-5)
        self.mlp = MLP(cfg)

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))     # residual2 in llm.c
        x = x + self.mlp(self.ln_2(x))      # residual3
        return x


class GPT(nn.Module):
    """Parameter names are Hugging Face's GPT-2 names (wte.weight, h.0.attn.c_attn.weight, ...), but every Linear
    weight is PyTorch-style (out, in), as in llm.c's files. wte is (V, C) unpadded; padding happens when writing."""

    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        self.wte = nn.Embedding(cfg.vocab_size, cfg.n_embd)
        self.wpe = nn.Embedding(cfg.block_size, cfg.n_embd)
        self.h = nn.ModuleList([Block(cfg) for _ in range(cfg.n_layer)])
        self.ln_f = nn.LayerNorm(cfg.n_embd, eps=1e-5)

    def forward(self, idx, targets=None):                            # idx (B, T) int64
        B, T = idx.size()
        pos = torch.arange(T, dtype=torch.long, device=idx.device)
        x = self.wte(idx) + self.wpe(pos)                            # (B, T, C)
        for block in self.h:
            x = block(x)
        x = self.ln_f(x)
        logits = x @ self.wte.weight.t()                             # (B, T, V): lm_head tied to wte, no bias
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1))
        return logits, loss

    @torch.no_grad()
    def init_like_llmc(self, seed=42):
        """llm.c's random init (spec 5.4), draw for draw: one generator; everything 0, LayerNorm weights 1; then
        wte (V*C values), wpe, and per layer qkvw, attprojw, fcw, fcprojw, each ONE normal_ call on exactly that
        slice. Residual projections get std 0.02/sqrt(2L). Our Java init repeats this bit for bit."""
        g = torch.Generator().manual_seed(seed)
        for p in self.parameters():
            p.zero_()
        for ln in [self.ln_f] + [b.ln_1 for b in self.h] + [b.ln_2 for b in self.h]:
            ln.weight.fill_(1.0)
        residual_std = 0.02 / math.sqrt(2 * self.cfg.n_layer)
        draws = [(self.wte.weight, 0.02), (self.wpe.weight, 0.02)]
        for b in self.h:
            draws += [(b.attn.c_attn.weight, 0.02), (b.attn.c_proj.weight, residual_std),
                      (b.mlp.c_fc.weight, 0.02), (b.mlp.c_proj.weight, residual_std)]
        for tensor, std in draws:
            assert tensor.is_contiguous() and tensor.dtype == torch.float32
            tensor.normal_(0.0, std, generator=g)


class AdamW:
    """llm.c's gpt2_update, the rule of its CPU test: decay on every parameter, no clipping, t = step + 1.
    p -= lr * (m_hat / (sqrt(v_hat) + eps) + weight_decay * p). Written out rather than torch.optim.AdamW so the
    formula is exactly the one the Java optimizer implements (torch folds the decay in a slightly different place)."""

    def __init__(self, params, lr=1e-4, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01):
        self.params = list(params)
        self.lr, self.beta1, self.beta2, self.eps, self.weight_decay = lr, betas[0], betas[1], eps, weight_decay
        self.m = [torch.zeros_like(p) for p in self.params]
        self.v = [torch.zeros_like(p) for p in self.params]
        self.t = 0

    @torch.no_grad()
    def step(self):
        self.t += 1
        for p, m, v in zip(self.params, self.m, self.v):
            g = p.grad
            m.mul_(self.beta1).add_(g, alpha=1.0 - self.beta1)
            v.mul_(self.beta2).addcmul_(g, g, value=1.0 - self.beta2)
            m_hat = m / (1.0 - self.beta1 ** self.t)
            v_hat = v / (1.0 - self.beta2 ** self.t)
            p.sub_(self.lr * (m_hat / (v_hat.sqrt() + self.eps) + self.weight_decay * p))


# ----------------------------------------------------------------------------------------------------------------
# llm.c's 16-tensor layout (spec 1.1)

def llmc_shapes(cfg):
    """(name, shape) of the 16 tensors of a checkpoint / debug-state gradient block, in file order."""
    L, C, Vp, maxT = cfg.n_layer, cfg.n_embd, cfg.padded_vocab_size, cfg.block_size
    return [("wte", (Vp, C)), ("wpe", (maxT, C)), ("ln1w", (L, C)), ("ln1b", (L, C)),
            ("qkvw", (L, 3 * C, C)), ("qkvb", (L, 3 * C)), ("attprojw", (L, C, C)), ("attprojb", (L, C)),
            ("ln2w", (L, C)), ("ln2b", (L, C)), ("fcw", (L, 4 * C, C)), ("fcb", (L, 4 * C)),
            ("fcprojw", (L, C, 4 * C)), ("fcprojb", (L, C)), ("lnfw", (C,)), ("lnfb", (C,))]


def llmc_num_parameters(cfg):
    """Parameter count as llm.c counts it: with the padded vocabulary (124,475,904 for d12)."""
    return sum(math.prod(shape) for _, shape in llmc_shapes(cfg))


def checkpoint_file_size(cfg, bytes_per_value):
    return 4 * HEADER_INTS + bytes_per_value * llmc_num_parameters(cfg)


def debug_state_file_size(cfg, B, T, steps):
    # header, x and y (int32), logits (fp32, unpadded V), loss, gradients (fp32, padded wte), appended losses
    return 4 * HEADER_INTS + 2 * 4 * B * T + 4 * B * T * cfg.vocab_size + 4 + 4 * llmc_num_parameters(cfg) + 4 * steps


def llmc_tensors(model, pick=lambda p: p):
    """The 16 tensors in llm.c's order, each stacking all layers (layer-major); wte zero-padded to Vp rows.
    pick(parameter) chooses what to lay out: the parameter itself, or its .grad. Every tensor returned is a copy."""
    cfg = model.cfg

    def stacked(get):
        return torch.stack([pick(get(b)).detach() for b in model.h])

    wte = torch.zeros(cfg.padded_vocab_size, cfg.n_embd)
    wte[:cfg.vocab_size] = pick(model.wte.weight).detach()
    tensors = [
        wte, pick(model.wpe.weight).detach().clone(),
        stacked(lambda b: b.ln_1.weight), stacked(lambda b: b.ln_1.bias),
        stacked(lambda b: b.attn.c_attn.weight), stacked(lambda b: b.attn.c_attn.bias),
        stacked(lambda b: b.attn.c_proj.weight), stacked(lambda b: b.attn.c_proj.bias),
        stacked(lambda b: b.ln_2.weight), stacked(lambda b: b.ln_2.bias),
        stacked(lambda b: b.mlp.c_fc.weight), stacked(lambda b: b.mlp.c_fc.bias),
        stacked(lambda b: b.mlp.c_proj.weight), stacked(lambda b: b.mlp.c_proj.bias),
        pick(model.ln_f.weight).detach().clone(), pick(model.ln_f.bias).detach().clone(),
    ]
    for (name, shape), t in zip(llmc_shapes(cfg), tensors):
        assert tuple(t.shape) == shape, (name, tuple(t.shape), shape)
    return tensors


# ----------------------------------------------------------------------------------------------------------------
# Writers (every file goes through atomic_write: temp file in the same folder, then os.replace)

def atomic_write(path, write):
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix="." + os.path.basename(path) + ".", suffix=".tmp")
    umask = os.umask(0)
    os.umask(umask)
    try:
        os.chmod(tmp, 0o666 & ~umask)      # mkstemp makes 0600; give the file the usual permissions
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def header_bytes(*values):
    ints = list(values) + [0] * (HEADER_INTS - len(values))
    return struct.pack("<%di" % HEADER_INTS, *ints)


def write_fp32(f, t):
    f.write(memoryview(t.detach().contiguous().to(torch.float32).numpy().astype("<f4", copy=False)))


def write_bf16(f, t):
    # round-to-nearest-even, exactly what torch's .to(bfloat16) does; the 16 raw bits go to the file
    f.write(memoryview(t.detach().contiguous().to(torch.bfloat16).view(torch.int16).numpy()))


def write_checkpoint(model, path, bf16):
    cfg = model.cfg
    version = 5 if bf16 else 3
    header = header_bytes(CHECKPOINT_MAGIC, version, cfg.block_size, cfg.vocab_size, cfg.n_layer, cfg.n_head,
                          cfg.n_embd, cfg.padded_vocab_size)

    def write(f):
        f.write(header)
        for t in llmc_tensors(model):
            (write_bf16 if bf16 else write_fp32)(f, t)

    atomic_write(path, write)


def write_debug_state(path, x, y, logits, loss, grads, losses):
    """Spec 1.2 byte for byte, plus our extension: the S training losses appended as S float32 after the gradients,
    and header[4] = S. llm.c's test_gpt2 reads neither, so the file still works with llm.c's own test."""
    B, T = x.shape
    assert logits.shape[:2] == (B, T) and len(grads) == 16
    header = header_bytes(DEBUG_STATE_MAGIC, 2, B, T, len(losses))

    def write(f):
        f.write(header)
        f.write(memoryview(x.to(torch.int32).numpy().astype("<i4", copy=False)))
        f.write(memoryview(y.to(torch.int32).numpy().astype("<i4", copy=False)))
        write_fp32(f, logits)                                  # (B, T, V), row stride V (not Vp)
        f.write(struct.pack("<f", loss))
        for g in grads:                                        # fp32, wte grad padded to Vp with zero rows
            write_fp32(f, g)
        f.write(struct.pack("<%df" % len(losses), *losses))

    atomic_write(path, write)


CONV1D_WEIGHTS = ("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight")


def write_safetensors(model, path):
    """Hugging Face GPT-2 layout: HF names without the 'transformer.' prefix, Conv1D weights as (in, out),
    wte (V, C) unpadded, all F32. Format: u64 header length, JSON header (padded with spaces to a multiple of 8),
    then the raw little-endian data in header order."""
    tensors = []
    for name, p in model.state_dict().items():
        t = p.detach()
        if name.endswith(CONV1D_WEIGHTS):
            t = t.t()                                          # back to Conv1D (in, out)
        tensors.append((name, t.contiguous().to(torch.float32)))
    header, offset = {"__metadata__": {"format": "pt"}}, 0
    for name, t in tensors:
        nbytes = 4 * t.numel()
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [offset, offset + nbytes]}
        offset += nbytes
    header_json = json.dumps(header, separators=(",", ":")).encode("utf-8")
    header_json += b" " * (-len(header_json) % 8)

    def write(f):
        f.write(struct.pack("<Q", len(header_json)))
        f.write(header_json)
        for _, t in tensors:
            write_fp32(f, t)

    atomic_write(path, write)


# ----------------------------------------------------------------------------------------------------------------
# Readers

SAFETENSORS_DTYPES = {"F32": 4, "F16": 2, "BF16": 2}


def read_safetensors(path):
    """name -> float32 tensor. Accepts F32, F16 and BF16 data."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise ReferenceError("%s: cannot read safetensors file (%s)" % (path, e.strerror))
    if len(data) < 8:
        raise ReferenceError("%s: header length: expected 8 bytes, found a %d-byte file" % (path, len(data)))
    (n,) = struct.unpack("<Q", data[:8])
    if 8 + n > len(data):
        raise ReferenceError("%s: header length: expected at most %d, found %d" % (path, len(data) - 8, n))
    try:
        header = json.loads(data[8:8 + n].decode("utf-8"))
    except ValueError as e:
        raise ReferenceError("%s: header: expected JSON, found invalid text (%s)" % (path, e))
    base, out = 8 + n, {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        dtype, shape, (start, end) = info["dtype"], info["shape"], info["data_offsets"]
        if dtype not in SAFETENSORS_DTYPES:
            raise ReferenceError("%s: dtype of %s: expected F32, F16 or BF16, found %s" % (path, name, dtype))
        count = math.prod(shape)
        if end - start != count * SAFETENSORS_DTYPES[dtype] or base + end > len(data):
            raise ReferenceError("%s: data_offsets of %s: expected %d bytes inside the file, found [%d, %d)"
                                 % (path, name, count * SAFETENSORS_DTYPES[dtype], start, end))
        raw = data[base + start:base + end]
        if dtype == "F32":
            arr = np.frombuffer(raw, dtype="<f4")
        elif dtype == "F16":
            arr = np.frombuffer(raw, dtype="<f2").astype(np.float32)
        else:  # BF16: the upper half of a float32
            arr = (np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16).view(np.float32)
        out[name] = torch.from_numpy(arr.astype(np.float32)).reshape(shape)
    return out


def model_from_safetensors(path, n_head=12):
    raw = read_safetensors(path)
    tensors = {}
    for name, t in raw.items():
        name = name[len("transformer."):] if name.startswith("transformer.") else name
        if re.fullmatch(r"h\.\d+\.attn\.(bias|masked_bias)", name) or name == "lm_head.weight":
            continue                                   # causal-mask buffers; lm_head is tied to wte
        if name.endswith(CONV1D_WEIGHTS):
            t = t.t().contiguous()                     # Conv1D (in, out) -> Linear (out, in)
        tensors[name] = t
    for needed in ("wte.weight", "wpe.weight", "ln_f.weight"):
        if needed not in tensors:
            raise ReferenceError("%s: tensor %s: expected present, found missing" % (path, needed))
    V, C = tensors["wte.weight"].shape
    maxT = tensors["wpe.weight"].shape[0]
    layers = {int(m.group(1)) for m in (re.match(r"h\.(\d+)\.", k) for k in tensors) if m}
    L = max(layers) + 1 if layers else 0
    if C % n_head != 0:
        raise ReferenceError("%s: heads: expected a divisor of C=%d, found %d (use --heads)" % (path, C, n_head))
    model = GPT(GPTConfig(n_layer=L, n_head=n_head, n_embd=C, vocab_size=V, block_size=maxT))
    expected = model.state_dict()
    missing = sorted(set(expected) - set(tensors))
    extra = sorted(set(tensors) - set(expected))
    if missing or extra:
        raise ReferenceError("%s: tensor names: expected GPT-2 names, found missing %s, unexpected %s"
                             % (path, missing[:5], extra[:5]))
    for name, t in tensors.items():
        if tuple(t.shape) != tuple(expected[name].shape):
            raise ReferenceError("%s: shape of %s: expected %s, found %s"
                                 % (path, name, tuple(expected[name].shape), tuple(t.shape)))
    model.load_state_dict(tensors)
    return model


def read_shard_tokens(path, count):
    """First `count` tokens of a GPT-2 token shard (spec 1.4: magic 20240520, version 1, ntok, uint16 tokens)."""
    try:
        with open(path, "rb") as f:
            head = f.read(4 * HEADER_INTS)
            size = os.fstat(f.fileno()).st_size
            if len(head) < 4 * HEADER_INTS:
                raise ReferenceError("%s: header: expected 1024 bytes, found %d" % (path, len(head)))
            magic, version, ntok = struct.unpack("<3i", head[:12])
            if magic != SHARD_MAGIC:
                raise ReferenceError("%s: magic: expected %d, found %d" % (path, SHARD_MAGIC, magic))
            if version != 1:
                raise ReferenceError("%s: version: expected 1, found %d" % (path, version))
            if size != 4 * HEADER_INTS + 2 * ntok:
                raise ReferenceError("%s: file size: expected %d (header ntok=%d), found %d"
                                     % (path, 4 * HEADER_INTS + 2 * ntok, ntok, size))
            if ntok < count:
                raise ReferenceError("%s: ntok: expected at least %d (B*T+1), found %d" % (path, count, ntok))
            tokens = np.frombuffer(f.read(2 * count), dtype="<u2").astype(np.int64)
    except OSError as e:
        raise ReferenceError("%s: cannot read token shard (%s)" % (path, e.strerror))
    return torch.from_numpy(tokens)


# ----------------------------------------------------------------------------------------------------------------
# Command line

def build_model(args):
    if args.safetensors:
        return model_from_safetensors(args.safetensors, args.heads or 12)
    if args.model:
        if args.model not in DESCRIPTORS:
            raise ReferenceError("--model: expected one of %s, found '%s'" % (", ".join(DESCRIPTORS), args.model))
        L, H, C = DESCRIPTORS[args.model]
    elif args.layers and args.heads and args.channels:
        L, H, C = args.layers, args.heads, args.channels
    else:
        raise ReferenceError("model: expected --model dN, --layers/--heads/--channels or --safetensors FILE")
    if C % H != 0:
        raise ReferenceError("--heads: expected a divisor of channels=%d, found %d" % (C, H))
    model = GPT(GPTConfig(n_layer=L, n_head=H, n_embd=C))
    model.init_like_llmc(args.seed)
    return model


def batch_tokens(args, V):
    count = args.batch * args.seq + 1
    if args.tokens:
        tokens = read_shard_tokens(args.tokens, count)
    else:
        g = torch.Generator().manual_seed(args.token_seed)
        tokens = torch.randint(0, V, (count,), generator=g, dtype=torch.int64)
    if int(tokens.max()) >= V:
        raise ReferenceError("%s: token id: expected < %d, found %d" % (args.tokens, V, int(tokens.max())))
    x = tokens[:-1].view(args.batch, args.seq)
    y = tokens[1:].view(args.batch, args.seq)
    return x, y


def parse_args(argv=None):
    p = argparse.ArgumentParser(description="llmc4j's PyTorch GPT-2 reference: writes llm.c-format fixtures.")
    m = p.add_argument_group("model (one of)")
    m.add_argument("--model", help="llm.c descriptor: " + ", ".join(DESCRIPTORS))
    m.add_argument("--layers", type=int, help="L (with --heads and --channels)")
    m.add_argument("--heads", type=int, help="NH (also used with --safetensors, default 12)")
    m.add_argument("--channels", type=int, help="C")
    m.add_argument("--safetensors", help="a Hugging Face GPT-2 model.safetensors to load instead of random init")
    m.add_argument("--seed", type=int, default=42, help="init seed (llm.c: 42)")
    p.add_argument("--out-dir", help="write gpt2_TAG.bin, gpt2_TAG_bf16.bin, gpt2_TAG_debug_state.bin here")
    p.add_argument("--tag", help="file name tag (default: the --model descriptor)")
    p.add_argument("--write-safetensors", metavar="FILE", help="also write the model as HF-style safetensors")
    p.add_argument("--batch", type=int, default=4, help="B (default 4)")
    p.add_argument("--seq", type=int, default=64, help="T (default 64)")
    p.add_argument("--tokens", help="GPT-2 token shard (.bin); the batch is its first B*T+1 tokens")
    p.add_argument("--token-seed", type=int, default=1234, help="seed of the random batch when --tokens is absent")
    p.add_argument("--steps", type=int, default=10, help="training steps whose losses are recorded (default 10)")
    args = p.parse_args(argv)
    if args.out_dir and not args.tag:
        args.tag = args.model
        if not args.tag:
            p.error("--tag is needed with --out-dir unless --model names the model")
    return args


def run(args):
    t_start = time.time()
    model = build_model(args)
    cfg = model.cfg
    if args.seq > cfg.block_size:
        raise ReferenceError("--seq: expected at most maxT=%d, found %d" % (cfg.block_size, args.seq))
    x, y = batch_tokens(args, cfg.vocab_size)
    t_model = time.time()
    print("model: L=%d NH=%d C=%d V=%d Vp=%d maxT=%d, %d parameters (padded), built in %.2f s"
          % (cfg.n_layer, cfg.n_head, cfg.n_embd, cfg.vocab_size, cfg.padded_vocab_size, cfg.block_size,
             llmc_num_parameters(cfg), t_model - t_start))
    print("batch: B=%d T=%d from %s" % (args.batch, args.seq,
                                       args.tokens or "random tokens (seed %d)" % args.token_seed))

    # the checkpoints hold the model before training
    written = []
    if args.out_dir:
        base = os.path.join(args.out_dir, "gpt2_" + args.tag)
        write_checkpoint(model, base + ".bin", bf16=False)
        write_checkpoint(model, base + "_bf16.bin", bf16=True)
        written += [base + ".bin", base + "_bf16.bin"]
    if args.write_safetensors:
        write_safetensors(model, args.write_safetensors)
        written.append(args.write_safetensors)
    t_written = time.time()

    # llm.c's test: train on the same batch; step 0's forward/backward is also the debug state
    optimizer = AdamW(model.parameters(), lr=1e-4, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01)
    losses, step0 = [], None     # step0 = (logits, loss, gradients in llm.c's layout)
    for step in range(max(args.steps, 1)):
        t0 = time.time()
        for p in model.parameters():
            p.grad = None
        logits, loss = model(x, y)
        loss.backward()
        if step == 0 and args.out_dir:
            step0 = (logits.detach().clone(), loss.item(), llmc_tensors(model, pick=lambda p: p.grad))
        if step < args.steps:
            losses.append(loss.item())
            optimizer.step()
            print("step %2d: loss %.9f (took %.1f ms)" % (step, loss.item(), 1000 * (time.time() - t0)))
    t_trained = time.time()

    if args.out_dir:
        path = os.path.join(args.out_dir, "gpt2_%s_debug_state.bin" % args.tag)
        write_debug_state(path, x, y, step0[0], step0[1], step0[2], losses)
        written.append(path)
    t_end = time.time()

    print("losses: " + ", ".join(repr(v) for v in losses))
    for path in written:
        print("wrote %s (%d bytes)" % (path, os.path.getsize(path)))
    print("timing: build %.2f s, write model %.2f s, %d steps %.2f s (%.1f ms/step), debug state %.2f s, total %.2f s"
          % (t_model - t_start, t_written - t_model, args.steps, t_trained - t_written,
             1000 * (t_trained - t_written) / max(args.steps, 1), t_end - t_trained, t_end - t_start))
    return model, losses


def main(argv=None):
    args = parse_args(argv)
    try:
        run(args)
    except ReferenceError as e:
        print("error: %s" % e, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
