"""The tutorials as a newcomer meets them: opened in JupyterLab, Run All, every cell runs,
every dashboard renders (the quickstart's with its runs to the last step), and the saved
notebook holds no error. CI runs the quickstart; GANDIAG_BROWSER_NOTEBOOKS=all runs every
tutorial with widgets. Screenshots go to $GANDIAG_SCREENSHOT's folder (default: pytest's
tmp_path) as <notebook>-<i>.png."""

import json
import os
import re
import shutil
import time
from pathlib import Path

import pytest

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
# notebook -> the number of dashboards it shows
WITH_WIDGETS = {"01_quickstart.ipynb": 3, "02_attach_to_your_own_loop.ipynb": 1,
                "05_runs_store_replay_report.ipynb": 2}
CHOSEN = list(WITH_WIDGETS) if os.environ.get("GANDIAG_BROWSER_NOTEBOOKS") == "all" else ["01_quickstart.ipynb"]
LAST_STEP_JS = """els => els.map(el => {
    const trace = (el._fullData || el.data || []).find(t => t.name === 'D loss' || t.name === 'vanilla');
    return trace && trace.x && trace.x.length ? Math.max(...Array.from(trace.x)) : 0;
})"""


@pytest.mark.parametrize("name", CHOSEN)
def test_a_tutorial_runs_in_jupyterlab_and_shows_its_dashboards(name, browser, jupyter_lab, tmp_path):
    path = NOTEBOOKS / name
    notebook = json.loads(path.read_text())
    notebook["metadata"]["kernelspec"] = {"name": jupyter_lab.kernel, "display_name": "gandiag test",
                                          "language": "python"}
    for cell in notebook["cells"]:  # start as a fresh clone would be run: no stored outputs
        if cell["cell_type"] == "code":
            cell["outputs"], cell["execution_count"] = [], None
    target = jupyter_lab.root / name
    target.write_text(json.dumps(notebook))
    shots = Path(os.environ.get("GANDIAG_SCREENSHOT") or tmp_path / "x.png").parent
    shots.mkdir(parents=True, exist_ok=True)
    page = browser.pages[0] if browser.pages else browser.new_page()
    page.set_default_timeout(60_000)
    try:
        page.goto(jupyter_lab.url(f"lab/tree/{name}"))
        page.wait_for_function("""() => {
            const name = document.querySelector('.jp-KernelName')?.innerText.trim();
            const status = document.querySelector('.jp-Notebook-ExecutionIndicator')?.dataset.status;
            return name && name !== 'No Kernel' && status === 'idle';
        }""", timeout=90_000)
        page.get_by_role("menuitem", name="Run", exact=True).click()
        page.get_by_role("menuitem", name="Run All Cells", exact=True).click()
        # Done when every code cell has an execution number and the kernel is idle again.
        code_cells = sum(cell["cell_type"] == "code" for cell in notebook["cells"])
        page.wait_for_function(f"""() => {{
            const prompts = [...document.querySelectorAll('.jp-CodeCell .jp-InputPrompt')]
                .map(p => p.innerText.trim());
            const status = document.querySelector('.jp-Notebook-ExecutionIndicator')?.dataset.status;
            return prompts.length === {code_cells} && prompts.every(p => /\\[\\d+\\]/.test(p))
                && status === 'idle';
        }}""", timeout=600_000, polling=1000)
        plots, count = page.locator(".js-plotly-plot"), WITH_WIDGETS[name]
        _until(lambda: plots.count() == count, 60, f"{count} dashboard(s)")
        for i in range(count):
            plots.nth(i).locator(".main-svg").first.wait_for(state="visible")
        if name == "01_quickstart.ipynb":  # live dashboards end at the last step trained
            setup = "".join(notebook["cells"][1]["source"])
            steps = int(re.search(r"STEPS = (\d+) \* SCALE", setup).group(1))  # SCALE is 1
            _until(lambda: plots.evaluate_all(LAST_STEP_JS) == [steps] * count, 30,
                   f"every dashboard to show the runs to step {steps}",
                   lambda: f"last steps shown: {plots.evaluate_all(LAST_STEP_JS)}")
        for i in range(count):
            plots.nth(i).scroll_into_view_if_needed()
            page.screenshot(path=str(shots / f"{path.stem}-{i}.png"))
        page.keyboard.press("Control+s")
        _until(lambda: _saved_outputs(target) > 0, 30, "the notebook to be saved")
        saved = json.loads(target.read_text())
        errors = [o for c in saved["cells"] for o in c.get("outputs", []) if o["output_type"] == "error"]
        assert not errors, f"error outputs: {[e.get('ename') for e in errors]}"
    except Exception as error:
        failure = shots / f"{path.stem}-failure.png"
        page.screenshot(path=str(failure), full_page=True)
        pytest.fail(f"{type(error).__name__}: {error}\nscreenshot: {failure}")
    finally:
        shutil.rmtree(jupyter_lab.root / "runs", ignore_errors=True)


def _saved_outputs(path: Path) -> int:
    try:
        return sum(len(c.get("outputs", [])) for c in json.loads(path.read_text())["cells"])
    except (OSError, ValueError):
        return 0


def _until(condition, timeout: float, what: str, state=lambda: "") -> None:
    end = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}; {state()}")
        time.sleep(0.5)
