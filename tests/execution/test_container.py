"""The Apptainer definition: apptainer is not installable here, so its text is checked."""

import re

from tests.helpers import REPO

DEFINITION = (REPO / "containers" / "cellbench.def").read_text()


def sections(text: str) -> dict[str, str]:
    parts = re.split(r"^%(\w+)\s*$", text, flags=re.MULTILINE)
    return {name: body.strip() for name, body in zip(parts[1::2], parts[2::2], strict=True)}


def test_header_uses_a_cuda_pytorch_base():
    header = DEFINITION.split("%", 1)[0]
    assert re.search(r"^Bootstrap: docker$", header, re.MULTILINE)
    assert re.search(
        r"^From: pytorch/pytorch:[\d.]+-cuda[\d.]+-cudnn\d+-runtime$", header, re.MULTILINE
    )


def test_sections_install_run_and_test():
    found = sections(DEFINITION)
    assert {"labels", "files", "post", "environment", "runscript", "test"} <= set(found)
    assert "scripts/install.sh python --no-torch --extras all" in found["post"]
    assert found["runscript"] == 'exec cellbench "$@"'
    for module in ["cellbench", "torch", "cellpose", "stardist", "tensorflow"]:
        assert module in found["test"]


def test_every_copied_path_exists():
    for line in sections(DEFINITION)["files"].splitlines():
        source, destination = line.split()
        assert (REPO / source).exists(), source
        assert destination.startswith("/opt/cellbench/")
