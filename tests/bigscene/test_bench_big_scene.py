"""scripts/bench.py --big-scene: a synthetic georeferenced ENVI flight line, classified in a subprocess."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_bench_big_scene_reports_speed_memory_and_georeferencing(trained: dict[str, Path], tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "bench.py"), "--big-scene", "40", "200", "24", "--checkpoint",
         str(trained["svm"]), "--device", "cpu", "--tile-size", "32", "--work-dir", str(tmp_path / "w")],
        stdout=subprocess.PIPE, text=True, check=True,
    )
    record = json.loads(done.stdout.strip().splitlines()[-1])
    assert record["exit_status"] == 0 and record["pixels_per_second"] > 0 and record["peak_predict_rss_mb"] > 0
    geotiff = record["geotiff"]
    assert geotiff["crs"] == "EPSG:32611" and geotiff["transform"] == [5.0, 0.0, 500000.0, 0.0, -5.0, 4100000.0]
    assert geotiff["shape"] == [40, 200] and geotiff["tags"]["class_9"] == "class 9"
    assert geotiff["class_fractions_decimated"][str(0)] == pytest.approx(128 / 200)  # the zero swath edges
    assert record["prediction"]["n_tiles"] == 2 * 7
    assert not (tmp_path / "w").exists()  # the scene is deleted unless --keep-scene


def test_bench_big_scene_needs_a_checkpoint() -> None:
    spec = importlib.util.spec_from_file_location("hsi_bench_script_big", REPO / "scripts" / "bench.py")
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    with pytest.raises(SystemExit):
        bench.parse_args(["--big-scene", "10", "10", "5"])
