"""Small helpers shared by runs, studies and reports: whole-file writes,
JSON, durations (no TensorFlow)."""

import json
import math
import os
import pathlib


def write_atomic(path: pathlib.Path, text: str) -> None:
    """Writes `text` to `path` so that a reader never sees half of it."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def write_json(path: pathlib.Path, data) -> None:
    write_atomic(path, json.dumps(data, indent=2) + "\n")


def json_safe(value):
    """NaN and infinities become None (null), which strict JSON readers
    accept."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def format_duration(seconds: float) -> str:
    """`1h02m03s`, `4m05s` or `0m07s`."""
    minutes, seconds = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return (f"{hours}h{minutes:02d}m{seconds:02d}s" if hours
            else f"{minutes}m{seconds:02d}s")
