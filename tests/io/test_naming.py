import pytest

from cellbench.errors import CellbenchError
from cellbench.io.naming import parse_names, well_name


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("A-01-01", ("A", 1, 1)),
        ("B-03-12", ("B", 3, 12)),
        ("P-24-99", ("P", 24, 99)),
        ("c-10-02", ("C", 10, 2)),
    ],
)
def test_good_names(name, expected):
    (parsed,) = parse_names([name], "xyyzz")
    row, column, site = parsed["row"].upper(), int(parsed["column"]), int(parsed["site"])
    assert (row, column, site) == expected
    assert f"{row}-{column:02d}-{site:02d}" == name.upper()
    assert well_name(parsed) == f"{expected[0]}{expected[1]:02d}"


@pytest.mark.parametrize(
    "name",
    ["A-1-01", "A01-01", "AA-01-01", "Q-01-01", "A-25-01", "A-00-01", "A-01-00", "A-01-01.tif", ""],
)
def test_bad_names(name):
    with pytest.raises(CellbenchError, match="scheme 'xyyzz'"):
        parse_names([name], "xyyzz")


def test_bad_names_are_listed_together():
    with pytest.raises(CellbenchError) as info:
        parse_names(["A-01-01", "bad", "A-1-1", "B-02-03"], "xyyzz")
    message = str(info.value)
    assert "2 of 4 name(s)" in message and "\n  bad" in message and "\n  A-1-1" in message
