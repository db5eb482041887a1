"""The live Dashboard in a real JupyterLab and headless chromium: the figure renders,
its points grow while the kernel is busy (updates come from the background threads),
and the Stop button in the page stops training.

A screenshot of the dashboard is saved to $GANDIAG_SCREENSHOT (default: pytest's
tmp_path/dashboard.png); on a failure a second one is saved next to it (*-failure.png).
"""

import os
import re
import time
from pathlib import Path

import nbformat
import pytest

STEPS = 1_000_000  # far more than the test lets run: only Stop can end training

SETUP = f"""\
import torch
import gandiag
from gandiag import data, models

torch.set_num_threads(1)  # two shared cores: leave room for the server and the browser
torch.manual_seed(0)
G, D = models.small_toy()
trainer = gandiag.Trainer(G, D, data.ring(), gandiag.TrainConfig(steps={STEPS}, log_every=10))
dash = gandiag.Dashboard(trainer, refresh_seconds=0.3)
display(dash)
dash.train({STEPS})"""
# On ipykernel 7.4 the kernel handles no message from the page (a click included) while a
# cell runs: it routes widget messages to the main shell, which is busy with the cell
# (7.3 delivered them after about 1 s). So this cell must end before Stop is clicked: it
# stays busy until the test, done reading the figure, creates RELEASE in the notebook's folder.
RELEASE = "release-busy-cell"
BUSY = f"""\
import os, time

deadline = time.monotonic() + 120
while not os.path.exists({RELEASE!r}) and time.monotonic() < deadline:
    time.sleep(0.1)
print("busy cell done at step", trainer.step)"""
REPORT = f"""\
dash.wait(timeout=30)
print(f"stopped at step {{trainer.step}} of {STEPS}; stop requested: {{trainer.stop_requested}}; "
      f"running: {{trainer.running}}")"""

# The last step the figure shows: the largest x of the "D loss" trace. Its x may be a plain
# or a typed array (float32 travels as binary); plotly.js keeps the decoded one in _fullData.
LAST_STEP_JS = """el => {
    const trace = (el._fullData || el.data || []).find(t => t.name === 'D loss');
    if (!trace || !trace.x || !trace.x.length) return 0;
    return Math.max(...Array.from(trace.x));
}"""


def _write_notebook(root: Path, kernel: str) -> str:
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source)
                                               for source in (SETUP, BUSY, REPORT)])
    notebook.metadata["kernelspec"] = {"name": kernel, "display_name": "Python 3 (gandiag test)",
                                       "language": "python"}
    nbformat.write(notebook, root / "dashboard.ipynb")
    return "dashboard.ipynb"


class Notebook:
    """The notebook page, with the few reads and actions the test needs."""

    def __init__(self, page):
        self.page = page
        self.cells = page.locator(".jp-Notebook .jp-Cell")
        self.plot = page.locator(".js-plotly-plot").first
        self.status = page.locator(".widget-html-content").first  # the dashboard's one HTML line

    def wait_for_kernel(self) -> None:
        # The execution indicator says "idle" before a kernel is attached ("No Kernel"):
        # wait for both a kernel name and idle, else the first Shift+Enter can be dropped.
        self.page.wait_for_function("""() => {
            const name = document.querySelector('.jp-KernelName')?.innerText.trim();
            const status = document.querySelector('.jp-Notebook-ExecutionIndicator')?.dataset.status;
            return name && name !== 'No Kernel' && status === 'idle';
        }""", timeout=90_000)

    def run_cell(self, index: int) -> None:
        # Clicking a cell's editor makes it the active cell (clicking an output would make
        # the cell that holds the output active instead), then Shift+Enter runs it.
        cell = self.cells.nth(index)
        cell.locator(".jp-InputArea-editor").click()
        self.page.keyboard.press("Shift+Enter")
        # The prompt turns from "[ ]:" to "[*]:" as soon as the cell is queued.
        prompt = cell.locator(".jp-InputPrompt").filter(has_text=re.compile(r"\[[*0-9]"))
        try:
            prompt.wait_for(timeout=10_000)
        except Exception:
            raise AssertionError(f"cell {index} did not start; its prompt is {self.prompt(index)!r}") from None

    def prompt(self, index: int) -> str:
        return self.cells.nth(index).locator(".jp-InputPrompt").inner_text().strip()

    def busy(self, index: int) -> bool:
        return "*" in self.prompt(index)

    def kernel_status(self) -> str:
        return self.page.locator(".jp-Notebook-ExecutionIndicator").get_attribute("data-status") or ""

    def last_step(self) -> int:
        return int(self.plot.evaluate(LAST_STEP_JS))

    def status_text(self) -> str:
        try:
            return self.status.inner_text(timeout=2000).strip()
        except Exception:  # no dashboard (yet), or the page is gone
            return "(no status line)"


def _screenshot_path(tmp_path: Path) -> Path:
    path = Path(os.environ.get("GANDIAG_SCREENSHOT") or tmp_path / "dashboard.png")
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def _until(condition, timeout: float, what: str) -> None:
    end = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.2)


def _busy_step(nb: Notebook) -> int:
    """The figure's last step, read while cell 1 keeps the kernel busy."""
    step = nb.last_step()
    assert nb.busy(1) and nb.kernel_status() == "busy", (
        f"cell 1 should keep the kernel busy; its prompt is {nb.prompt(1)!r}, the kernel "
        f"is {nb.kernel_status()!r}")
    return step


def _settled_step(nb: Notebook, quiet: float, timeout: float) -> int:
    """The figure's last step once it has not changed for `quiet` seconds."""
    end = time.monotonic() + timeout
    step, since = nb.last_step(), time.monotonic()
    while time.monotonic() - since < quiet:
        if time.monotonic() > end:
            raise AssertionError(f"training went on after Stop: the figure still grows "
                                 f"{timeout} s after the click (now at step {step})")
        time.sleep(0.2)
        now = nb.last_step()
        if now != step:
            step, since = now, time.monotonic()
    return step


def test_dashboard_updates_while_the_kernel_is_busy_and_stops_from_the_page(browser, jupyter_lab, tmp_path):
    name = _write_notebook(jupyter_lab.root, jupyter_lab.kernel)
    screenshot = _screenshot_path(tmp_path)
    page = browser.pages[0] if browser.pages else browser.new_page()
    page.set_default_timeout(60_000)
    nb = Notebook(page)
    try:
        page.goto(jupyter_lab.url(f"lab/tree/{name}"))
        nb.wait_for_kernel()
        nb.run_cell(0)
        nb.run_cell(1)

        # The figure renders (the first FigureWidget view loads plotly.js: 8-14 s) ...
        page.locator(".js-plotly-plot .main-svg").first.wait_for(state="visible", timeout=90_000)
        _until(lambda: nb.last_step() > 0, 60, "the first flush to reach the figure")
        # ... and grows while cell 1 keeps the kernel busy: the refresher thread's
        # messages go out although the kernel's main thread is not idle.
        # (On a loaded machine a refresh is slower and the refresher rests longer after it,
        # up to 5 s: poll for up to 30 s, checking at every reading that the kernel is busy.)
        first = second = _busy_step(nb)
        end = time.monotonic() + 30
        while second <= first and time.monotonic() < end:
            page.wait_for_timeout(500)
            second = _busy_step(nb)
        assert second > first, (f"the figure did not grow while the kernel was busy: last step "
                                f"{first}, still {second} 30 s later; status line: {nb.status_text()!r}")
        assert re.match(r"step \d+ ", nb.status_text()), f"status line: {nb.status_text()!r}"
        page.screenshot(path=str(screenshot))  # for a human: the dashboard mid-run
        (jupyter_lab.root / RELEASE).touch()
        _until(lambda: not nb.busy(1), 30, "the busy cell to end")

        # Stop, clicked in the page, reaches the training thread: the figure stops growing ...
        page.locator(".widget-button", has_text="Stop").click()
        stopped = _settled_step(nb, quiet=3, timeout=30)
        # ... and the trainer says it stopped there, early, at the request.
        nb.run_cell(2)
        report = nb.cells.nth(2).locator(".jp-OutputArea-output").filter(has_text="stopped at step")
        report.wait_for(timeout=30_000)
        text = report.inner_text()
        match = re.search(r"stopped at step (\d+) of \d+; stop requested: (\w+); running: (\w+)", text)
        assert match, f"unexpected output of cell 2: {text!r}"
        step = int(match.group(1))
        assert second <= step < STEPS and match.group(2, 3) == ("True", "False"), text
        assert stopped == step, f"the figure ends at step {stopped}, the trainer stopped at {step}"
        assert nb.status_text().startswith(f"step {step} "), f"status line: {nb.status_text()!r}"
    except Exception as error:
        failure = screenshot.with_name(f"{screenshot.stem}-failure.png")
        try:
            page.screenshot(path=str(failure))
        except Exception:
            failure = "(could not take a screenshot)"
        pytest.fail(f"{type(error).__name__}: {error}\nstatus line: {nb.status_text()!r}\n"
                    f"screenshot: {failure}", pytrace=True)
