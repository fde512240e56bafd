"""The report of ``repeat --vary all``: which source of variation dominates, first, then the three series.

A ``--vary all`` folder holds the runs of three series (``split``, ``init``, ``both``), each distinct
run once, and a full stability report per series in ``<vary>/`` (:mod:`hsi.reporting.stability_report`).
Its own ``stability.json/.md`` and ``report.html`` open with the answer (:func:`answer`), then a
table of the three series. The content arrives as stability reports (fractions) from
:mod:`hsi.experiments.repeat`; this module writes its prose and files.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hsi.evaluation.stability import HEADLINE_METRICS, std_ratio_interval
from hsi.reporting.files import atomic_save_json, atomic_write_text
from hsi.reporting.html_report import Card, FigureRef, write_html_report
from hsi.reporting.tables import count_noun, format_kappa, format_percent, markdown_table
from hsi.reporting.vary import ALL, VARY

__all__ = ["all_report", "answer", "render_all_markdown", "series_member", "write_all_report"]

_SOURCE = {"split": "the split", "init": "the initialisation"}


def series_member(vary: str, report: Mapping[str, Any]) -> dict[str, Any]:
    """One series as a member of a comparison (``stability.json``'s ``comparison.members[vary]``)."""
    oa = report["overall_accuracy"]
    return {"dir": vary, "n_runs": int(report["n_runs"]), "overall_accuracy_std": oa["std"],
            "overall_accuracy_mean": oa["mean"]}


def _points(member: Mapping[str, Any]) -> str:
    return f"±{format_percent(member['overall_accuracy_std'])} points"


def answer(members: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """Which source moves OA more, from the ``split`` and ``init`` (and optional ``both``) members.

    Args:
        members: ``{vary: series_member(...)}``; must hold ``split`` and ``init`` with a std.

    Returns:
        ``{"dominant": "split" | "init" | None, "significant": bool | None, "std_ratio": split/init
        std or None, "std_ratio_ci95": [low, high] or None, "headline": "Answer: ...", "text": one Markdown
        paragraph opening with the headline}``.
        ``dominant`` is the larger source only when the 95% interval of the std ratio (F distribution)
        excludes 1, or when the other source did not move OA at all (``significant`` None: no test).
    """
    split, init = members["split"], members["init"]
    s, i = float(split["overall_accuracy_std"]), float(init["overall_accuracy_std"])
    n_s, n_i = split["n_runs"], init["n_runs"]
    runs = f"std over {n_s} runs each" if n_s == n_i else f"std over {n_s} and {n_i} runs"
    interval = std_ratio_interval(s, n_s, i, n_i)
    result: dict[str, Any] = {"dominant": None, "significant": False, "std_ratio": s / i if i > 0 else None,
                              "std_ratio_ci95": None if interval is None else list(interval)}
    big, small = ("split", "init") if s > i else ("init", "split")
    if s == i == 0:
        head, body = "neither source moves OA", f"Every run of the split and init series reached the same OA ({runs})."
    elif s == i:
        head = "neither: the split and the initialisation move OA equally"
        body = f"Each alone moves it by {_points(split)} ({runs})."
    elif min(s, i) == 0:
        result.update(dominant=big, significant=None)
        head = f"only {_SOURCE[big]} moves OA"
        body = (f"{_SOURCE[big].capitalize()} alone moves it by {_points(members[big])}; the runs varying only "
                f"{_SOURCE[small]} all reach the same OA ({runs}).")
    else:
        assert interval is not None  # both stds > 0 and at least 2 runs each
        low, high = interval
        significant = not low <= 1.0 <= high
        result.update(dominant=big if significant else None, significant=significant)
        head = f"{_SOURCE[big]} dominates" if significant else "neither source clearly dominates"
        body = (f"{_SOURCE[big].capitalize()} alone moves OA by {_points(members[big])}, {_SOURCE[small]} alone by "
                f"{_points(members[small])} ({runs}): about {max(s, i) / min(s, i):.1f}× more")
        ratio = f"the 95% interval of the ratio split/initialisation std, [{low:.2f}, {high:.2f}]"
        body += (f"; {ratio}, excludes 1." if significant else
                 f", but with this many runs that is not significant: {ratio}, holds 1. Run the same command with a "
                 "larger `--runs` to tell them apart (finished runs are kept).")
    if "both" in members:
        body += f" Varying both at once moves it by {_points(members['both'])}."
    result["headline"] = f"Answer: {head}."
    result["text"] = f"**{result['headline']}** {body}"
    return result


def all_report(reports: Mapping[str, Mapping[str, Any]], *, members: Mapping[str, Mapping[str, Any]],
               config: Mapping[str, Any]) -> dict[str, Any]:
    """The content of a ``--vary all`` folder's ``stability.json`` (fractions).

    Args:
        reports: ``{vary: stability report}`` of each series; its runs' ``dir`` is ``"../<run folder>"``.
        members: ``{vary: series_member(...)}`` of each series.
        config: the base settings, recorded as ``config``.

    Returns:
        ``answer`` (:func:`answer`), ``series`` (each series' OA/AA/kappa summaries and consensus),
        ``runs`` (each distinct run once, with its position in each series that holds it),
        ``comparison`` (``members`` and the answer's text, as in a series report) and ``config``.
    """
    first = next(iter(reports.values()))
    runs: dict[str, dict[str, Any]] = {}
    for vary, report in reports.items():
        for k, run in enumerate(report["runs"]):
            folder = str(run["dir"]).removeprefix("../")
            entry = runs.setdefault(folder, {"dir": folder, "init_seed": run["init_seed"],
                                             "split_seed": run["split_seed"],
                                             **{m: run[m] for m in HEADLINE_METRICS}, "series": {}})
            entry["series"][vary] = k
    result = answer(members)
    return {
        "dataset": first["dataset"], "model": first["model"], "vary": ALL, "seeds": first["seeds"],
        "n_runs": first["n_runs"], "n_trained_runs": len(runs), "answer": result,
        "series": {vary: {"dir": vary, "n_runs": r["n_runs"], **{m: r[m] for m in HEADLINE_METRICS},
                          "consensus": r["consensus"]} for vary, r in reports.items()},
        "runs": list(runs.values()),
        "comparison": {"members": {k: dict(v) for k, v in members.items()}, "text": result["text"]},
        "config": dict(config),
    }


def _title(report: Mapping[str, Any]) -> str:
    return (f"Split or initialisation? {report['model']} on {report['dataset']}, "
            f"{report['n_runs']} runs per series")


def render_all_markdown(report: Mapping[str, Any], *, with_answer: bool = True) -> str:
    """``stability.md`` of a ``--vary all`` folder (percentages): the answer, then the series table.

    ``with_answer=False`` leaves the answer out (``report.html`` shows it above the figures).
    """
    pct, n = format_percent, report["n_runs"]
    parts = [f"# {_title(report)}\n"]
    if with_answer:
        parts.append(report["answer"]["text"] + "\n")
    rows = [[vary, VARY[vary].words, f"{pct(s['overall_accuracy']['mean'])} ± {pct(s['overall_accuracy']['std'])}",
             pct(s["overall_accuracy"]["min"]), pct(s["overall_accuracy"]["max"]),
             f"[{pct(s['overall_accuracy']['ci95_low'])}, {pct(s['overall_accuracy']['ci95_high'])}]",
             f"{pct(s['average_accuracy']['mean'])} ± {pct(s['average_accuracy']['std'])}",
             f"{format_kappa(s['kappa']['mean'])} ± {format_kappa(s['kappa']['std'])}", f"`{vary}/stability.md`"]
            for vary, s in report["series"].items()]
    parts.append(markdown_table(
        ["Series", "What varied", "OA (%) mean ± std", "Min", "Max", "95% CI of the mean", "AA (%)",
         "Kappa", "Report"], rows, align=["l", "l", "r", "r", "r", "r", "r", "r", "l"]))
    shared = sum(len(r["series"]) > 1 for r in report["runs"])
    parts.append(
        f"std is the sample standard deviation (ddof=1) over the {n} runs of a series; the interval is Student-t. "
        f"{count_noun(report['n_trained_runs'], 'run')} trained for the {len(report['series'])} × {n} places in "
        "the series: a run that several series hold (the same initialisation and split seeds) is trained once "
        f"and counted in each ({count_noun(shared, 'such run')}, see Series below). Shared runs make the series a "
        "little dependent; the interval of the std ratio treats them as independent.\n")
    parts.append("## What each series held fixed\n")
    seeds = ", ".join(str(s) for s in report["seeds"])
    split_held = next(r for r in report["runs"] if "split" in r["series"])["init_seed"]
    init_held = next(r for r in report["runs"] if "init" in r["series"])["split_seed"]
    parts.append(f"- **split** (`split/`): split seeds {seeds}, the initialisation seed held at {split_held}.\n"
                 f"- **init** (`init/`): initialisation seeds {seeds}, the split seed held at {init_held}: "
                 "identical training and test pixels.\n"
                 f"- **both** (`both/`): split and initialisation seeds {seeds}, like independent "
                 "`train --seed` runs.\n")
    parts.append("## Runs\n")
    parts.append(markdown_table(
        ["Run folder", "Init seed", "Split seed", "OA (%)", "AA (%)", "Kappa", "Series"],
        [[r["dir"], r["init_seed"], r["split_seed"], pct(r["overall_accuracy"]), pct(r["average_accuracy"]),
          format_kappa(r["kappa"]), ", ".join(r["series"])] for r in report["runs"]],
        align=["l", "r", "r", "r", "r", "r", "l"]))
    parts.append("## Settings\n")
    parts.append(markdown_table(["Setting", "Value"], [[k, str(v)] for k, v in report["config"].items()
                                                       if v is not None]))
    return "\n".join(parts)


def write_all_report(folder: Path, report: Mapping[str, Any]) -> None:
    """Writes ``stability.json``, ``stability.md`` and ``report.html`` of a ``--vary all`` folder.

    The series' own reports (``<vary>/stability.png`` and the rest) must be written already:
    the page shows their box plots.
    """
    atomic_save_json(folder / "stability.json", report)
    atomic_write_text(folder / "stability.md", render_all_markdown(report))
    n = report["n_runs"]
    cards = [Card(f"OA spread, {vary}", f"±{format_percent(s['overall_accuracy']['std'])}",
                  f"std over {n} runs, mean {format_percent(s['overall_accuracy']['mean'])}%")
             for vary, s in report["series"].items()]
    write_html_report(
        folder, title=_title(report), subtitle=f"repeat folder {folder.name} (--vary all)", headline=cards,
        lead=report["answer"]["text"], markdown=render_all_markdown(report, with_answer=False),
        markdown_name="stability.md",
        figure_groups=[("Spread over runs, by series",
                        [FigureRef(f"{vary}/stability.png", f"{vary}: runs varying {VARY[vary].words}")
                         for vary in report["series"]])],
        links=[(f"{vary}/report.html", f"{vary}: the report of the runs varying {VARY[vary].words}")
               for vary in report["series"]], links_heading="Series reports",
    )
