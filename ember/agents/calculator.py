"""A safe arithmetic evaluator for the agent's ``calculator`` tool.

The expression is parsed with ``ast`` and walked over a whitelist of node types: numbers, + - * / // % **,
unary signs, parentheses and a few math functions called by name. Names, attributes, subscripts,
comprehensions and everything else are refused; nothing is ever passed to eval or exec. Limits keep one
call cheap: the expression's length, the size of exponents and of intermediate results, and a deadline.
"""

from __future__ import annotations

import ast
import math
import operator
import re
import time

MAX_EXPRESSION_CHARS = 200
MAX_EXPONENT = 1000
MAX_MAGNITUDE = 1e100
TIME_LIMIT_S = 0.05
_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}(?!\d))")

_BINARY = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_UNARY = {ast.UAdd: operator.pos, ast.USub: operator.neg}
_FUNCTIONS = {
    "sqrt": math.sqrt,
    "log": math.log,
    "log10": math.log10,
    "exp": math.exp,
    "abs": abs,
    "round": round,
    "min": min,
    "max": max,
}
_CONSTANTS = {"pi": math.pi, "e": math.e}
# What an expression may hold, as a JSON Schema pattern (the tool's schema carries it, so constrained
# decoding writes only arithmetic: digits, operators, brackets and the names above).
_NAMES = "|".join(sorted([*_FUNCTIONS, *_CONSTANTS], key=len, reverse=True))
EXPRESSION_PATTERN = rf"^([0-9.,+*/%^() -]|{_NAMES})+$"


class CalculatorError(ValueError):
    """The expression is not plain arithmetic, or it breaks a limit."""


def evaluate(expression: str) -> float | int:
    """The value of an arithmetic expression such as ``12 * 4.5e6`` or ``sqrt(2) / 3``."""
    if not isinstance(expression, str) or not expression.strip():
        raise CalculatorError("expression must be a non-empty string")
    if len(expression) > MAX_EXPRESSION_CHARS:
        raise CalculatorError(f"expression is longer than {MAX_EXPRESSION_CHARS} characters")
    # Thousands separators ("1,000") and "^" / "×" are how models and people write numbers.
    cleaned = _THOUSANDS.sub("", expression).replace("^", "**").replace("×", "*")
    try:
        tree = ast.parse(cleaned.strip(), mode="eval")
    except SyntaxError as exc:
        raise CalculatorError(f"not an arithmetic expression: {exc.msg}") from exc
    deadline = time.perf_counter() + TIME_LIMIT_S
    return _eval(tree.body, deadline)


def _check(value: float | int, deadline: float) -> float | int:
    if time.perf_counter() > deadline:
        raise CalculatorError(f"evaluation took longer than {TIME_LIMIT_S * 1000:.0f} ms")
    if isinstance(value, complex):
        raise CalculatorError("complex results are not supported")
    if abs(value) > MAX_MAGNITUDE:
        raise CalculatorError(f"a value exceeds {MAX_MAGNITUDE:g}")
    return value


def _eval(node: ast.AST, deadline: float) -> float | int:
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return _check(node.value, deadline)
    if isinstance(node, ast.Name) and node.id in _CONSTANTS:
        return _CONSTANTS[node.id]
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _check(_UNARY[type(node.op)](_eval(node.operand, deadline)), deadline)
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _eval(node.left, deadline), _eval(node.right, deadline)
        if isinstance(node.op, ast.Pow) and abs(right) > MAX_EXPONENT:
            raise CalculatorError(f"exponent {right:g} is larger than {MAX_EXPONENT}")
        try:
            return _check(_BINARY[type(node.op)](left, right), deadline)
        except ZeroDivisionError as exc:
            raise CalculatorError("division by zero") from exc
        except OverflowError as exc:
            raise CalculatorError("the result is too large") from exc
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id in _FUNCTIONS
        and not node.keywords
    ):
        arguments = [_eval(a, deadline) for a in node.args]
        try:
            return _check(_FUNCTIONS[node.func.id](*arguments), deadline)
        except (TypeError, ValueError, OverflowError) as exc:
            raise CalculatorError(f"{node.func.id}: {exc}") from exc
    raise CalculatorError(
        f"{type(node).__name__} is not allowed: only numbers, + - * / // % ** and math functions"
    )
