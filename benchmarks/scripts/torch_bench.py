"""PyTorch reference timing for the device check (gpt2-cuda/scripts/device-check.sh, phase 6): a GPT-2 (d12 by default) training step with bf16 autocast,
torch.compile and F.scaled_dot_product_attention (flash), fused AdamW, random tokens. Prints one RESULT line per
batch size, in the same format as CudaBench. Needs torch >= 2.0 with CUDA; exits 0 with a message otherwise.
Written for this project (a plain nanoGPT-style model), not copied from anywhere."""
import argparse
import math
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class Block(nn.Module):
    def __init__(self, channels, heads):
        super().__init__()
        self.heads = heads
        self.ln_1 = nn.LayerNorm(channels)
        self.c_attn = nn.Linear(channels, 3 * channels)
        self.c_proj = nn.Linear(channels, channels)
        self.ln_2 = nn.LayerNorm(channels)
        self.c_fc = nn.Linear(channels, 4 * channels)
        self.mlp_proj = nn.Linear(4 * channels, channels)

    def forward(self, x):
        B, T, C = x.shape
        q, k, v = self.c_attn(self.ln_1(x)).split(C, dim=2)
        # (B, T, C) -> (B, heads, T, head_size)
        q, k, v = (t.view(B, T, self.heads, C // self.heads).transpose(1, 2) for t in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.c_proj(y.transpose(1, 2).contiguous().view(B, T, C))
        return x + self.mlp_proj(F.gelu(self.c_fc(self.ln_2(x)), approximate="tanh"))


class GPT(nn.Module):
    def __init__(self, layers, heads, channels, vocab=50304, max_t=1024):
        super().__init__()
        self.wte = nn.Embedding(vocab, channels)
        self.wpe = nn.Embedding(max_t, channels)
        self.blocks = nn.ModuleList(Block(channels, heads) for _ in range(layers))
        self.ln_f = nn.LayerNorm(channels)

    def forward(self, idx, targets):
        T = idx.shape[1]
        x = self.wte(idx) + self.wpe(torch.arange(T, device=idx.device))
        for block in self.blocks:
            x = block(x)
        logits = self.ln_f(x) @ self.wte.weight.t()    # tied lm head
        return F.cross_entropy(logits.float().view(-1, logits.size(-1)), targets.view(-1))


PEAK_BF16_TFLOPS = {"H200": 989.0, "H100 PCIe": 756.0, "H100": 989.0, "A100": 312.0, "RTX 4090": 165.2}


def peak_tflops(name):
    for key, value in PEAK_BF16_TFLOPS.items():
        if key in name:
            return value
    return -1.0


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch", default="16,32,64")
    parser.add_argument("--seq", type=int, default=1024)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--layers", type=int, default=12)
    parser.add_argument("--heads", type=int, default=12)
    parser.add_argument("--channels", type=int, default=768)
    args = parser.parse_args()
    if not hasattr(F, "scaled_dot_product_attention") or not hasattr(torch, "compile") or not torch.cuda.is_available():
        print("torch_bench: needs torch >= 2.0 with CUDA, found", torch.__version__)
        return 0
    torch.backends.cuda.matmul.allow_tf32 = True
    device_name = torch.cuda.get_device_name(0)
    for batch in (int(b) for b in args.batch.split(",")):
        tag = "model=d%d precision=bf16 attention=torch-sdpa B=%d T=%d compile=1" % (args.layers, batch, args.seq)
        try:
            torch.manual_seed(0)
            model = GPT(args.layers, args.heads, args.channels, max_t=args.seq).cuda()
            n_params = sum(p.numel() for p in model.parameters())   # the tied wte counts once, as in llm.c
            optimizer = torch.optim.AdamW(model.parameters(), lr=3e-4, betas=(0.9, 0.95), weight_decay=0.1, fused=True)
            step_fn = torch.compile(model)
            idx = torch.randint(0, 50257, (batch, args.seq), device="cuda")
            targets = torch.randint(0, 50257, (batch, args.seq), device="cuda")
            total = 0.0
            for step in range(args.warmup + args.steps):
                torch.cuda.synchronize()
                start = time.perf_counter()
                optimizer.zero_grad(set_to_none=True)
                with torch.autocast(device_type="cuda", dtype=torch.bfloat16):
                    loss = step_fn(idx, targets)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                optimizer.step()
                torch.cuda.synchronize()
                if step >= args.warmup:
                    total += time.perf_counter() - start
            seconds = total / args.steps
            tokens = batch * args.seq
            flops_per_token = 6 * n_params + 6 * args.layers * args.channels * args.seq
            peak = peak_tflops(device_name)
            mfu = flops_per_token * tokens / seconds / (peak * 1e12) if peak > 0 else -1
            print("%-80s %9.2f ms/step %10.0f tok/s  MFU %5.1f%%  loss %.4f"
                  % (tag, seconds * 1000, tokens / seconds, mfu * 100, loss.item()))
            print("RESULT %s status=ok ms_per_step=%.3f tok_per_s=%.1f mfu=%.4f loss=%.4f"
                  % (tag, seconds * 1000, tokens / seconds, mfu, loss.item()))
            del model, optimizer, step_fn
            torch.cuda.empty_cache()
        except RuntimeError as e:    # torch.cuda.OutOfMemoryError is a RuntimeError
            status = "oom" if "out of memory" in str(e) else "error"
            print("RESULT %s status=%s (%s)" % (tag, status, str(e).splitlines()[0]))
            torch.cuda.empty_cache()
    return 0


if __name__ == "__main__":
    sys.exit(main())
