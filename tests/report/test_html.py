"""The report page: escaping, relative figure links, provenance, and a headless Chromium load.

The Chromium test builds a page with two figures and two tables, lets the browser load it
(``--dump-dom``), reads the page's own image check and saves a screenshot. It is skipped
when Chromium is missing on a developer machine and fails when it is missing in CI ($CI set);
.ci/run installs Debian's chromium.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cellbench.report.figures import kl_histogram_figure, plate_heatmap_figure, save_figure
from cellbench.report.html import collect_provenance, git_commit, write_index_html
from cellbench.report.summary import answer_lines, summary_html

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
]
TABLES = {
    "accuracy": pd.DataFrame(
        {"model": ["rf", "cnn"], "accuracy_mean": [0.91, 0.87], "accuracy_pm3se": [0.02, 0.03]}
    ),
    "Table 1 (background swap)": pd.DataFrame(
        {"model": ["pifia"], "experiment": ["base"], "mean": [0.946], "pm3se": [0.020]}
    ),
}
TABLE_IDS = [
    "table-accuracy",
    "table-table-1-background-swap",
    "table-provenance",
    "table-task-timings",
]


def build_page(report_dir: Path, **overrides) -> Path:
    figures = save_figure(
        kl_histogram_figure(np.random.default_rng(0).gamma(2, 0.4, 300)), report_dir / "kl hist"
    )
    plate = save_figure(plate_heatmap_figure({"A01": 5, "B02": 9}), report_dir / "plate")
    timings = pd.DataFrame(
        {
            "stage": ["segment", "crop"],
            "task": ["P1", "P1"],
            "state": ["done", "done"],
            "seconds": [12.5, 3.25],
        }
    )
    arguments = {
        "report_dir": report_dir,
        "title": "demo <experiment> & co",
        "tables": TABLES,
        "figures": [figures[0], plate[0]],
        "config_text": "name: demo\nnote: '<script>alert(1)</script>'\n",
        "provenance": collect_provenance(),
        "timings": timings,
        "missing": ["evaluate/cnn.seed2"],
        "summary": summary_html(answer_lines(TABLES), None, 0.5),
    }
    arguments.update(overrides)
    return write_index_html(**arguments)


def test_page_escapes_text_and_links_figures_relatively(tmp_path):
    page = build_page(tmp_path / "report").read_text()
    assert "<title>demo &lt;experiment&gt; &amp; co</title>" in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "<script>alert" not in page
    # thumbnails in a grid, each a link to its full-size figure
    assert '<a href="kl%20hist.png"><img class="thumb" src="kl%20hist.png"' in page
    assert '<a href="plate.png"><img class="thumb" src="plate.png"' in page
    # sections collapsed, the summary first; failed tasks shown open
    assert page.index('<section id="summary">') < page.index('<details id="section-tables">')
    assert (
        '<details id="section-figures">' in page and '<details id="section-missing" open>' in page
    )
    assert '<a href="kl%20hist.pdf">PDF</a>' in page
    for table_id in TABLE_IDS:
        assert f'id="{table_id}"' in page
    assert "<li>evaluate/cnn.seed2</li>" in page
    assert "12.500" in page and "segment" in page


def test_no_missing_tasks_and_no_timings(tmp_path):
    page = build_page(tmp_path, missing=[], timings=None, figures=[]).read_text()
    assert "None: every task finished." in page
    assert "No timings recorded." in page and "No figures." in page


def test_provenance_names_versions_commit_and_container(tmp_path, monkeypatch):
    image = tmp_path / "cellbench.sif"
    image.write_bytes(b"not really an image")
    monkeypatch.setenv("APPTAINER_CONTAINER", str(image))
    info = collect_provenance()
    for package in (
        "cellbench",
        "numpy",
        "torch",
        "scikit-learn",
        "scikit-image",
        "h5py",
        "pandas",
    ):
        assert re.match(r"\d+\.", info[f"package {package}"]), package
    assert re.fullmatch(r"[0-9a-f]{40}|unknown", info["git commit"])
    assert info["container image"] == str(image)
    assert info["container image sha256"] == hashlib.sha256(image.read_bytes()).hexdigest()
    assert git_commit(tmp_path) == "unknown"


def chromium_or_skip() -> Path:
    if CHROMIUM.exists():
        return CHROMIUM
    if os.environ.get("CI"):
        pytest.fail(f"{CHROMIUM} is missing in CI: install Debian's chromium (see .ci/run)")
    pytest.skip(f"{CHROMIUM} not installed (apt-get install chromium)")


def run_chromium(chromium: Path, profile: Path, *arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(chromium), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *arguments],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_page_renders_in_headless_chromium(tmp_path):
    chromium = chromium_or_skip()
    page = build_page(tmp_path / "report")
    url = page.resolve().as_uri()
    done = run_chromium(
        chromium, tmp_path / "profile", "--virtual-time-budget=5000", "--dump-dom", url
    )
    assert done.returncode == 0, done.stderr[-2000:]
    check = re.search(r'<div id="cellbench-check"[^>]*>', done.stdout)
    assert check is not None, f"the page's check did not run; DOM: {done.stdout[:2000]}"
    attributes = dict(re.findall(r'data-([\w-]+)="(\d+)"', check.group(0)))
    assert attributes["images-broken"] == "0"
    assert attributes["images-loaded"] == "2"
    assert int(attributes["tables"]) == len(TABLE_IDS)
    for table_id in TABLE_IDS:
        assert f'id="{table_id}"' in done.stdout
    assert "accuracy on held-out cells: rf 0.910 ± 0.020, within 3 SE of cnn" in done.stdout
    for thumbnail in re.findall(r'<a href="([^"]+)"><img class="thumb" src="([^"]+)"', done.stdout):
        assert thumbnail[0] == thumbnail[1]  # a click opens the figure itself
        assert (page.parent / thumbnail[0].replace("%20", " ")).is_file()

    screenshot = tmp_path / "report_screenshot.png"
    done = run_chromium(
        chromium,
        tmp_path / "profile-shot",
        "--window-size=1280,2000",
        "--virtual-time-budget=5000",
        f"--screenshot={screenshot}",
        url,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert screenshot.stat().st_size > 10_000
    if os.environ.get("CELLBENCH_SCREENSHOT_DIR"):
        target = Path(os.environ["CELLBENCH_SCREENSHOT_DIR"])
        target.mkdir(parents=True, exist_ok=True)
        shutil.copy(screenshot, target / screenshot.name)


def test_a_broken_image_is_reported_by_the_page(tmp_path):
    chromium = chromium_or_skip()
    page = build_page(tmp_path / "report")
    (tmp_path / "report" / "plate.png").unlink()
    done = run_chromium(
        chromium,
        tmp_path / "profile",
        "--virtual-time-budget=5000",
        "--dump-dom",
        page.resolve().as_uri(),
    )
    check = re.search(r'<div id="cellbench-check"[^>]*>', done.stdout)
    assert check is not None
    assert 'data-images-loaded="1"' in check.group(0)
    assert 'data-images-broken="1"' in check.group(0)


def test_tables_sort_by_a_column_in_the_browser(tmp_path):
    chromium = chromium_or_skip()
    page = build_page(tmp_path / "report")
    rows = re.compile(r'<table[^>]*id="table-accuracy"[^>]*>.*?<tbody>(.*?)</tbody>', re.S)
    before = rows.search(page.read_text()).group(1)
    assert before.index(">rf<") < before.index(">cnn<")  # as written: rf first
    # column 1 (accuracy_mean) ascending, as a click on its header does; the URL says which
    url = page.resolve().as_uri() + "#sort=table-accuracy:1"
    done = run_chromium(
        chromium, tmp_path / "profile", "--virtual-time-budget=5000", "--dump-dom", url
    )
    assert done.returncode == 0, done.stderr[-2000:]
    after = rows.search(done.stdout)
    assert after is not None and 'data-sorted="1:asc"' in done.stdout
    assert after.group(1).index(">cnn<") < after.group(1).index(">rf<")  # 0.87 before 0.91
