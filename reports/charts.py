"""Small inline SVG charts. Drawn here rather than with matplotlib because a bank's nightly batch is
1,000 reports in under two minutes (matplotlib takes ~50 ms a figure) and because inline SVG needs
no script and no file beside the page, in the browser and in the PDF alike."""

from __future__ import annotations

from html import escape

POS, NEG, INK, GRID = "#c0392b", "#2e86c1", "#333", "#ddd"


def bars(items: list[tuple[str, float]], maximum: float = 100.0, width: int = 420, unit: str = "") -> str:
    """Horizontal bars, one per (label, value), on a scale from 0 to `maximum`."""
    row, h = 26, 26 * len(items) + 8
    label_w = max([150.0] + [text_width(label, 12) + 12 for label, _ in items])
    width = max(width, int(label_w) + 270)
    scale = (width - label_w - 50) / maximum
    out = [_svg(width, h)]
    for i, (label, value) in enumerate(items):
        y = 4 + i * row
        w = max(0.0, min(value, maximum)) * scale
        out.append(f'<text x="{label_w - 6:.1f}" y="{y + 16}" text-anchor="end" font-size="12" fill="{INK}">{escape(label)}</text>'
                   f'<rect x="{label_w:.1f}" y="{y + 3}" width="{(width - label_w - 50):.0f}" height="16" fill="{GRID}" opacity="0.4"/>'
                   f'<rect x="{label_w:.1f}" y="{y + 3}" width="{w:.1f}" height="16" fill="{NEG}"/>'
                   f'<text x="{label_w + w + 4:.1f}" y="{y + 16}" font-size="12" fill="{INK}">{value:.1f}{unit}</text>')
    out.append("</svg>")
    return "".join(out)


def text_width(text: str, size: float) -> float:
    """Roughly how wide `text` sets at `size` px: a CJK character a full em, anything else 0.6 em."""
    return sum(size if ord(ch) > 0x2E80 else 0.6 * size for ch in text)


def _svg(width: float, height: float, cls: str = "chart") -> str:
    """An SVG that scales down to its container (a viewBox): an A4 page or a narrow window cuts nothing."""
    return (f'<svg class="{cls}" xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
            f'viewBox="0 0 {width:.0f} {height:.0f}" role="img">')


def waterfall(base: float, steps: list[tuple[str, float]], total_label: str, plot_w: int = 300) -> str:
    """Log-odds from the population's base value through each contribution to the firm's value:
    red raises the PD, blue lowers it. Labels are sized to their text, so none is cut."""
    row, size = 24, 11
    values = [base]
    for _, v in steps:
        values.append(values[-1] + v)
    lo, hi = min(values), max(values)
    span = (hi - lo) or 1.0
    label_w = max(text_width(label, size) for label in [total_label, *(s for s, _ in steps)]) + 12
    width = label_w + plot_w + 60

    def x(v: float) -> float:
        return label_w + (v - lo) / span * plot_w

    h = row * (len(steps) + 2) + 8
    out = [_svg(width, h), f'<line x1="{x(base):.1f}" y1="0" x2="{x(base):.1f}" y2="{h}" stroke="{GRID}"/>']
    level = base
    for i, (label, v) in enumerate(steps):
        y = 4 + i * row
        a, b = sorted((x(level), x(level + v)))
        colour = POS if v > 0 else NEG
        out.append(f'<text x="{label_w - 6:.1f}" y="{y + 15}" text-anchor="end" font-size="{size}" fill="{INK}">{escape(label)}</text>'
                   f'<rect x="{a:.1f}" y="{y + 3}" width="{max(b - a, 1):.1f}" height="15" fill="{colour}"/>'
                   f'<text x="{b + 4:.1f}" y="{y + 15}" font-size="{size}" fill="{INK}">{v:+.3f}</text>')
        level += v
    y = 4 + len(steps) * row
    out.append(f'<text x="{label_w - 6:.1f}" y="{y + 15}" text-anchor="end" font-size="{size}" font-weight="bold" fill="{INK}">'
               f'{escape(total_label)}</text><circle cx="{x(level):.1f}" cy="{y + 10}" r="5" fill="{INK}"/>'
               f'<text x="{x(level) + 9:.1f}" y="{y + 15}" font-size="{size}" fill="{INK}">{level:+.3f}</text></svg>')
    return "".join(out)


def spark(points: list[tuple[str, float | None]], fmt=str, width: int = 240, height: int = 58) -> str:
    """A monthly series as a line with its first and last periods and values written out; gaps stay gaps."""
    known = [(i, v) for i, (_, v) in enumerate(points) if v is not None]
    if len(known) < 2:
        return '<span class="muted">—</span>'
    lo, hi = min(v for _, v in known), max(v for _, v in known)
    span = (hi - lo) or 1.0
    step = (width - 8) / max(len(points) - 1, 1)
    segments, current = [], []
    for i, (_, v) in enumerate(points):
        if v is None:
            if current:
                segments.append(current)
            current = []
            continue
        current.append(f"{4 + i * step:.1f},{14 + (1 - (v - lo) / span) * (height - 30):.1f}")
    if current:
        segments.append(current)
    lines = "".join(f'<polyline fill="none" stroke="{NEG}" stroke-width="1.5" points="{" ".join(s)}"/>' for s in segments)
    (i0, v0), (i1, v1) = known[0], known[-1]
    return (f'{_svg(width, height, "spark")}{lines}'
            f'<text x="2" y="10" font-size="10" fill="{INK}">{escape(fmt(v0))}</text>'
            f'<text x="{width - 2}" y="10" font-size="10" text-anchor="end" fill="{INK}">{escape(fmt(v1))}</text>'
            f'<text x="2" y="{height - 4}" font-size="9" fill="#777">{escape(points[i0][0])}</text>'
            f'<text x="{width - 2}" y="{height - 4}" font-size="9" text-anchor="end" fill="#777">{escape(points[i1][0])}</text></svg>')


def histogram(counts: list[int], labels: list[str], width: int = 460, height: int = 150) -> str:
    """Vertical bars of counts, one per labelled bin."""
    top = max(counts) or 1
    bw = (width - 20) / max(len(counts), 1)
    out = [_svg(width, height)]
    for i, (c, label) in enumerate(zip(counts, labels)):
        h = c / top * (height - 36)
        out.append(f'<rect x="{10 + i * bw + 1:.1f}" y="{height - 20 - h:.1f}" width="{bw - 2:.1f}" height="{h:.1f}" fill="{NEG}"/>'
                   f'<text x="{10 + (i + 0.5) * bw:.1f}" y="{height - 6}" font-size="9" text-anchor="middle" fill="#555">'
                   f'{escape(label)}</text>')
    out.append("</svg>")
    return "".join(out)


def calibration(points: list[tuple[float, float, int]], x_label: str, y_label: str, size: int = 260) -> str:
    """Observed default rate against mean predicted PD per bin, with the diagonal."""
    top = max([max(p, o) for p, o, _ in points] + [0.01]) * 1.1
    s = size - 40

    def xy(p: float, o: float) -> tuple[float, float]:
        return 30 + p / top * s, size - 30 - o / top * s

    dots = "".join(f'<circle cx="{xy(p, o)[0]:.1f}" cy="{xy(p, o)[1]:.1f}" r="{2 + min(n, 2000) ** 0.5 / 12:.1f}" '
                   f'fill="{POS}" opacity="0.7"/>' for p, o, n in points)
    return (f'{_svg(size, size)}'
            f'<line x1="30" y1="{size - 30}" x2="{30 + s}" y2="{size - 30 - s}" stroke="#999" stroke-dasharray="4"/>'
            f'<line x1="30" y1="{size - 30}" x2="{30 + s}" y2="{size - 30}" stroke="{INK}"/>'
            f'<line x1="30" y1="{size - 30}" x2="30" y2="{size - 30 - s}" stroke="{INK}"/>{dots}'
            f'<text x="{30 + s}" y="{size - 12}" font-size="10" text-anchor="end">{escape(x_label)} {top * 100:.1f}%</text>'
            f'<text x="34" y="14" font-size="10">{escape(y_label)}</text></svg>')


def scatter(points: list[tuple[float, float]], width: int = 300, height: int = 200, x_label: str = "",
            y_label: str = "") -> str:
    """Points (x, y) with the y = 0 line: a SHAP dependence plot (value against contribution)."""
    if not points:
        return '<span class="muted">—</span>'
    xs, ys = [x for x, _ in points], [y for _, y in points]
    x0, x1, y0, y1 = min(xs), max(xs), min(min(ys), 0.0), max(max(ys), 0.0)
    sx, sy = (x1 - x0) or 1.0, (y1 - y0) or 1.0

    def px(x: float) -> float:
        return 30 + (x - x0) / sx * (width - 40)

    def py(y: float) -> float:
        return height - 25 - (y - y0) / sy * (height - 35)

    dots = "".join(f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="1.6" fill="{POS if y > 0 else NEG}" opacity="0.5"/>'
                   for x, y in points)
    return (f'{_svg(width, height)}'
            f'<line x1="30" y1="{py(0):.1f}" x2="{width - 10}" y2="{py(0):.1f}" stroke="#999"/>{dots}'
            f'<text x="{width - 10}" y="{height - 6}" font-size="10" text-anchor="end">{escape(x_label)}</text>'
            f'<text x="2" y="10" font-size="10">{escape(y_label)}</text></svg>')


def roc(curves: list[list[tuple[float, float]]], size: int = 260) -> str:
    """ROC curves (false-positive rate, true-positive rate), one line per fold, with the diagonal."""
    s = size - 40

    def xy(f: float, t: float) -> str:
        return f"{30 + f * s:.1f},{size - 30 - t * s:.1f}"

    palette = ("#2e86c1", "#c0392b", "#1e8449", "#af7ac5", "#d68910", "#566573")
    lines = "".join(f'<polyline fill="none" stroke="{palette[i % len(palette)]}" stroke-width="1.4" '
                    f'points="{" ".join(xy(f, t) for f, t in curve)}"/>' for i, curve in enumerate(curves))
    legend = "".join(f'<text x="{size - 8}" y="{size - 36 - 12 * (len(curves) - i)}" font-size="10" text-anchor="end" '
                     f'fill="{palette[i % len(palette)]}">{i + 1}</text>' for i in range(len(curves)))
    return (f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" width="{size}" height="{size}" role="img">'
            f'<line x1="30" y1="{size - 30}" x2="{30 + s}" y2="{size - 30 - s}" stroke="#999" stroke-dasharray="4"/>'
            f'<line x1="30" y1="{size - 30}" x2="{30 + s}" y2="{size - 30}" stroke="{INK}"/>'
            f'<line x1="30" y1="{size - 30}" x2="30" y2="{size - 30 - s}" stroke="{INK}"/>{lines}{legend}'
            f'<text x="{30 + s}" y="{size - 12}" font-size="10" text-anchor="end">FPR</text>'
            f'<text x="34" y="14" font-size="10">TPR</text></svg>')
