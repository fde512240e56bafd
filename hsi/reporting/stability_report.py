"""The report of a repeat: ``stability.json/.md/.png``, ``agreement.npy/.png`` and ``consensus.png``.

The content arrives as a JSON-ready dict (fractions) built by :mod:`hsi.experiments.repeat`;
this module writes its prose and files. A report may mention repeat folders of the same
settings that it finds beside its own (:func:`find_comparison`), but it only ever reads them:
each folder's report is written by its own ``repeat`` command.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from hsi.evaluation.metrics import classification_summary
from hsi.evaluation.stability import (
    HEADLINE_METRICS,
    aggregate_runs,
    majority_vote,
    std_ratio_interval,
)
from hsi.reporting import figures
from hsi.reporting.files import (
    atomic_save_figure,
    atomic_save_json,
    atomic_save_npy,
    atomic_write_text,
)
from hsi.reporting.html_report import Card, FigureRef, write_html_report
from hsi.reporting.tables import (
    count_noun,
    format_kappa,
    format_metric,
    format_percent,
    markdown_table,
    stability_markdown,
)
from hsi.reporting.vary import VARY

__all__ = [
    "STABILITY_FILE", "comparison_paragraph", "find_comparison", "render_markdown", "source_paragraph",
    "stability_report", "write_stability_report",
]

STABILITY_FILE = "stability.json"


def source_paragraph(
    vary: str, *, seeds: Sequence[int], init_seed: int, split_seed: int, gpu_nondeterministic: bool,
    in_all: bool = False,
) -> str:
    """The "What varied" paragraph of ``stability.md``.

    Args:
        vary: a key of :data:`~hsi.reporting.vary.VARY`.
        seeds: the seed of each run, in run order.
        init_seed: the held initialisation seed (used when only the split varied).
        split_seed: the held split seed (used when only the initialisation varied).
        gpu_nondeterministic: runs went to a GPU without ``--deterministic``.
        in_all: the series of a ``--vary all`` folder, beside the others; default=False.

    Returns:
        One Markdown paragraph.
    """
    listed, rule = ", ".join(str(s) for s in seeds), VARY[vary]
    if rule.split and rule.init:
        text = (
            f"**What varied: split and initialisation.** Each run drew its own split and its own initialisation "
            f"(seeds {listed}), like independent `train --seed` runs. The spread below is the total of both "
            + ("sources; the `split` and `init` series beside it (`../split/`, `../init/`) tell them apart."
               if in_all else "sources; run `repeat --vary split` and `repeat --vary init` with the same settings "
               "and `--out` (or `repeat --vary all`) to see which one dominates.")
        )
    elif rule.split:
        text = (
            f"**What varied: the split.** Every run started from the same initial weights, dropout and "
            f"batch-order seed ({init_seed}) and drew its own random train/test split (split seeds "
            f"{listed}). The spread below is the effect of which pixels happen to be chosen for training and "
            "testing: how far one figure from a single random split can be trusted."
        )
    else:
        text = (
            f"**What varied: the initialisation.** Every run used the same train/test split (split seed "
            f"{split_seed}: identical training and test pixels) and changed only the initial weights, "
            f"dropout draws and batch order (seeds {listed}). The spread below is the training procedure's own "
            "randomness, not easier or harder test pixels."
        )
    if gpu_nondeterministic:
        text += (" The runs were trained on a GPU without `--deterministic`, so non-deterministic GPU kernels "
                 "add a little to the spread.")
    return text


def stability_report(
    *,
    dataset: str,
    model: str,
    vary: str,
    runs: Sequence[Mapping[str, Any]],
    run_metrics: Sequence[Mapping[str, Any]],
    predictions: np.ndarray,
    tests: np.ndarray,
    labels: np.ndarray,
    class_names: Sequence[str],
    class_ids: Sequence[int],
    source: str,
    config: Mapping[str, Any],
) -> tuple[dict[str, Any], np.ndarray, np.ndarray, np.ndarray]:
    """The content of ``stability.json``: summaries over runs, agreement and the scored consensus.

    Args:
        dataset: the scene's name; model: the model's name; vary: what varied (recorded).
        runs: one dict per run, in order: ``dir``, ``seed``, ``init_seed``, ``split_seed``.
        run_metrics: each run's ``metrics.json`` dict, in run order.
        predictions: class indices of every run, int (R, H, W).
        tests: each run's test mask, bool (R, H, W).
        labels: the scene's class indices, int (H, W), -1 unlabelled.
        class_names: the K class names; class_ids: the scene's K label ids.
        source: the "What varied" paragraph (:func:`source_paragraph`).
        config: the base settings, recorded as ``config``.

    Returns:
        ``(report, consensus, agreement, no_majority)``: the JSON-ready dict (fractions;
        ``comparison`` None, for :func:`find_comparison`), the majority vote int (H, W), the
        share of runs voting for it, float (H, W), and where no class has the most votes
        (a tie), bool (H, W). The consensus is scored on the pixels that were test pixels in
        every run and have a majority; the ties among them are counted (``n_ties``), not scored.
    """
    consensus, agreement, no_majority = majority_vote(predictions)
    labelled = labels >= 0
    common = np.logical_and.reduce(tests)  # test pixels in every run
    scored_mask = common & ~no_majority
    scored: dict[str, Any] = {"n_pixels": int(scored_mask.sum()), "n_labelled": int(labelled.sum()),
                              "n_common": int(common.sum()), "n_ties": int((common & no_majority).sum()),
                              "n_ties_labelled": int((labelled & no_majority).sum())}
    if scored_mask.any():
        truth = labels[scored_mask]
        summary = classification_summary(truth, consensus[scored_mask], class_names=list(class_names))
        scored.update({m: summary[m] for m in HEADLINE_METRICS},
                      mean_run_overall_accuracy=float(np.mean([(p[scored_mask] == truth).mean()
                                                               for p in predictions])))
    report: dict[str, Any] = {
        "dataset": dataset,
        "model": model,
        "vary": vary,
        "seeds": [r["seed"] for r in runs],
        "runs": [{**r, **{k: m[k] for k in HEADLINE_METRICS}} for r, m in zip(runs, run_metrics, strict=True)],
        **aggregate_runs(run_metrics, class_names),
        "class_ids": list(class_ids),
        "agreement": {"mean_labelled": float(agreement[labelled].mean()),
                      "unanimous_labelled": float((agreement[labelled] == 1.0).mean()),
                      "mean_all": float(agreement.mean())},
        "consensus": scored,
        "source": source,
        "comparison": None,
        "config": dict(config),
    }
    return report, consensus, agreement, no_majority


def comparison_paragraph(members: Mapping[str, Mapping[str, Any]]) -> str:
    """Which source moves OA more, from the ``split`` and ``init`` (and optional ``both``) members.

    Args:
        members: ``{vary: {"dir", "n_runs", "overall_accuracy_std", ...}}`` as in
            ``stability.json``'s ``comparison``; must hold ``split`` and ``init``.

    Returns:
        One Markdown paragraph; says when the 95% interval of the std ratio holds 1.
    """
    split, init = members["split"], members["init"]

    def pts(member: Mapping[str, Any]) -> str:
        return f"±{format_percent(member['overall_accuracy_std'])} points"

    text = (
        f"**Split or initialisation?** Side by side with the same settings, the split moves OA by {pts(split)} "
        f"(std over {split['n_runs']} runs, `{split['dir']}`), the initialisation by {pts(init)} "
        f"(std over {init['n_runs']} runs, `{init['dir']}`)"
    )
    s, i = split["overall_accuracy_std"], init["overall_accuracy_std"]
    if s == i:
        text += ": both sources move it equally."
    elif i == 0 or s == 0:
        text += f": only {'the split' if s > i else 'the initialisation'} moves it."
    else:
        larger, ratio = ("the split", s / i) if s > i else ("the initialisation", i / s)
        text += f": {larger} moves it more (about {ratio:.1f}×)."
        interval = std_ratio_interval(s, split["n_runs"], i, init["n_runs"])
        if interval is not None:
            low, high = interval
            if low <= 1.0 <= high:
                text += (f" With this many runs that difference is not significant: the 95% interval of the "
                         f"ratio split/initialisation std is [{low:.2f}, {high:.2f}], which holds 1; re-run both "
                         "with a larger `--runs` (finished runs are kept) to tell the two apart.")
            else:
                text += f" The 95% interval of the ratio split/initialisation std is [{low:.2f}, {high:.2f}]."
    if "both" in members:
        text += f" Varying both gives {pts(members['both'])} over {members['both']['n_runs']} runs."
    return text


def find_comparison(folder: Path, own: Mapping[str, Any], *, ignore: Collection[str]) -> dict[str, Any] | None:
    """Finds repeat folders of the same settings beside ``folder``; compares their OA spread by ``vary``.

    Reads the siblings' ``stability.json`` and never writes to them.

    Args:
        folder: this repeat folder; its siblings are the other folders of its parent.
        own: this folder's report (``config``, ``vary``, ``n_runs``, ``overall_accuracy``).
        ignore: config keys that may differ between compared folders (seeds, device, ...).

    Returns:
        ``{"members": {vary: {...}}, "text": paragraph}`` when a ``split`` and an ``init``
        folder are found (this folder standing for its own ``vary``), else None.
    """
    key = {k: v for k, v in own["config"].items() if k not in ignore}
    members: dict[str, dict[str, Any]] = {}
    candidates = [folder] + sorted(p for p in folder.parent.iterdir() if p.is_dir() and p != folder)
    for candidate in candidates:
        try:
            report = own if candidate == folder else json.loads((candidate / STABILITY_FILE).read_text())
            config, vary, n_runs = report["config"], report["vary"], int(report["n_runs"])
            std = report["overall_accuracy"]["std"]
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if std is None or {k: v for k, v in config.items() if k not in ignore} != key:
            continue
        best = members.get(vary)
        # This folder always stands for its own vary; among other folders, the one with most runs.
        if best is not None and (best["dir"] == folder.name or n_runs <= best["n_runs"]):
            continue
        members[vary] = {"dir": candidate.name, "n_runs": n_runs, "overall_accuracy_std": std,
                         "overall_accuracy_mean": report["overall_accuracy"]["mean"]}
    if "split" not in members or "init" not in members:
        return None
    return {"members": members, "text": comparison_paragraph(members)}


def render_markdown(report: Mapping[str, Any], *, with_answer: bool = True) -> str:
    """``stability.md`` (percentages) from the content of ``stability.json`` (fractions).

    The comparison with the other source of variation (the answer), when there is one, comes first,
    above what varied and the tables; ``with_answer=False`` leaves it out (``report.html`` shows it
    above its figures).
    """
    pct = format_percent
    paragraph = report["source"]
    if report.get("comparison") and with_answer:
        paragraph = report["comparison"]["text"] + "\n\n" + paragraph
    rule = VARY[report["vary"]]
    title = f"Stability of {report['model']} on {report['dataset']}: {report['n_runs']} runs varying {rule.words}"
    parts = [stability_markdown(report, seeds=report["seeds"], paragraph=paragraph, title=title,
                                class_ids=report["class_ids"])]
    parts.append("## Runs\n")
    rows = [[r["dir"], r["seed"], r["init_seed"], r["split_seed"], *(format_metric(m, r[m]) for m in HEADLINE_METRICS)]
            for r in report["runs"]]
    parts.append(markdown_table(
        ["Run folder", "Seed", "Init seed", "Split seed", "OA (%)", "AA (%)", "Kappa"], rows,
        align=["l", "r", "r", "r", "r", "r", "r"]))
    ag, co = report["agreement"], report["consensus"]
    parts.append("## Agreement and consensus\n")
    parts.append(
        f"Per pixel, the share of runs that predict the majority class (`agreement.npy`, `agreement.png`): "
        f"{pct(ag['mean_labelled'])}% on average over the labelled pixels, and all runs "
        f"agree on {pct(ag['unanimous_labelled'])}% of them ({pct(ag['mean_all'])}% on average over the whole scene).\n"
    )
    where = ("all test pixels (the split was the same in every run)" if not rule.split
             else "the pixels that were test pixels in every run (the intersection of the runs' test sets)")
    tie_words = _tie_words(co)
    if co["n_pixels"]:
        parts.append(
            f"The majority-vote map (`consensus.png`) is scored on {where}: "
            f"{co.get('n_common', co['n_pixels']):,} of {count_noun(co['n_labelled'], 'labelled pixel')}.{tie_words} "
            f"On the {count_noun(co['n_pixels'], 'scored pixel')} it reaches OA {pct(co['overall_accuracy'])}%, "
            f"AA {pct(co['average_accuracy'])}%, kappa {format_kappa(co['kappa'])}; the single runs reach OA "
            f"{pct(co['mean_run_overall_accuracy'])}% on average on the same pixels.\n"
        )
    else:
        parts.append(f"The majority-vote map (`consensus.png`) cannot be scored: no pixel was a test pixel in "
                     f"every run ({where}).\n")
    parts.append("The 95% intervals are Student-t intervals of the mean, clipped to the metric's range "
                 "(0-100% for accuracies, -1 to 1 for kappa); with few runs they are wide.\n")
    parts.append("## Settings\n")
    settings = [[k, str(v)] for k, v in report["config"].items() if v is not None]
    parts.append(markdown_table(["Setting", "Value"], settings))
    return "\n".join(parts)


def _tie_words(consensus: Mapping[str, Any]) -> str:
    """The sentences of ``stability.md`` on the scored pixels without a majority (ties), with their counts."""
    ties = consensus.get("n_ties", 0)
    if not ties:
        text = " Every one of them has a majority class."
    else:
        has, they = ("has", "it is") if ties == 1 else ("have", "they are")
        text = (f" {ties:,} of them {has} no majority (two or more classes share the most votes): {they} drawn "
                "white as \"no majority\" in `consensus.png` and left out of the consensus scores, so the consensus "
                "is scored only where the runs reach a majority.")
    labelled = consensus.get("n_ties_labelled", 0)
    if labelled:
        has = "has" if labelled == 1 else "have"
        text += f" Over all labelled pixels, {count_noun(labelled, 'pixel')} {has} no majority."
    return text


def write_stability_report(
    folder: Path,
    report: Mapping[str, Any],
    *,
    run_metrics: Sequence[Mapping[str, Any]],
    agreement: np.ndarray,
    consensus: np.ndarray,
    class_names: Sequence[str],
    palette: Sequence[str] | None,
    no_majority: np.ndarray | None = None,
) -> None:
    """Writes ``stability.json/.md/.png``, ``agreement.npy/.png`` and ``consensus.png`` into ``folder``.

    Args:
        folder: the repeat folder.
        report: the ``stability.json`` content (fractions).
        run_metrics: each run's ``metrics.json`` dict, in run order (the box plot).
        agreement: float (H, W) in ``[0, 1]``, the share of runs voting for the consensus.
        consensus: int (H, W), the majority-vote class index per pixel.
        class_names: the K class names, in class order.
        palette: the scene's K colours, or None for the default palette.
        no_majority: bool (H, W), pixels where runs tie (drawn as "no majority"); default=None.
    """
    atomic_save_json(folder / STABILITY_FILE, report)
    markdown = render_markdown(report)
    atomic_write_text(folder / "stability.md", markdown)
    atomic_save_npy(folder / "agreement.npy", agreement)
    n, scene = report["n_runs"], report["dataset"]
    title = f"{scene}, {report['model']}: {n} runs varying {VARY[report['vary']].words}"
    atomic_save_figure(figures.stability_figure(run_metrics, class_names, title=title), folder / "stability.png")
    atomic_save_figure(figures.agreement_figure(agreement, n_runs=n, title=f"{scene}: agreement between {n} runs"),
                       folder / "agreement.png")
    atomic_save_figure(
        figures.classification_map(consensus, class_names=class_names, palette=palette, no_majority=no_majority,
                                   title=f"{scene}, {report['model']}: majority vote of {n} runs"),
        folder / "consensus.png",
    )
    unit = {m: "" if m == "kappa" else "%" for m in HEADLINE_METRICS}  # kappa: a coefficient
    cards = [Card(label, f"{format_metric(m, report[m]['mean'])}{unit[m]}" if report[m]["mean"] is not None else "n/a",
                  f"± {format_metric(m, report[m]['std'])} (std over {n} runs)" if report[m]["std"] is not None else "")
             for m, label in zip(HEADLINE_METRICS, ("Overall accuracy", "Average accuracy", "Kappa"), strict=True)]
    answer = report["comparison"]["text"] if report.get("comparison") else ""
    write_html_report(
        folder, title=title, subtitle=f"repeat folder {folder.name}", headline=cards, lead=answer,
        markdown=render_markdown(report, with_answer=False) if answer else markdown, markdown_name="stability.md",
        figure_groups=[("Spread over runs", [FigureRef("stability.png", "OA / AA / kappa and per-class accuracy "
                                                       "over runs", wide=True)]),
                       ("Agreement and consensus", [FigureRef("agreement.png", "How many runs agree per pixel"),
                                                    FigureRef("consensus.png", "Majority vote (white: no majority)")])],
        links=[(f"{r['dir']}/report.html", f"{r['dir']} (seed {r['seed']})") for r in report["runs"]],
    )
