"""`rnntune tensorboard` on a real TensorBoard server: a busy port is a
one-line error, and a server open to the network says so."""

import json
import os
import re
import socket
import subprocess
import sys
import urllib.request

from commands import REPO, run_cli
from polling import wait_until
from servers import free_port


def test_tensorboard_on_a_busy_port_says_so_and_serves_nothing(tmp_path):
    with socket.socket() as held:  # another program's server
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        result = run_cli("tensorboard", "--workdir", str(tmp_path),
                         "--port", str(port), timeout=120)
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith(f"rnntune: error: port {port} is in "
                                    "use"), result.stderr
    assert "choose another with --port" in result.stderr
    assert result.stderr.count("\n") == 1, result.stderr  # no traceback
    assert "http://" not in result.stdout + result.stderr


def test_tensorboard_on_every_interface_warns_and_prints_a_url_that_opens(
        tmp_path):
    port = free_port()
    out, err = tmp_path / "out.txt", tmp_path / "err.txt"
    (tmp_path / "run").mkdir()
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    with open(out, "w") as stdout, open(err, "w") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "launch", "tensorboard", "--workdir",
             str(tmp_path / "run"), "--host", "0.0.0.0", "--port",
             str(port)],
            cwd=REPO, env=env, stdout=stdout, stderr=stderr)

    def printed_url():
        assert process.poll() is None, err.read_text()
        found = re.search(r"http://\S+/", out.read_text())
        return found and found.group()

    try:
        url = wait_until(printed_url, timeout=90, what="the URL it serves")
        with urllib.request.urlopen(url + "data/runs",
                                    timeout=10) as response:
            assert json.loads(response.read()) == []  # no runs yet
    finally:
        process.terminate()
        process.wait(timeout=30)
    printed = out.read_text() + err.read_text()
    assert "http://0.0.0.0" not in printed, printed
    assert url == f"http://127.0.0.1:{port}/"
    warnings = [line for line in err.read_text().splitlines()
                if line.startswith("rnntune: warning:")]
    assert len(warnings) == 1, printed
    assert "to the network without authentication" in warnings[0]
    assert "configs and data paths" in warnings[0]
