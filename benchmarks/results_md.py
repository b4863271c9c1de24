"""benchmarks/RESULTS.md rendered from the result files, so the document cannot drift from what the
harnesses measured: every figure is a value of a benchmarks/results/*.json file (file stem as the
key, e.g. `r.nightly.total_seconds`), formatted by the filters below; the prose is in
benchmarks/RESULTS.md.j2.

    python -m benchmarks.results_md           # write benchmarks/RESULTS.md
    python -m benchmarks.results_md --check   # exit 1 if the committed file differs from a fresh render
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import jinja2

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
TEMPLATE = HERE / "RESULTS.md.j2"
OUTPUT = HERE / "RESULTS.md"

Number = int | float | Decimal


def _dec(x: Number) -> Decimal:
    # through str: the literal the JSON holds (0.7945), not its binary double (0.79449999...)
    return x if isinstance(x, Decimal) else Decimal(str(x))


def num(x: Number, places: int = 0) -> str:
    """Fixed decimals, half up as a reader rounds the JSON's literal; thousands separated."""
    return f"{_dec(x).quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP):,f}"


def signed(x: Number, places: int = 0) -> str:
    text = num(x, places)
    return text if text.startswith("-") else "+" + text


def pct(x: Number, places: int = 1) -> str:
    """A share (0.0511) as a percentage without the sign (5.11)."""
    return num(_dec(x) * 100, places)


def nearest(x: Number, step: int) -> str:
    """Rounded to a multiple of step: 247342 to 247,000 by 1000."""
    return num((_dec(x) / step).quantize(Decimal(1), rounding=ROUND_HALF_UP) * step)


def million(x: Number, places: int = 0) -> str:
    return num(_dec(x) / 1_000_000, places) + " million"


def diff(a: Number, b: Number) -> Decimal:
    """a - b exactly on the JSON's literals (0.7853 - 0.7688 = 0.0165, not 0.016499999...)."""
    return _dec(a) - _dec(b)


def ratio(a: Number, b: Number) -> Decimal:
    return _dec(a) / _dec(b)


def count_above(a: Sequence[Number], b: Sequence[Number]) -> int:
    """In how many positions a is above b (folds, runs)."""
    return sum(_dec(x) > _dec(y) for x, y in zip(a, b, strict=True))


WORDS = ["no", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve"]


def words(n: int) -> str:
    return WORDS[n] if 0 <= n < len(WORDS) else f"{n:,}"


def short(commit: str) -> str:
    return commit[:7]


def load_results(folder: Path = RESULTS) -> dict[str, Any]:
    return {p.stem: json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))}


def render(results: dict[str, Any] | None = None) -> str:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(HERE)), undefined=jinja2.StrictUndefined,  # a missing key fails
        keep_trailing_newline=True, trim_blocks=True, lstrip_blocks=True, autoescape=False)
    env.filters.update(num=num, signed=signed, pct=pct, nearest=nearest, million=million, words=words, short=short)
    env.globals.update(diff=diff, ratio=ratio, count_above=count_above)
    return env.get_template(TEMPLATE.name).render(r=load_results() if results is None else results)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--check", action="store_true", help="exit 1 if the committed file differs from a fresh render")
    args = p.parse_args(argv)
    text = render()
    name = OUTPUT.relative_to(HERE.parent) if OUTPUT.is_relative_to(HERE.parent) else OUTPUT
    if args.check:
        if not OUTPUT.exists() or OUTPUT.read_text() != text:
            print(f"{name} differs from what benchmarks/results/*.json give: run python -m benchmarks.results_md")
            return 1
        print(f"{name} is up to date")
        return 0
    OUTPUT.write_text(text)
    print(f"wrote {name} from {len(list(RESULTS.glob('*.json')))} result files")
    return 0


if __name__ == "__main__":
    sys.exit(main())
