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
