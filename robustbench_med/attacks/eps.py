"""Parse eps values from the command line: ``4/255``, ``0.0157``, ranges ``0.01:0.1:10``."""

from __future__ import annotations

import math
import re

from robustbench_med.errors import BadInputError

_DECIMAL = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)(e-?\d+)?\s*$")
ALLOWED = "a number in (0, 1] such as 0.0157, or a fraction such as 4/255"


def parse_eps(text: str | float) -> float:
    """An L-inf radius in pixel units ([0, 1] images)."""
    if isinstance(text, (int, float)):
        value = float(text)
    else:
        raw = text.strip()
        if _DECIMAL.match(raw):
            value = float(raw)
        elif "/" in raw and len(raw.split("/")) == 2 and all(_DECIMAL.match(p) for p in raw.split("/")):
            num, den = (float(p) for p in raw.split("/"))
            if den == 0:
                raise BadInputError(f"malformed eps '{text}': division by zero (expected {ALLOWED})")
            value = num / den
        else:
            raise BadInputError(f"malformed eps '{text}' (expected {ALLOWED})")
    if not math.isfinite(value) or not 0.0 < value <= 1.0:
        raise BadInputError(f"eps {text} is out of range (expected {ALLOWED})")
    return value


def parse_eps_list(text: str) -> list[float]:
    """Comma-separated eps values, or a range ``start:stop:count`` (inclusive, evenly spaced)."""
    text = text.strip()
    if text.count(":") == 2:
        start_s, stop_s, count_s = text.split(":")
        start, stop = parse_eps(start_s), parse_eps(stop_s)
        if not count_s.strip().isdigit() or int(count_s) < 1:
            raise BadInputError(f"malformed eps range '{text}': the count must be a positive "
                                "integer (expected start:stop:count, e.g. 0.01:0.1:10)")
        count = int(count_s)
        if stop < start:
            raise BadInputError(f"malformed eps range '{text}': stop is below start")
        if count == 1:
            return [start]
        return [round(start + i * (stop - start) / (count - 1), 10) for i in range(count)]
    values = [parse_eps(part) for part in text.split(",") if part.strip()]
    if not values:
        raise BadInputError(f"malformed eps '{text}' (expected {ALLOWED})")
    return sorted(set(values))


def format_eps(eps: float) -> str:
    """``0.0156862`` -> ``4/255``; other values as decimals."""
    if eps == 0:
        return "0"
    k = eps * 255
    return f"{round(k):d}/255" if abs(k - round(k)) < 1e-6 else f"{eps:.4g}"
