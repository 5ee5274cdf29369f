"""A dataset's splits on its dataset page in Debian's chromium inside the browser tests' real
api-server: one table per split (images, CC½, completeness, Riso, CCiso; the reference set
marked), a hostile set label shown as text in the table and the plot's legend, and the
per-shell CCiso plot drawn. Screenshot ``test-artifacts/dashboard-splits.png``."""

from __future__ import annotations

from urllib.parse import quote

from playwright.sync_api import expect

from kernels.resultsdb import ResultsDB

from .conftest import EVIL, EXPERIMENT
from .test_browser import ARTIFACTS, browser, log_in  # noqa: F401  (the chromium fixture)


def split(reference: str, label: str, riso: float, cc_iso: float) -> dict:
    """A split of two sets as ``record_split_stats`` stores it, CCiso falling with resolution."""
    shells = [
        {"d_min": d, "n": 50, "riso": riso * k, "cc_iso": cc_iso / k}
        for d, k in ((4.0, 1.0), (3.0, 1.2), (2.5, 1.5))
    ]
    return {
        "reference": reference,
        "images_in_no_set": 0,
        "sets": {
            reference: {"images": 120, "cc_half": 0.91, "completeness": 0.98},
            label: {"images": 80, "cc_half": 0.87, "completeness": None},
        },
        "differences": {label: {"riso": riso, "cc_iso": cc_iso, "shells": shells}},
    }


def test_a_datasets_splits_on_its_page(
    dashboard_server,
    dashboard_beamtimes,
    browser,  # noqa: F811
):
    beamtime = dashboard_beamtimes["overview"]
    trial, dataset = beamtime["trial_id"], beamtime["dataset_id"]
    with ResultsDB(beamtime["url"]) as db:
        splits = {
            "laser_on": split("0", EVIL, 0.213, 0.876),
            "delay_ns": split("0-500", "500-2000", 0.3, 0.7),
        }
        db.record_split_stats(trial, dataset, splits)
    ARTIFACTS.mkdir(exist_ok=True)
    page, dialogs = log_in(browser, dashboard_server)  # an alert() would mean a name ran as script
    page.goto(
        f"{dashboard_server.base_url}/sfxflow/progress?experiment={quote(EXPERIMENT)}"
        f"&trial_id={trial}&dataset_id={dataset}"
    )

    laser = page.locator('table.split[data-split="laser_on"]')
    expect(laser.locator("tr")).to_have_count(3)  # head + two sets
    expect(laser.locator("tr").nth(1)).to_contain_text("reference")
    expect(laser.locator("tr").nth(2)).to_have_text(
        f"{EVIL}800.87–0.2130.876", use_inner_text=False
    )  # the label as text; no completeness: '–'
    expect(page.locator('table.split[data-split="delay_ns"]')).to_contain_text("500-2000")
    plot = page.locator("#splits .split-cciso")
    expect(plot).to_have_count(2)
    expect(plot.first.locator(".scatterlayer .trace")).to_have_count(1)
    legend = page.locator('.split-cciso[data-split="laser_on"] .legendtext')
    expect(legend).to_have_text(EVIL)  # as text, not markup
    assert EVIL in page.locator("#splits").inner_text()
    page.screenshot(path=ARTIFACTS / "dashboard-splits.png", full_page=True)
    assert dialogs == []
    page.close()
