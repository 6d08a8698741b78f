"""The report page: one ``index.html`` with the tables, figures, config and provenance.

Figures are linked relatively (``<img src="figure2.png">``), so the report folder can be moved
or served as it is. Every text that reaches the page is escaped. A short script at the end of
the page records, once the page has loaded, how many images loaded and how many did not in
``<div id="cellbench-check" data-images-loaded="N" data-images-broken="M">``, which a headless
browser can read back (see tests/report/test_html.py).

Examples
--------
>>> write_index_html(report_dir, "demo", {"accuracy": table}, [report_dir / "figure2.png"],
...                  config_text, collect_provenance(), timings=None, missing=[])  # doctest: +SKIP
"""

from __future__ import annotations

import datetime
import hashlib
import html
import os
import platform
import re
import subprocess
import sys
from collections.abc import Mapping, Sequence
from importlib import metadata
from pathlib import Path
from urllib.parse import quote

import pandas as pd

from cellbench.io.atomic import write_text

PACKAGES = ("cellbench", "numpy", "torch", "scikit-learn", "scikit-image", "h5py", "pandas")
CONTAINER_ENV = ("APPTAINER_CONTAINER", "SINGULARITY_CONTAINER")
REPO_DIR = Path(__file__).resolve().parents[2]

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
th { background: #f0f0f0; }
#table-provenance td { text-align: left; }
td:first-child, th:first-child { text-align: left; }
figure { display: inline-block; margin: 0.5em; vertical-align: top; }
figure img { max-width: 100%; border: 1px solid #ddd; }
#figures-grid figure { width: 260px; }
#figures-grid figure img.thumb { width: 260px; height: 200px; object-fit: contain; }
#figures-grid figcaption { font-size: 0.8em; overflow-wrap: anywhere; }
#summary { background: #f4f8fb; border: 1px solid #cdd9e5; padding: 0.5em 1.5em; }
#summary img.chart { max-width: 700px; }
details > summary { cursor: pointer; }
details > summary h2 { display: inline; }
th.sortable { cursor: pointer; }
th.sortable::after { content: " \\2195"; color: #999; }
pre { background: #f7f7f7; padding: 1em; overflow-x: auto; }
nav a { margin-right: 1em; }
"""

# Sorts a table by a column when its header is clicked (numbers as numbers, else text; a
# second click reverses). `#sort=<table id>:<column index>[:desc]` in the URL sorts on load.
_SORT_SCRIPT = r"""
function cellbenchSort(table, column, descending) {
  var body = table.tBodies[0];
  var rows = Array.prototype.slice.call(body.rows);
  var key = function (row) {
    var text = row.cells[column] ? row.cells[column].textContent.trim() : "";
    var number = parseFloat(text);
    return isNaN(number) || !/^[-+]?[0-9.eE+-]+$/.test(text) ? text.toLowerCase() : number;
  };
  rows.sort(function (a, b) {
    var x = key(a), y = key(b);
    if (typeof x !== typeof y) { x = String(x); y = String(y); }
    var order = x < y ? -1 : x > y ? 1 : 0;
    return descending ? -order : order;
  });
  rows.forEach(function (row) { body.appendChild(row); });
  table.setAttribute("data-sorted", column + (descending ? ":desc" : ":asc"));
}
document.querySelectorAll("table.dataframe").forEach(function (table) {
  var headers = table.tHead ? table.tHead.rows[0].cells : [];
  Array.prototype.forEach.call(headers, function (header, column) {
    header.classList.add("sortable");
    header.addEventListener("click", function () {
      var descending = table.getAttribute("data-sorted") === column + ":asc";
      cellbenchSort(table, column, descending);
    });
  });
});
var wanted = /^#sort=([\w-]+):(\d+)(:desc)?$/.exec(window.location.hash);
if (wanted && document.getElementById(wanted[1])) {
  cellbenchSort(document.getElementById(wanted[1]), Number(wanted[2]), Boolean(wanted[3]));
}
"""

# Counts images that loaded (complete, with a width) and broken ones, after the load event.
_CHECK_SCRIPT = """
window.addEventListener("load", function () {
  var images = Array.prototype.slice.call(document.images);
  var loaded = images.filter(function (i) { return i.complete && i.naturalWidth > 0; });
  var check = document.createElement("div");
  check.id = "cellbench-check";
  check.hidden = true;
  check.setAttribute("data-images-loaded", String(loaded.length));
  check.setAttribute("data-images-broken", String(images.length - loaded.length));
  check.setAttribute("data-tables", String(document.querySelectorAll("table").length));
  document.body.appendChild(check);
});
"""


def package_versions(packages: Sequence[str] = PACKAGES) -> dict[str, str]:
    """Installed version of each distribution, or "not installed"."""
    versions = {}
    for name in packages:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def git_commit(repo_dir: Path = REPO_DIR) -> str:
    """The checked-out commit of `repo_dir`, or "unknown" (no git, not a repository)."""
    try:
        done = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=repo_dir,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    commit = done.stdout.strip()
    return (
        commit if done.returncode == 0 and re.fullmatch(r"[0-9a-f]{40,64}", commit) else "unknown"
    )


def file_sha256(path: Path, chunk_bytes: int = 1 << 20) -> str:
    """The SHA-256 of a file (a container image), read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_bytes):
            digest.update(chunk)
    return digest.hexdigest()


def collect_provenance(
    *, container_image: str | Path | None = None, repo_dir: Path = REPO_DIR
) -> dict[str, str]:
    """What produced a report: Python and package versions, git commit, container image.

    Parameters
    ----------
    container_image : str or Path, optional
        The Apptainer image the tasks ran in; defaults to $APPTAINER_CONTAINER or
        $SINGULARITY_CONTAINER when the report is built inside one. When the file is readable
        its SHA-256 is recorded as the image digest.
    repo_dir : Path
        Where to ask git for the commit.
    """
    info = {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        **{f"package {k}": v for k, v in package_versions().items()},
        "git commit": git_commit(repo_dir),
    }
    image = container_image or next((os.environ[k] for k in CONTAINER_ENV if k in os.environ), None)
    if image:
        info["container image"] = str(image)
        if Path(image).is_file():
            info["container image sha256"] = file_sha256(Path(image))
    return info


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "table"


def _table_html(name: str, frame: pd.DataFrame, *, heading: bool = True) -> str:
    table_id = f"table-{_slug(name)}"
    title = f"<h3>{html.escape(name)}</h3>\n" if heading else ""
    if frame.empty:
        return f'{title}<p id="{table_id}">No rows.</p>'
    body = frame.to_html(
        index=False, table_id=table_id, float_format="{:.3f}".format, escape=True, border=0
    )
    return title + body


def _figure_html(report_dir: Path, path: Path) -> str:
    relative = Path(os.path.relpath(Path(path).resolve(), Path(report_dir).resolve())).as_posix()
    src = html.escape(quote(relative))
    caption = html.escape(Path(path).stem)
    pdf = Path(path).with_suffix(".pdf")
    link = ""
    if Path(path).suffix.lower() != ".pdf" and pdf.is_file():
        pdf_rel = Path(os.path.relpath(pdf.resolve(), Path(report_dir).resolve())).as_posix()
        link = f' (<a href="{html.escape(quote(pdf_rel))}">PDF</a>)'
    return (
        f'<figure><a href="{src}"><img class="thumb" src="{src}" alt="{caption}"></a>'
        f"<figcaption>{caption}{link}</figcaption></figure>"
    )


def _key_value_html(table_id: str, values: Mapping[str, object]) -> str:
    rows = "".join(
        f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>"
        for k, v in values.items()
    )
    return f'<table id="{table_id}">{rows}</table>'


def _section(anchor: str, title: str, body: str, *, open_: bool = False) -> str:
    """A section collapsed by default (``<details>``), opened by a click or its anchor link."""
    opened = " open" if open_ else ""
    return (
        f'<details id="section-{anchor}"{opened}><summary><h2 id="{anchor}">{title}</h2>'
        f"</summary>\n{body}\n</details>"
    )


def index_html(
    report_dir: Path,
    title: str,
    tables: Mapping[str, pd.DataFrame],
    figures: Sequence[Path],
    config_text: str,
    provenance: Mapping[str, object],
    timings: pd.DataFrame | None,
    missing: Sequence[str],
    summary: str = "",
) -> str:
    """The page as a string; see `write_index_html` for the parameters."""
    name = html.escape(title)
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    sections = ["tables", "figures", "config", "provenance", "timings", "missing"]
    nav = "".join(f'<a href="#{s}">{s}</a>' for s in sections)
    tables_html = "\n".join(_table_html(k, v) for k, v in tables.items()) or "<p>No tables.</p>"
    figures_html = "\n".join(_figure_html(report_dir, p) for p in figures) or "<p>No figures.</p>"
    timings_html = (
        _table_html("task timings", timings, heading=False)
        if timings is not None and not timings.empty
        else '<p id="table-task-timings">No timings recorded.</p>'
    )
    missing_html = "".join(f"<li>{html.escape(t)}</li>" for t in missing)
    missing_html = (
        f'<ul id="missing-tasks">{missing_html}</ul>'
        if missing
        else '<p id="missing-tasks">None: every task finished.</p>'
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{name}</title><style>{_STYLE}</style></head>
<body>
<h1>{name}</h1>
<p>Report written {stamp}.</p>
{summary}
<nav>{nav}</nav>
{_section("tables", "Tables", tables_html)}
{_section("figures", "Figures", f'<div id="figures-grid">{figures_html}</div>')}
{_section("config", "Config", f'<pre id="config-text">{html.escape(config_text)}</pre>')}
{_section("provenance", "Provenance", _key_value_html("table-provenance", provenance))}
{_section("timings", "Task timings", timings_html)}
{_section("missing", "Failed or missing tasks", missing_html, open_=bool(missing))}
<script>{_SORT_SCRIPT}</script>
<script>{_CHECK_SCRIPT}</script>
</body></html>
"""


def write_index_html(
    report_dir: Path,
    title: str,
    tables: Mapping[str, pd.DataFrame],
    figures: Sequence[Path],
    config_text: str,
    provenance: Mapping[str, object] | None,
    timings: pd.DataFrame | None,
    missing: Sequence[str],
    summary: str = "",
) -> Path:
    """Write ``<report_dir>/index.html`` atomically and return its path.

    Parameters
    ----------
    report_dir : Path
        The report folder; figures are linked relative to it.
    title : str
        The experiment's name.
    tables : mapping of str to DataFrame
        Name -> table; each becomes ``<table id="table-<slug of name>">``.
    figures : sequence of Path
        Image files (PNG, SVG), preferably inside `report_dir`; a PDF beside one is linked.
    config_text : str
        The experiment's YAML, shown as it is.
    provenance : mapping, optional
        Name -> value, e.g. from `collect_provenance`; None collects it now.
    timings : DataFrame, optional
        One row per task (e.g. stage, task, state, seconds).
    missing : sequence of str
        Failed or missing tasks, named ``stage/task``.
    summary : str
        HTML of the block that opens the page (`cellbench.report.summary.summary_html`).
    """
    report_dir = Path(report_dir)
    if provenance is None:
        provenance = collect_provenance()
    page = index_html(
        report_dir, title, tables, figures, config_text, provenance, timings, missing, summary
    )
    path = report_dir / "index.html"
    write_text(path, page)
    return path
