import pytest

from cellbench.errors import CellbenchError
from cellbench.io.naming import FieldName, parse_many_xyyzz, parse_xyyzz


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("A-01-01", FieldName("A", 1, 1)),
        ("B-03-12", FieldName("B", 3, 12)),
        ("P-24-99", FieldName("P", 24, 99)),
        ("c-10-02", FieldName("C", 10, 2)),
    ],
)
def test_good_names(name, expected):
    parsed = parse_xyyzz(name)
    assert parsed == expected
    assert parsed.xyyzz == name.upper()
    assert parsed.well == f"{expected.row}{expected.column:02d}"


@pytest.mark.parametrize(
    "name",
    ["A-1-01", "A01-01", "AA-01-01", "Q-01-01", "A-25-01", "A-00-01", "A-01-00", "A-01-01.tif", ""],
)
def test_bad_names(name):
    with pytest.raises(CellbenchError, match="X-YY-ZZ"):
        parse_xyyzz(name)


def test_bad_names_are_listed_together():
    with pytest.raises(CellbenchError) as info:
        parse_many_xyyzz(["A-01-01", "bad", "A-1-1", "B-02-03"])
    message = str(info.value)
    assert "2 field name(s)" in message and "'bad'" in message and "'A-1-1'" in message
