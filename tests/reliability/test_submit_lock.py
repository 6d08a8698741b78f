"""One submit per results root: a second one exits 2 naming the first; --status needs no lock."""

from __future__ import annotations

import json
import subprocess
import sys
import time

from cellbench.config import config_from_dict
from cellbench.paths import ResultsPaths
from jobs.submit import main as submit_main
from tests.helpers import REPO, experiment_dict, write_config


def test_second_submit_exits_2_naming_the_first(tmp_path, capsys):
    raw = experiment_dict(tmp_path / "results")
    config_path = write_config(tmp_path / "c.yaml", raw)
    paths = ResultsPaths(config_from_dict(raw).results_root)
    first = subprocess.Popen(
        [sys.executable, "jobs/submit.py", "--config", str(config_path), "--stage", "all"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.time() + 60
        while not paths.status_file("segment", "P1").exists():  # the first is running tasks
            assert first.poll() is None and time.time() < deadline, first.stdout.read()
            time.sleep(0.02)
        holder = json.loads(paths.submit_lock_holder.read_text())
        assert holder["pid"] == first.pid

        args = ["--config", str(config_path), "--stage", "all"]
        assert submit_main(args) == 2
        err = capsys.readouterr().err
        assert f"pid {first.pid} on host {holder['host']}" in err
        assert holder["started"] in err
        assert submit_main([*args, "--dry-run"]) == 0  # planning needs no lock
        assert submit_main(["--config", str(config_path), "--status"]) in (0, 1)
        capsys.readouterr()
    finally:
        output = first.communicate(timeout=600)[0]
    assert first.returncode == 0, output
    # the lock went with the first submit: the next one runs, and finds everything done
    assert submit_main(args) == 0
    assert "all 1 task(s) done, skipped" in capsys.readouterr().out
