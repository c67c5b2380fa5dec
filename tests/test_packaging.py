"""The four top-level packages come from this repository; config is light."""

import importlib
import pathlib
import subprocess
import sys

import pytest

from commands import REPO, run_cli


@pytest.mark.parametrize("name",
                         ["tuning", "models", "data_pipeline", "launch"])
def test_packages_import_from_this_repository(name):
    module = importlib.import_module(name)
    assert pathlib.Path(module.__file__).resolve().parent == REPO / name


def test_help_presets_and_rendering_do_not_import_tensorflow(tmp_path):
    # Login nodes often lack TensorFlow: none of these may need it.
    submit = ["submit", "slurm", "--mode", "single", "--preset", "smoke",
              "--space", "tiny", "--backend", "ray", "--algorithm", "random",
              "--max-trials", "2", "--dry-run", "--workdir",
              str(tmp_path / "w")]
    script = (
        "import sys\n"
        "from launch.cli import main\n"
        "assert main(['presets']) == 0\n"
        "assert main(['spaces', '--all']) == 0\n"
        "assert main(['spaces', 'cells']) == 0\n"
        "assert main(['presets', 'imdb', '--smoke']) == 0\n"
        f"assert main({submit!r}) == 0\n"
        "try:\n"
        "    main(['train', '--help'])\n"
        "except SystemExit as e:\n"
        "    assert e.code == 0\n"
        "heavy = {'tensorflow', 'keras', 'numpy'} & set(sys.modules)\n"
        "assert not heavy, heavy\n")
    out = subprocess.run([sys.executable, "-c", script], cwd=REPO,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr


def test_module_entry_point():
    out = run_cli("presets", timeout=60)
    assert out.returncode == 0
    assert out.stdout.startswith("smoke ")
