#!/usr/bin/env python3
"""The site's diagrams, written as SVG by code (no box art): Maven runs this in docs' generate-resources phase and
the pages show the files (image::training-step.svg[]).
Usage: diagrams.py OUT_DIR     every diagram under OUT_DIR (the site); fails if a committed copy is stale
       diagrams.py --update    rewrites the committed copies of the tutorials' diagrams (tutorials/images/)"""
import os
import sys
from xml.sax.saxutils import escape

FONT = "font-family='DejaVu Sans, Helvetica, Arial, sans-serif'"


def box(x, y, w, h, title, detail="", fill="#eef3fb", stroke="#4a6fa5"):
    text = f"<text x='{x + w / 2}' y='{y + (h / 2 - 4 if detail else h / 2 + 5)}' text-anchor='middle' {FONT} " \
           f"font-size='14' font-weight='bold'>{escape(title)}</text>"
    if detail:
        text += f"<text x='{x + w / 2}' y='{y + h / 2 + 14}' text-anchor='middle' {FONT} font-size='12' " \
                f"fill='#333'>{escape(detail)}</text>"
    return f"<rect x='{x}' y='{y}' width='{w}' height='{h}' rx='6' fill='{fill}' stroke='{stroke}'/>" + text


def arrow(x1, y1, x2, y2, label="", dashed=False):
    dash = " stroke-dasharray='5,4'" if dashed else ""
    out = f"<line x1='{x1}' y1='{y1}' x2='{x2}' y2='{y2}' stroke='#555' stroke-width='1.5'{dash} " \
          f"marker-end='url(#head)'/>"
    if label:
        out += f"<text x='{(x1 + x2) / 2 + 8}' y='{(y1 + y2) / 2 + 4}' {FONT} font-size='11' fill='#555'>" \
               f"{escape(label)}</text>"
    return out


def svg(width, height, body, title):
    return (f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' "
            f"viewBox='0 0 {width} {height}'><title>{escape(title)}</title>"
            "<defs><marker id='head' markerWidth='10' markerHeight='8' refX='9' refY='4' orient='auto'>"
            "<path d='M0,0 L10,4 L0,8 z' fill='#555'/></marker></defs>"
            f"<rect width='{width}' height='{height}' fill='white'/>{body}</svg>\n")


def training_step():
    """One training step of GPT2 / Trainer: the boxes top to bottom, shapes beside them."""
    w, x, h, gap = 360, 250, 46, 18
    steps = [
        ("DataLoader.nextBatch()", "inputs, targets (B, T) from a token shard", "#f5efe0", "#a5874a"),
        ("encoder", "x = wte[inputs] + wpe[0..T)   (B, T, C)", None, None),
        ("attention half", "x += attproj(attention(qkv(layernorm1(x))))", None, None),
        ("MLP half", "x += fcproj(gelu(fc(layernorm2(x))))", None, None),
        ("lm head and loss", "logits = lnf(x) · wteᵀ (B, T, Vp); mean cross-entropy", None, None),
        ("backward", "the same in reverse, += into every gradient", "#fbeeee", "#a54a4a"),
        ("clip", "norm = ‖gradients‖; scale = min(1, 1 / norm)", "#eef7ee", "#4a8a4a"),
        ("AdamW", "lr from the schedule; decay on 2-D tensors only", "#eef7ee", "#4a8a4a"),
    ]
    body, y, centres = "", 20, []
    for i, (title, detail, fill, stroke) in enumerate(steps):
        body += box(x, y, w, h, title, detail, fill or "#eef3fb", stroke or "#4a6fa5")
        centres.append(y)
        if i + 1 < len(steps):
            body += arrow(x + w / 2, y + h, x + w / 2, y + h + gap - 2)
        y += h + gap
    # the L blocks: a dashed frame around the two halves
    top, bottom = centres[2] - 8, centres[3] + h + 8
    body += f"<rect x='{x - 14}' y='{top}' width='{w + 28}' height='{bottom - top}' rx='8' fill='none' " \
            f"stroke='#4a6fa5' stroke-dasharray='6,4'/>"
    body += f"<text x='{x + w + 22}' y='{(top + bottom) / 2 + 4}' {FONT} font-size='13' fill='#4a6fa5'>" \
            "× L blocks: the residual stream</text>"
    # gradient accumulation: back from backward to the data loader, once per micro-batch
    yb, yd = centres[5] + h / 2, centres[0] + h / 2
    body += f"<path d='M{x} {yb} H{x - 60} V{yd} H{x - 2}' fill='none' stroke='#a54a4a' stroke-width='1.5' " \
            f"stroke-dasharray='5,4' marker-end='url(#head)'/>"
    body += f"<text x='{x - 66}' y='{(yb + yd) / 2}' text-anchor='end' {FONT} font-size='12' fill='#a54a4a'>" \
            "next micro-batch</text>"
    body += f"<text x='{x - 66}' y='{(yb + yd) / 2 + 16}' text-anchor='end' {FONT} font-size='12' fill='#a54a4a'>" \
            "(gradient accumulation)</text>"
    return svg(900, y + 4, body, "One training step")


def module_layers():
    """The modules as layers: each uses only the layers below it (architecture.adoc draws every edge)."""
    x, w, gap = 170, 640, 14
    rows = [
        [("cli", "./llmc (picocli), --ui monitor"), ("tutorials", "the lessons, one per step"),
         ("benchmarks", "JMH, StepBench, ladder")],
        [("gpt2-cpu", "forward, backward, AdamW"), ("gpt2-cuda", "the same on NVIDIA GPUs"),
         ("llama3", "Llama 3, CPU")],
        [("common/train", "TrainableModel (+ ZeRO-1, gradient, mixed-precision capabilities), Trainer, DataParallel")],
        [("common/parallel", "MPI, NCCL, the NCCL id exchange, the peer watch   (dev.llmc4j.distributed)")],
        [("common/cpu", "CpuKernels (BASELINE, VECTORIZED): Matmul, CausalSelfAttention, AdamW; Parallel")],
        [("common/core", "formats, data, tokenizer, random, sample, model (GPT2Config, GPT2Checkpoint, ...), util")],
    ]
    fills = ["#f5efe0", "#eef3fb", "#eef7ee", "#f3eefb", "#fbeeee", "#f0f0f0"]
    strokes = ["#a5874a", "#4a6fa5", "#4a8a4a", "#7a5aa5", "#a54a4a", "#777777"]
    body, y, h = "", 20, 52
    for row, fill, stroke in zip(rows, fills, strokes):
        bw = (w - gap * (len(row) - 1)) / len(row)
        for i, (title, detail) in enumerate(row):
            body += box(x + i * (bw + gap), y, bw, h, title, detail, fill, stroke)
        y += h + gap
    # one arrow down the left side: every module depends only on what is below it
    body += arrow(x - 30, 26, x - 30, y - gap - 6)
    for i, line in enumerate(["each layer", "uses only", "the layers", "below it"]):
        body += f"<text x='{x - 40}' y='{y / 2 - 24 + 16 * i}' text-anchor='end' {FONT} font-size='12' " \
                f"fill='#555'>{line}</text>"
    # the PyTorch reference, outside Maven: it writes the fixtures the parity tests of the models read
    ry = y + 10
    body += box(x, ry, w, h, "reference  (PyTorch, outside Maven)",
                "our GPT-2 and Llama 3 in PyTorch; make_fixtures.sh writes the parity fixtures", "#ffffff", "#999999")
    model_row_bottom = 20 + 2 * h + gap
    body += f"<path d='M{x + w} {ry + h / 2} H{x + w + 40} V{model_row_bottom - h / 2} H{x + w + 4}' fill='none' " \
            f"stroke='#999' stroke-width='1.5' stroke-dasharray='5,4' marker-end='url(#head)'/>"
    body += f"<text x='{x + w + 46}' y='{(ry + model_row_bottom) / 2}' {FONT} font-size='12' fill='#777'>" \
            "fixtures for</text>"
    body += f"<text x='{x + w + 46}' y='{(ry + model_row_bottom) / 2 + 16}' {FONT} font-size='12' fill='#777'>" \
            "the parity tests</text>"
    return svg(x + w + 160, ry + h + 20, body, "The modules, as layers")


def lane_segment(x, y, w, h, label, fill, stroke, dashed=False):
    dash = " stroke-dasharray='4,3'" if dashed else ""
    return f"<rect x='{x}' y='{y}' width='{w}' height='{h}' fill='{fill}' stroke='{stroke}'{dash}/>" \
           f"<text x='{x + w / 2}' y='{y + h / 2 + 4}' text-anchor='middle' {FONT} font-size='11'>" \
           f"{escape(label)}</text>"


def gradient_overlap():
    """The last micro-step's backward on the GPU: the main stream's backward, layer by layer from the top, and a
    second stream that averages each layer's gradients (NCCL) while the main stream goes on with the layers below."""
    left, main_y, side_y, h = 120, 40, 130, 34
    main = [("lm head, lnf", 96), ("layer L-1", 84), ("layer L-2", 84), ("...", 46), ("layer 0", 84),
            ("encoder", 74)]
    body, x, ends = "", left, []
    for label, w in main:
        body += lane_segment(x, main_y, w, h, label, "#eef3fb", "#4a6fa5")
        x += w
        ends.append(x)
    encoder_end = x
    # the side stream: it waits on the event recorded after layer l's backward, then reduces layer l's 12 slices
    reduces = [(ends[1], "reduce L-1"), (ends[2], "reduce L-2"), (ends[4], "reduce 0")]
    side_x = left
    for start, label in reduces:
        if start - side_x >= 30:
            body += lane_segment(side_x, side_y, start - side_x, h, "wait", "#ffffff", "#aaaaaa", dashed=True)
        body += lane_segment(start, side_y, 72, h, label, "#eef7ee", "#4a8a4a")
        body += f"<line x1='{start}' y1='{main_y + h}' x2='{start}' y2='{side_y - 2}' stroke='#a54a4a' " \
                f"stroke-width='1.2' stroke-dasharray='3,3' marker-end='url(#head)'/>"
        side_x = start + 72
    tail_start = max(side_x, encoder_end)
    if tail_start - side_x >= 30:
        body += lane_segment(side_x, side_y, tail_start - side_x, h, "wait", "#ffffff", "#aaaaaa", dashed=True)
    body += f"<line x1='{encoder_end}' y1='{main_y + h}' x2='{encoder_end}' y2='{side_y - 2}' stroke='#a54a4a' " \
            f"stroke-width='1.2' stroke-dasharray='3,3' marker-end='url(#head)'/>"
    body += lane_segment(tail_start, side_y, 124, h, "reduce wte, wpe, lnf", "#eef7ee", "#4a8a4a")
    done = tail_start + 124
    # the main stream waits for the side stream's last event, then the norm and AdamW
    body += lane_segment(encoder_end, main_y, done - encoder_end, h, "wait", "#ffffff", "#aaaaaa", dashed=True)
    body += f"<line x1='{done}' y1='{side_y}' x2='{done}' y2='{main_y + h + 2}' stroke='#4a8a4a' " \
            f"stroke-width='1.2' stroke-dasharray='3,3' marker-end='url(#head)'/>"
    body += lane_segment(done, main_y, 54, h, "norm", "#eef3fb", "#4a6fa5")
    body += lane_segment(done + 54, main_y, 64, h, "AdamW", "#eef3fb", "#4a6fa5")
    right = done + 118
    for y, name in [(main_y, "main stream"), (side_y, "side stream")]:
        body += f"<text x='{left - 10}' y='{y + h / 2 + 4}' text-anchor='end' {FONT} font-size='13' " \
                f"font-weight='bold'>{name}</text>"
    body += arrow(left, side_y + h + 30, right, side_y + h + 30)
    body += f"<text x='{right}' y='{side_y + h + 22}' text-anchor='end' {FONT} font-size='12' fill='#555'>time</text>"
    body += f"<text x='{left}' y='{side_y + h + 50}' {FONT} font-size='12' fill='#a54a4a'>" \
            "- - -> an event: layer l's gradients are final, NCCL may average them " \
            "(ncclAllReduce, or ncclReduceScatter with -z 1)</text>"
    body += f"<text x='{left}' y='{22}' {FONT} font-size='12' fill='#555'>" \
            "the backward of the last micro-step, top layer first</text>"
    return svg(right + 20, side_y + h + 64, body, "Gradient averaging overlapped with the backward")


def flash_tiles():
    """Flash attention's causal tiles: which (query tile, key block) pairs are computed, and where the mask is."""
    n, cell, left, top = 4, 64, 130, 60
    body = ""
    for qi in range(n):
        for kj in range(n):
            x, y = left + kj * cell, top + qi * cell
            if kj < qi:  # below the diagonal: every query sees every key of the block
                body += f"<rect x='{x}' y='{y}' width='{cell}' height='{cell}' fill='#9ab8dc' stroke='#4a6fa5'/>"
            elif kj == qi:  # the diagonal: computed, keys after the query get -inf (the lower triangle stays)
                body += f"<rect x='{x}' y='{y}' width='{cell}' height='{cell}' fill='#ffffff' stroke='#4a6fa5'/>"
                body += f"<path d='M{x} {y} L{x} {y + cell} L{x + cell} {y + cell} Z' fill='#9ab8dc'/>"
                body += f"<path d='M{x} {y} L{x + cell} {y} L{x + cell} {y + cell} Z' fill='#f3d6d6'/>"
                body += f"<rect x='{x}' y='{y}' width='{cell}' height='{cell}' fill='none' stroke='#4a6fa5'/>"
            else:  # after the tile's last query: never computed, never read
                body += f"<rect x='{x}' y='{y}' width='{cell}' height='{cell}' fill='#f4f4f4' stroke='#cccccc' " \
                        "stroke-dasharray='4,3'/>"
        body += f"<text x='{left - 10}' y='{top + qi * cell + cell / 2 + 4}' text-anchor='end' {FONT} " \
                f"font-size='12'>query tile {qi}</text>"
    for kj in range(n):
        body += f"<text x='{left + kj * cell + cell / 2}' y='{top - 8}' text-anchor='middle' {FONT} " \
                f"font-size='12'>{kj}</text>"
    body += f"<text x='{left + n * cell / 2}' y='{top - 30}' text-anchor='middle' {FONT} font-size='13' " \
            "font-weight='bold'>key blocks →</text>"
    lx, ly = left + n * cell + 40, top + 6
    legend = [
        ("#9ab8dc", "#4a6fa5", "below the diagonal: computed, no mask"),
        ("#f3d6d6", "#4a6fa5", "diagonal block: computed; its keys after the query get -inf"),
        ("#f4f4f4", "#cccccc", "after the tile's last query: never computed, never read"),
    ]
    for i, (fill, stroke, text) in enumerate(legend):
        y = ly + i * 34
        body += f"<rect x='{lx}' y='{y}' width='22' height='22' fill='{fill}' stroke='{stroke}'/>"
        body += f"<text x='{lx + 32}' y='{y + 15}' {FONT} font-size='12'>{escape(text)}</text>"
    body += f"<text x='{lx}' y='{ly + 3 * 34 + 16}' {FONT} font-size='12' fill='#555'>" \
            "n tiles: n(n+1)/2 of the n² blocks computed</text>"
    return svg(lx + 400, top + n * cell + 20, body, "Flash attention's causal tiles")


# Each diagram: its path under the site folder, and the function that draws it. The tutorials' pages are read on a
# forge too, so their diagrams also have a committed copy next to the pages (COMMITTED), which the build checks.
DIAGRAMS = [
    ("training-step.svg", training_step),
    ("modules-overview.svg", module_layers),
    ("gradient-overlap.svg", gradient_overlap),
    ("tutorials/images/flash-attention-tiles.svg", flash_tiles),
]
COMMITTED = "tutorials/images/"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path + ".tmp", "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(path + ".tmp", path)


def main():
    if sys.argv[1:] == ["--update"]:  # rewrite the committed copies of the tutorials' diagrams
        for name, make in DIAGRAMS:
            if name.startswith(COMMITTED):
                write(os.path.join(ROOT, name), make())
                print(f"[docs] diagram {name}")
        return
    out, stale = sys.argv[1], []
    for name, make in DIAGRAMS:
        text = make()
        write(os.path.join(out, name), text)
        print(f"[docs] diagram {os.path.join(out, name)}")
        if name.startswith(COMMITTED):
            committed = os.path.join(ROOT, name)
            if not os.path.exists(committed) or open(committed, encoding="utf-8").read() != text:
                stale.append(name)
    if stale:
        sys.exit(f"[docs] the committed {', '.join(stale)} differ from what docs/diagrams.py draws: "
                 "run python3 docs/diagrams.py --update and commit them")


if __name__ == "__main__":
    main()
