# Float constants in the code that runs on boards survive freezing. MicroPython's freezer
# (tools/mpy-tool.py) writes each float constant of a module into C with 16 significant
# digits, after the compiler has folded constant expressions such as 2.0 ** -24; a value
# that needs 17 digits then comes out one digit off on a board with frozen modules, while
# .py and .mpy files are exact. So every literal and every foldable expression of literals
# in lib/, firmware/ and boards/ must read back the same from 16 digits.
import ast

from peers.host import ROOT

SOURCES = sorted(p for d in ("lib", "firmware", "boards") for p in (ROOT / d).rglob("*.py"))


def _constant(node):
    # The value the compiler folds node to, None when it is not made of literals alone.
    if isinstance(node, ast.Constant):
        return node.value if isinstance(node.value, (int, float)) and not isinstance(node.value, bool) else None
    if isinstance(node, (ast.BinOp, ast.UnaryOp)):
        parts = [node.left, node.right] if isinstance(node, ast.BinOp) else [node.operand]
        if all(_constant(part) is not None for part in parts):
            try:
                return eval(compile(ast.Expression(node), "<constant>", "eval"))
            except (ArithmeticError, ValueError):
                return None
    return None


def frozen_misses(source):
    # The float constants of source that 16 digits do not give back exactly.
    misses = []
    for node in ast.walk(ast.parse(source)):
        value = _constant(node)
        if isinstance(value, float) and value == value and float("%.16g" % value) != value:
            misses.append("line %d: %r" % (node.lineno, value))
    return misses


def test_the_check_finds_what_freezing_would_change():
    assert frozen_misses("x = mant * 2.0 ** -24") == ["line 1: 5.960464477539063e-08"]
    assert frozen_misses("x = 0.1 + 1.5 * 2 ** -10\ny = ldexp(m, -24)") == []


def test_every_float_constant_of_the_board_code_survives_freezing():
    misses = {str(p.relative_to(ROOT)): frozen_misses(p.read_text()) for p in SOURCES}
    assert {path: found for path, found in misses.items() if found} == {}
