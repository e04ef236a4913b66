"""The calculator tool: arithmetic only, through an AST whitelist, with limits."""

from __future__ import annotations

import pytest

from ember.agents.calculator import MAX_EXPRESSION_CHARS, CalculatorError, evaluate


@pytest.mark.parametrize(
    ("expression", "value"),
    [
        ("12 * 4.5e6", 5.4e7),
        ("175 / 70", 2.5),
        ("2 ** 10", 1024),
        ("-(3 + 4) % 5", 3),
        ("sqrt(16) + abs(-2)", 6),
        ("1,000 * 3", 3000),
        ("2^3", 8),
        ("round(10 / 3, 2)", 3.33),
        ("pi * 2", 6.283185307179586),
    ],
)
def test_evaluates_arithmetic(expression, value):
    assert evaluate(expression) == pytest.approx(value)


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("__import__('os').system('ls')", "Call is not allowed"),
        ("(1).__class__", "Attribute is not allowed"),
        ("math.pi", "Attribute is not allowed"),
        ("open('/etc/passwd')", "Call is not allowed"),
        ("9 ** 9 ** 9", "exponent"),
        ("10 ** 5000", "exponent"),
        ("10 ** 99 * 10 ** 99", "exceeds"),
        ("10.0 ** 999", "too large"),
        ("[1, 2][0]", "Subscript is not allowed"),
        ("x + 1", "Name is not allowed"),
        ("1 / 0", "division by zero"),
        ("lambda: 1", "Lambda is not allowed"),
        ("1 +", "not an arithmetic expression"),
        ("", "non-empty"),
        ("1+" * MAX_EXPRESSION_CHARS + "1", "longer than"),
    ],
)
def test_rejects_anything_but_bounded_arithmetic(expression, message):
    with pytest.raises(CalculatorError, match=message):
        evaluate(expression)
