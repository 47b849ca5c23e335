"""The dashboard against a real server: sessions, CSRF, the jobs list and a job's page, in
plain HTTP and in a real browser (Debian's Chromium driven by Playwright)."""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from jobyard.testing import ServerProcess, wait_until
from tests.api.helpers import submit, wait_state
from tests.api.test_auth import make_user
from tests.conftest import screenshot

TOKEN = re.compile(r'name="csrf" value="([^"]+)"')


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[ServerProcess]:
    # CPUs enough that one test's running jobs never queue another's.
    srv = ServerProcess(tmp_path_factory.mktemp("srv"), env={
        "JOBYARD_CPUS": "64", "JOBYARD_METRICS_INTERVAL_S": "0.3",
        "JOBYARD_WEBHOOK_ALLOWED_NETWORKS": '["127.0.0.0/8"]',
        "JOBYARD_WEBHOOK_POLL_INTERVAL_S": "0.2"}).start()
    yield srv
    srv.stop()


def browse(server: ServerProcess) -> httpx.Client:
    return httpx.Client(base_url=server.url, timeout=10)


def log_in(web: httpx.Client, key: str) -> httpx.Response:
    token = TOKEN.search(web.get("/ui/login").text)[1]
    return web.post("/ui/login", data={"api_key": key, "csrf": token})


@contextlib.contextmanager
def logged_in(browser, server: ServerProcess, **context: Any) -> Iterator[Any]:
    """A page of a new browser context, logged in through the login form as the admin."""
    ctx = browser.new_context(**{"viewport": {"width": 1280, "height": 800}, **context})
    page = ctx.new_page()
    try:
        page.goto(f"{server.url}/ui/login")
        page.fill("input[name=api_key]", server.admin_key)
        page.click("button[type=submit]")
        page.wait_for_url(f"{server.url}/ui")
        yield page
    finally:
        ctx.close()


def csrf(web: httpx.Client, path: str = "/ui") -> str:
    return TOKEN.search(web.get(path).text)[1]


def test_without_a_session_nothing_is_shown_and_nothing_changes(server):
    with server.client() as api:
        job = submit(api, "sleep 30", name="secret-name")
    with browse(server) as web:
        for path in ("/ui", f"/ui/jobs/{job['id']}"):
            r = web.get(path)
            assert (r.status_code, r.headers["location"]) == (303, "/ui/login")
        assert web.get("/ui/jobs/rows").status_code == 401
        assert web.get(f"/ui/jobs/{job['id']}/live").status_code == 404
        assert web.post(f"/ui/jobs/{job['id']}/cancel", data={"csrf": "x"}).status_code == 403
        login = web.get("/ui/login")
        assert login.status_code == 200 and "secret-name" not in login.text
        assert 'name="api_key"' in login.text
    with server.client() as api:
        assert api.get(f"/v1/jobs/{job['id']}").json()["state"] in ("queued", "launching",
                                                                    "running")
        api.post(f"/v1/jobs/{job['id']}/cancel")


def test_a_session_is_a_strict_http_only_cookie_that_revocation_and_logout_end(server):
    with server.client() as admin:
        key = make_user(admin, "ui-user", "ui-org")["key"]
    with browse(server) as web:
        assert log_in(web, "jy_wrong").status_code == 401
        assert web.post("/ui/login", data={"api_key": key}).status_code == 403  # no token
        flood = web.post("/ui/login", data={f"f{i}": "x" for i in range(50)})
        assert flood.status_code == 400 and "too many form fields" in flood.text
        r = log_in(web, key)
        assert (r.status_code, r.headers["location"]) == (303, "/ui")
        cookie = r.headers["set-cookie"]
        assert all(part in cookie for part in ("HttpOnly", "SameSite=strict", "Path=/ui"))
        assert key not in cookie
        page = web.get("/ui")
        assert page.status_code == 200 and "ui-user" in page.text
        assert "default-src 'self'" in page.headers["content-security-policy"]
        assert web.post("/ui/logout", data={"csrf": "forged"}).status_code == 403
        assert web.get("/ui").status_code == 200  # still in
        assert web.post("/ui/logout", data={"csrf": csrf(web)}).status_code == 303
        assert web.get("/ui").status_code == 303

        log_in(web, key)
        assert web.get("/ui").status_code == 200
        with server.client(key) as own:
            own_key = own.get("/v1/keys").json()["items"][0]
            assert own.delete(f"/v1/keys/{own_key['id']}").status_code in (200, 204)
        assert web.get("/ui").status_code == 303  # a revoked key ends its sessions at once


def test_the_list_pages_by_keyset_with_filters_in_the_url(server):
    with server.client() as api:
        ids = [submit(api, "true", tags=["paged"], name=f"p{i}")["id"] for i in range(55)]
        wait_until(lambda: all(api.get(f"/v1/jobs/{i}").json()["state"] == "completed"
                               for i in ids[-3:]), timeout=30)
    with browse(server) as web:
        log_in(web, server.admin_key)
        first = web.get("/ui", params={"tag": "paged"}).text
        shown = re.findall(r'data-job="(job_\w+)"', first)
        assert shown == ids[::-1][:50]
        older = re.search(r'href="/ui\?([^"]+)">Older jobs', first)[1].replace("&amp;", "&")
        assert "tag=paged" in older and "before=" in older
        rest = re.findall(r'data-job="(job_\w+)"', web.get("/ui?" + older).text)
        assert rest == ids[::-1][50:]
        none = web.get("/ui", params={"tag": "paged", "state": "failed"}).text
        assert "data-job=" not in none and "No jobs here yet" in none
        rows = web.get("/ui/jobs/rows", params={"tag": "paged", "name": "p3"}).text
        assert re.findall(r'data-job="(job_\w+)"', rows) == [ids[3]]

        def shown(**filters: str) -> int:
            return len(re.findall(r'data-job="', web.get("/ui", params={"tag": "paged",
                                                                         **filters}).text))
        today = datetime.now(UTC).date()
        assert shown(gpus="0") == 50 and shown(gpus="2") == 0
        assert shown(**{"from": str(today)}) == 50 and shown(to=str(today)) == 50
        assert shown(to=str(today - timedelta(days=1))) == 0
        assert shown(**{"from": str(today + timedelta(days=1))}) == 0
        assert shown(gpus="lots", to="someday") == 50  # what is not understood is dropped


def test_a_job_s_page_cancels_only_with_the_session_s_token_and_shows_the_receipt(server):
    with server.client() as api:
        job = submit(api, ["sh", "-c", "echo started; sleep 60"])
        wait_state(api, job["id"], "running")
    with browse(server) as web:
        log_in(web, server.admin_key)
        page = web.get(f"/ui/jobs/{job['id']}").text
        assert "running" in page and ">Cancel<" in page
        wait_until(lambda: ">started</div>" in web.get(f"/ui/jobs/{job['id']}").text)
        r = web.post(f"/ui/jobs/{job['id']}/cancel", data={"csrf": "forged"})
        assert r.status_code == 403
        assert web.post(f"/ui/jobs/{job['id']}/pause", data={"csrf": csrf(web)}).status_code \
            == 303
        assert ">Resume<" in web.get(f"/ui/jobs/{job['id']}").text
        with server.client() as api:
            assert api.get(f"/v1/jobs/{job['id']}").json()["state"] == "paused"
        assert web.post(f"/ui/jobs/{job['id']}/resume", data={"csrf": csrf(web)}).status_code \
            == 303
        assert web.post(f"/ui/jobs/{job['id']}/delete", data={"csrf": csrf(web)}).status_code \
            == 404
        with server.client() as api:
            assert api.get(f"/v1/jobs/{job['id']}").json()["state"] == "running"
        r = web.post(f"/ui/jobs/{job['id']}/cancel", data={"csrf": csrf(web)})
        assert (r.status_code, r.headers["location"]) == (303, f"/ui/jobs/{job['id']}")
        with server.client() as api:
            assert wait_state(api, job["id"], timeout=20)["state"] == "canceled"
        page = web.get(f"/ui/jobs/{job['id']}").text
        assert "canceled" in page and "Cancel receipt: SIGTERM" in page and ">Cancel<" not in page


def test_another_org_s_job_is_not_found_and_not_listed(server):
    with server.client() as admin:
        key = make_user(admin, "outsider", "other-org")["key"]
        job = submit(admin, "true", name="not-yours")
    with browse(server) as web:
        log_in(web, key)
        r = web.get(f"/ui/jobs/{job['id']}")
        assert r.status_code == 404 and "not-yours" not in r.text
        assert job["id"] not in web.get("/ui").text
        assert web.get(f"/ui/jobs/{job['id']}/live").status_code == 404


# In a browser: a job that reports progress, then waits to be canceled.
PROGRESSING = ("import jobyard.job as j, time\n"
               "for p in range(0, 100, 5):\n"
               "    j.progress(p, step='training', throughput=12.5); print('at', p, flush=True)\n"
               "    time.sleep(0.3)\n"
               "time.sleep(60)\n")


def test_in_a_browser_log_in_watch_progress_and_cancel(browser, server):
    with server.client() as api:
        job = submit(api, ["python3", "-c", PROGRESSING], name="browser-job")
        wait_state(api, job["id"], "running")
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    elsewhere, problems = [], []
    ours = urlsplit(server.url).netloc
    page.route("**/*", lambda route: route.continue_() if urlsplit(route.request.url).netloc
               == ours else (elsewhere.append(route.request.url), route.abort()))
    page.on("console", lambda msg: problems.append(msg.text) if msg.type == "error" else None)
    try:
        page.goto(f"{server.url}/ui")
        assert page.url.endswith("/ui/login")
        page.fill("input[name=api_key]", server.admin_key)
        page.click("button[type=submit]")
        page.wait_for_selector(f"tr[data-job='{job['id']}']")
        page.click(f"a[href='/ui/jobs/{job['id']}']")
        bar = page.locator("#progress")
        bar.wait_for(timeout=15_000)
        first = float(bar.get_attribute("value"))
        # It moves without a reload: the live part is polled.
        wait_until(lambda: float(page.locator("#progress").get_attribute("value") or 0) > first,
                   timeout=15)
        at_load = page.locator("#log .l").count()
        wait_until(lambda: page.locator("#log .l").count() > at_load, timeout=15)  # no reload
        assert "at " in page.inner_text("#log")
        assert "training · 12.5 /s" in page.inner_text("#live")  # step and rate by the bar
        screenshot(page, "ui-job-running")
        page.click("button.danger")
        page.wait_for_selector("#receipt", timeout=20_000)
        assert page.inner_text("#state") == "canceled"
        screenshot(page, "ui-job-canceled")
        with server.client() as api:
            assert api.get(f"/v1/jobs/{job['id']}").json()["state"] == "canceled"
        assert _processes_of(f"{job['id']}.1") == []  # verified: nothing of it left
        assert elsewhere == [] and problems == []
    finally:
        context.close()


def test_the_log_streams_loads_earlier_lines_and_downloads_whole(server):
    with server.client() as api:
        job = submit(api, ["python3", "-c", "for i in range(1500): print('line', i)"])
        assert wait_state(api, job["id"])["state"] == "completed"
    with browse(server) as web:
        log_in(web, server.admin_key)
        page = web.get(f"/ui/jobs/{job['id']}").text
        shown = re.findall(r'data-n="(\d+)">line (\d+)<', page)
        assert [int(n) for n, _ in shown] == list(range(1300, 1500))  # the last 200
        assert 'data-next="1500"' in page
        with web.stream("GET", f"/ui/jobs/{job['id']}/log/stream",
                        params={"offset": 1498}) as stream:
            events = [line for line in stream.iter_lines() if line.startswith("data:")]
        assert json.loads(events[0][5:]) == [{"n": 1498, "s": "stdout", "t": "line 1498"},
                                             {"n": 1499, "s": "stdout", "t": "line 1499"}]
        assert json.loads(events[-1][5:]) == {"state": "completed"}
        earlier = web.get(f"/ui/jobs/{job['id']}/log/earlier", params={"before": 1300}).json()
        assert [x["n"] for x in earlier["lines"]] == list(range(800, 1300))
        whole = web.get(f"/ui/jobs/{job['id']}/log.txt")
        assert whole.text.splitlines() == [f"line {i}" for i in range(1500)]
        assert f"{job['id']}.1.log" in whole.headers["content-disposition"]
    with browse(server) as stranger:  # no session: nothing of it
        for path in ("/log/stream", "/log/earlier?before=10", "/log.txt"):
            assert stranger.get(f"/ui/jobs/{job['id']}{path}").status_code == 404


FLOOD = "import time; time.sleep(1.5)\nfor i in range(200_000): print('row', i)"


def test_in_a_browser_a_flood_of_200000_lines_keeps_a_window_of_them(browser, server):
    with server.client() as api:
        job = submit(api, ["python3", "-c", FLOOD])
        wait_state(api, job["id"], "running")
    with logged_in(browser, server) as page:
        page.goto(f"{server.url}/ui/jobs/{job['id']}")
        page.wait_for_selector("#follow:text('ended')", timeout=60_000)
        wait_until(lambda: page.locator("#log .l").last.inner_text() == "row 199999", timeout=30)
        rows = page.locator("#log .l")
        assert rows.count() == 2000  # the window: the page holds no more
        first = int(rows.first.get_attribute("data-n"))
        page.click("#earlier")
        wait_until(lambda: int(rows.first.get_attribute("data-n")) == first - 500, timeout=10)
        assert rows.count() == 2000
        page.fill("#search", "row 19800")  # rows 198000-198009 are in the window now
        wait_until(lambda: page.locator("#log .l:visible").count() == 10, timeout=10)
        screenshot(page, "ui-job-flood")


def test_keys_are_made_shown_once_and_revoked_from_the_dashboard(server):
    with server.client() as admin:
        key = make_user(admin, "keyholder", "key-org")["key"]
        other = make_user(admin, "neighbour", "key-org")["key"]
    with browse(server) as web:
        log_in(web, key)
        assert web.post("/ui/keys", data={"name": "laptop", "csrf": "x"}).status_code == 403
        made = web.post("/ui/keys", data={"name": "laptop", "csrf": csrf(web, "/ui/keys")})
        secret = re.search(r'<code id="newkey">(jy_[^<]+)</code>', made.text)[1]
        assert "shown this once" in made.text
        assert secret not in web.get("/ui/keys").text  # never again
        with server.client(secret) as fresh:
            assert fresh.get("/v1/jobs").status_code == 200
            key_id = next(k["id"] for k in fresh.get("/v1/keys").json()["items"]
                          if k["name"] == "laptop")
        with browse(server) as neighbour:  # the same org, another user: not theirs to revoke
            log_in(neighbour, other)
            r = neighbour.post(f"/ui/keys/{key_id}/revoke",
                               data={"csrf": csrf(neighbour, "/ui/keys")})
            assert r.status_code == 404
        r = web.post(f"/ui/keys/{key_id}/revoke", data={"csrf": csrf(web, "/ui/keys")})
        assert (r.status_code, r.headers["location"]) == (303, "/ui/keys")
        with server.client(secret) as fresh:
            assert fresh.get("/v1/jobs").status_code == 401


def test_clusters_show_which_job_holds_which_gpus_and_volumes_are_listed(server):
    with server.client() as api:
        r = api.post("/v1/clusters", json={"instance_type": "1xGPU", "instance_count": 2})
        assert r.status_code == 202, r.text
        cid = r.json()["cluster_id"]
        wait_until(lambda: api.get(f"/v1/clusters/{cid}").json()["state"] == "ready", 20)
        job = submit(api, "sleep 60", cluster_id=cid)
        wait_state(api, job["id"], "running")
        made = api.post("/v1/storage", json={"name": "ui-data", "size_gb": 3})
        assert made.status_code == 202, made.text
        volume = made.json()["storage_id"]
    with browse(server) as web:
        log_in(web, server.admin_key)
        page = web.get("/ui/clusters").text
        section = page[page.index(f'data-cluster="{cid}"'):]
        assert f'href="/ui/jobs/{job["id"]}"' in section and "idle" in section
        assert re.search(r"<td>\d+</td><td>\d+</td>", section)  # an instance and its GPU
        assert "ui-data" in web.get("/ui/volumes").text
        requests = web.get("/ui/operations").text  # the claim and the volume's creation
        assert f"<td>{cid}</td>" in requests and f"<td>{volume}</td>" in requests
    with server.client() as api:
        api.post(f"/v1/jobs/{job['id']}/cancel")
        wait_state(api, job["id"], timeout=20)
        assert api.delete(f"/v1/clusters/{cid}").status_code == 202  # its GPUs back


PAGES = ("/ui", "/ui/jobs/{job}", "/ui/clusters", "/ui/volumes", "/ui/operations", "/ui/keys",
         "/ui/webhooks")


@pytest.mark.parametrize("scheme, width, height", [("light", 1280, 800), ("dark", 390, 844)])
def test_every_page_is_accessible_and_fits_light_dark_and_phone(browser, server, scheme,
                                                                width, height):
    from axe_playwright_python.sync_playwright import Axe

    with server.client() as api:
        job = submit(api, ["python3", "-c", "import jobyard.job as j; j.progress(40, "
                           "step='training'); print('hello')"], name="a11y")
        wait_state(api, job["id"])
    # axe runs as a script of the page: the page's own policy would refuse it.
    context = browser.new_context(viewport={"width": width, "height": height},
                                  color_scheme=scheme, bypass_csp=True)
    page = context.new_page()
    try:
        page.goto(f"{server.url}/ui/login")
        serious = _serious(Axe().run(page))
        assert serious == [], ("/ui/login", serious)
        page.fill("input[name=api_key]", server.admin_key)
        page.click("button[type=submit]")
        page.wait_for_url(f"{server.url}/ui")
        for path in PAGES:
            page.goto(server.url + path.format(job=job["id"]))
            serious = _serious(Axe().run(page))
            assert serious == [], (path, serious)
            overflow = page.evaluate("document.documentElement.scrollWidth - innerWidth")
            assert overflow <= 1, (path, overflow)  # nothing wider than the screen
            name = path.strip("/").replace("/", "-").replace("{job}", "job") or "ui"
            screenshot(page, f"{name.replace('ui-jobs-' + job['id'], 'ui-job')}-{scheme}")
        page.keyboard.press("Tab")  # the first stop is reachable by keyboard
        assert page.evaluate("document.activeElement.tagName") in ("A", "BUTTON", "INPUT")
    finally:
        context.close()


def _serious(results) -> list[str]:
    return [f"{v['id']}: {v['help']} ({len(v['nodes'])})" for v in results.response["violations"]
            if v["impact"] in ("serious", "critical")]


def test_a_bulk_cancel_by_filter_previews_its_count_and_needs_the_token(server):
    with server.client() as api:
        done = submit(api, "true", tags=["bulk-x"])["id"]
        wait_state(api, done)
        # Running or queued (two CPUs here): a bulk cancel reaches both.
        doomed = [submit(api, "sleep 60", tags=["bulk-x"])["id"] for _ in range(3)]
        spared = submit(api, "sleep 60", tags=["bulk-y"])["id"]
    with browse(server) as web:
        log_in(web, server.admin_key)
        assert 'href="/ui/cancel?tag=bulk-x"' in web.get("/ui", params={"tag": "bulk-x"}).text
        preview = web.get("/ui/cancel", params={"tag": "bulk-x"}).text
        assert "<strong>3</strong> jobs not yet ended would be canceled" in preview
        token = TOKEN.search(preview)[1]
        assert web.post("/ui/cancel?tag=bulk-x", data={"csrf": "x"}).status_code == 403
        r = web.post("/ui/cancel?tag=bulk-x", data={"csrf": token})
        assert (r.status_code, r.headers["location"]) == (303, "/ui?tag=bulk-x")
    with server.client() as api:
        for ref in doomed:
            assert wait_state(api, ref, timeout=20)["state"] == "canceled"
        assert api.get(f"/v1/jobs/{done}").json()["state"] == "completed"
        assert api.get(f"/v1/jobs/{spared}").json()["state"] in ("queued", "launching",
                                                                 "running")
        api.post(f"/v1/jobs/{spared}/cancel")
    with browse(server) as web:
        log_in(web, server.admin_key)
        assert "No job these filters match" in web.get("/ui/cancel?tag=bulk-x").text


WRITES = ("import os; open(os.path.join(os.environ['JOBYARD_OUTPUT_DIR'], 'model.bin'), 'wb')"
          ".write(b'weights')")


def test_a_job_s_page_says_why_it_waits_its_timeline_and_its_outputs(server):
    with server.client() as api:
        holder = submit(api, "sleep 60", resources={"gpus": 4})
        wait_state(api, holder["id"], "running")
        waiting = submit(api, "true", resources={"gpus": 4})
        done = submit(api, ["python3", "-c", WRITES])
        assert wait_state(api, done["id"])["state"] == "completed"
    with browse(server) as web:
        log_in(web, server.admin_key)
        page = web.get(f"/ui/jobs/{waiting['id']}").text
        assert "Why it waits" in page and "resources" in page
        assert "gpus: 4 requested, 0 free" in page
        page = web.get(f"/ui/jobs/{done['id']}").text
        states = re.findall(r'<li><span class="state (\w+)">', page)
        assert states[0] == "queued" and states[-1] == "completed" and "running" in states
        link = f"/ui/jobs/{done['id']}/outputs/model.bin?attempt=1"
        assert link in page
        assert web.get(link).content == b"weights"
        assert web.get(f"/ui/jobs/{done['id']}/outputs/nothing.bin").status_code == 404
        assert f"/job/info/{done['id']}" in page and f"/v2/jobs/{done['id']}/status" in page
    with browse(server) as stranger:
        assert stranger.get(link).status_code == 404
    with server.client() as api:
        api.post(f"/v1/jobs/{holder['id']}/cancel")
        api.post(f"/v1/jobs/{waiting['id']}/cancel")
        wait_state(api, holder["id"], timeout=20)


BURN = ("import time\nx = bytearray(80_000_000)\nend = time.time() + 3\n"
        "while time.time() < end: pass\n")


def test_in_a_browser_the_charts_fill_while_it_runs_and_stay(browser, server):
    with server.client() as api:
        job = submit(api, ["python3", "-c", BURN])
        wait_state(api, job["id"], "running")
    with logged_in(browser, server) as page:
        page.goto(f"{server.url}/ui/jobs/{job['id']}")
        page.wait_for_selector(".chart[data-chart=cpu] canvas", timeout=20_000)
        page.wait_for_selector(".chart[data-chart=rss] canvas")
        with server.client() as api:
            wait_state(api, job["id"])
        series = page.context.request.get(f"{server.url}/ui/jobs/{job['id']}/series.json")
        data = series.json()
        assert data["ended"] and len(data["ts"]) >= 2
        assert max(c or 0 for c in data["cpu"]) > 30  # it burnt a core
        assert max(m or 0 for m in data["rss_mb"]) > 60  # and held 80 MB
        page.reload()  # the charts stay after the end
        page.wait_for_selector(".chart[data-chart=cpu] canvas", timeout=10_000)
        screenshot(page, "ui-job-charts")


def _processes_of(marker: str) -> list[int]:
    import psutil

    found = []
    for proc in psutil.process_iter():
        with contextlib.suppress(psutil.Error):
            if proc.environ().get("JOBYARD_JOB_MARKER") == marker:
                found.append(proc.pid)
    return found


def test_webhook_deliveries_are_shown_for_the_user_and_on_the_job_s_page(server):
    from tests.events.receiver import Receiver

    receiver = Receiver().start()
    with server.client() as admin:
        key = make_user(admin, "hooked", "hook-org")["key"]
    try:
        with server.client(key) as api:
            r = api.put("/v1/me/webhook", json={"url": receiver.url + "/hook",
                                                "events": ["job.completed"]})
            assert r.status_code == 200, r.text
            job = submit(api, "true")
            wait_state(api, job["id"])
            wait_until(lambda: api.get(f"/v1/jobs/{job['id']}/webhooks").json()["items"]
                       and api.get(f"/v1/jobs/{job['id']}/webhooks").json()["items"][0]
                       ["status"] == "delivered", timeout=20)
        with browse(server) as web:
            log_in(web, key)
            page = web.get("/ui/webhooks").text
            assert receiver.url + "/hook" in page and "job.completed" in page
            assert "<td>delivered</td><td>1</td>" in page
            assert f'href="/ui/jobs/{job["number"]}"' in page
            assert web.get(f"/ui/jobs/{job['number']}").status_code == 200  # by number too
            job_page = web.get(f"/ui/jobs/{job['id']}").text
            assert "job.completed → " + receiver.url + "/hook: delivered (1 attempt)" in job_page
    finally:
        receiver.stop()
