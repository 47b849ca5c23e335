"""The dashboard's budgets: its first page with 100,000 jobs in the store, a printed line reaching
a job's page, and a job printing 1 MB/s for a minute on an open page.

1. ``GET /ui`` (a logged-in session) with ``--n`` finished jobs cloned into the store (as
   ``bench_memory.py`` does): the median over ``--gets`` requests, target <= 200 ms.
2. A job prints a timestamped line every 100 ms; its page, open in Debian's Chromium (Playwright),
   records when each line appears (a MutationObserver): median print -> visible, target
   <= 500 ms.
3. A job prints ~1 MB/s for ``--flood-s`` seconds (60) on an open page: the page's long tasks
   (PerformanceObserver ``longtask``), target: none over 200 ms.

(2) and (3) need Chromium at /usr/bin/chromium; they run in a context without the page's
Content-Security-Policy, which refuses the measuring scripts.
"""

from __future__ import annotations

import os
import re
import statistics
import time

import bench_memory
import common
import httpx

from jobyard.testing import ServerProcess

FIRST_PAGE_MS = 200.0
LINE_MS = 500.0
LONG_TASK_MS = 200.0
CHROMIUM = "/usr/bin/chromium"
TICKER = ("import time\n"
          "for i in range({n}):\n"
          "    print(f't={{time.time():.6f}}', flush=True); time.sleep(0.1)\n")
FLOOD = ("import sys, time\n"
         "line = 'x' * 99 + '\\n'\n"
         "end = time.time() + {s}\n"
         "while time.time() < end:\n"
         "    t = time.time()\n"
         "    sys.stdout.write(line * 1000); sys.stdout.flush()  # 100 kB\n"
         "    time.sleep(max(0.0, 0.1 - (time.time() - t)))\n")
OBSERVE_LINES = """() => {
  window.__lat = [];
  new MutationObserver(records => {
    const now = Date.now() / 1000;
    for (const r of records) for (const n of r.addedNodes) {
      const m = /^t=([0-9.]+)$/.exec(n.textContent || "");
      if (m) window.__lat.push((now - Number(m[1])) * 1000);
    }
  }).observe(document.getElementById("log"), {childList: true});
}"""
LONG_TASKS = """
window.__long = [];
new PerformanceObserver(list => {
  for (const e of list.getEntries()) window.__long.push(e.duration);
}).observe({type: "longtask", buffered: true});
"""


def main() -> None:
    p = common.parser(__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=100_000, help="finished jobs (default 100000)")
    p.add_argument("--gets", type=int, default=50, help="GET /ui to time")
    p.add_argument("--lines", type=int, default=50, help="timestamped lines to time")
    p.add_argument("--flood-s", type=float, default=60.0, help="seconds of 1 MB/s output")
    args = p.parse_args()

    print(common.machine_note())
    print(f"database: {'PostgreSQL' if args.database_url else 'SQLite'}; {args.n} finished jobs")
    with common.workspace(args) as (data_dir, url):
        with common.server_on(data_dir, url) as srv, srv.client() as client:
            job = common.submit(client, {"command": "echo hello", "name": "bench-ui"})
            common.wait_state(client, job["id"], common.TERMINAL)
        bench_memory.populate(url or f"sqlite:///{data_dir / 'jobyard.db'}", job["number"],
                              args.n, 10_000)
        with common.server_on(data_dir, url) as srv:
            first_page(srv, args.gets)
            if not os.path.exists(CHROMIUM):
                print(f"line -> page, long tasks: not measured (no Chromium at {CHROMIUM})")
                return
            in_browser(srv, args.lines, args.flood_s)


def login(srv: ServerProcess) -> httpx.Client:
    web = httpx.Client(base_url=srv.url, timeout=30)
    token = re.search(r'name="csrf" value="([^"]+)"', web.get("/ui/login").text)[1]
    r = web.post("/ui/login", data={"api_key": srv.admin_key, "csrf": token})
    assert r.status_code == 303, r.text
    return web


def first_page(srv: ServerProcess, gets: int) -> None:
    web = login(srv)
    try:
        for _ in range(3):  # warm
            web.get("/ui")
        times = []
        for _ in range(gets):
            t0 = time.perf_counter()
            r = web.get("/ui")
            times.append((time.perf_counter() - t0) * 1000)
            assert r.status_code == 200 and r.text.count("data-job=") == 50
        deep = []
        for before in (90_000, 50_000, 10_000):
            t0 = time.perf_counter()
            web.get("/ui", params={"before": before})
            deep.append((time.perf_counter() - t0) * 1000)
    finally:
        web.close()
    s = common.summary(times)
    common.report("GET /ui, first page (50 of the newest), median", s["median"], "ms",
                  FIRST_PAGE_MS)
    common.info("p90 / max", f"{s['p90']:.1f} / {s['max']:.1f} ms")
    common.info("a deeper page (before=...), worst of 3", max(deep), "ms")


def in_browser(srv: ServerProcess, lines: int, flood_s: float) -> None:
    from playwright.sync_api import sync_playwright

    with srv.client() as client, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                                     args=["--no-sandbox"])
        context = browser.new_context(bypass_csp=True)
        page = context.new_page()
        page.goto(f"{srv.url}/ui/login")
        page.fill("input[name=api_key]", srv.admin_key)
        page.click("button[type=submit]")
        page.wait_for_url(f"{srv.url}/ui")

        job = common.submit(client, {"command": ["python3", "-c", TICKER.format(n=lines)]})
        page.goto(f"{srv.url}/ui/jobs/{job['id']}")
        page.evaluate(OBSERVE_LINES)
        common.wait_state(client, job["id"], common.TERMINAL, timeout=lines * 0.1 + 60)
        page.wait_for_selector("#follow:text('ended')", timeout=30_000)
        latencies = page.evaluate("window.__lat")
        if latencies:
            common.report("a printed line visible on its page, median",
                          statistics.median(latencies), "ms", LINE_MS)
            common.info("lines timed / p90", f"{len(latencies)} / "
                        f"{common.percentile(latencies, 90):.0f} ms")
        else:
            print("a printed line visible on its page: not measured (no line seen)")

        context.add_init_script(LONG_TASKS)
        job = common.submit(client, {"command": ["python3", "-c", FLOOD.format(s=flood_s)]})
        page.goto(f"{srv.url}/ui/jobs/{job['id']}")
        common.wait_state(client, job["id"], common.TERMINAL, timeout=flood_s + 120)
        page.wait_for_selector("#follow:text('ended')", timeout=120_000)
        long_tasks = page.evaluate("window.__long")
        shown = page.locator("#log .l").count()
        browser.close()
    worst = max(long_tasks, default=0.0)
    common.report(f"longest main-thread task, {flood_s:g} s of 1 MB/s", worst, "ms",
                  LONG_TASK_MS)
    common.info("long tasks (> 50 ms) / lines kept in the page", f"{len(long_tasks)} / {shown}")


if __name__ == "__main__":
    common.run(main, "dashboard budgets")
