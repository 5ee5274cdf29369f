"""The dashboard in a real browser (Debian's chromium, headless) inside a real Airflow api-server.

Logs in through Airflow's login page, opens "Beamtime" from the UI's navigation, checks the
runs, the live progress and the plots, and saves screenshots under ``test-artifacts/``.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import parse_qsl, quote, urlsplit

import pytest
from playwright.sync_api import expect, sync_playwright

from kernels.resultsdb import ResultsDB

from .conftest import EVIL, EVIL_TAG, EXPERIMENT, add_images

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

    shells = frame.locator(f"#plot-shells-{beamtime['dataset_id']} .scatterlayer .trace")
    expect(shells).to_have_count(3)  # completeness, CC1/2, <I/sigma>, drawn from api/datasets

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
    expect(shells).to_have_count(3)
    page.screenshot(path=ARTIFACTS / "dashboard-overview.png", full_page=True)

    running.locator("a").click()
    expect(frame.locator("h2", has_text="Computational weather")).to_be_visible()
    weather = frame.locator("#plot-weather")
    expect(weather.locator(".legendtext")).to_have_text(["calibrate", "spotfind", "index"])
    expect(weather).to_have_attribute("data-drawn", "1")
    with ResultsDB(beamtime["url"]) as db:
        add_images(db, beamtime["running"], beamtime["trial_id"], 4, start=20, t0=1150.0)
    expect(frame.locator('#funnel td[data-field="images"]')).to_have_text("24", timeout=10_000)
    statuses = frame.locator("table#by-status tr")
    expect(statuses).to_have_count(3)
    expect(statuses.nth(0)).to_have_text("blank12")  # 10 + events 21 and 23: live too
    # the weather plot follows: fetched again for the 24 images and redrawn in place
    expect(weather).to_have_attribute("data-drawn", "2")
    first_bar = weather.evaluate(  # the first bar's start, in pixels of the plot area
        "div => ({x: div._fullLayout.xaxis.l2p(div.data[0].x[0]),"
        " y: div._fullLayout.yaxis.l2p(div.data[0].y[0])})"
    )
    weather.locator(".nsewdrag").hover(position=first_bar)  # names rank, time and stage
    expect(weather.locator(".hovertext")).to_contain_text("rank")
    page.screenshot(path=ARTIFACTS / "dashboard-run.png", full_page=True)
    assert dialogs == []
    page.close()


# -- run view, dataset progress, timeline (issue 19) ------------------------------------------


def log_in(browser, airflow):
    """A page logged in through Airflow's login page, with a list of the alerts it raised."""
    page = browser.new_page(viewport={"width": 1400, "height": 1100})
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.goto(f"{airflow.base_url}/")
    page.fill("input[name=username]", airflow.username)
    page.fill("input[name=password]", airflow.password)
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r"^(?!.*/auth/login)"))
    return page, dialogs


def merge_run(db, beamtime, run_id: int, images: int, cc: float) -> None:
    shells = [{"d_min": 2.0, "d_max": 10.0, "cc_half": cc, "completeness": 0.6,
               "multiplicity": 2.0, "mean_i_over_sigma": 3.0}]  # fmt: skip
    overall = {
        "images": images,
        "cc_half": cc,
        "cc_star": 0.9,
        "error_model": {"a": 1.2, "b": 0.03},
    }
    db.record_merge_stats(beamtime["trial_id"], overall, shells, run_id=run_id)


def test_run_view_progress_and_timeline_update_live(airflow, beamtime, browser):
    ARTIFACTS.mkdir(exist_ok=True)
    page, dialogs = log_in(browser, airflow)
    base, trial = f"{airflow.base_url}/sfxflow", beamtime["trial_id"]
    with ResultsDB(beamtime["url"]) as db:
        merge_run(db, beamtime, beamtime["done"], 100, 0.2)

    page.goto(f"{base}/run?run_id={beamtime['running']}&trial_id={trial}")
    page.evaluate("() => { window.notReloaded = true; }")
    points = page.locator("#plot-spots .scatterlayer .point")
    expect(page.locator("#run-view")).to_have_attribute("data-images", re.compile(r"^\d+$"))
    before = int(page.locator("#run-view").get_attribute("data-images") or 0)
    expect(points).to_have_count(before)
    expect(page.locator("#run-state")).not_to_have_text("…")
    expect(page.locator("#plot-cells .bars .point").first).to_be_attached()
    with ResultsDB(beamtime["url"]) as db:  # live: the new frames appear without a reload
        add_images(db, beamtime["running"], trial, 6, start=before, t0=1150.0)
    expect(points).to_have_count(before + 6, timeout=10_000)
    assert page.evaluate("() => window.notReloaded === true")
    page.screenshot(path=ARTIFACTS / "dashboard-run-view.png", full_page=True)
    points.last.click(force=True)  # a frame's point opens it in the frame viewer
    page.wait_for_url(re.compile(r"/frames\?"), timeout=10_000)
    opened = dict(parse_qsl(urlsplit(page.url).query))
    assert opened["run_id"] == str(beamtime["running"]) and opened["trial_id"] == str(trial)
    assert {"chunk", "event"} <= opened.keys()

    dataset = beamtime["dataset_id"]
    page.goto(
        f"{base}/progress?experiment={quote(EXPERIMENT)}&trial_id={trial}&dataset_id={dataset}"
    )
    expect(page.locator("#progress")).to_have_attribute("data-crystals", "100")
    expect(page.locator("#estimate")).to_contain_text("more crystals")  # CC1/2 0.2 < 0.3
    expect(page.locator("#plot-progress .scatterlayer .trace").first).to_be_attached()
    with ResultsDB(beamtime["url"]) as db:  # a run's merge lands: the curve grows in place
        merge_run(db, beamtime, beamtime["running"], 300, 0.4)
    expect(page.locator("#progress")).to_have_attribute("data-crystals", "400", timeout=15_000)
    expect(page.locator("#estimate")).to_contain_text("reached by the model with 400 crystals")
    page.screenshot(path=ARTIFACTS / "dashboard-progress.png", full_page=True)

    page.goto(f"{base}/timeline?experiment={quote(EXPERIMENT)}&trial_id={trial}")
    rows = page.locator("#timeline-runs tr")
    expect(rows).to_have_count(4)  # head + 3 runs
    expect(page.locator("#timeline-runs")).to_contain_text(EVIL)  # names as text
    expect(page.locator("#plot-timeline .legendtext").first).to_contain_text(EVIL_TAG)
    with ResultsDB(beamtime["url"]) as db:  # a new run of the beamtime appears without reload
        run_id = db.ensure_run(EXPERIMENT, "r0004", concluded=1300.0)
        db.tag_run(run_id, EVIL_TAG)
        add_images(db, run_id, trial, 10)
    expect(rows).to_have_count(5, timeout=10_000)
    page.screenshot(path=ARTIFACTS / "dashboard-timeline.png", full_page=True)
    assert dialogs == []
    page.close()
