"""Reports of an evaluation: the terminal table, report.{json,md,html}, plots, TREC runs and qrels, .meta.json."""
from __future__ import annotations

import base64
import datetime as _dt
import html
import json
import platform
import re
import subprocess
import sys
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np

from .. import __version__
from ..index import shown
from .calibration import Calibration
from .metrics import LABELS


@dataclass
class Report:
    """Everything one evaluation measured; `table()` for a terminal, `write(folder)` for files."""

    title: str
    modes: list[str]
    metrics: dict[str, dict[str, float]]  # mode -> metric -> value
    counts: dict[str, int] = field(default_factory=dict)  # questions behind each metric group
    latency: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)  # mode -> stage -> stats
    calibration: dict[str, Calibration] = field(default_factory=dict)
    questions: dict[str, list[dict]] = field(default_factory=dict)  # mode -> per question
    failures: dict[str, list[dict]] = field(default_factory=dict)  # mode -> per question problems
    runs: dict[str, dict[str, list[tuple[str, float]]]] = field(default_factory=dict)  # mode -> qid -> docs
    qrels: dict[str, dict[str, int]] = field(default_factory=dict)
    chunk_runs: dict[str, dict[str, list[tuple[str, float]]]] = field(default_factory=dict)
    chunk_qrels: dict[str, dict[str, int]] = field(default_factory=dict)
    published: dict[str, dict[str, float]] = field(default_factory=dict)  # mode -> metric -> value
    config: dict = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    index_manifest: dict | None = None
    seconds: float = 0.0

    # -- views ----------------------------------------------------------------------------
    def metric_names(self) -> list[str]:
        names: list[str] = []
        for m in self.modes:
            for k in self.metrics.get(m, {}):
                if k not in names:
                    names.append(k)
        return names

    def to_dict(self) -> dict:
        return {
            "title": self.title, "modes": self.modes, "config": self.config, "metrics": self.metrics,
            "published": self.published, "counts": self.counts, "latency_ms": self.latency,
            "calibration": {m: c.to_dict() for m, c in self.calibration.items()},
            "failures": self.failures, "warnings": self.warnings, "notes": self.notes,
            "questions": self.questions, "seconds": round(self.seconds, 1),
        }

    def table(self) -> str:
        """Modes side by side, metric by metric (and latency p50/p95 in ms)."""
        names = self.metric_names()
        pub = bool(self.published)
        w = max([len(LABELS.get(n, n)) for n in names] + [24]) + 2
        head = "metric".ljust(w) + "".join(m.rjust(10) for m in self.modes)
        lines = [self.title, head, "-" * len(head)]
        group = None
        for n in names:
            g = n.split(".")[0]
            if g != group:
                group = g
                c = self.counts.get(g)
                lines.append(f"[{g}]" + (f" ({c} questions)" if c else ""))
            row = ("  " + LABELS.get(n, n)).ljust(w)
            for m in self.modes:
                v = self.metrics.get(m, {}).get(n)
                row += (f"{v:.3f}" if v is not None else "-").rjust(10)
            lines.append(row)
            if pub and any(n.split(".", 1)[-1] in self.published.get(m, {}) for m in self.modes):
                row = "    published".ljust(w)
                for m in self.modes:
                    v = self.published.get(m, {}).get(n.split(".", 1)[-1])
                    row += (f"{v:.3f}" if v is not None else "").rjust(10)
                lines.append(row)
        if self.latency:
            stages = list(dict.fromkeys(s for m in self.modes for s in self.latency.get(m, {})))
            lines.append("[latency ms] p50 / p95")
            for s in stages:
                row = ("  " + s).ljust(w)
                for m in self.modes:
                    st = self.latency.get(m, {}).get(s)
                    row += (f"{st['p50']:.0f}/{st['p95']:.0f}" if st else "-").rjust(10)
                lines.append(row)
        for c in self.calibration.values():
            lines.append("calibration: " + c.summary())
        nf = {m: len(v) for m, v in self.failures.items() if v}
        if nf:
            lines.append("questions with problems: " + ", ".join(f"{m} {n}" for m, n in nf.items()))
        for wmsg in self.warnings:
            lines.append(f"warning: {wmsg}")
        return "\n".join(lines)

    # -- files ----------------------------------------------------------------------------
    def write(self, out_dir: str | Path, command: list[str] | None = None) -> dict[str, Path]:
        """Write report.{json,md,html}, report.meta.json, metrics.png, latency.png, TREC runs and qrels."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        files: dict[str, Path] = {}
        files.update(write_trec(self, out))
        files.update(plot(self, out))
        files["json"] = out / "report.json"
        files["json"].write_text(json.dumps(self.to_dict(), indent=2, ensure_ascii=False, default=str))
        files["md"] = out / "report.md"
        files["md"].write_text(render_markdown(self, files))
        files["html"] = out / "report.html"
        files["html"].write_text(render_html(self, files))
        files["meta"] = out / "report.meta.json"
        files["meta"].write_text(json.dumps(run_meta(self, command, files), indent=2, ensure_ascii=False,
                                            default=str))
        return files


def _trec_id(s: str) -> str:
    """TREC files are whitespace-separated: whitespace in ids is percent-encoded."""
    return re.sub(r"\s", lambda m: "%{:02X}".format(ord(m.group(0))), s)


def write_trec(report: Report, out: Path) -> dict[str, Path]:
    """`run.<mode>.trec` (qid Q0 docid rank score tag) and `qrels.trec` (qid 0 docid rel); chunk files too.

    The score column is the rank order (depth+1-rank), not the fused score: diversification moves
    chunks without rescoring them, and trec_eval ranks by score.
    """
    files: dict[str, Path] = {}
    for kind, runs, qrels in (("", report.runs, report.qrels), (".chunks", report.chunk_runs, report.chunk_qrels)):
        if not runs:
            continue
        for mode, run in runs.items():
            p = out / f"run.{mode}{kind}.trec"
            lines = []
            for qid, ranked in run.items():
                n = len(ranked)
                for rank, (doc, _score) in enumerate(ranked, 1):
                    lines.append(f"{_trec_id(qid)} Q0 {_trec_id(doc)} {rank} {n + 1 - rank} askcolleague-{mode}")
            p.write_text("\n".join(lines) + ("\n" if lines else ""))
            files[f"run.{mode}{kind}"] = p
        p = out / f"qrels{kind}.trec"
        p.write_text("".join(f"{_trec_id(q)} 0 {_trec_id(d)} {r}\n" for q, rel in qrels.items() for d, r in rel.items()))
        files[f"qrels{kind}"] = p
    return files


def plot(report: Report, out: Path) -> dict[str, Path]:
    """metrics.png (grouped bars: metric × mode) and latency.png (p50/p95 per stage × mode)."""
    import matplotlib  # here, not at the top: pyplot costs about a second and only report files need it

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # (lazy: loaded only when used, so start-up stays fast)

    files: dict[str, Path] = {}
    names = [n for n in report.metric_names()]
    if names:
        fig, ax = plt.subplots(figsize=(max(8, 0.75 * len(names) + 2), 4.8))
        x = np.arange(len(names))
        w = 0.8 / max(len(report.modes), 1)
        for i, m in enumerate(report.modes):
            vals = [report.metrics.get(m, {}).get(n) or 0.0 for n in names]
            ax.bar(x + (i - (len(report.modes) - 1) / 2) * w, vals, w, label=m)
        ax.set_xticks(x)
        ax.set_xticklabels([LABELS.get(n, n) for n in names], rotation=40, ha="right", fontsize=8)
        ax.set_ylim(0, 1.05)
        ax.set_ylabel("score")
        ax.set_title(f"{report.title}: metrics per mode")
        ax.legend()
        ax.grid(axis="y", alpha=0.3)
        fig.tight_layout()
        files["metrics_png"] = out / "metrics.png"
        fig.savefig(files["metrics_png"], dpi=110)
        plt.close(fig)
    stages = list(dict.fromkeys(s for m in report.modes for s in report.latency.get(m, {})))
    if stages:
        fig, ax = plt.subplots(figsize=(max(6, 1.4 * len(stages) + 2), 4.2))
        x = np.arange(len(stages))
        w = 0.8 / max(len(report.modes), 1)
        for i, m in enumerate(report.modes):
            st = report.latency.get(m, {})
            p50 = [st.get(s, {}).get("p50", 0.0) for s in stages]
            p95 = [st.get(s, {}).get("p95", 0.0) for s in stages]
            pos = x + (i - (len(report.modes) - 1) / 2) * w
            bars = ax.bar(pos, p95, w, alpha=0.35, label=f"{m} p95")
            ax.bar(pos, p50, w, color=bars[0].get_facecolor()[:3], label=f"{m} p50")
        ax.set_xticks(x)
        ax.set_xticklabels(stages)
        ax.set_ylabel("ms")
        ax.set_title(f"{report.title}: latency per stage (p50 solid, p95 light)")
        ax.legend(fontsize=7, ncol=len(report.modes))
        ax.grid(axis="y", alpha=0.3)
        fig.tight_layout()
        files["latency_png"] = out / "latency.png"
        fig.savefig(files["latency_png"], dpi=110)
        plt.close(fig)
    return files


def _fmt(v: Any) -> str:
    return f"{v:.3f}" if isinstance(v, float) else "-" if v is None else str(v)


def _metric_rows(report: Report) -> tuple[list[str], list[list[str]]]:
    head = ["metric", *report.modes]
    rows = []
    for n in report.metric_names():
        row = [LABELS.get(n, n), *[_fmt(report.metrics.get(m, {}).get(n)) for m in report.modes]]
        rows.append(row)
        key = n.split(".", 1)[-1]
        if any(key in report.published.get(m, {}) for m in report.modes):
            rows.append([f"{LABELS.get(n, n)} — published",
                         *[_fmt(report.published.get(m, {}).get(key)) if key in report.published.get(m, {}) else ""
                           for m in report.modes]])
    return head, rows


def _latency_rows(report: Report) -> tuple[list[str], list[list[str]]]:
    stages = list(dict.fromkeys(s for m in report.modes for s in report.latency.get(m, {})))
    head = ["stage (ms)", *[f"{m} p50 / p95" for m in report.modes]]
    rows = [[s, *[(lambda st: f"{st['p50']:.1f} / {st['p95']:.1f}" if st else "-")(report.latency.get(m, {}).get(s))
                  for m in report.modes]] for s in stages]
    return head, rows


def _md_table(head: list[str], rows: list[list[str]]) -> str:
    esc = lambda s: str(s).replace("|", "\\|").replace("\n", " ")  # noqa: E731
    out = ["| " + " | ".join(map(esc, head)) + " |", "|" + "|".join(["---"] * len(head)) + "|"]
    out += ["| " + " | ".join(map(esc, r)) + " |" for r in rows]
    return "\n".join(out)


def _failure_lines(f: dict) -> list[str]:
    return [f"{p['kind']}: expected {p['expected']}; got {p['got']}" for p in f["problems"]]


def render_markdown(report: Report, files: dict[str, Path] | None = None) -> str:
    files = files or {}
    c = report.config
    out = [f"# {report.title}", ""]
    out += [f"- {k}: `{v}`" for k, v in c.items() if not isinstance(v, (dict, list))]
    out += [f"- questions: {', '.join(f'{t} {n}' for t, n in report.counts.items())}", ""]
    out += ["## Metrics", "", _md_table(*_metric_rows(report)), ""]
    if "metrics_png" in files:
        out += ["![metrics per mode](metrics.png)", ""]
    if report.latency:
        out += ["## Latency", "", _md_table(*_latency_rows(report)), ""]
        if "latency_png" in files:
            out += ["![latency per stage](latency.png)", ""]
    if report.calibration:
        out += ["## Abstention calibration", ""]
        out += [f"- {cal.summary()}" for cal in report.calibration.values()]
        out.append("")
    if report.warnings or report.notes:
        out += ["## Notes", ""] + [f"- warning: {w}" for w in report.warnings] + [f"- {n}" for n in report.notes] + [""]
    if report.failures:
        out += ["## Failures per question", ""]
        for mode, fails in report.failures.items():
            out += [f"### {mode} ({len(fails)} questions)", ""]
            if not fails:
                out += ["None.", ""]
            for f in fails:
                out.append(f"- **{f['id']}** ({f['type']}) {f['question']}")
                out += [f"  - {line}" for line in _failure_lines(f)]
            out.append("")
    trec = [p.name for k, p in files.items() if k.startswith(("run.", "qrels"))]
    if trec:
        out += ["## Files", "", "TREC runs and qrels: " + ", ".join(f"`{n}`" for n in trec), ""]
    return "\n".join(out)


def _html_table(head: list[str], rows: list[list[str]]) -> str:
    e = html.escape
    return ("<table><thead><tr>" + "".join(f"<th>{e(h)}</th>" for h in head) + "</tr></thead><tbody>"
            + "".join("<tr>" + "".join(f"<td>{e(str(c))}</td>" for c in r) + "</tr>" for r in rows)
            + "</tbody></table>")


def render_html(report: Report, files: dict[str, Path] | None = None) -> str:
    """A self-contained HTML page (plots embedded as data URIs)."""
    files = files or {}
    e = html.escape
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{e(report.title)}</title><style>"
             "body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}"
             "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}"
             "td:first-child,th:first-child{text-align:left}li{margin:.2em 0}code{background:#f4f4f4}"
             ".p{color:#a33}img{max-width:100%}</style></head><body>",
             f"<h1>{e(report.title)}</h1><ul>"]
    parts += [f"<li>{e(str(k))}: <code>{e(str(v))}</code></li>" for k, v in report.config.items()
              if not isinstance(v, (dict, list))]
    parts.append(f"<li>questions: {e(', '.join(f'{t} {n}' for t, n in report.counts.items()))}</li></ul>")
    parts += ["<h2>Metrics</h2>", _html_table(*_metric_rows(report))]

    def img(key: str, alt: str) -> str:
        p = files.get(key)
        if not p or not Path(p).is_file():
            return ""
        data = base64.b64encode(Path(p).read_bytes()).decode()
        return f"<p><img alt='{e(alt)}' src='data:image/png;base64,{data}'></p>"

    parts.append(img("metrics_png", "metrics per mode"))
    if report.latency:
        parts += ["<h2>Latency</h2>", _html_table(*_latency_rows(report)), img("latency_png", "latency per stage")]
    if report.calibration:
        parts += ["<h2>Abstention calibration</h2><ul>"]
        parts += [f"<li>{e(c.summary())}</li>" for c in report.calibration.values()] + ["</ul>"]
    if report.warnings or report.notes:
        parts += ["<h2>Notes</h2><ul>"] + [f"<li class='p'>warning: {e(w)}</li>" for w in report.warnings]
        parts += [f"<li>{e(n)}</li>" for n in report.notes] + ["</ul>"]
    if report.failures:
        parts.append("<h2>Failures per question</h2>")
        for mode, fails in report.failures.items():
            parts.append(f"<h3>{e(mode)} ({len(fails)} questions)</h3><ul>")
            for f in fails:
                parts.append(f"<li><b>{e(f['id'])}</b> ({e(f['type'])}) {e(f['question'])}<ul>"
                             + "".join(f"<li>{e(x)}</li>" for x in _failure_lines(f)) + "</ul></li>")
            parts.append("</ul>")
    parts.append("</body></html>")
    return "\n".join(parts)


def code_version() -> dict:
    info: dict[str, Any] = {"askcolleague": __version__}
    repo = Path(__file__).resolve().parents[3]
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True, timeout=5)
        if head.returncode == 0:
            info["git_commit"] = head.stdout.strip()
            dirty = subprocess.run(["git", "diff", "--quiet", "HEAD", "--", "src"], cwd=repo, capture_output=True,
                                   timeout=10)
            info["git_dirty_src"] = dirty.returncode != 0
    except (OSError, subprocess.SubprocessError):
        pass
    return info


def _versions(*names: str) -> dict[str, str]:
    out = {}
    for n in names:
        try:
            out[n] = version(n)
        except PackageNotFoundError:
            pass
    return out


def run_meta(report: Report, command: list[str] | None = None, files: dict[str, Path] | None = None) -> dict:
    """What produced a report: configuration, index manifest, model, code version, command line."""
    manifest = report.index_manifest or {}
    return {
        "created_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "command": [shown(a) for a in (command if command is not None else sys.argv)],  # (no URI password)
        "config": report.config,
        "model": manifest.get("model"),
        "index": manifest,
        "code": code_version(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "packages": _versions("ranx", "numpy", "faiss-cpu", "sentence-transformers", "torch", "matplotlib"),
        "files": sorted(p.name for p in (files or {}).values()),
        "seconds": round(report.seconds, 1),
    }


def default_out_dir(base: str | Path = "eval/reports") -> Path:
    return Path(base) / _dt.datetime.now().strftime("%Y-%m-%d-%H%M%S")
