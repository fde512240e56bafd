"""report.html of a train, a repeat and a compare folder opens in headless Chromium with every image loaded."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from hsi.cli.main import main

BROWSER = next((b for b in ("chromium", "chromium-browser", "google-chrome") if shutil.which(b)), None)
# Run after load: the title becomes "<loaded>/<total>" images, and any script error shows as "error".
_PROBE = ("<script>window.onerror=function(){document.title='error'};window.addEventListener('load',function(){"
          "var i=[].slice.call(document.images);document.title=i.filter(function(x){return x.complete&&"
          "x.naturalWidth>0}).length+'/'+i.length;});</script>")


def _loaded_images(html_file: Path, tmp_path: Path) -> tuple[int, int]:
    probe = tmp_path / f"probe_{html_file.parent.name}.html"
    probe.write_text(html_file.read_text().replace("</body>", _PROBE + "</body>"))
    done = subprocess.run(
        [str(BROWSER), "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=5000", "--dump-dom",
         probe.as_uri()], capture_output=True, text=True, timeout=120, check=False)
    title = re.search(r"<title>(.*?)</title>", done.stdout)
    assert title is not None, done.stderr[-2000:]
    assert title.group(1) != "error", "a script error on the page"
    loaded, total = (int(x) for x in title.group(1).split("/"))
    return loaded, total


@pytest.mark.slow
@pytest.mark.skipif(BROWSER is None, reason="no headless browser: install chromium (apt-get install -y chromium)")
def test_report_html_opens_with_every_image(synthetic_scene: Any, tmp_path: Path) -> None:
    common = [*synthetic_scene.args(), "--patch-size", "5", "--pca-components", "15", "--train-ratio", "0.3",
              "--quiet", "--json"]
    assert main(["train", *common, "--model", "svm", "--out", str(tmp_path / "train")]) == 0
    assert main(["repeat", *common, "--model", "svm", "--runs", "2", "--out", str(tmp_path / "repeat")]) == 0
    assert main(["compare", *common, "--models", "svm,random_forest", "--out", str(tmp_path / "compare")]) == 0
    pages = [next((tmp_path / kind).iterdir()) / "report.html" for kind in ("train", "repeat", "compare")]
    for page in pages:
        html = page.read_text()
        assert "http://" not in html and "https://" not in html  # self-contained: nothing fetched
        loaded, total = _loaded_images(page, tmp_path)
        assert total >= 1 and loaded == total, f"{page}: {loaded} of {total} images loaded"


# Run after load: what the page shows at the window's width, as JSON in a <pre id="probe"> that --dump-dom prints.
_MEASURE = ("<script>window.addEventListener('load',function(){var p=document.createElement('pre');p.id='probe';"
            "p.textContent=JSON.stringify({width:window.innerWidth,h1:document.querySelectorAll('h1').length,"
            "text:document.querySelector('main').innerText,images:[].map.call(document.images,function(i){"
            "return {alt:i.alt,shown:i.clientWidth,natural:i.naturalWidth};})});document.body.appendChild(p);});"
            "</script>")


def _measure(html_file: Path, tmp_path: Path, *, width: int) -> dict[str, Any]:
    """The page laid out in a ``width`` px window: its text, h1 count and each image's shown and natural width."""
    import html
    import json

    probe = tmp_path / "measure.html"
    probe.write_text(html_file.read_text().replace("</body>", _MEASURE + "</body>"))
    done = subprocess.run(
        [str(BROWSER), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", f"--window-size={width},900",
         "--virtual-time-budget=5000", "--dump-dom", probe.as_uri()], capture_output=True, text=True, timeout=120,
        check=False)
    found = re.search(r'<pre id="probe">(.*?)</pre>', done.stdout, re.DOTALL)
    assert found is not None, done.stderr[-2000:]
    return dict(json.loads(html.unescape(found.group(1))))


@pytest.mark.skipif(BROWSER is None, reason="no headless browser: install chromium (apt-get install -y chromium)")
def test_run_report_at_1300_px_says_each_thing_once_with_readable_legends(synthetic_scene: Any, tmp_path: Path) -> None:
    """A patch model's report at a 1300 px window: title, metrics and the leakage warning each once, and the
    maps' legend capitals at least 9 px tall (10 pt legends at the PNG's dpi, scaled as the browser shows it)."""
    from PIL import Image

    from hsi.reporting.figures import LEGEND_FONT_PT
    from hsi.reporting.run_report import RUN_FIGURES

    assert main(["train", *synthetic_scene.args(), "--model", "hybridsn", "--epochs", "1", "--patch-size", "5",
                 "--pca-components", "15", "--train-ratio", "0.3", "--recipe", "paper", "--quiet", "--json",
                 "--out", str(tmp_path / "train")]) == 0
    run_dir = next((tmp_path / "train").iterdir())
    page = _measure(run_dir / "report.html", tmp_path, width=1300)
    text = page["text"].lower()
    assert page["width"] == 1300 and page["h1"] == 1
    assert text.count("synthetic_cube: hybridsn") == 1  # the title; the subtitle does not repeat it
    assert text.count("overall accuracy") == 1 and "cohen's kappa" not in text  # the cards, not also a table
    assert text.count("warning:") == 1 and text.count("of the test pixels have a training pixel inside") == 2
    files = {ref.caption: ref.file for _, refs in RUN_FIGURES for ref in refs}
    maps = [image for image in page["images"] if files[image["alt"]].endswith(("map.png", "map_labelled.png",
                                                                               "ground_truth.png", "errors.png",
                                                                               "split.png"))]
    assert len(maps) == 5
    for image in maps:
        with Image.open(run_dir / files[image["alt"]]) as png:
            dpi = float(png.info["dpi"][0])
        assert image["natural"] == png.size[0]
        legend_px = LEGEND_FONT_PT / 72 * dpi * image["shown"] / image["natural"]
        assert 0.729 * legend_px >= 9.0, (image["alt"], legend_px)  # DejaVu Sans capitals: 0.729 em
