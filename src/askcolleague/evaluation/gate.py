"""The regression gate: read eval/thresholds.yaml and list every metric below its minimum."""
from __future__ import annotations

from pathlib import Path

import yaml

from .. import safeyaml
from ..errors import ConfigError
from .metrics import MODES
from .report import Report


def load_thresholds(path: str | Path) -> dict:
    """eval/thresholds.yaml: {abstain_threshold: number|calibrated, metrics: {mode: {metric: minimum}}}."""
    p = Path(path)
    try:
        data = safeyaml.load(p.read_text(), f"{p}") or {}
    except safeyaml.YamlRefused as e:
        raise ConfigError(str(e)) from None
    except (OSError, yaml.YAMLError) as e:
        raise ConfigError(f"{p}: cannot read thresholds ({' '.join(str(e).split())[:160]}); fix the file") from None
    if not isinstance(data, dict) or not isinstance(data.get("metrics"), dict):
        raise ConfigError(f"{p}: expected `metrics: {{mode: {{metric: minimum}}}}`; see eval/README.md")
    for k in data:
        if k not in ("metrics", "abstain_threshold"):
            raise ConfigError(f"{p}: unknown key {k!r}; use `metrics:` and optionally `abstain_threshold:`")
    at = data.get("abstain_threshold")
    if at is not None and at != "calibrated" and (not isinstance(at, (int, float)) or isinstance(at, bool)):
        raise ConfigError(f"{p}: abstain_threshold must be a number or `calibrated`, not {at!r}")
    for mode, mins in data["metrics"].items():
        if mode not in MODES or not isinstance(mins, dict):
            raise ConfigError(f"{p}: `metrics.{mode}` must be one of {', '.join(MODES)} with metric: minimum pairs")
        for name, v in mins.items():
            if not isinstance(v, (int, float)) or isinstance(v, bool):
                raise ConfigError(f"{p}: metrics.{mode}.{name} must be a number, not {v!r}")
    return data


def check_thresholds(report: Report, thresholds: dict) -> list[str]:
    """Every metric below its minimum, as one line each (empty list = gate passed)."""
    out = []
    for mode, mins in thresholds.get("metrics", {}).items():
        if mode not in report.metrics:
            continue
        for name, minimum in mins.items():
            v = report.metrics[mode].get(name)
            if v is None:
                out.append(f"{mode} {name}: not measured (minimum {minimum})")
            elif v + 1e-9 < minimum:
                out.append(f"{mode} {name} = {v:.3f} < {minimum:.3f}")
    return out
