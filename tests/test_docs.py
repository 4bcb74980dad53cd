"""The README documents every setting and every command."""
from __future__ import annotations

from pathlib import Path

from askcolleague.cli import cli
from askcolleague.settings import SETTINGS

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def test_every_setting_is_documented():
    for s in SETTINGS:
        assert f"`{s.env}`" in README, f"{s.env} missing from README"
        assert s.help in README, f"README's text for {s.env} differs from settings.py"


def _commands(group, prefix=""):
    for name, cmd in group.commands.items():
        full = f"{prefix}{name}"
        if hasattr(cmd, "commands"):
            yield from _commands(cmd, full + " ")
        else:
            yield full


def test_every_command_is_documented():
    for c in _commands(cli):
        assert f"askcolleague {c}" in README, f"`askcolleague {c}` missing from README"


def test_readme_test_command_matches_ci():
    """CI runs exactly the README's quick start: `make test`, whose recipe installs the CPU torch wheel
    and the project with its test extra, then runs the README's plain test command."""
    root = Path(__file__).resolve().parents[1]
    ci = (root / ".ci" / "run").read_text().splitlines()
    assert "make test" in ci
    makefile = (root / "Makefile").read_text()
    for command in ('-m pip install -q "torch==2.13.0"', '-m pip install -q -e ".[test]"', "-m pytest -q"):
        assert command in makefile, command
    assert "make run" in README and "make test" in README
    assert "python3 -m pytest -q" in README and 'python3 -m pip install -e ".[test]"' in README


def test_every_setting_is_a_typed_attribute():
    """Settings declares each setting as a typed attribute (for readers and type checkers), no more, no less."""
    import ast

    src = (Path(__file__).resolve().parents[1] / "src" / "askcolleague" / "settings.py").read_text()
    cls = next(n for n in ast.parse(src).body if isinstance(n, ast.ClassDef) and n.name == "Settings")
    block = next(n for n in cls.body if isinstance(n, ast.If) and ast.unparse(n.test) == "TYPE_CHECKING")
    declared = {a.target.id: ast.unparse(a.annotation) for a in block.body if isinstance(a, ast.AnnAssign)}
    assert list(declared) == [s.name for s in SETTINGS]
    kinds = {"str": str, "int": int, "float": float, "bool": bool}
    for s in SETTINGS:
        if declared[s.name] in kinds:
            assert isinstance(s.default, kinds[declared[s.name]]), (s.name, declared[s.name], s.default)
