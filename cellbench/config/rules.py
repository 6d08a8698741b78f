"""Ground-truth rules: a small expression language, checked with `ast` and never run as code.

A rule such as ``"EdU_mean > 600 and BrdU_mean < 300"`` names the cells of one class. It is
parsed with Python's `ast` and every part is checked against a short list of what a rule may
hold; the checked tree is then interpreted over numpy arrays. Nothing is passed to `eval` (nor
to `pandas.DataFrame.eval`, whose attribute chains can reach ``os.system``), so a rule can
read measurements and nothing else.

Grammar: column names (`rule_columns`), numbers (int or float), ``+ - * /``, unary ``-`` and
``+``, parentheses, comparisons ``< <= > >= == !=`` (chains such as ``100 < x <= 200`` too),
and ``and``, ``or``, ``not``. A rule must be a condition (a comparison, or conditions joined by
and/or/not), not a bare number.

NaN is *unknown*, as NULL is in SQL: a comparison involving NaN is unknown, ``not`` keeps it
unknown, ``and``/``or`` decide where the known side decides (``False and ?`` is False,
``True or ?`` is True), and a cell matches only where its rule is known to be true. So a NaN
measurement never makes a cell match. Division by zero gives inf or NaN, silently.

This module is pure (ast and numpy) so that the config schema can check rules at load time and
the features stage can evaluate them, each importing it without importing the other.

Examples
--------
>>> rule = parse_rule("EdU_mean > 600 and BrdU_mean < 300", rule_columns(["EdU", "BrdU"]))
>>> evaluate_rule(rule, {"EdU_mean": np.array([900.0, np.nan]), "BrdU_mean": np.array([1, 1])})
array([ True, False])
"""

from __future__ import annotations

import ast
import functools
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass

import numpy as np

from cellbench.errors import CellbenchError

MARKER_STATISTICS = ("mean", "median", "max")  # per marker: <marker>_mean, _median, _max
QUALITY_COLUMNS = ("nucleus_area", "dna_mean")  # the quality-filter measurements
MAX_RULE_CHARS = 1000
MAX_PART_CHARS = 80  # longer parts are shortened in messages

_ARITHMETIC = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/"}
_COMPARISONS = {
    ast.Lt: np.less,
    ast.LtE: np.less_equal,
    ast.Gt: np.greater,
    ast.GtE: np.greater_equal,
    ast.Eq: np.equal,
    ast.NotEq: np.not_equal,
}
_SYMBOLS = {
    ast.Pow: "**",
    ast.FloorDiv: "//",
    ast.Mod: "%",
    ast.MatMult: "@",
    ast.LShift: "<<",
    ast.RShift: ">>",
    ast.BitAnd: "&",
    ast.BitOr: "|",
    ast.BitXor: "^",
    ast.Invert: "~",
    ast.In: "in",
    ast.NotIn: "not in",
    ast.Is: "is",
    ast.IsNot: "is not",
}
_KINDS = {
    ast.Attribute: "attribute access",
    ast.Call: "function call",
    ast.Subscript: "subscript",
    ast.Lambda: "lambda",
    ast.JoinedStr: "string",
    ast.FormattedValue: "string",
    ast.ListComp: "comprehension",
    ast.SetComp: "comprehension",
    ast.DictComp: "comprehension",
    ast.GeneratorExp: "comprehension",
    ast.IfExp: "conditional expression",
    ast.NamedExpr: "assignment",
    ast.Starred: "unpacking",
}


class RuleError(CellbenchError, ValueError):
    """A ground-truth rule is not in the rule grammar; the message names the rule and the part.

    A `ValueError` too, so that a pydantic validator reports it as a config error.
    """


@dataclass(frozen=True)
class Rule:
    """A checked rule: its text, the columns it reads and its syntax tree (only allowed nodes)."""

    text: str
    columns: frozenset[str]
    tree: ast.expr


def rule_columns(markers: Collection[str]) -> list[str]:
    """The columns a rule may use: ``<marker>_mean``, ``_median``, ``_max`` and the QC columns."""
    names = [f"{m}_{s}" for m in markers for s in MARKER_STATISTICS]
    return [*names, *QUALITY_COLUMNS]


def parse_rule(rule: str, allowed_names: Collection[str], *, key: str = "rule") -> Rule:
    """Check a rule against the grammar and the known columns; return it ready to evaluate.

    Parameters
    ----------
    rule : str
        The expression, e.g. ``"EdU_mean > 600 and BrdU_mean < 300"``.
    allowed_names : collection of str
        The columns the rule may read (`rule_columns`).
    key : str
        Where the rule comes from, e.g. ``"ground_truth.rules.astro"``; starts every message.

    Raises
    ------
    RuleError
        The rule is not an expression, holds a part outside the grammar (attribute, call,
        subscript, string, ``**``, ...), an unknown name, or is not a condition.
    """
    where = _Where(_normalise(rule), key, sorted(allowed_names))
    tree = _syntax_tree(where)
    try:
        _check_nodes(tree, where)
        _check_names(tree, where, set(allowed_names))
        if not _is_condition(tree, where):
            raise where.error(tree, "is a number, not a condition (compare it with something)")
    except RecursionError:
        raise where.error(None, "is nested too deeply") from None
    names = frozenset(n.id for n in ast.walk(tree) if isinstance(n, ast.Name))
    return Rule(text=where.rule, columns=names, tree=tree)


def evaluate_rule(rule: Rule, columns: Mapping[str, object]) -> np.ndarray:
    """Where `rule` is known to be true, per row of `columns`.

    Parameters
    ----------
    rule : Rule
        From `parse_rule`.
    columns : DataFrame or mapping of str to (N,) array
        The measurements; must hold every column of ``rule.columns`` and at least one column.

    Returns
    -------
    (N,) ndarray of bool
        True where the rule holds; False where it does not or is unknown (NaN involved).
    """
    values = {name: np.asarray(columns[name], dtype=float) for name in rule.columns}
    size = len(columns[next(iter(columns))])
    with np.errstate(all="ignore"):
        true, _ = _condition(rule.tree, values)
    return np.broadcast_to(true, (size,)).copy()


@dataclass(frozen=True)
class _Where:
    """The rule being checked, for error messages."""

    rule: str
    key: str
    columns: list[str]

    def error(self, node: ast.AST | None, problem: str) -> RuleError:
        part = (self.rule if node is None else ast.get_source_segment(self.rule, node)) or ""
        if len(part) > MAX_PART_CHARS:
            part = part[: MAX_PART_CHARS - 3] + "..."
        return RuleError(
            f"{self.key}: {part!r} {problem}; a rule may use the columns "
            f"{self.columns}, numbers, comparisons (< <= > >= == !=), and/or/not, + - * / and "
            "parentheses"
        )


def _normalise(rule: str) -> str:
    """`rule` on one line (YAML may fold it), so that error positions match the text."""
    return " ".join(rule.split()) if isinstance(rule, str) else rule


def _syntax_tree(where: _Where) -> ast.expr:
    """The parsed expression of the rule (not yet checked)."""
    if not isinstance(where.rule, str) or not where.rule:
        raise where.error(None, "is not a rule (give an expression as text)")
    if len(where.rule) > MAX_RULE_CHARS:
        raise where.error(None, f"is longer than {MAX_RULE_CHARS} characters")
    try:
        return ast.parse(where.rule, mode="eval").body
    except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
        reason = getattr(exc, "msg", None) or type(exc).__name__
        raise where.error(None, f"is not a valid expression ({reason})") from None


def _check_nodes(tree: ast.expr, where: _Where) -> None:
    """Raise for the first (innermost, leftmost) part of the tree outside the grammar."""
    bad = [n for n in ast.walk(tree) if isinstance(n, ast.expr) and _forbidden(n) is not None]
    if not bad:
        return
    ids = {id(n) for n in bad}
    inner = [n for n in bad if not any(d is not n and id(d) in ids for d in ast.walk(n))]
    first = min(inner, key=lambda n: (n.lineno, n.col_offset))
    raise where.error(first, f"is not allowed ({_forbidden(first)})")


def _forbidden(node: ast.expr) -> str | None:
    """Why the expression `node` is outside the grammar, or None if it is allowed."""
    if isinstance(node, ast.Name | ast.BoolOp):
        return None
    if isinstance(node, ast.Constant):
        return _constant_kind(node.value)
    if isinstance(node, ast.BinOp):
        return None if type(node.op) in _ARITHMETIC else f"operator {_symbol(node.op)}"
    if isinstance(node, ast.UnaryOp):
        allowed = (ast.USub, ast.UAdd, ast.Not)
        return None if isinstance(node.op, allowed) else f"operator {_symbol(node.op)}"
    if isinstance(node, ast.Compare):
        wrong = [op for op in node.ops if type(op) not in _COMPARISONS]
        return f"comparison {_symbol(wrong[0])}" if wrong else None
    return _KINDS.get(type(node), type(node).__name__.lower())


def _constant_kind(value: object) -> str | None:
    """None for a number a rule may hold (int or float, not bool), else what it is."""
    if type(value) is float:
        return None
    if type(value) is int:
        return None if abs(value) < 2**1023 else "number too large"
    if isinstance(value, bool) or value is None:
        return repr(value)
    if isinstance(value, str | bytes):
        return "string"
    return f"{type(value).__name__} constant"


def _symbol(op: ast.AST) -> str:
    return _SYMBOLS.get(type(op), type(op).__name__)


def _check_names(tree: ast.expr, where: _Where, allowed: set[str]) -> None:
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and node.id not in allowed:
            raise where.error(node, "is not a known column")


def _is_condition(node: ast.expr, where: _Where) -> bool:
    """Whether `node` is a condition (True) or a number (False); raise where types mix."""
    if isinstance(node, ast.Compare):
        for operand in (node.left, *node.comparators):
            _expect(operand, where, condition=False)
        return True
    if isinstance(node, ast.BoolOp):
        for value in node.values:
            _expect(value, where, condition=True)
        return True
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        _expect(node.operand, where, condition=True)
        return True
    if isinstance(node, ast.UnaryOp):
        _expect(node.operand, where, condition=False)
    elif isinstance(node, ast.BinOp):
        _expect(node.left, where, condition=False)
        _expect(node.right, where, condition=False)
    return False


def _expect(node: ast.expr, where: _Where, *, condition: bool) -> None:
    if _is_condition(node, where) != condition:
        problem = (
            "is a number where a condition is needed (compare it with something)"
            if condition
            else "is a condition where a number is needed"
        )
        raise where.error(node, problem)


def _condition(node: ast.expr, values: dict) -> tuple[np.ndarray, np.ndarray]:
    """(known true, known false) masks of a condition node; neither where it is unknown."""
    if isinstance(node, ast.Compare):
        return _compare(node, values)
    if isinstance(node, ast.UnaryOp):  # not: checked by parse_rule
        true, false = _condition(node.operand, values)
        return false, true
    parts = [_condition(v, values) for v in node.values]
    if isinstance(node.op, ast.And):
        return _all(p[0] for p in parts), _any(p[1] for p in parts)
    return _any(p[0] for p in parts), _all(p[1] for p in parts)


def _compare(node: ast.Compare, values: dict) -> tuple[np.ndarray, np.ndarray]:
    """A comparison chain ``a < b <= c`` as ``(a < b) and (b <= c)``, elementwise."""
    operands = [_number(n, values) for n in (node.left, *node.comparators)]
    parts = []
    for op, left, right in zip(node.ops, operands, operands[1:], strict=False):
        known = ~(np.isnan(left) | np.isnan(right))
        holds = _COMPARISONS[type(op)](left, right)
        parts.append((holds & known, ~holds & known))
    return _all(p[0] for p in parts), _any(p[1] for p in parts)


def _number(node: ast.expr, values: dict) -> np.ndarray:
    """The float value (array or scalar) of a number node."""
    if isinstance(node, ast.Name):
        return values[node.id]
    if isinstance(node, ast.Constant):
        return np.float64(node.value)
    if isinstance(node, ast.UnaryOp):
        operand = _number(node.operand, values)
        return -operand if isinstance(node.op, ast.USub) else +operand
    left, right = _number(node.left, values), _number(node.right, values)
    op = type(node.op)
    if op is ast.Add:
        return left + right
    if op is ast.Sub:
        return left - right
    if op is ast.Mult:
        return left * right
    return np.true_divide(left, right)


def _all(masks: Iterable[np.ndarray]) -> np.ndarray:
    return functools.reduce(np.logical_and, masks)


def _any(masks: Iterable[np.ndarray]) -> np.ndarray:
    return functools.reduce(np.logical_or, masks)
