#!/usr/bin/env python3
"""The site's diagrams, written as SVG by code (no box art): Maven runs this in docs' generate-resources phase and
the pages show the files (image::training-step.svg[]). Usage: diagrams.py OUT_DIR"""
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


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    for name, make in [("training-step.svg", training_step)]:
        path = os.path.join(out, name)
        with open(path + ".tmp", "w", encoding="utf-8") as f:
            f.write(make())
        os.replace(path + ".tmp", path)
        print(f"[docs] diagram {path}")


if __name__ == "__main__":
    main()
