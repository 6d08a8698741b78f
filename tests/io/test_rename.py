import argparse
import os
import re
from pathlib import Path

import pytest

from cellbench.errors import CellbenchError
from cellbench.io.naming import SCHEMES, parse_names, well_name
from cellbench.io.rename import add_rename_command, apply_renames, plan_renames

# ExampleHuman (CellProfiler example): AS_09125_050116030001_D03f00d0.tif, sites from f00,
# channels d0-d2.
EXAMPLE_HUMAN = r"^AS_\d+_\d+_(?P<well>[A-P]\d{2})f(?P<site>\d{2})d(?P<channel>\d)$"
GUIDS = [
    "B1A7ADEA-8896-4C7D-8C63-663265374B72",
    "5C6481AB-0000-4C7D-8C63-663265374B72",
    "0A1B2C3D-1111-2222-3333-444455556666",
]


def make_files(folder: Path, names: list[str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).write_text(f"pixels of {name}")
    return folder


def targets(plan) -> dict[str, str]:
    return {source.name: target.name for source, target in plan}


# --- name schemes -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("groups", "well"),
    [
        ({"well": "B2"}, "B02"),
        ({"well": "B02"}, "B02"),
        ({"well": "p24"}, "P24"),
        ({"row": "03", "column": "04"}, "C04"),
        ({"row": "C", "column": "4"}, "C04"),
        ({"row": "16", "column": "24"}, "P24"),
        ({"row": "a", "column": "01"}, "A01"),
    ],
)
def test_well_name(groups, well):
    assert well_name(groups) == well


@pytest.mark.parametrize(
    "groups",
    [
        {"well": "B25"},
        {"well": "Q01"},
        {"well": "B00"},
        {"well": "AB01"},
        {"row": "17", "column": "01"},
        {"row": "Q", "column": "01"},
        {"row": "A", "column": "25"},
        {"row": "A", "column": "00"},
        {"row": "A"},
        {"site": "1"},
    ],
)
def test_well_name_refuses(groups):
    with pytest.raises(CellbenchError):
        well_name(groups)


def test_xyyzz_scheme_accepts_exactly_the_x_yy_zz_names():
    # Row letter A-P (either case), column 01-24, site 01 or more, nothing after.
    good = ["A-01-01", "B-03-12", "P-24-99", "c-10-02"]
    bad = ["A-1-01", "Q-01-01", "A-25-01", "A-00-01", "A-01-00", "A-01-01.tif", "AA-01-01"]
    pattern = re.compile(SCHEMES["xyyzz"])
    for name in good + bad:
        assert (pattern.match(name) is not None) == (name in good), name


def test_phenix_and_bbbc021_image_schemes():
    phenix = parse_names(["r03c04f01p01-ch2sk1fk1fl1", "r16c24f12"], "phenix")
    assert phenix[0]["row"] == "03" and phenix[0]["column"] == "04"
    assert phenix[0]["site"] == "01" and phenix[0]["channel"] == "2"
    assert well_name(phenix[0]) == "C04"
    assert phenix[1]["channel"] is None and well_name(phenix[1]) == "P24"

    names = [f"B02_s1_w1{GUIDS[0]}", f"Week1_22123_B11_s4_w2{GUIDS[1]}", f"C3_s2_w4{GUIDS[2]}"]
    parsed = parse_names(names, "bbbc021_image")
    assert [(well_name(p), p["site"], p["channel"]) for p in parsed] == [
        ("B02", "1", "1"),
        ("B11", "4", "2"),
        ("C03", "2", "4"),
    ]
    # a crop name (trailing _<cell>) is not a field image
    with pytest.raises(CellbenchError):
        parse_names([f"B02_s1_w1{GUIDS[0]}_180"], "bbbc021_image")


def test_parse_names_lists_every_bad_name_with_the_pattern():
    with pytest.raises(CellbenchError) as info:
        parse_names(["r01c01f01", "bad", "r1c1f1", "r02c02f02-ch1"], "phenix")
    message = str(info.value)
    assert "2 of 4 name(s)" in message
    assert "bad" in message and "r1c1f1" in message and "r01c01f01" not in message
    assert "'phenix'" in message and SCHEMES["phenix"] in message


def test_parse_names_shows_50_bad_names_then_a_count():
    bad = [f"junk{i:03d}" for i in range(60)]
    with pytest.raises(CellbenchError) as info:
        parse_names(bad, "xyyzz")
    message = str(info.value)
    assert "junk049" in message and "junk050" not in message
    assert "and 10 more" in message


def test_parse_names_with_a_raw_regex_and_an_invalid_one():
    assert parse_names(["x7"], r"^x(?P<site>\d)$") == [{"name": "x7", "site": "7"}]
    with pytest.raises(CellbenchError, match="not a valid regular expression"):
        parse_names(["x"], "(?P<oops")


# --- plans --------------------------------------------------------------------------------


def test_plan_xyyzz_folder(tmp_path):
    folder = make_files(tmp_path / "fields", ["A-01-01.tif", "b-02-03.tif", ".DS_Store"])
    (folder / "sub").mkdir()
    (folder / "sub" / "junk.txt").write_text("ignored: not in the folder itself")
    plan = plan_renames(folder, "xyyzz")
    assert plan == [
        (folder / "A-01-01.tif", folder / "renamed" / "A-01-01.tif"),
        (folder / "b-02-03.tif", folder / "renamed" / "B-02-03.tif"),
    ]


def test_plan_phenix_with_channel_names(tmp_path):
    names = [f"r03c04f{f:02d}p01-ch{c}sk1fk1fl1.tiff" for f in (1, 2) for c in (1, 2)]
    folder = make_files(tmp_path / "phenix", names + ["r01c01f01p01-ch01sk1fk1fl1.tiff"])
    out = tmp_path / "fields"
    plan = plan_renames(folder, "phenix", channel_names={"1": "DAPI", "2": "GFP"}, out=out)
    assert targets(plan) == {
        "r01c01f01p01-ch01sk1fk1fl1.tiff": "A-01-01_DAPI.tiff",
        "r03c04f01p01-ch1sk1fk1fl1.tiff": "C-04-01_DAPI.tiff",
        "r03c04f01p01-ch2sk1fk1fl1.tiff": "C-04-01_GFP.tiff",
        "r03c04f02p01-ch1sk1fk1fl1.tiff": "C-04-02_DAPI.tiff",
        "r03c04f02p01-ch2sk1fk1fl1.tiff": "C-04-02_GFP.tiff",
    }
    assert {target.parent for _, target in plan} == {out}
    # without channel names the channel number is kept
    plain = targets(plan_renames(folder, "phenix"))
    assert plain["r03c04f02p01-ch2sk1fk1fl1.tiff"] == "C-04-02_2.tiff"


def test_plan_refuses_channels_without_a_name(tmp_path):
    folder = make_files(tmp_path / "p", ["r01c01f01-ch1.tiff", "r01c01f01-ch3.tiff"])
    with pytest.raises(CellbenchError, match=r"\['3'\]"):
        plan_renames(folder, "phenix", channel_names={"1": "DAPI"})


def test_plan_bbbc021_images(tmp_path):
    names = [f"Week1_22123_B02_s1_w{c}{GUIDS[c - 1]}.tif" for c in (1, 2, 3)]
    folder = make_files(tmp_path / "bbbc", names + [f"B2_s3_w1{GUIDS[0]}.tif"])
    plan = plan_renames(
        folder, "bbbc021_image", channel_names={"1": "DAPI", "2": "Tub", "3": "Act"}
    )
    assert sorted(targets(plan).values()) == [
        "B-02-01_Act.tif",
        "B-02-01_DAPI.tif",
        "B-02-01_Tub.tif",
        "B-02-03_DAPI.tif",
    ]


def test_plan_example_human_with_zero_based_sites(tmp_path):
    names = [f"AS_09125_050116030001_D03f{f:02d}d{c}.tif" for f in (0, 1) for c in (0, 1, 2)]
    folder = make_files(tmp_path / "eh", names)
    with pytest.raises(CellbenchError, match="first-site 0"):
        plan_renames(folder, EXAMPLE_HUMAN)
    plan = plan_renames(
        folder, EXAMPLE_HUMAN, first_site=0, channel_names={"0": "DNA", "1": "PH3", "2": "cells"}
    )
    assert targets(plan)["AS_09125_050116030001_D03f00d0.tif"] == "D-03-01_DNA.tif"
    assert targets(plan)["AS_09125_050116030001_D03f01d2.tif"] == "D-03-02_cells.tif"
    assert len(set(targets(plan).values())) == 6


def test_plan_lists_all_bad_names_together(tmp_path):
    folder = make_files(
        tmp_path / "f", ["A-01-01.tif", "notes.txt", "A-1-1.tif", "Q-01-01.tif", "B-02-01.tif"]
    )
    with pytest.raises(CellbenchError) as info:
        plan_renames(folder, "xyyzz")
    message = str(info.value)
    assert "3 of 5" in message
    for bad in ("notes", "A-1-1", "Q-01-01"):
        assert bad in message
    assert "B-02-01" not in message
    # a suffix filter leaves the stray text file out
    with pytest.raises(CellbenchError, match="2 of 4") as info:
        plan_renames(folder, "xyyzz", suffixes=[".TIF"])
    assert "notes" not in str(info.value)


def test_plan_refuses_duplicate_targets_naming_both(tmp_path):
    # two z-planes of the same field and channel: the phenix scheme does not keep the plane
    folder = make_files(tmp_path / "z", ["r01c01f01p01-ch1.tiff", "r01c01f01p02-ch1.tiff"])
    with pytest.raises(CellbenchError) as info:
        plan_renames(folder, "phenix")
    message = str(info.value)
    assert "A-01-01_1.tiff" in message
    assert "r01c01f01p01-ch1.tiff" in message and "r01c01f01p02-ch1.tiff" in message


def test_plan_refuses_bad_wells_and_empty_folders(tmp_path):
    folder = make_files(tmp_path / "w", ["r01c25f01.tiff"])
    with pytest.raises(CellbenchError, match="column '25'"):
        plan_renames(folder, "phenix")
    with pytest.raises(CellbenchError, match="no files"):
        plan_renames(make_files(tmp_path / "empty", []), "phenix")
    with pytest.raises(CellbenchError, match="not a folder"):
        plan_renames(tmp_path / "absent", "phenix")
    with pytest.raises(CellbenchError, match="target name form"):
        plan_renames(folder, "phenix", to="cellprofiler")


# --- applying plans -----------------------------------------------------------------------


@pytest.fixture
def phenix_folder(tmp_path) -> Path:
    return make_files(tmp_path / "phenix", ["r01c02f01-ch1.tiff", "r01c02f02-ch1.tiff"])


def test_link_mode_points_at_the_sources(phenix_folder):
    plan = plan_renames(phenix_folder, "phenix", channel_names={"1": "DAPI"})
    lines = apply_renames(plan)
    assert lines == [f"{source} -> {target}" for source, target in plan]
    for source, target in plan:
        assert target.is_symlink()
        assert Path(os.readlink(target)) == source.absolute()
        assert target.read_text() == f"pixels of {source.name}"
        assert source.is_file() and not source.is_symlink()
    assert sorted(p.name for p in (phenix_folder / "renamed").iterdir()) == [
        "A-02-01_DAPI.tiff",
        "A-02-02_DAPI.tiff",
    ]


def test_copy_and_move_modes(phenix_folder, tmp_path):
    copies = plan_renames(phenix_folder, "phenix", out=tmp_path / "copies")
    apply_renames(copies, mode="copy")
    for source, target in copies:
        assert not target.is_symlink() and target.read_text() == source.read_text()
        assert source.exists()
    moves = plan_renames(phenix_folder, "phenix", out=tmp_path / "moved")
    apply_renames(moves, mode="move")
    for source, target in moves:
        assert not source.exists()
        assert target.read_text() == f"pixels of {source.name}"


def test_dry_run_creates_nothing(phenix_folder):
    before = sorted(phenix_folder.rglob("*"))
    plan = plan_renames(phenix_folder, "phenix")
    for mode in ("link", "copy", "move"):
        lines = apply_renames(plan, mode=mode, dry_run=True)
        assert len(lines) == 2 and " -> " in lines[0]
    assert sorted(phenix_folder.rglob("*")) == before
    assert not (phenix_folder / "renamed").exists()


def test_refuses_to_overwrite_and_changes_nothing(phenix_folder):
    plan = plan_renames(phenix_folder, "phenix")
    blocker = plan[1][1]
    blocker.parent.mkdir()
    blocker.write_text("someone else's file")
    for mode in ("link", "copy", "move"):
        with pytest.raises(CellbenchError, match="exist already") as info:
            apply_renames(plan, mode=mode)
        assert str(blocker) in str(info.value)
    assert not plan[0][1].exists() and not plan[0][1].is_symlink()
    assert blocker.read_text() == "someone else's file"
    assert all(source.is_file() for source, _ in plan)
    # a dangling link counts as existing too
    blocker.unlink()
    blocker.symlink_to(phenix_folder / "gone.tiff")
    with pytest.raises(CellbenchError, match="exist already"):
        apply_renames(plan)


def test_apply_checks_the_plan_itself(phenix_folder, tmp_path):
    source = phenix_folder / "r01c02f01-ch1.tiff"
    with pytest.raises(CellbenchError, match="more than once"):
        apply_renames([(source, tmp_path / "x.tiff"), (source, tmp_path / "x.tiff")])
    with pytest.raises(CellbenchError, match="missing"):
        apply_renames([(phenix_folder / "gone.tiff", tmp_path / "y.tiff")])
    with pytest.raises(CellbenchError, match="unknown rename mode"):
        apply_renames([(source, tmp_path / "z.tiff")], mode="hardlink")
    assert not any(tmp_path.glob("*.tiff"))


# --- the command --------------------------------------------------------------------------


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="cellbench")
    commands = parser.add_subparsers(dest="command", required=True)
    add_rename_command(commands)
    return parser.parse_args(argv)


def test_command_defaults():
    args = parse(["rename", "some/dir", "--scheme", "phenix"])
    assert (args.dir, args.scheme, args.to, args.mode) == ("some/dir", "phenix", "xyyzz", "link")
    assert args.out is None and args.dry_run is False and args.channel is None
    with pytest.raises(SystemExit):
        parse(["rename", "some/dir"])  # --scheme is required
    with pytest.raises(SystemExit):
        parse(["rename", "d", "--scheme", "phenix", "--mode", "hardlink"])


def test_command_end_to_end(phenix_folder, tmp_path, capsys):
    out = tmp_path / "fields"
    argv = ["rename", str(phenix_folder), "--scheme", "phenix", "--out", str(out)]
    argv += ["--channel", "1=DAPI", "--mode", "copy"]

    args = parse([*argv, "--dry-run"])
    assert args.handler(args) == 0
    printed = capsys.readouterr().out
    assert f"{phenix_folder / 'r01c02f01-ch1.tiff'} -> {out / 'A-02-01_DAPI.tiff'}" in printed
    assert "dry run" in printed and not out.exists()

    args = parse(argv)
    assert args.handler(args) == 0
    assert "2 file(s) copied" in capsys.readouterr().out
    assert (out / "A-02-02_DAPI.tiff").read_text() == "pixels of r01c02f02-ch1.tiff"
    assert not (out / "A-02-02_DAPI.tiff").is_symlink()

    # running again refuses to overwrite
    with pytest.raises(CellbenchError, match="exist already"):
        args.handler(args)


def test_command_links_by_default_and_checks_channel_arguments(phenix_folder, capsys):
    args = parse(["rename", str(phenix_folder), "--scheme", "phenix"])
    assert args.handler(args) == 0
    assert "2 file(s) linked" in capsys.readouterr().out
    assert (phenix_folder / "renamed" / "A-02-01_1.tiff").is_symlink()
    args = parse(["rename", str(phenix_folder), "--scheme", "phenix", "--channel", "DAPI"])
    with pytest.raises(CellbenchError, match="NAME=NEW"):
        args.handler(args)


def test_command_with_a_regex_and_first_site(tmp_path, capsys):
    folder = make_files(tmp_path / "eh", ["AS_09125_050116030001_D03f00d0.tif"])
    args = parse(["rename", str(folder), "--scheme", EXAMPLE_HUMAN, "--first-site", "0"])
    args.handler(args)
    assert "D-03-01_0.tif" in capsys.readouterr().out
