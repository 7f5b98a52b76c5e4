"""The page `speedrun leaderboard --html` writes renders in a real browser: headless Chromium (installed by
`make e2e-packages`) takes a screenshot of it with the network off, and the chart is there in colour."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from PIL import Image

from fixtures.submissions import finished_run, model_flops, speedrun_process
from fixtures.trainer import JobFactory

pytestmark = pytest.mark.e2e

WINDOW = (1200, 800)


def screenshot(page: Path, png: Path, profile: Path) -> subprocess.CompletedProcess[str]:
    chromium = shutil.which("chromium")
    assert chromium, "chromium is missing: `make e2e-packages` installs it (apt-get install chromium)"
    return subprocess.run(
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={profile}",
            f"--screenshot={png}",
            f"--window-size={WINDOW[0]},{WINDOW[1]}",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_leaderboard_page_renders_its_chart_in_headless_chromium(
    tiny_job: JobFactory, tmp_path: Path
) -> None:
    root = tmp_path / "experiments" / "speedrun"
    for group, (a, b, c) in {"adamw": (40.0, 0.2, 0.9), "muon": (60.0, 0.25, 0.95)}.items():
        for steps in (10, 20, 40, 80):
            job = tiny_job(name=f"s{steps}", train={"steps": steps})
            flops = model_flops(job)
            link = f"https://wandb.ai/marin-community/speedrun/runs/{group}-{steps}"
            finished_run(root / group, job, bpb=a * float(flops ** (-b)) + c, wandb_run_link=link)
    finished_run(root, tiny_job(name="solo"), bpb=1.45, wandb_run_link=None)
    page = tmp_path / "leaderboard.html"
    built = speedrun_process("leaderboard", str(root), "--html", str(page))
    assert built.returncode == 0, built.stderr

    png = tmp_path / "leaderboard.png"
    shot = screenshot(page, png, tmp_path / "chromium-profile")

    assert shot.returncode == 0, shot.stderr[-2000:]
    with Image.open(png) as image:
        assert image.size == WINDOW
        pixels = image.convert("RGB")
        colours = pixels.getcolors(maxcolors=WINDOW[0] * WINDOW[1])
    assert colours is not None
    # The palette's first two groups (drawn though the site would not list runs this small) and the grey of
    # the other runs, each as solid fill somewhere.
    for colour in ((0x25, 0x63, 0xEB), (0xDC, 0x26, 0x26), (0x6B, 0x72, 0x80)):
        assert any(rgb == colour and count > 20 for count, rgb in colours), f"no {colour} in the screenshot"
    white = sum(count for count, rgb in colours if rgb == (255, 255, 255))
    assert 0.3 < white / (WINDOW[0] * WINDOW[1]) < 0.98, "the page looks blank"
