"""The autograd bridge: what PyTorch's autograd computes for three of the tutorials' layers, saved for the Java
lesson tests to compare with their hand-written backward passes (tutorials/autograd-bridge.adoc).

In float64, from a fixed seed: LayerNorm (step 3), tanh GELU (step 6) and softmax + cross-entropy (step 8); and which
operations torch.autocast runs in 16 bits (step 15). For each,
the forward runs on tensors with requires_grad=True, a scalar loss = sum(out * dout) (or the mean cross-entropy) is
built, and loss.backward() fills every input's .grad: autograd's answer. torch.autograd.gradcheck checks each layer
against finite differences first, the same check the Java tests do by hand.

Output: one file, OUT/autograd_bridge.bin: int32 tensor count, then per tensor an int32 name length, the UTF-8 name,
an int32 element count and the float64 values (little-endian). Usage: /usr/bin/python3 autograd_bridge.py OUT
"""
import os
import struct
import sys

import torch
import torch.nn.functional as F

torch.manual_seed(15)
torch.set_default_dtype(torch.float64)
N, C, V = 3, 8, 11
saved = {}


def save(name, tensor):
    saved[name] = tensor.detach().reshape(-1).tolist()


# LayerNorm (step 3): out = (x - mean) / sqrt(var + 1e-5) * w + b over the last dimension
x = torch.randn(N, C, requires_grad=True)
w = (1 + 0.5 * torch.randn(C)).requires_grad_()
b = (0.1 * torch.randn(C)).requires_grad_()
dout = torch.randn(N, C)
assert torch.autograd.gradcheck(lambda x, w, b: F.layer_norm(x, (C,), w, b, 1e-5), (x, w, b))
out = F.layer_norm(x, (C,), w, b, 1e-5)
(out * dout).sum().backward()          # d(sum(out * dout)) / d(out) = dout: the gradient arriving from above
for name, t in [("ln.x", x), ("ln.w", w), ("ln.b", b), ("ln.dout", dout), ("ln.out", out),
                ("ln.dx", x.grad), ("ln.dw", w.grad), ("ln.db", b.grad)]:
    save(name, t)

# GELU, tanh approximation (step 6)
g = (2 * torch.randn(N * C)).requires_grad_()
gdout = torch.randn(N * C)
assert torch.autograd.gradcheck(lambda g: F.gelu(g, approximate="tanh"), (g,))
gout = F.gelu(g, approximate="tanh")
(gout * gdout).sum().backward()
for name, t in [("gelu.x", g), ("gelu.dout", gdout), ("gelu.out", gout), ("gelu.dx", g.grad)]:
    save(name, t)

# softmax + cross-entropy, mean over the N rows (step 8)
logits = torch.randn(N, V, requires_grad=True)
targets = torch.randint(0, V, (N,))
assert torch.autograd.gradcheck(lambda z: F.cross_entropy(z, targets), (logits,))
loss = F.cross_entropy(logits, targets)
loss.backward()
for name, t in [("ce.logits", logits), ("ce.targets", targets.double()), ("ce.loss", loss.reshape(1)),
                ("ce.dlogits", logits.grad)]:
    save(name, t)

# autocast (step 15): which operations PyTorch runs in bf16 inside torch.autocast, which in fp32. On the CPU (what
# runs here); CUDA's lists are longer on the fp32 side (softmax, log_softmax, layer_norm, exp, sum, ... stay fp32
# there). Saved as the output's bits per element: 16 or 32.
a, wa = torch.randn(4, 8, dtype=torch.float32), torch.randn(8, 8, dtype=torch.float32)
ta = torch.randint(0, 8, (4,))
with torch.autocast("cpu", dtype=torch.bfloat16):
    h = F.linear(a, wa)
    probes = {"linear": h, "matmul": a @ wa, "layer_norm.fp32_input": F.layer_norm(a, (8,)),
              "cross_entropy": F.cross_entropy(h, ta), "add.bf16_plus_fp32": h + a}
for name, t in probes.items():
    saved["autocast." + name] = [16.0 if t.dtype == torch.bfloat16 else 32.0 if t.dtype == torch.float32 else -1.0]
torch.set_default_dtype(torch.float64)

os.makedirs(sys.argv[1], exist_ok=True)
path = os.path.join(sys.argv[1], "autograd_bridge.bin")
with open(path + ".tmp", "wb") as f:
    f.write(struct.pack("<i", len(saved)))
    for name, values in saved.items():
        encoded = name.encode()
        f.write(struct.pack("<i", len(encoded)) + encoded + struct.pack("<i", len(values)))
        f.write(struct.pack("<%dd" % len(values), *values))
os.replace(path + ".tmp", path)
print(f"gradcheck passed for layer_norm, gelu and cross_entropy; {len(saved)} tensors -> {path}; autocast:",
      ", ".join(f"{k[9:]} {int(v[0])}-bit" for k, v in saved.items() if k.startswith("autocast.")))
