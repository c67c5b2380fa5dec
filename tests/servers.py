"""Real servers for the tests: free ports, a TensorBoard process (the
`tensorboard` fixture starts it) and what its HTTP API serves."""

import json
import os
import pathlib
import socket
import subprocess
import sys
import urllib.request

from commands import REPO
from polling import wait_until


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get_json(port: int, path: str):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}",
                                timeout=10) as response:
        return json.loads(response.read())


def post(port: int, path: str, body):
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}", data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


class TensorBoard:
    """A real `tensorboard` server on 127.0.0.1 serving `logdir` (reloaded
    every second), answering HTTP once built; `stop()` ends it.

    Attributes:
        logdir: the directory it serves.
        port: its port on 127.0.0.1.
    """

    def __init__(self, logdir: str | os.PathLike):
        self.logdir = pathlib.Path(logdir)
        self.port = free_port()
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tensorboard.main", "--logdir",
             str(self.logdir), "--host", "127.0.0.1", "--port",
             str(self.port), "--reload_interval", "1"], cwd=REPO, env=env,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_until(self._answers, timeout=90,
                       what=f"TensorBoard on {self.logdir} to answer")
        except BaseException:
            self.stop()
            raise

    def _answers(self) -> bool:
        code = self.process.poll()
        assert code is None, f"TensorBoard exited with code {code}"
        try:
            self.get("/data/runs")
        except OSError:
            return False
        return True

    def get(self, path: str):
        """`GET path`'s JSON answer."""
        return get_json(self.port, path)

    def post(self, path: str, body):
        """`POST path` with a JSON body; its JSON answer."""
        return post(self.port, path, body)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)


# The HParams plugin's request for every session group (it must list the
# statuses, or nothing comes back).
SESSION_GROUPS = {
    "experimentName": "",
    "allowedStatuses": ["STATUS_UNKNOWN", "STATUS_SUCCESS",
                        "STATUS_FAILURE", "STATUS_RUNNING"],
    "colParams": [], "startIndex": 0, "sliceSize": 1000,
}


def session_groups(server: TensorBoard, count: int) -> list[dict]:
    """The HParams session groups once `count` of them are served."""

    def served():
        try:
            groups = server.post("/data/plugin/hparams/session_groups",
                                 SESSION_GROUPS)["sessionGroups"]
        except (OSError, KeyError, ValueError):
            return None
        return groups if len(groups) == count else None

    return wait_until(served, timeout=90,
                      what=f"TensorBoard to show {count} HParams sessions")


def check_hparams_on_server(server: TensorBoard, *, keys, expected):
    """Checks a study's HParams dashboard as `server` serves it: every
    key in the experiment, one session per trial with its status
    (`expected`: status -> count), and every metric present."""
    groups = session_groups(server, sum(expected.values()))
    experiment = server.post("/data/plugin/hparams/experiment",
                             {"experimentName": ""})
    names = [h["name"] for h in experiment["hparamInfos"]]
    assert set(names) == {*keys, "cudnn"}  # cudnn: derived, per trial
    metric_tags = {(m["name"]["group"], m["name"]["tag"])
                   for m in experiment["metricInfos"]}
    assert ("validation", "epoch_accuracy") in metric_tags
    assert ("", "best_objective") in metric_tags
    statuses = {}
    for group in groups:
        (session,) = group["sessions"]
        statuses[session["status"]] = statuses.get(session["status"], 0) + 1
        values = {(m["name"]["group"], m["name"]["tag"])
                  for m in session["metricValues"]}
        assert ("", "best_objective") in values
        assert ("", "failed") in values
        assert isinstance(dict(group["hparams"]).get("cudnn"), bool)
    assert statuses == expected
    return groups

