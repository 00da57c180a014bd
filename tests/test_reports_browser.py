"""The HTML report opened in headless Chromium: rendered, images decoded, sortable."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from reports_fixtures import MAIN_DATASETS, BuiltReport, main_report

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]

# Appended to a copy of the page: after load, count decoded images, click the
# "avg rank" header of the leaderboard twice and the "test RMSE" header of the
# gamma table twice, then write what happened into the DOM.
PROBE = """
<script>
window.addEventListener("load", () => {
  const images = Array.from(document.images);
  const table = document.querySelector("table.sortable");
  const header = table.tHead.rows[0].cells[1];
  const firstColumn = () =>
    Array.from(table.tBodies[0].rows).map((row) => row.cells[0].textContent);
  header.click();
  const ascending = firstColumn();
  header.click();
  const descending = firstColumn();
  const gamma = Array.from(document.querySelectorAll("h3"))
    .find((h) => h.textContent.startsWith("gamma"))
    .nextElementSibling.querySelector("table");
  const encoders = () =>
    Array.from(gamma.tBodies[0].rows).map((row) => row.cells[1].textContent);
  gamma.tHead.rows[0].cells[2].click();
  const rmseAscending = encoders();
  gamma.tHead.rows[0].cells[2].click();
  const rmseDescending = encoders();
  const out = document.createElement("pre");
  out.id = "probe";
  out.textContent = JSON.stringify({
    decoded: images.filter((i) => i.complete && i.naturalWidth > 0).length,
    images: images.length,
    ascending,
    descending,
    rmseAscending,
    rmseDescending,
  });
  document.body.append(out);
});
</script>
"""

pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).is_file(),
    reason="chromium is not installed; install Debian's package with "
    "`apt-get install -y chromium` to run the browser tests",
)


def chromium(profile: Path, *arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *arguments],
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> BuiltReport:
    return main_report(tmp_path_factory)


def test_screenshot_not_blank(built: BuiltReport, tmp_path: Path):
    shot = tmp_path / "report.png"
    page = (built.out_dir / "report.html").as_uri()
    result = chromium(
        tmp_path / "profile", f"--screenshot={shot}", "--window-size=1400,3000", page
    )
    assert shot.is_file(), result.stderr[-2000:]
    with Image.open(shot) as image:
        assert image.size == (1400, 3000)
        pixels = np.asarray(image.convert("RGB"))
    ink = np.any(pixels < 200, axis=2).mean()
    # Tables, text and plots cover a few percent of a 1400 x 3000 page.
    assert ink > 0.02
    colored = (np.ptp(pixels.astype(int), axis=2) > 60).mean()
    assert colored > 0.001


def test_dom_tables_and_images(built: BuiltReport, tmp_path: Path):
    page = tmp_path / "probe.html"
    page.write_text((built.out_dir / "report.html").read_text() + PROBE)
    result = chromium(tmp_path / "profile", "--dump-dom", page.as_uri())
    dom = result.stdout
    assert result.returncode == 0, result.stderr[-2000:]
    assert dom.count('<table class="sortable">') == 1 + len(MAIN_DATASETS) + 1
    assert len(re.findall(r'<img src="data:image/png;base64,', dom)) == 4
    assert "<h2>Per dataset</h2>" in dom

    probe = json.loads(re.search(r'<pre id="probe">(.*?)</pre>', dom).group(1))
    assert probe["images"] == 4
    assert probe["decoded"] == 4
    assert probe["ascending"] == ["ple-quantile", "soft-bins", "none"]
    assert probe["descending"] == ["none", "soft-bins", "ple-quantile"]
    # The missing cell of gamma has no RMSE and stays last in both orders.
    assert probe["rmseAscending"] == ["soft-bins", "none", "ple-quantile"]
    assert probe["rmseDescending"] == ["none", "soft-bins", "ple-quantile"]
