"""HParams records read back through a real TensorBoard server."""

import json
import os
import subprocess
import sys
import time
import urllib.request

from tuning.backends.kt_workers import free_port as _free_port

from conftest import REPO


def _post(port, path, body):
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}", data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


SESSION_GROUPS = {
    "experimentName": "",
    "allowedStatuses": ["STATUS_UNKNOWN", "STATUS_SUCCESS",
                        "STATUS_FAILURE", "STATUS_RUNNING"],
    "colParams": [], "startIndex": 0, "sliceSize": 1000,
}


def check_hparams_on_server(workdir, *, keys, expected):
    """Starts TensorBoard on `workdir` and checks the HParams dashboard:
    every key in the experiment, one session per trial with its status
    (`expected`: status -> count), and every metric present."""
    port = _free_port()
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    process = subprocess.Popen(
        [sys.executable, "-m", "tensorboard.main", "--logdir", str(workdir),
         "--host", "127.0.0.1", "--port", str(port),
         "--reload_interval", "1"], cwd=REPO, env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 90
        groups = []
        while time.monotonic() < deadline:
            try:
                groups = _post(port, "/data/plugin/hparams/session_groups",
                               SESSION_GROUPS)["sessionGroups"]
                if len(groups) == sum(expected.values()):
                    break
            except (OSError, KeyError, ValueError):
                pass
            time.sleep(0.5)
        experiment = _post(port, "/data/plugin/hparams/experiment",
                           {"experimentName": ""})
        names = [h["name"] for h in experiment["hparamInfos"]]
        assert names == sorted(keys) or set(names) == set(keys)
        metric_tags = {(m["name"]["group"], m["name"]["tag"])
                       for m in experiment["metricInfos"]}
        assert ("validation", "epoch_accuracy") in metric_tags
        assert ("", "best_objective") in metric_tags
        statuses = {}
        for group in groups:
            (session,) = group["sessions"]
            statuses[session["status"]] = statuses.get(
                session["status"], 0) + 1
            values = {(m["name"]["group"], m["name"]["tag"])
                      for m in session["metricValues"]}
            assert ("", "best_objective") in values
            assert ("", "failed") in values
        assert statuses == expected
        return groups
    finally:
        process.terminate()
        process.wait(timeout=30)
