"""What a number was made with: package versions and data fingerprints
(no TensorFlow here).

    provenance(info) == {"versions": {"python": "3.11.9", ...},
                         "fingerprints": {"train": "3f2a...", ...}}
"""

import importlib.metadata
import platform

from data_pipeline.sources import DataInfo

# Distribution names, by the key `config.json` records them under.
PACKAGES = {"tensorflow": "tensorflow", "keras": "keras",
            "keras_tuner": "keras-tuner", "ray": "ray",
            "rnntune": "rnntune"}


def versions() -> dict[str, str | None]:
    """Python's and each package's installed version (None: missing)."""
    found: dict[str, str | None] = {"python": platform.python_version()}
    for key, distribution in PACKAGES.items():
        try:
            found[key] = importlib.metadata.version(distribution)
        except importlib.metadata.PackageNotFoundError:
            found[key] = None
    return found


def provenance(info: DataInfo) -> dict:
    """The versions, and a hash of each split's texts and labels."""
    return {"versions": versions(), "fingerprints": dict(info.fingerprints)}
