"""Acting from the dashboard inside a real Airflow api-server (simple auth manager with admin,
op, user and viewer logins, the project's plugin, the sfx_reprocess and sfx_dataset_merge DAGs
parsed by a real dag-processor): rights, cross-site protection, escaping, the REST calls made
with the user's own JWT, and the audit log. The browser test is in test_actions_browser.py.
"""

from __future__ import annotations

import json
from html.parser import HTMLParser

import requests
from playwright.sync_api import expect

from kernels.resultsdb import ResultsDB
from operators.pipeline.beamtime import VARIABLE, Beamtime
from plugins.sfx_dashboard_app.csrf import csrf_token

from .actions_stack import EXPERIMENT, actions_stack_fixture, logins  # noqa: F401 - fixture
from .conftest import EVIL, EVIL_DATASET, EVIL_TAG
from .test_browser import ARTIFACTS, browser  # noqa: F401 - fixture


class Tags(HTMLParser):
    """Start tags of a page and its text, as the browser parses them."""

    def __init__(self, text: str):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.text = ""
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text += data

    def named(self, tag: str) -> list[dict]:
        return [attrs for name, attrs in self.tags if name == tag]


def page_of(stack, session: requests.Session) -> Tags:
    response = session.get(f"{stack['url']}/sfxflow/actions", params={"experiment": EXPERIMENT})
    assert response.status_code == 200, response.text
    return Tags(response.text)


def post(stack, session: requests.Session, action: str, body: dict, **headers) -> requests.Response:
    """A write as the page's script sends it, unless ``headers`` change or drop (None) a header."""
    jwt = session.cookies.get("_token") or ""
    sent = {
        "Origin": stack["url"],
        "Content-Type": "application/json",
        "X-CSRF-Token": csrf_token(jwt),
    }
    sent.update({k.replace("_", "-"): v for k, v in headers.items()})
    sent = {k: v for k, v in sent.items() if v is not None}
    data = json.dumps(body) if sent.get("Content-Type") == "application/json" else body
    return session.post(
        f"{stack['url']}/sfxflow/actions/{action}", data=data, headers=sent, timeout=60
    )


def audit(stack) -> list[dict]:
    with ResultsDB(stack["results"]) as db:
        return db.actions(EXPERIMENT)


def tags_of(stack, run: str) -> list[str]:
    with ResultsDB(stack["results"], read_only=True) as db:
        return db.run_tags(stack["runs"][run])


def tag_body(stack, tag="sample-b", runs=("r0001",)) -> dict:
    return {"experiment": EXPERIMENT, "run_ids": [stack["runs"][r] for r in runs], "tag": tag}


def reprocess_body(stack, trial="t2") -> dict:
    return {
        "experiment": EXPERIMENT,
        "run_ids": [stack["runs"]["r0001"], stack["runs"]["r0002"]],
        "trial": trial,
        "trial_params": {"spotfinder": {"snr": 5.0}},
    }


EDITS = ["dataset", "default-trial", "delete-dataset", "reprocess", "tag", "untag"]


def test_each_role_sees_the_controls_airflow_grants_it(actions_stack):
    sessions = logins(actions_stack)
    forms = {
        who: sorted(f["data-action"] for f in page_of(actions_stack, session).named("form"))
        for who, session in sessions.items()
    }
    assert forms == {
        "admin": EDITS,
        "op": EDITS,
        "user": ["reprocess"],  # may trigger DAGs, not edit Variables
        "viewer": [],
    }
    viewer = page_of(actions_stack, sessions["viewer"])
    assert not viewer.named("input") and not viewer.named("script")
    assert viewer.named("div")[0]["data-csrf"] == ""  # no token for a user who may change nothing
    assert "read-only" in viewer.text
    op = page_of(actions_stack, sessions["op"])
    assert op.named("div")[0]["data-csrf"] == csrf_token(sessions["op"].cookies["_token"])


def test_hostile_names_stay_text(actions_stack):
    page = page_of(actions_stack, logins(actions_stack)["op"])
    # only the page's own elements: no name became a tag or an attribute
    assert {tag for tag, _ in page.tags} <= {
        "html",
        "head",
        "meta",
        "title",
        "style",
        "body",
        "p",
        "a",
        "h1",
        "h2",
        "div",
        "form",
        "b",
        "input",
        "button",
        "br",
        "textarea",
        "table",
        "tr",
        "th",
        "td",
        "code",
        "script",
    }
    assert all(not attr.startswith("on") for _, attrs in page.tags for attr in attrs)
    for name in (EVIL, EVIL_TAG, EVIL_DATASET):
        assert name in page.text
    labels = [i.get("aria-label") for i in page.named("input") if i.get("name") == "run_id"]
    assert f"choose {EVIL}" in labels


def test_anonymous_gets_401_and_a_viewer_403(actions_stack):
    anonymous = requests.Session()
    viewer = logins(actions_stack)["viewer"]
    user = logins(actions_stack)["user"]
    for action, body in (
        ("tag", tag_body(actions_stack)),
        ("dataset", {"experiment": EXPERIMENT, "name": "ds", "tags": ["a"]}),
        ("reprocess", reprocess_body(actions_stack)),
        ("untag", tag_body(actions_stack, tag=EVIL_TAG)),
        ("delete-dataset", {"experiment": EXPERIMENT, "name": EVIL_DATASET}),
        ("default-trial", {"experiment": EXPERIMENT, "trial_id": actions_stack["trial_id"]}),
    ):
        assert post(actions_stack, anonymous, action, body).status_code == 401
        refused = post(actions_stack, viewer, action, body)  # with the viewer's own valid token
        assert refused.status_code == 403, refused.text
        assert "Airflow says no" in refused.json()["detail"]
    assert post(actions_stack, user, "tag", tag_body(actions_stack)).status_code == 403
    assert tags_of(actions_stack, "r0001") == [EVIL_TAG] and audit(actions_stack) == []


def test_forged_cross_site_writes_are_refused(actions_stack):
    sessions = logins(actions_stack)
    op, admin_jwt = sessions["op"], sessions["admin"].cookies["_token"]
    forged = [
        {"Origin": "https://evil.example"},
        {"Sec_Fetch_Site": "cross-site"},
        {"X_CSRF_Token": None},
        {"X_CSRF_Token": "0" * 64},
        {"X_CSRF_Token": csrf_token(admin_jwt)},  # another session's token
        {"Content_Type": "application/x-www-form-urlencoded"},  # what a cross-site form sends
    ]
    for headers in forged:
        refused = post(actions_stack, op, "tag", tag_body(actions_stack), **headers)
        assert refused.status_code == 403, (headers, refused.text)
        assert "cross-site request refused" in refused.json()["detail"]
    assert tags_of(actions_stack, "r0001") == [EVIL_TAG] and audit(actions_stack) == []


def merge_events(stack) -> list[dict]:
    """The extras of the merged-runs asset's events announced through the REST API."""
    admin = stack["stack"].session()
    assets = admin.get(
        f"{stack['url']}/api/v2/assets", params={"uri_pattern": "merged-runs"}, timeout=30
    ).json()
    (asset_id,) = [
        a["id"] for a in assets["assets"] if a["uri"] == f"sfxflow://{EXPERIMENT}/merged-runs"
    ]
    events = admin.get(
        f"{stack['url']}/api/v2/assets/events", params={"asset_id": asset_id}, timeout=30
    )
    return [e["extra"] for e in events.json()["asset_events"] if e["extra"].get("from_rest_api")]


def test_an_op_tags_runs_and_defines_a_dataset_and_the_merge_follows(actions_stack):
    op = logins(actions_stack)["op"]
    hostile = post(actions_stack, op, "tag", tag_body(actions_stack, tag=EVIL_TAG))
    assert hostile.status_code == 422 and "invalid tag name" in hostile.json()["detail"]

    tagged = post(actions_stack, op, "tag", tag_body(actions_stack, runs=("r0001", "r0002")))
    assert tagged.status_code == 200, tagged.text
    assert "tagged 2 run(s) sample-b" in tagged.json()["outcome"]
    assert tags_of(actions_stack, "r0001") == sorted([EVIL_TAG, "sample-b"])
    assert tags_of(actions_stack, "r0002") == ["sample-b"]
    expected = [{"run": r, "trial": "t1", "requested_by": "op"} for r in ("r0001", "r0002")]
    extras = [
        {k: e[k] for k in ("run", "trial", "requested_by")} for e in merge_events(actions_stack)
    ]
    assert sorted(extras, key=lambda e: e["run"]) == expected

    defined = post(
        actions_stack,
        op,
        "dataset",
        {"experiment": EXPERIMENT, "name": "lyso-b", "tags": ["sample-b"], "splits": ["laser_on"]},
    )
    assert defined.status_code == 200, defined.text
    assert "split by laser_on" in defined.json()["outcome"]
    # written where the pipeline reads it: the Variable in Airflow's DB, and the results DB
    admin = actions_stack["stack"].session()
    variable = admin.get(f"{actions_stack['url']}/api/v2/variables/{VARIABLE}", timeout=30).json()
    # created from the defaults (the Variable was unset): the default dataset stays
    assert Beamtime.from_json(variable["value"]).datasets == {
        "lysozyme": ["lysozyme"],
        "lyso-b": ["sample-b"],
    }
    assert Beamtime.from_json(variable["value"]).dataset_splits == {"lyso-b": ["laser_on"]}
    with ResultsDB(actions_stack["results"], read_only=True) as db:
        assert [n for _, n in db.dataset_runs(EXPERIMENT, "lyso-b")] == ["r0001", "r0002"]
    # one more event per trial re-merges the whole dataset: the first of its runs for t1
    assert [e["run"] for e in merge_events(actions_stack)].count("r0001") == 2
    assert len(merge_events(actions_stack)) == 3

    wrong = post(actions_stack, op, "dataset", {"experiment": "other", "name": "x", "tags": ["a"]})
    assert wrong.status_code == 409 and "active beamtime" in wrong.json()["detail"]
    entries = audit(actions_stack)
    assert [(e["username"], e["action"]) for e in entries] == [("op", "dataset"), ("op", "tag")]
    assert entries[1]["detail"] == {"tag": "sample-b", "runs": ["r0001", "r0002"]}
    shown = page_of(actions_stack, logins(actions_stack)["viewer"]).text  # a viewer sees the log
    assert "lyso-b" in shown and "re-merge requested for 1 run result(s)" in shown


def test_a_user_starts_a_reprocess_with_their_own_rights(actions_stack):
    user = logins(actions_stack)["user"]
    odd = dict(reprocess_body(actions_stack), run_ids=[actions_stack["runs"][EVIL]])
    refused = post(actions_stack, user, "reprocess", odd)
    assert refused.status_code == 422 and "only runs named like r0001" in refused.json()["detail"]
    bad = dict(reprocess_body(actions_stack), trial_params={"spotfinder": {"snrr": 5.0}})
    refused = post(actions_stack, user, "reprocess", bad)
    assert refused.status_code == 422 and "snrr" in refused.json()["detail"]

    started = post(actions_stack, user, "reprocess", reprocess_body(actions_stack))
    assert started.status_code == 200, started.text
    run_id = started.json()["outcome"].removeprefix("started sfx_reprocess run ")
    admin = actions_stack["stack"].session()
    dag_run = admin.get(
        f"{actions_stack['url']}/api/v2/dags/sfx_reprocess/dagRuns/{run_id}", timeout=30
    ).json()
    assert dag_run["conf"] == {
        "trial": "t2",
        "trial_params": {"spotfinder": {"snr": 5.0}},
        "runs": "1,2",
    }
    assert dag_run["triggering_user_name"] == "user"  # the user's JWT, not a service account
    assert dag_run["note"] == "requested from the dashboard by user"
    entry = audit(actions_stack)[0]
    assert (entry["username"], entry["action"]) == ("user", "reprocess")
    assert entry["detail"]["dag_run_id"] == run_id and "token" not in json.dumps(entry).lower()


def op_page(stack, browser):  # noqa: F811
    """A chromium page logged in as op, and the messages of any script dialog it opened (an
    alert() would mean a name ran as script)."""
    ARTIFACTS.mkdir(exist_ok=True)
    page = browser.new_page(viewport={"width": 1300, "height": 1000})
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    passwords = json.loads((stack.home / "passwords.json").read_text())
    page.goto(f"{stack.base_url}/")
    page.fill("input[name=username]", "op")
    page.fill("input[name=password]", passwords["op"])
    page.click("button[type=submit]")
    page.wait_for_url(lambda url: "/auth/login" not in url)
    return page, dialogs


def test_an_op_tags_a_run_and_starts_a_reprocess_in_the_browser(actions_stack, browser):  # noqa: F811
    stack = actions_stack["stack"]
    page, dialogs = op_page(stack, browser)
    page.goto(f"{stack.base_url}/sfxflow/?experiment={EXPERIMENT}")
    page.get_by_role("link", name="tags, datasets and reprocessing").click()

    page.get_by_label("choose r0002").check()
    page.fill("form[data-action=tag] input[name=tag]", "sample-c")
    page.click("form[data-action=tag] button")
    expect(page.locator("#action-result")).to_contain_text("tagged 1 run(s) sample-c")
    row = page.locator(f'#action-runs tr[data-run-id="{actions_stack["runs"]["r0002"]}"]')
    expect(row.locator('td[data-field="tags"]')).to_contain_text("sample-c", timeout=10_000)

    page.get_by_label("choose r0001").check()
    page.fill("form[data-action=reprocess] input[name=trial]", "t3")
    page.click("form[data-action=reprocess] button")
    expect(page.locator("#action-result")).to_contain_text("started sfx_reprocess run")
    audit_rows = page.locator("table#audit tr")
    expect(audit_rows.nth(1)).to_contain_text("reprocess", timeout=10_000)  # newest first
    expect(audit_rows.nth(2)).to_contain_text("sample-c")
    page.screenshot(path=ARTIFACTS / "dashboard-actions.png", full_page=True)

    runs = stack.session().get(f"{stack.base_url}/api/v2/dags/sfx_reprocess/dagRuns", timeout=30)
    by_op = [r for r in runs.json()["dag_runs"] if r["conf"].get("trial") == "t3"]
    assert [(r["triggering_user_name"], r["conf"]["runs"]) for r in by_op] == [("op", "1")]
    assert "sample-c" in tags_of(actions_stack, "r0002")
    assert dialogs == []
    page.close()


def beamtime_variable(stack) -> Beamtime:
    """The beamtime settings as the pipeline reads them from Airflow's DB."""
    admin = stack["stack"].session()
    answer = admin.get(f"{stack['url']}/api/v2/variables/{VARIABLE}", timeout=30)
    return Beamtime.from_json(answer.json()["value"])


def test_an_op_untags_deletes_a_dataset_and_sets_the_default_trial(actions_stack):
    op, stack = logins(actions_stack)["op"], actions_stack
    assert post(stack, op, "tag", tag_body(stack, "sample-d", ("r0001", "r0002"))).ok
    body = {"experiment": EXPERIMENT, "name": "lyso-d", "tags": ["sample-d"]}
    assert post(stack, op, "dataset", body).ok
    untagged = post(stack, op, "untag", tag_body(stack, "sample-d", ("r0002",)))
    assert untagged.status_code == 200, untagged.text
    assert (
        "took tag sample-d off 1 run(s); dataset lyso-d: re-merge requested for 1"
        in (untagged.json()["outcome"])
    )
    assert "sample-d" not in tags_of(stack, "r0002") and "sample-d" in tags_of(stack, "r0001")
    again = post(stack, op, "untag", tag_body(stack, "sample-d", ("r0002",)))
    assert again.status_code == 404 and "carries tag 'sample-d'" in again.json()["detail"]

    deleted = post(stack, op, "delete-dataset", {"experiment": EXPERIMENT, "name": "lyso-d"})
    assert deleted.status_code == 200, deleted.text
    assert "lyso-d" not in beamtime_variable(stack).datasets  # no merge of it any more
    with ResultsDB(stack["results"], read_only=True) as db:
        assert "lyso-d" not in [d["name"] for d in db.datasets(EXPERIMENT)]
    # a dataset only the results DB knows (never in the settings) goes from there
    hostile = post(stack, op, "delete-dataset", {"experiment": EXPERIMENT, "name": EVIL_DATASET})
    assert hostile.status_code == 200, hostile.text
    missing = post(stack, op, "delete-dataset", {"experiment": EXPERIMENT, "name": "nosuch"})
    assert missing.status_code == 404 and "no dataset 'nosuch'" in missing.json()["detail"]

    chosen = {"experiment": EXPERIMENT, "trial_id": stack["trial_id"]}
    made = post(stack, op, "default-trial", chosen)
    assert made.status_code == 200, made.text
    settings = beamtime_variable(stack)
    assert (settings.trial, settings.trial_params) == ("t1", {"spotfinder": {"snr": 6.0}})
    actions = [(e["username"], e["action"]) for e in audit(stack)[:4]]
    assert actions == [
        ("op", a) for a in ("default-trial", "delete-dataset", "delete-dataset", "untag")
    ]
    assert audit(stack)[0]["detail"]["trial_params"] == {"spotfinder": {"snr": 6.0}}


def test_an_op_untags_deletes_and_sets_the_default_in_the_browser(actions_stack, browser):  # noqa: F811
    stack = actions_stack["stack"]
    page, dialogs = op_page(stack, browser)
    page.goto(f"{stack.base_url}/sfxflow/actions?experiment={EXPERIMENT}")
    results = page.locator("#action-result")
    page.get_by_label("choose r0001").check()
    page.fill("form[data-action=untag] input[name=tag]", EVIL_TAG)
    page.click("form[data-action=untag] button")
    expect(results).to_contain_text("took tag")
    expect(page.locator("table#audit tr").nth(1)).to_contain_text("untag", timeout=10_000)
    page.fill("form[data-action=delete-dataset] input[name=name]", "lysozyme")  # the default's
    page.click("form[data-action=delete-dataset] button")
    expect(results).to_contain_text("deleted dataset lysozyme from the beamtime settings")
    expect(page.locator("table#audit tr").nth(1)).to_contain_text("delete-dataset", timeout=10_000)
    page.click("form[data-action=default-trial] button")
    expect(results).to_contain_text("trial t1 is the default")
    expect(page.locator("table#audit tr").nth(1)).to_contain_text("default-trial", timeout=10_000)
    page.screenshot(path=ARTIFACTS / "dashboard-actions-edits.png", full_page=True)
    assert EVIL_TAG not in tags_of(actions_stack, "r0001")
    assert "lysozyme" not in beamtime_variable(actions_stack).datasets
    assert dialogs == []
    page.close()
