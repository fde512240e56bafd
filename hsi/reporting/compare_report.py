"""The files of a model comparison: ``compare.json``, ``compare.csv``, ``compare.md`` and ``compare.png``.

The content arrives from :mod:`hsi.experiments.compare` as one JSON-ready dict per model
(fractions and seconds as :func:`~hsi.evaluation.stability.summarize` dicts); this module
writes the tables, the prose and the chart.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from hsi.config import RunConfig
from hsi.evaluation.stability import HEADLINE_METRICS
from hsi.reporting import figures
from hsi.reporting.files import atomic_save_figure, atomic_save_json, atomic_write_text
from hsi.reporting.html_report import Card, FigureRef, write_html_report
from hsi.reporting.run_report import training_share
from hsi.reporting.tables import comparison_markdown, count_noun, csv_text, format_percent
from hsi.training.recipe import recipe_line, recipe_record, resolve_recipe

__all__ = ["SUMMARISED", "chart_settings", "compare_csv", "compare_settings", "write_comparison"]

#: Per-run numbers summarised over seeds for each model, in display order.
SUMMARISED: tuple[str, ...] = (*HEADLINE_METRICS, "train_seconds", "inference_seconds")

_SPLIT_WORDS = {
    "random": "random, {train_ratio:g} of each class for training",
    "per-class": "per class, {train_per_class} training pixels per class",
    "disjoint": "spatially disjoint blocks, {train_ratio:g} for training",
    "masks": "the given training and test ground truths",
}


def compare_csv(results: Sequence[Mapping[str, Any]]) -> str:
    """``compare.csv``: one row per model, mean and std of each :data:`SUMMARISED` number (fractions)."""
    headers = ["model", "kind", "n_runs", "parameters"]
    for key in SUMMARISED:
        headers += [f"{key}_mean", f"{key}_std"]
    rows = []
    for r in results:
        row: list[Any] = [r["model"], r["kind"], r["n_runs"], r["parameters"]]
        for key in SUMMARISED:
            row += [r[key]["mean"], r[key]["std"]]
        rows.append(row)
    return csv_text(headers, rows)


def compare_settings(
    base: RunConfig, models: Sequence[str], seeds: Sequence[int], dataset: str, results: Sequence[Mapping[str, Any]]
) -> dict[str, Any]:
    """The settings every model shared, in words, for the table under the comparison."""
    split = _SPLIT_WORDS.get(base.split, base.split).format(
        train_ratio=base.train_ratio, train_per_class=base.train_per_class)
    # The recipe decides the hold-out where --val-ratio is not given (robust holds out a share of
    # each class's training pixels), so caption the ratio the runs actually used.
    resolved = resolve_recipe(base)
    if resolved.resolved_val_ratio:
        split += f", validation (--val-ratio {resolved.resolved_val_ratio:g}) picks the epoch of lowest validation loss"
    if base.split_seed is not None:
        split += f", split seed fixed at {base.split_seed}"
    return {
        "dataset": dataset,
        "models": list(models),
        "seeds": list(seeds),
        "split": split,
        "PCA components": base.pca_components,
        "patch size": base.patch_size,
        "epochs / batch size / lr (torch models)": f"{base.epochs} / {base.batch_size} / {base.lr:g}",
        "recipe (torch models)": recipe_line(recipe_record(resolved)),
        "device": ", ".join(dict.fromkeys(str(r["device"]) for r in results)),
    }


def write_comparison(
    folder: Path,
    base: RunConfig,
    models: Sequence[str],
    seeds: Sequence[int],
    dataset: str,
    results: Sequence[Mapping[str, Any]],
) -> None:
    """Writes ``compare.json``, ``compare.csv``, ``compare.md`` and ``compare.png`` into ``folder``.

    Args:
        folder: the compare folder.
        base: the settings shared by every run (recorded as ``config``).
        models: the model names, in table order.
        seeds: the seeds every model ran with (seed s: one split shared by all models).
        dataset: the scene's name.
        results: one dict per model, in ``models`` order (see
            :func:`~hsi.reporting.tables.comparison_markdown`).
    """
    n = len(seeds)
    atomic_save_json(
        folder / "compare.json",
        {"dataset": dataset, "models": list(models), "seeds": list(seeds), "config": base.to_dict(),
         "results": list(results)},
    )
    atomic_write_text(folder / "compare.csv", compare_csv(results))
    paragraph = (
        f"{count_noun(len(models), 'model')} on {dataset}, {count_noun(n, 'seed')} each; "
        f"seed s gives every model the same training and test pixels."
    )
    settings = compare_settings(base, models, seeds, dataset, results)
    markdown = comparison_markdown(results, title=f"Model comparison: {dataset}", paragraph=paragraph,
                                   settings=settings)
    atomic_write_text(folder / "compare.md", markdown)
    title = f"{dataset}: {len(models)} models" + (f", mean ± std over {n} seeds" if n > 1 else "")
    atomic_save_figure(figures.bar_chart(results, label_key="model", title=f"{title}\n{chart_settings(base)}"),
                       folder / "compare.png")
    best = max(results, key=lambda r: r["overall_accuracy"]["mean"] if r["overall_accuracy"]["mean"] is not None
               else -1.0)
    cards = [Card(f"{r['model']} OA", f"{format_percent(r['overall_accuracy']['mean'])}%",
                  "best" if r is best and len(results) > 1 else "") for r in results]
    write_html_report(
        folder, title=f"Model comparison: {dataset}", subtitle=chart_settings(base), headline=cards,
        markdown=markdown, markdown_name="compare.md",
        figure_groups=[("Comparison", [FigureRef("compare.png", "OA and AA (%) and kappa per model", wide=True)])],
        links=[(f"{r['model']}-seed{seed}/report.html", f"{r['model']}, seed {seed}")
               for r in results for seed in seeds],
    )


def chart_settings(base: RunConfig) -> str:
    """The settings a comparison chart's title names: epochs, patch size and training share."""
    return f"{base.epochs} epochs, patch {base.patch_size}, {base.split} split, {training_share(base)}"
