"""A setup run's results in Debian's chromium inside the browser tests' real api-server: from the
overview's link to the setup list, the cell, both plots drawn, the per-panel residuals with a
hostile panel name as text, and the link to make the trial the default. Screenshot
``test-artifacts/dashboard-setup.png``."""

from __future__ import annotations

from playwright.sync_api import expect

from .conftest import EVIL
from .frames_fixtures import EXPERIMENT
from .setup_fixtures import SPACE_GROUP, register_setup
from .test_browser import ARTIFACTS, browser, log_in  # noqa: F401  (the chromium fixture)


def test_a_setup_runs_cell_and_geometry_in_the_browser(
    dashboard_server,
    dashboard_beamtimes,
    browser,  # noqa: F811
    setup_outputs,
):
    frames = dashboard_beamtimes["frames"]  # the server's Variable names this experiment folder
    setup = register_setup(frames["url"], frames["exp"], "setup-browser", setup_outputs)
    ARTIFACTS.mkdir(exist_ok=True)
    page, dialogs = log_in(browser, dashboard_server)  # an alert() would mean a name ran as script
    page.goto(f"{dashboard_server.base_url}/sfxflow/?experiment={EXPERIMENT}")
    page.get_by_role("link", name="setup runs (cell, geometry)").click()
    page.get_by_role("link", name="setup-browser v1").click()

    expect(page.locator("#setup-lattice")).to_contain_text("tP (tetragonal)")
    expect(page.locator("#setup-space-groups")).to_contain_text(f"{SPACE_GROUP} (the trial's)")
    expect(page.locator("#setup-rms")).to_contain_text(
        f"{setup['geometry']['rms_after_px']:.3g} px after"
    )
    expect(page.locator("#setup-panels")).to_contain_text(EVIL)  # shown as text, never run
    for image in ("#setup-histograms", "#setup-residuals"):
        page.wait_for_function(
            f"() => document.querySelector('{image}').naturalWidth > 0", timeout=10_000
        )
    page.screenshot(path=ARTIFACTS / "dashboard-setup.png", full_page=True)
    page.get_by_role("link", name="make this trial the experiment's default").click()
    expect(page.locator("h1")).to_contain_text("Tags, datasets and reprocessing")
    assert f"trial_id={setup['trial_id']}" in page.url
    assert dialogs == []
    page.close()
