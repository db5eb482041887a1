"""The offline report in headless chromium: opened from a file, it makes no request out of
the file (every request is recorded), renders hostile names as text, and its smoothing
slider re-smooths the panels in the page.

A screenshot of the report is saved to pytest's tmp_path/report.png.
"""

import json

from gandiag.store import open_run
from gandiag.widgets.report import PANELS_ID, write_report
from tests.widgets.test_report import hostile_run, stored_alert

# Collected before any script of the page runs: what the Content-Security-Policy blocked.
VIOLATIONS_JS = """window.__violations = [];
document.addEventListener('securitypolicyviolation', e =>
    window.__violations.push(e.violatedDirective + ' ' + (e.blockedURI || '')));"""

# The y of the named trace as plain numbers (NaN as null), from the rendered figure: float32
# arrays travel as binary, and plotly.js keeps the decoded ones in _fullData.
TRACE_Y_JS = """([id, name]) => {
    const trace = document.getElementById(id)._fullData.find(t => t.name === name);
    return Array.from(trace.y).map(v => Number.isFinite(v) ? v : null);
}"""


def test_the_report_fetches_nothing_shows_names_as_text_and_resmooths_offline(browser, tmp_path):
    alert = stored_alert(1000, message="<img src=http://example.com/message.png>")
    name = hostile_run(tmp_path / "s.sqlite", alerts=[alert], nan_from=2600)
    with open_run(name, tmp_path / "s.sqlite") as run:
        report = write_report(run, tmp_path / "report.html")
    page = browser.pages[0] if browser.pages else browser.new_page()
    page.set_default_timeout(60_000)
    requests, failures = [], []
    page.on("request", lambda request: requests.append(request.url))
    page.on("pageerror", lambda error: failures.append(str(error)))
    blocked = []
    page.on("requestfailed", lambda request: blocked.append((request.url, request.failure)))
    page.add_init_script(VIOLATIONS_JS)
    page.goto(f"file://{report}")
    page.locator(f"#{PANELS_ID} .main-svg").first.wait_for(state="visible", timeout=90_000)
    page.wait_for_timeout(1000)  # let late requests (fonts, pictures) show up
    page.screenshot(path=str(tmp_path / "report.png"), full_page=True)

    outside = [url for url in requests if not url.startswith(("file:", "data:", "blob:"))]
    assert outside == [], f"the report asked the network for {outside}"
    assert requests[0] == f"file://{report}" and failures == []
    assert page.evaluate("window.__violations") == []  # nothing even tried to leave
    # hostile names are text: no element from them, the characters shown as written
    assert page.locator("a[href*='example.com'], img[src*='example.com'], script[src]").count() == 0
    assert "<img src=http://example.com/name.png>" in page.locator("h1").inner_text()
    page.wait_for_function(  # plotly draws the legends after the first panel is visible
        "id => document.getElementById(id).textContent.includes('accuracy on fake')", arg=PANELS_ID)
    drawn = page.locator(f"#{PANELS_ID}").text_content()  # titles, legends, ticks
    assert "name <img src=http://example.com/name.png>" in drawn and "metric <img src=htt…" in drawn  # shortened
    assert "found now" in page.locator("body").inner_text()

    # the slider's first stop is weight 0: the smoothed line becomes the raw one
    raw = page.evaluate(TRACE_Y_JS, [PANELS_ID, "D loss (raw)"])
    smoothed = page.evaluate(TRACE_Y_JS, [PANELS_ID, "D loss"])
    assert smoothed != raw
    page.evaluate("""() => { const s = document.getElementById('gandiag-smoothing');
                             s.value = 0; s.dispatchEvent(new Event('input')); }""")
    page.wait_for_function(
        """([id, raw]) => JSON.stringify(Array.from(document.getElementById(id)._fullData
              .find(t => t.name === 'D loss').y).map(v => Number.isFinite(v) ? v : null)) === raw""",
        arg=[PANELS_ID, json.dumps(raw, separators=(",", ":"))], timeout=20_000)
    assert page.locator("#gandiag-smoothing-value").inner_text() == "0.00"

    # the second guard: were a tag to slip through, the page's policy blocks its request
    page.evaluate("""() => { const img = document.createElement('img');
                             img.src = 'http://example.com/slipped.png'; document.body.append(img); }""")
    page.wait_for_function("window.__violations.length > 0", timeout=10_000)
    assert page.evaluate("window.__violations") == ["img-src http://example.com/slipped.png"]
    for _ in range(100):  # playwright delivers events while the page is waited on
        if blocked:
            break
        page.wait_for_timeout(100)
    # chromium lists the request, and fails it itself ("csp"): nothing reaches the network
    assert [url for url in requests if not url.startswith(("file:", "data:", "blob:"))] == [
        "http://example.com/slipped.png"]
    assert blocked == [("http://example.com/slipped.png", "csp")]

