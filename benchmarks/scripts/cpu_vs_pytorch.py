"""Driver for benchmarks/scripts/cpu-vs-pytorch.sh: alternates one step of ours (a StepBench --serve JVM) with one of
PyTorch's (in this process), so that both see the same machine load, and prints medians, GFLOP/s and the
fraction of the fp32 FMA peak the script measured (PEAK_GFLOPS)."""
import ctypes
import os
import statistics
import subprocess
import sys
import time

# PyTorch gets OpenBLAS's best kernels for this CPU: OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE (set on some machines to
# pin OpenBLAS to its Haswell kernels) are removed before torch loads OpenBLAS, for this process only; our JVM is
# started with the environment as it was.
java_environment = dict(os.environ)
for name in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
    os.environ.pop(name, None)

import torch  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "reference"))
import gpt2_reference as ref  # noqa: E402

model_name = sys.argv[1] if len(sys.argv) > 1 else "d12"
B = int(sys.argv[2]) if len(sys.argv) > 2 else 4
T = int(sys.argv[3]) if len(sys.argv) > 3 else 64
STEPS = int(sys.argv[4]) if len(sys.argv) > 4 else 7
WARMUP = int(sys.argv[5]) if len(sys.argv) > 5 else 3
threads = int(os.environ.get("OMP_NUM_THREADS", "2"))
torch.set_num_threads(threads)

L, NH, C = ref.DESCRIPTORS[model_name]
Vp = 50304
# matmul flops of a forward: 2 per multiply-add over the 12 L C^2 weights and the lm head, plus attention's
# two (T x T) products (counted in full, as PyTorch computes them); a training step is 3x the forward
forward_flops = 2 * B * T * (12 * L * C * C + Vp * C) + 4 * L * B * T * T * C
step_flops = 3 * forward_flops

java = [os.path.join(os.environ["JAVA_HOME"], "bin", "java"), "--add-modules", "jdk.incubator.vector",
        "--enable-native-access=ALL-UNNAMED", "-cp", "benchmarks/target/benchmarks.jar", "dev.llmc4j.bench.StepBench"]
# fp32 FMA peak for "% of peak": measured by the script just before (MachineLimits), passed as PEAK_GFLOPS; a
# short round of it also runs after each pair of steps, and each step's "% of peak" is against the round beside it
# (on a loaded machine the peak we get moves with the load), the median of those printed
peak = float(os.environ["PEAK_GFLOPS"])


def openblas_core():
    """The kernel set ("core") OpenBLAS chose in this process: threadpoolctl's report if it is installed, else
    openblas_get_corename() from the OpenBLAS library torch loaded."""
    torch.ones(8, 8) @ torch.ones(8, 8)  # make sure the BLAS is loaded
    try:
        import threadpoolctl
        for info in threadpoolctl.threadpool_info():
            if info.get("internal_api") == "openblas":
                return info.get("architecture", "unknown")
    except ImportError:
        pass
    with open("/proc/self/maps") as maps:
        libraries = sorted({line.split()[-1] for line in maps if "blas" in line and "/" in line})
    for library in libraries:
        try:
            corename = ctypes.CDLL(library).openblas_get_corename
        except (OSError, AttributeError):
            continue
        corename.restype = ctypes.c_char_p
        return corename().decode()
    return "none (torch does not use OpenBLAS here)"


server = subprocess.Popen(java + ["--serve", model_name, str(B), str(T)], stdin=subprocess.PIPE,
                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=java_environment)
assert server.stdout.readline().strip() == "ready"


def ours(command):
    server.stdin.write(command + "\n")
    server.stdin.flush()
    return float(server.stdout.readline())


cfg = ref.GPTConfig(n_layer=L, n_head=NH, n_embd=C)
torch.manual_seed(0)
model = ref.GPT(cfg)
model.init_like_llmc()
optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.0)
g = torch.Generator().manual_seed(1234)
x = torch.randint(0, cfg.vocab_size, (B, T), generator=g)
y = torch.randint(0, cfg.vocab_size, (B, T), generator=g)


def theirs(command):
    start = time.perf_counter()
    if command == "forward":
        model(x, y)
    else:
        optimizer.zero_grad(set_to_none=True)
        _, loss = model(x, y)
        loss.backward()
        optimizer.step()
    return (time.perf_counter() - start) * 1000


print(f"GPT-2 {model_name} (L={L} NH={NH} C={C}) B={B} T={T}, {threads} threads, torch {torch.__version__} "
      f"(OpenBLAS core {openblas_core()}), fp32 FMA peak {peak:.1f} GFLOP/s (measured); median of {STEPS} after "
      f"{WARMUP} warm-up, alternating")
medians = {}
for command, flops in (("step", step_flops), ("forward", forward_flops)):
    times = {"ours": [], "pytorch": []}
    fractions = {"ours": [], "pytorch": []}
    peaks = []
    for i in range(WARMUP + STEPS):
        a, b, round_peak = ours(command), theirs(command), ours("peak")
        if i >= WARMUP:
            times["ours"].append(a)
            times["pytorch"].append(b)
            peaks.append(round_peak)
            fractions["ours"].append(flops / a / 1e6 / round_peak)
            fractions["pytorch"].append(flops / b / 1e6 / round_peak)
    o, p = statistics.median(times["ours"]), statistics.median(times["pytorch"])
    fo, fp = statistics.median(fractions["ours"]), statistics.median(fractions["pytorch"])
    medians[command] = (o, p)
    print(f"{command:8s} ours {o:8.1f} ms ({flops / o / 1e6:6.1f} GFLOP/s, {100 * fo:4.1f}% of peak)"
          f"   pytorch {p:8.1f} ms ({flops / p / 1e6:6.1f} GFLOP/s, {100 * fp:4.1f}% of peak)"
          f"   ours/pytorch {o / p:.2f}   ({flops / 1e9:.1f} GFLOP; peak between the steps: median "
          f"{statistics.median(peaks):.1f} GFLOP/s)")


def write_chart(path):
    """A bar chart of this run's medians (ours vs PyTorch, step and forward) as a small standalone SVG."""
    width, height, left, bottom, top = 560, 300, 70, 50, 50
    longest = max(max(pair) for pair in medians.values())
    scale = (height - top - bottom) / longest
    bars, x = [], left + 30
    for command, (o, p) in medians.items():
        for label, value, color in (("ours", o, "#1f77b4"), ("PyTorch", p, "#d62728")):
            h = value * scale
            y = height - bottom - h
            bars.append(f'<rect x="{x}" y="{y:.1f}" width="70" height="{h:.1f}" fill="{color}"/>'
                        f'<text x="{x + 35}" y="{y - 6:.1f}" text-anchor="middle">{value:,.0f} ms</text>'
                        f'<text x="{x + 35}" y="{height - bottom + 18}" text-anchor="middle">{label}</text>')
            x += 80
        bars.append(f'<text x="{x - 120}" y="{height - bottom + 38}" text-anchor="middle" font-weight="bold">'
                    f'{command} (ours/PyTorch {o / p:.2f})</text>')
        x += 60
    title = f"GPT-2 {model_name}, B={B}, T={T}, {threads} threads: median ms (lower is better)"
    svg = (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" '
           f'font-size="12"><rect width="100%" height="100%" fill="white"/>'
           f'<text x="{left}" y="24" font-size="14" font-weight="bold">{title}</text>'
           f'<line x1="{left}" y1="{height - bottom}" x2="{width - 20}" y2="{height - bottom}" stroke="black"/>'
           + "".join(bars) + "</svg>\n")
    temporary = path + ".tmp"
    with open(temporary, "w") as f:
        f.write(svg)
    os.replace(temporary, path)
    print(f"chart: {path}")


if os.environ.get("BENCH_SVG"):
    write_chart(os.environ["BENCH_SVG"])
server.stdin.write("quit\n")
server.stdin.flush()
server.wait()
