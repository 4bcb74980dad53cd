"""The one YAML reader of the package: PyYAML's safe loader, with aliases and anchors refused.

YAML aliases let a few hundred bytes stand for gigabytes ("billion laughs": ``a: &a [x, x, ...]``,
``b: &b [*a, *a, ...]``, ...): PyYAML builds the nested references cheaply, but anything that walks
or prints the value (a tag list, a person's groups) expands it, taking minutes and gigabytes before
failing. Nothing askcolleague reads (front matter, sidecars, people files, sources.yaml, users files,
eval suites) needs them, so every anchor (``&name``) and alias (``*name``, ``<<: *name``) is refused
while the document is being composed, before any value is built. Nesting deeper than
``MAX_DEPTH`` is refused too (the composer is recursive).

    load(text, what)  → the value; raises YamlRefused (a ValueError with one line naming `what`
                        and the fix) for aliases/anchors/too-deep nesting, and yaml.YAMLError
                        (with its problem mark) for a syntax error
"""
from __future__ import annotations

from typing import Any

import yaml

MAX_DEPTH = 200


class YamlRefused(ValueError):
    """A YAML document refused for safety; str(e) is one line with the fix."""


def alias_message(what: str) -> str:
    return f"{what} uses YAML aliases (&anchor/*alias), which are refused for safety; write the values out"


class _Loader(yaml.SafeLoader):
    """SafeLoader that refuses anchors and aliases at compose time and bounds nesting depth."""

    def __init__(self, stream: Any, what: str) -> None:
        super().__init__(stream)
        self.what = what
        self.depth = 0

    def compose_node(self, parent, index):  # noqa: D401 - PyYAML's hook
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
            raise YamlRefused(alias_message(self.what))
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise YamlRefused(f"{self.what} is nested more than {MAX_DEPTH} levels deep, which is refused "
                              "for safety; flatten it")
        try:
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


def load(text: str | bytes, what: str = "YAML") -> Any:
    """Parse one YAML document safely (see the module docstring)."""
    loader = _Loader(text, what)
    try:
        return loader.get_single_data()
    except RecursionError:
        raise YamlRefused(f"{what} is nested too deeply, which is refused for safety; flatten it") from None
    finally:
        loader.dispose()
