"""Small file helpers shared by runs, studies and reports (no TensorFlow)."""

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
