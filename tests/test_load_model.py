"""`import rnntune` is the one import an exported model needs.

A fresh process imports `rnntune` and nothing else of the project, then
loads exported models and predicts on raw strings (raw series values and
lengths for a series preset's model): the shared smoke run's
in the default tier; in the slow tier (about 45 s on 2 cores), a run of
every preset (its model whole, its data and epochs shrunk) and of every
pooling no preset uses.
"""

import importlib
import json
import os
import pathlib
import pkgutil
import subprocess
import sys

import keras
import numpy as np
import pytest
from commands import REPO

import data_pipeline
import models
from launch.presets import PRESETS, get_preset
from models.config import POOLING_NAMES
from tuning.trial.config import apply_overrides

# The preset's model as it is; a few texts, one short epoch.
SHRINK = {"data.max_examples": 200, "data.sequence_length": 50,
          "train.epochs": 1, "train.min_examples_seen": 0,
          "train.batch_size": 32}
TEXTS = ["A wonderful film.", "Dull, and far too long.", "!!!", ""]

LOAD = """
import json, sys
import rnntune
import keras, numpy as np

def inputs(model, texts):
    if not isinstance(model.input, dict):
        return np.asarray(texts, dtype=object)
    # Three raw series of the model's channels: whole, half, one step.
    channels = model.input["values"].shape[-1]
    values = np.linspace(-3, 3, 3 * 10 * channels, dtype="float32")
    return {"values": values.reshape(3, 10, channels),
            "lengths": np.array([10, 5, 1], "int32")}

texts, paths = json.loads(sys.stdin.read())
project = {"tuning", "launch", "ray", "keras_tuner"} & set(sys.modules)
registered = [name for name in keras.saving.get_custom_objects()
              if name.startswith("rnntune>")]
out = {"imported": sorted(project), "registered": registered, "models": {}}
for name, path in paths.items():
    model = keras.models.load_model(path)
    layers, stack = set(), [model]
    while stack:
        layer = stack.pop()
        layers.add(type(layer).__name__)
        stack.extend(getattr(layer, "layers", []))
    out["models"][name] = {
        "probs": model.predict(inputs(model, texts), verbose=0).tolist(),
        "layers": sorted(layers)}
print(json.dumps(out))
"""


def _configs() -> dict:
    """Every preset, shrunk, and the smoke preset with each pooling no
    preset uses (so every registered layer is in some model)."""
    configs = {name: apply_overrides(get_preset(name), SHRINK)
               for name in PRESETS if name != "smoke"}
    used = {get_preset(name).model.pooling for name in PRESETS}
    for pooling in POOLING_NAMES:
        if pooling not in used:
            configs[f"smoke pooling={pooling}"] = apply_overrides(
                get_preset("smoke"), {**SHRINK, "model.pooling": pooling})
    return configs


def _load_elsewhere(paths: dict) -> dict:
    """Loads each model in a fresh process that imports only `rnntune`,
    and predicts `TEXTS` there; checks the predictions against the model
    loaded here. Returns each model's layer class names."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    out = subprocess.run(
        [sys.executable, "-c", LOAD], check=False, cwd=REPO, env=env,
        input=json.dumps([TEXTS, {k: str(v) for k, v in paths.items()}]),
        capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    loaded = json.loads(out.stdout.strip().splitlines()[-1])
    assert loaded["imported"] == []  # no tuning backend, no Ray
    # Whatever the model libraries register, `import rnntune` registers.
    for package in (models, data_pipeline):
        for module in pkgutil.iter_modules(package.__path__):
            importlib.import_module(f"{package.__name__}.{module.name}")
    registered = {name for name in keras.saving.get_custom_objects()
                  if name.startswith("rnntune>")}
    assert registered and registered <= set(loaded["registered"])
    assert set(loaded["models"]) == set(paths)
    scope = {}
    exec(LOAD.split("texts, paths =")[0], scope)  # its `inputs`
    for name, path in paths.items():
        # The same probabilities as the model the run exported.
        model = keras.models.load_model(path)
        expected = model.predict(scope["inputs"](model, TEXTS), verbose=0)
        np.testing.assert_allclose(loaded["models"][name]["probs"],
                                   expected, atol=1e-5, err_msg=name)
    return {name: set(m["layers"]) for name, m in loaded["models"].items()}


def test_import_rnntune_alone_loads_an_exported_model(smoke_run):
    layers = _load_elsewhere({"smoke": smoke_run[0] / "model.keras"})
    assert "TextVectorization" in layers["smoke"]


@pytest.mark.slow
def test_import_rnntune_alone_loads_a_model_of_every_preset(smoke_run,
                                                            tmp_path):
    from tuning.trial.train import train_and_evaluate

    paths = {"smoke": smoke_run[0] / "model.keras"}
    for name, config in _configs().items():
        workdir = tmp_path / name.replace(" ", "_").replace("=", "_")
        train_and_evaluate(config, workdir, report=lambda _: None)
        paths[name] = workdir / "model.keras"
    assert set(paths) >= set(PRESETS)
    layers = set().union(*_load_elsewhere(paths).values())
    # Every piece of rnntune's own was in some model that loaded.
    assert {"MaskedMaxPooling1D", "AttentionPooling1D", "LengthMask"} <= layers


def test_rnntune_imports_from_this_repository():
    import rnntune

    assert pathlib.Path(rnntune.__file__).resolve().parent == REPO
