"""Driver for benchmarks/scripts/cpu-vs-pytorch.sh: alternates one step of ours (a StepBench --serve JVM) with one of
PyTorch's (in this process), so that both see the same machine load, and prints medians, GFLOP/s and the
fraction of the fp32 FMA peak the script measured (PEAK_GFLOPS).

MODEL is a GPT-2 depth (d12: reference/gpt2_reference.py's model) or a Llama 3 shape (llama3,
llama3:L4,C512,NH8,NKV2,V32768, llama3:3.2-1B: reference/llama3_reference.py's model, built from the shape our
StepBench parsed and reports on its "config" command, so both sides train the same model)."""
import ctypes
import os
import statistics
import subprocess
import sys
import tempfile
import time

# PyTorch gets OpenBLAS's best kernels for this CPU: OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE (set on some machines to
# pin OpenBLAS to its Haswell kernels) are removed before torch loads OpenBLAS, for this process only; our JVM is
# started with the environment as it was.
java_environment = dict(os.environ)
for name in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
    os.environ.pop(name, None)

import torch  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "reference"))

model_name = sys.argv[1] if len(sys.argv) > 1 else "d12"
is_llama = model_name == "llama3" or model_name.startswith("llama3:")
B = int(sys.argv[2]) if len(sys.argv) > 2 else 4
T = int(sys.argv[3]) if len(sys.argv) > 3 else (128 if is_llama else 64)
STEPS = int(sys.argv[4]) if len(sys.argv) > 4 else 7
WARMUP = int(sys.argv[5]) if len(sys.argv) > 5 else 3
threads = int(os.environ.get("OMP_NUM_THREADS", "2"))
torch.set_num_threads(threads)

java = [os.path.join(os.environ["JAVA_HOME"], "bin", "java"), "--add-modules", "jdk.incubator.vector",
        "--enable-native-access=ALL-UNNAMED", "-cp", "benchmarks/target/benchmarks.jar", "dev.llmc4j.bench.StepBench"]
# fp32 FMA peak for "% of peak": measured by the script just before (MachineLimits), passed as PEAK_GFLOPS; a
# round of it also runs after each pair of steps (its median printed: it shows how much of the machine other load
# left), and each step's "% of peak" is against the larger of the two, so a low probe never inflates a fraction
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


# our JVM's stderr goes to a file: shown if it fails to start (a bad MODEL gets its one-line error there)
java_errors = tempfile.TemporaryFile(mode="w+")
server = subprocess.Popen(java + ["--serve", model_name, str(B), str(T)], stdin=subprocess.PIPE,
                          stdout=subprocess.PIPE, stderr=java_errors, text=True, env=java_environment)
if server.stdout.readline().strip() != "ready":
    server.wait()
    java_errors.seek(0)
    sys.exit("".join(line for line in java_errors if not line.startswith("WARNING")).strip()
             or f"StepBench exited with {server.returncode}")


def ask(command):
    server.stdin.write(command + "\n")
    server.stdin.flush()
    return server.stdout.readline()


def ours(command):
    return float(ask(command))


if is_llama:
    import llama3_reference as ref  # noqa: E402

    # the shape as our side parsed it: maxT=1024 V=32768 L=4 NH=8 NKV=2 C=512 ffn=1.3 ... H=1792 N=30408704
    shape = dict(field.split("=") for field in ask("config").split())
    L, NH, NKV, C, V = (int(shape[key]) for key in ("L", "NH", "NKV", "C", "V"))
    cfg = ref.Config(max_seq_len=int(shape["maxT"]), vocab_size=V, n_layer=L, n_head=NH, n_kv_head=NKV, n_embd=C,
                     ffn_dim_multiplier=float(shape["ffn"]), multiple_of=int(shape["multipleOf"]),
                     norm_eps=float(shape["eps"]), rope_theta=float(shape["theta"]),
                     use_scaled_rope=shape["scaledRope"] == "true")
    assert cfg.ffn_hidden == int(shape["H"]), f"SwiGLU hidden size: ours {shape['H']}, reference {cfg.ffn_hidden}"
    model = ref.Llama3(cfg)
    model.init_random(42)
    H = cfg.ffn_hidden
    # N: the weights a token's forward multiplies (q/k/v, attention projection, SwiGLU's three, lm head; the
    # embedding is a lookup), checked against the parameters of those matrices in the PyTorch model
    N = L * (cfg.qkv_rows * C + C * C + 3 * H * C) + V * C
    assert N == int(shape["N"]) == sum(p.numel() for name, p in model.named_parameters()
                                       if p.dim() == 2 and not name.startswith("wte"))
    title = (f"Llama 3 {model_name} (L={L} NH={NH} NKV={NKV} C={C} H={H} V={V}, N={N / 1e6:.1f}M matmul weights)")
else:
    import gpt2_reference as ref  # noqa: E402

    L, NH, C = ref.DESCRIPTORS[model_name]
    cfg = ref.GPTConfig(n_layer=L, n_head=NH, n_embd=C)
    torch.manual_seed(0)
    model = ref.GPT(cfg)
    model.init_like_llmc()
    # N: the 12 L C^2 weights of the blocks and the (padded) lm head
    N = 12 * L * C * C + 50304 * C
    title = f"GPT-2 {model_name} (L={L} NH={NH} C={C})"
# matmul flops of a forward: 2 per multiply-add over the N matmul weights, plus attention's two (T x T) products
# (counted in full, as PyTorch computes them); a training step is 3x the forward: 6 N tokens + attention
forward_flops = 2 * B * T * N + 4 * L * B * T * T * C
step_flops = 3 * forward_flops
optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.0)
g = torch.Generator().manual_seed(1234)
x = torch.randint(0, cfg.vocab_size, (B, T), generator=g)
y = torch.randint(0, cfg.vocab_size, (B, T), generator=g)


def settled(side, command):
    """Waits SETTLE_S before a timed call: OpenMP's threads keep spinning on the cores for a while after PyTorch's
    step (ours park at once), and a step that starts during that spin shares the cores with it."""
    time.sleep(SETTLE_S)
    return side(command)


SETTLE_S = 0.5


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


print(f"{title} B={B} T={T}, {threads} threads, torch {torch.__version__} "
      f"(OpenBLAS core {openblas_core()}), fp32 FMA peak {peak:.1f} GFLOP/s (measured); median of {STEPS} after "
      f"{WARMUP} warm-up, alternating")
if is_llama:
    print("FLOPs: 6·N·tokens over the matmul weights + attention's two (T x T) products in full (a forward: "
          "2·N·tokens + 4·L·B·T²·C)")
medians = {}
for command, flops in (("step", step_flops), ("forward", forward_flops)):
    times = {"ours": [], "pytorch": []}
    fractions = {"ours": [], "pytorch": []}
    peaks = []
    for i in range(WARMUP + STEPS):
        a, b, round_peak = settled(ours, command), settled(theirs, command), settled(ours, "peak")
        if i >= WARMUP:
            times["ours"].append(a)
            times["pytorch"].append(b)
            peaks.append(round_peak)
            fractions["ours"].append(flops / a / 1e6 / max(peak, round_peak))
            fractions["pytorch"].append(flops / b / 1e6 / max(peak, round_peak))
    o, p = statistics.median(times["ours"]), statistics.median(times["pytorch"])
    fo, fp = statistics.median(fractions["ours"]), statistics.median(fractions["pytorch"])
    medians[command] = (o, p)
    print(f"{command:8s} ours {o:8.1f} ms ({flops / o / 1e6:6.1f} GFLOP/s, {100 * fo:4.1f}% of peak)"
          f"   pytorch {p:8.1f} ms ({flops / p / 1e6:6.1f} GFLOP/s, {100 * fp:4.1f}% of peak)"
          f"   ours/pytorch {o / p:.2f}   ({flops / 1e9:.1f} GFLOP; peak between the steps: median "
          f"{statistics.median(peaks):.1f} GFLOP/s)")


def write_chart(path):
    """A bar chart of this run's medians (ours vs PyTorch, step and forward), drawn by JFreeChart
    (dev.llmc4j.bench.ComparisonChart in the benchmarks jar) as SVG."""
    family = "Llama 3" if is_llama else "GPT-2"
    title = f"{family} {model_name}, B={B}, T={T}, {threads} threads: median ms (lower is better)"
    groups = [f"{command}={o:.1f},{p:.1f}" for command, (o, p) in medians.items()]
    chart = java[:-1] + ["dev.llmc4j.bench.ComparisonChart", path, title] + groups
    subprocess.run(chart, check=True, env=java_environment)


if os.environ.get("BENCH_SVG"):
    write_chart(os.environ["BENCH_SVG"])
server.stdin.write("quit\n")
server.stdin.flush()
server.wait()
