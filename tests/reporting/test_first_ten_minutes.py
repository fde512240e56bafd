"""Issue 31: kappa one format (a coefficient), counts in words, report.html without repeats, readable maps."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from matplotlib.colors import to_hex
from PIL import Image

from hsi.data.lazy import Georef
from hsi.evaluation import aggregate_runs, classification_summary
from hsi.evaluation.leakage import leakage_audit
from hsi.evaluation.stability import HEADLINE_METRICS
from hsi.reporting import figures as G
from hsi.reporting import tables as T
from hsi.reporting.files import atomic_save_figure
from hsi.reporting.honesty import control_notes, leakage_notes
from hsi.reporting.html_report import FigureRef, _figure, render_report
from hsi.reporting.run_report import headline_cards
from hsi.reporting.stability_report import render_markdown, stability_report
from hsi.reporting.terminal import compare_summary, headline_line, repeat_summary

NAMES = ["alpha", "beta"]


def _summary(seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, size=60)
    return classification_summary(y, np.where(rng.random(60) < 0.9, y, 1 - y), class_names=NAMES)


def _stability(n_ties: int) -> dict:
    """A stability report of two runs whose consensus has ``n_ties`` tied test pixels."""
    preds = np.zeros((2, 1, 4), dtype=int)
    preds[1, 0, :n_ties] = 1  # run 0 says class 0, run 1 class 1: a tie
    runs = [{"dir": f"r{i}", "seed": i, "init_seed": i, "split_seed": i} for i in range(2)]
    report, *_ = stability_report(
        dataset="d", model="m", vary="both", runs=runs, run_metrics=[_summary(0), _summary(1)], predictions=preds,
        tests=np.ones((2, 1, 4), dtype=bool), labels=np.zeros((1, 4), dtype=int), class_names=NAMES,
        class_ids=[1, 2], source="s", config={})
    return report


def test_kappa_is_a_coefficient_in_every_table_line_and_card() -> None:
    s = _summary()
    kappa = f"{s['kappa']:.3f}"
    agg = aggregate_runs([_summary(0), _summary(1)], NAMES)
    result = {"model": "m", "n_runs": 2, "parameters": None, **{k: agg[k] for k in HEADLINE_METRICS},
              "train_seconds": {"mean": 1.0, "std": 0.1}, "inference_seconds": {"mean": 1.0, "std": 0.1}}
    texts = {
        "report.md": T.metrics_markdown(s),
        "stability.md": render_markdown(_stability(1)),
        "compare.md": T.comparison_markdown([result]),
        "terminal": headline_line(s),
        "repeat": "\n".join(repeat_summary(Path("x"), {**agg, "consensus": {}})[0]),
        "compare": "\n".join(compare_summary(Path("x"), [result])[0]),
        "control": " ".join(control_notes({"kind": "noise", "overall_accuracy": 0.3, "average_accuracy": 0.3,
                                           "kappa": 0.01234, "chance_majority_share": 0.3, "flagged": False,
                                           "chance_largest_test_class": 0.3, "chance_uniform": 0.5},
                                          overall_accuracy=0.9, split_method="random")),
    }
    for name, text in texts.items():
        assert "×100" not in text and not re.search(r"kappa \d+\.\d\d%", text, re.IGNORECASE), name
    assert f"| Cohen's kappa | {kappa} |" in texts["report.md"]
    assert f"kappa {kappa}" in texts["terminal"]
    mean, std = agg["kappa"]["mean"], agg["kappa"]["std"]
    assert f"kappa {mean:.3f} ± {std:.3f}" in texts["repeat"] and f"kappa {mean:.3f} ± {std:.3f}" in texts["compare"]
    assert "| Model | OA (%) | AA (%) | Kappa |" in texts["compare.md"] and f"{mean:.3f} ± {std:.3f}" in texts["compare.md"]
    assert "| Run folder | Seed | Init seed | Split seed | OA (%) | AA (%) | Kappa |" in texts["stability.md"]
    assert "kappa 0.012" in texts["control"]
    assert headline_cards({**s, "n_test": 60})[2].value == kappa
    assert T.format_kappa(-0.0001) == "0.000" and T.format_kappa(None) == "n/a"


def test_counts_are_written_in_the_right_number() -> None:
    assert T.count_noun(1, "tied pixel") == "1 tied pixel"
    assert T.count_noun(1234, "tied pixel") == "1,234 tied pixels"
    assert T.count_noun(2, "class", "classes") == "2 classes"
    one, two = render_markdown(_stability(1)), render_markdown(_stability(2))
    assert "1 of them has no majority" in one and "it is drawn white" in one
    assert "2 of them have no majority" in two and "they are drawn white" in two
    assert "Over all labelled pixels, 1 pixel has no majority." in one
    agg = aggregate_runs([_summary(0), _summary(1)], NAMES)
    consensus = {"n_pixels": 3, "n_ties": 1, "overall_accuracy": 1.0}
    lines, _ = repeat_summary(Path("x"), {**agg, "consensus": consensus})
    assert "on 3 pixels, 1 tied pixel left out" in lines[1]


def test_report_html_shows_the_title_metrics_and_warning_once(tmp_path: Path) -> None:
    train = np.zeros((10, 10), dtype=bool)
    train[::2, ::2] = True
    s = {**_summary(), "n_test": 60}
    notes = leakage_notes(leakage_audit(train, ~train, patch_size=5))
    markdown = T.metrics_markdown(s, title="scene: model", notes=notes)
    page = render_report(tmp_path, title="scene: model", headline=headline_cards(s), markdown=markdown)
    text = re.sub(r"<[^>]+>", " ", page.split("<body>")[1])
    assert page.count("<h1>") == 1 and text.count("scene: model") == 1
    assert "Overall accuracy, OA (%)" not in page and page.count('class="card"') == 3
    assert page.count("Warning:") == 1 and page.count('class="warning"') == 1
    assert "Leakage audit (5x5 patches)" in page  # the rest of the report is still there
    assert page.index('class="warning"') < page.index('class="body"')


def test_error_map_is_blue_and_orange_not_green_and_red() -> None:
    test = np.zeros((6, 5), dtype=bool)
    test[:4] = True
    correct = np.zeros_like(test)
    correct[:2] = True
    train = ~test
    fig = G.error_map(test, correct, train_mask=train)
    colours = {t.get_text().split(":")[0]: to_hex(h.get_facecolor())
               for t, h in zip(fig.legends[0].get_texts(), fig.legends[0].legend_handles, strict=True)}
    assert colours["correct"] == "#0072b2" and colours["wrong"] == "#d55e00" and colours["training"] == "#f0e442"
    assert not {"#2ca02c", "#d62728"} & set(colours.values())


def test_stability_figure_draws_accuracies_in_percent_and_kappa_apart() -> None:
    fig = G.stability_figure([_summary(0), _summary(1), _summary(2)], NAMES)
    head, kappa, per_class = fig.axes
    assert "%" in head.get_ylabel() and "%" in per_class.get_ylabel()
    assert all("fraction" not in ax.get_ylabel() for ax in fig.axes)
    assert head.get_ylim()[1] > 50 and per_class.get_ylim()[1] > 50  # percent, not 0..1
    assert "kappa" in kappa.get_ylabel() and kappa.get_ylim()[1] <= 1.5


def _scale_bar_label(ax) -> str:  # type: ignore[no-untyped-def]
    from mpl_toolkits.axes_grid1.anchored_artists import AnchoredSizeBar  # type: ignore[import-untyped]

    (bar,) = [a for a in ax.artists if isinstance(a, AnchoredSizeBar)]
    return str(bar.txt_label.get_text())


def test_georeferenced_maps_get_map_coordinates_and_a_scale_bar() -> None:
    classes = np.zeros((20, 30), dtype=int)
    utm = Georef("EPSG:32611", (30.0, 0.0, 499970.0, 0.0, -30.0, 4100060.0))
    ax = G.classification_map(classes, class_names=["a"], georef=utm).axes[0]
    assert ax.get_xlim() == pytest.approx((499970, 499970 + 900)) and ax.get_ylim() == pytest.approx((4099460, 4100060))
    assert ax.get_xlabel().startswith("easting (m)") and ax.get_ylabel() == "northing (m)"
    assert ax.get_xticks().size >= 2 and _scale_bar_label(ax) == "100 m"  # a round length <= 900 m / 5
    quick = G.classification_map(classes, class_names=["a"], georef=utm, pixel_step=10).axes[0]
    assert quick.get_xlim() == pytest.approx((499970, 499970 + 9000)) and _scale_bar_label(quick) == "1 km"
    lonlat = G.classification_map(classes, class_names=["a"],
                                  georef=Georef("EPSG:4326", (0.001, 0.0, -120.5, 0.0, -0.001, 38.25))).axes[0]
    assert lonlat.get_xlabel().startswith("longitude") and lonlat.get_ylabel().startswith("latitude")
    assert _scale_bar_label(lonlat) == "500 m"  # 30 x 0.001 deg at 38.2 N is about 2.6 km
    plain = G.classification_map(classes, class_names=["a"]).axes[0]
    assert plain.get_xticks().size == 0 and not plain.artists and plain.get_xlabel() == ""


@pytest.mark.parametrize(("shape", "n_classes", "chars"), [((83, 86), 6, 25), ((512, 217), 16, 25),
                                                            ((145, 145), 16, 28), ((256, 1476), 16, 28)])
def test_map_legends_are_readable_at_1300_px(tmp_path: Path, shape: tuple[int, int], n_classes: int,
                                             chars: int) -> None:
    """Legend capitals >= 9 px in report.html at a 1300 px window: 10 pt legends, shown at 96 px per inch,
    and no map wider than the 1144 px figure column, so none is scaled down there."""
    names = [f"{k:02d}".ljust(chars, "x") for k in range(n_classes)]
    fig = G.classification_map(np.zeros(shape, dtype=int), class_names=names)
    assert {t.get_fontsize() for t in fig.legends[0].get_texts()} == {G.LEGEND_FONT_PT}
    png = atomic_save_figure(fig, tmp_path / "map.png")
    shown = _figure(png, FigureRef("map.png", "map"))
    with Image.open(png) as image:
        natural, dpi = image.size[0], image.info["dpi"][0]
    column = 1240 - 2 * 28 - 2 * 20  # main's max width less its padding and a section's
    px_per_point = dpi / 72 * min(shown["width"], column) / natural
    assert shown["width"] <= column
    assert 0.729 * G.LEGEND_FONT_PT * px_per_point >= 9.0  # DejaVu Sans capitals are 0.729 em tall


def test_a_figure_whose_size_cannot_be_read_is_shown_as_the_browser_sizes_it(tmp_path: Path) -> None:
    (tmp_path / "bare.png").write_bytes(b"\x89PNG\r\n\x1a\n")  # tests that skip drawing write only this
    shown = _figure(tmp_path / "bare.png", FigureRef("bare.png", "bare"))
    assert shown["width"] is None and shown["src"].startswith("data:image/png;base64,")
    page = render_report(tmp_path, title="t", figure_groups=[("g", [FigureRef("bare.png", "bare")])])
    assert 'alt="bare">' in page


def test_predict_draws_a_georeferenced_cube_in_map_coordinates(synthetic_scene: Any, tmp_path: Path) -> None:
    """``predict --cube`` of an ENVI cube with ``map info``: map.png has eastings, northings and a scale bar."""
    from hsi.cli.main import main

    cube = np.load(synthetic_scene.cube_npy)  # (30, 26, 24) int16
    header = tmp_path / "scene.hdr"
    header.write_text("ENVI\nsamples = 26\nlines = 30\nbands = 24\nheader offset = 0\nfile type = ENVI Standard\n"
                      "data type = 2\ninterleave = bsq\nbyte order = 0\nmap info = {UTM, 1.000, 1.000, 500000.000, "
                      "4100000.000, 30.0, 30.0, 11, North, WGS-84, units=Meters}\n")
    np.ascontiguousarray(cube.transpose(2, 0, 1)).astype("<i2").tofile(tmp_path / "scene.img")
    drawn: list[Any] = []
    original = G.classification_map

    def spy(*args: Any, **kwargs: Any) -> Any:
        drawn.append(kwargs)
        return original(*args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(G, "classification_map", spy)
        assert main(["train", "--cube", str(header), "--gt", str(synthetic_scene.gt_npy), "--model", "svm",
                     "--pca-components", "5", "--out", str(tmp_path / "run"), "--quiet"]) == 0
        # train on the same cube, in memory: its map, labelled map and ground truth in map coordinates too
        assert len(drawn) == 3 and all(k["georef"].transform == pytest.approx((30, 0, 500000, 0, -30, 4100000))
                                       for k in drawn)
        drawn.clear()
        (run,) = (tmp_path / "run").iterdir()
        assert main(["predict", "--checkpoint", str(run), "--cube", str(header), "--out", str(tmp_path / "pred"),
                     "--quiet"]) == 0
    (kwargs,) = drawn
    assert kwargs["georef"].transform == pytest.approx((30, 0, 500000, 0, -30, 4100000))
    fig = original(np.zeros((30, 26), dtype=int), class_names=["a"], georef=kwargs["georef"],
                   pixel_step=kwargs["pixel_step"])
    assert fig.axes[0].get_xlim() == pytest.approx((500000, 500000 + 26 * 30))
