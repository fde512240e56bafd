"""What a command prints when it ends: a short human summary (percentages, kappa a coefficient) and its warnings.

Pure functions from the JSON-ready dicts (fractions) to lines of text; the CLI prints the
summary on stdout and each warning as ``hsi-classify: warning: ...`` on stderr.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from hsi.reporting.honesty import run_warnings
from hsi.reporting.tables import count_noun, format_kappa, format_percent

__all__ = ["compare_summary", "headline_line", "report_line", "repeat_all_summary", "repeat_summary", "run_summary"]


def _pct(value: float | None) -> str:
    text = format_percent(value, digits=2)
    return text if text == "n/a" else f"{text}%"


def headline_line(metrics: Mapping[str, Any]) -> str:
    """``OA 93.10%  AA 91.20%  kappa 0.920`` (kappa a coefficient, as in every report)."""
    return (f"OA {_pct(metrics.get('overall_accuracy'))}  AA {_pct(metrics.get('average_accuracy'))}  "
            f"kappa {format_kappa(metrics.get('kappa'))}")


def report_line(folder: Path, markdown: str) -> str:
    """``report: <folder>/report.html (also <markdown>)``."""
    return f"report: {folder / 'report.html'} (also {folder / markdown})"


def run_summary(run_dir: Path, metrics: Mapping[str, Any], *, split_method: str) -> tuple[list[str], list[str]]:
    """The end of ``train``: ``(summary lines, warnings)``."""
    lines = [f"{headline_line(metrics)}  on {metrics.get('n_test', 0):,} test pixels"]
    if "control" in metrics:
        lines.append(f"{metrics['control']['kind']} control: OA {_pct(metrics['control']['overall_accuracy'])}")
    lines.append(report_line(run_dir, "report.md"))
    return lines, run_warnings(metrics, split_method=split_method)


def runs_warnings(run_dirs: Sequence[Path], *, split_method: str, label: str = "") -> list[str]:
    """The warnings of several finished runs, each distinct one once, with the share of runs that carry it.

    A warning's figures differ between runs (e.g. the overlap share), so warnings are grouped by
    their first words after the figure; the first run's text stands for the group.

    Args:
        run_dirs: finished run folders (each with ``metrics.json``).
        split_method: the runs' split, named in control warnings.
        label: prefix for each line, e.g. ``"hybridsn: "``.
    """
    import json

    groups: dict[str, list[str]] = {}
    for run_dir in run_dirs:
        try:
            metrics = json.loads((Path(run_dir) / "metrics.json").read_text())
        except (OSError, ValueError):
            continue
        for warning in run_warnings(metrics, split_method=split_method):
            groups.setdefault(" ".join(warning.split()[1:5]), []).append(warning)
    return [f"{label}in {len(texts)} of {len(run_dirs)} runs, e.g.: {texts[0]}" for texts in groups.values()]


def _mean_std(summary: Mapping[str, Any], *, kappa: bool = False) -> str:
    if kappa:
        text = format_kappa(summary.get("mean"))
        return text if summary.get("std") is None else f"{text} ± {format_kappa(summary['std'])}"
    text = _pct(summary.get("mean"))
    return text if summary.get("std") is None else f"{text} ± {format_percent(summary['std'])}"


def repeat_summary(repeat_dir: Path, report: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    """The end of ``repeat``: mean ± std over runs, consensus, and the report's path."""
    lines = [f"{report['n_runs']} runs: OA {_mean_std(report['overall_accuracy'])}  "
             f"AA {_mean_std(report['average_accuracy'])}  "
             f"kappa {_mean_std(report['kappa'], kappa=True)}  (mean ± std)"]
    co = report.get("consensus", {})
    if co.get("n_pixels"):
        ties = f", {count_noun(co['n_ties'], 'tied pixel')} left out" if co.get("n_ties") else ""
        lines.append(f"majority vote: OA {_pct(co.get('overall_accuracy'))} "
                     f"on {count_noun(co['n_pixels'], 'pixel')}{ties}")
    lines.append(report_line(repeat_dir, "stability.md"))
    split_method = str(report.get("config", {}).get("split", "random"))
    run_dirs = [repeat_dir / str(run["dir"]) for run in report.get("runs", [])]
    return lines, runs_warnings(run_dirs, split_method=split_method)


def repeat_all_summary(repeat_dir: Path, report: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    """The end of ``repeat --vary all``: the answer's first sentence, one line per series, the report's path."""
    width = max(len(vary) for vary in report["series"])
    lines = [str(report["answer"]["headline"])]
    lines += [f"{vary:<{width}}  {report['n_runs']} runs: OA {_mean_std(s['overall_accuracy'])}  "
              f"AA {_mean_std(s['average_accuracy'])}  kappa {_mean_std(s['kappa'], kappa=True)}"
              for vary, s in report["series"].items()]
    lines.append(f"{report['n_trained_runs']} runs in all (a run shared by series counts once)")
    lines.append(report_line(repeat_dir, "stability.md"))
    split_method = str(report.get("config", {}).get("split", "random"))
    return lines, runs_warnings([repeat_dir / str(run["dir"]) for run in report["runs"]], split_method=split_method)


def compare_summary(
    compare_dir: Path, results: Sequence[Mapping[str, Any]], *, split_method: str = "random"
) -> tuple[list[str], list[str]]:
    """The end of ``compare``: one line per model, the report's path, and each model's run warnings."""
    width = max(len(str(r["model"])) for r in results)
    lines = [f"{str(r['model']):<{width}}  OA {_mean_std(r['overall_accuracy'])}  "
             f"AA {_mean_std(r['average_accuracy'])}  kappa {_mean_std(r['kappa'], kappa=True)}" for r in results]
    lines.append(report_line(compare_dir, "compare.md"))
    warnings = []
    for r in results:
        run_dirs = [compare_dir / str(run["run_dir"]) for run in r.get("runs", [])]
        warnings += runs_warnings(run_dirs, split_method=split_method, label=f"{r['model']}: ")
    return lines, warnings
