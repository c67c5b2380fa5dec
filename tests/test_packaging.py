"""The four top-level packages come from this repository; config is light."""

import importlib
import pathlib
import subprocess
import sys

import pytest

from conftest import REPO, run_cli


@pytest.mark.parametrize("name",
                         ["tuning", "models", "data_pipeline", "launch"])
def test_packages_import_from_this_repository(name):
    module = importlib.import_module(name)
    assert pathlib.Path(module.__file__).resolve().parent == REPO / name


def test_help_and_presets_do_not_import_tensorflow():
    script = (
        "import sys\n"
        "from launch.cli import main\n"
        "assert main(['presets']) == 0\n"
        "try:\n"
        "    main(['train', '--help'])\n"
        "except SystemExit as e:\n"
        "    assert e.code == 0\n"
        "heavy = {'tensorflow', 'keras'} & set(sys.modules)\n"
        "assert not heavy, heavy\n")
    out = subprocess.run([sys.executable, "-c", script], cwd=REPO,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr


def test_module_entry_point():
    out = run_cli("presets", timeout=60)
    assert out.returncode == 0
    assert out.stdout.startswith("smoke ")
