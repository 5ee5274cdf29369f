"""The dashboard in a real browser (Debian's chromium, headless) inside a real Airflow api-server.

Logs in through Airflow's login page, opens "Beamtime" from the UI's navigation, checks the
runs, the live progress and the plots, and saves screenshots under ``test-artifacts/``.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import expect, sync_playwright

from kernels.resultsdb import ResultsDB

from .conftest import EVIL, add_images

ARTIFACTS = Path(__file__).resolve().parents[3] / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def beamtime(dashboard_beamtimes) -> dict:
    return dashboard_beamtimes["overview"]


@pytest.fixture(scope="module")
def airflow(dashboard_server):
    """Airflow's api-server reading the test's results DB (shared with the frame viewer's)."""
    return dashboard_server


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} missing: install Debian's chromium (make sysdeps)")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def images_loaded(frame) -> list[int]:
    """naturalWidth of every plot image once it finished loading (0 = broken)."""
    frame.wait_for_function("() => Array.from(document.images).every(img => img.complete)")
    return frame.evaluate("() => Array.from(document.images).map(img => img.naturalWidth)")


def test_anonymous_browser_is_sent_to_the_login_page(airflow, browser):
    page = browser.new_page()
    page.goto(f"{airflow.base_url}/sfxflow/")
    assert "/auth/login" in page.url
    page.close()


def test_dashboard_in_the_airflow_ui(airflow, beamtime, browser):
    ARTIFACTS.mkdir(exist_ok=True)
    page = browser.new_page(viewport={"width": 1400, "height": 1100})
    dialogs: list[str] = []  # an alert() would mean a name ran as script
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))

    page.goto(f"{airflow.base_url}/")
    page.fill("input[name=username]", airflow.username)
    page.fill("input[name=password]", airflow.password)
    page.click("button[type=submit]")
    page.get_by_role("link", name="Beamtime").click()
    expect(page).to_have_url(f"{airflow.base_url}/plugin/beamtime")
    frame = page.frame_locator("iframe")
    runs = frame.locator("table#runs")
    expect(runs.locator("tr[data-run-id]")).to_have_count(3)

    done = runs.locator(f'tr[data-run-id="{beamtime["done"]}"]')
    expect(done.locator('td[data-field="state"]')).to_have_text("COMPLETED")
    expect(done.locator('td[data-field="images"]')).to_have_text("40")
    expect(done.locator('td[data-field="turnaround_s"]')).to_have_text("90 s")
    running = runs.locator(f'tr[data-run-id="{beamtime["running"]}"]')
    expect(running.locator("a")).to_have_text(EVIL)  # the name shown as text, not run
    expect(running.locator('td[data-field="images"]')).to_have_text("12")

    dashboard = page.frame(url=lambda url: "/sfxflow/" in url)
    assert images_loaded(dashboard) and all(width > 0 for width in images_loaded(dashboard))

    # live progress: more images logged while the page is open show up without a reload
    with ResultsDB(beamtime["url"]) as db:
        add_images(db, beamtime["running"], beamtime["trial_id"], 8, start=12, t0=1150.0)
    expect(running.locator('td[data-field="images"]')).to_have_text("20", timeout=10_000)
    expect(running.locator('td[data-field="hits"]')).to_have_text("10")
    expect(running.locator('progress[data-field="indexed"]')).to_have_js_property("max", 20)

    # a merge that lands while the page is open redraws its statistics and plots
    overall = frame.locator("table.overall")
    expect(overall).to_contain_text("0.913")
    with ResultsDB(beamtime["url"]) as db:
        stats = db.merge_stats(beamtime["trial_id"], dataset_id=beamtime["dataset_id"])
        db.record_merge_stats(
            beamtime["trial_id"],
            {**stats["overall"], "completeness": 0.955},
            stats["shells"],
            dataset_id=beamtime["dataset_id"],
        )
    expect(overall).to_contain_text("0.955", timeout=10_000)
    dashboard = page.frame(url=lambda url: "/sfxflow/" in url)
    assert all(width > 0 for width in images_loaded(dashboard))
    page.screenshot(path=ARTIFACTS / "dashboard-overview.png", full_page=True)

    running.locator("a").click()
    expect(frame.locator("h2", has_text="Computational weather")).to_be_visible()
    run_page = page.frame(url=lambda url: "/sfxflow/run" in url)
    widths = images_loaded(run_page)
    assert len(widths) == 1 and widths[0] > 0
    with ResultsDB(beamtime["url"]) as db:
        add_images(db, beamtime["running"], beamtime["trial_id"], 4, start=20, t0=1150.0)
    expect(frame.locator('#funnel td[data-field="images"]')).to_have_text("24", timeout=10_000)
    statuses = frame.locator("table#by-status tr")
    expect(statuses).to_have_count(3)
    expect(statuses.nth(0)).to_have_text("blank12")  # 10 + events 21 and 23: live too
    # the weather plot follows: fetched again for the 24 images, and drawn
    expect(frame.locator("img#weather")).to_have_attribute("src", re.compile(r"[?&]images=24$"))
    widths = images_loaded(run_page)
    assert len(widths) == 1 and widths[0] > 0
    page.screenshot(path=ARTIFACTS / "dashboard-run.png", full_page=True)
    assert dialogs == []
    page.close()
