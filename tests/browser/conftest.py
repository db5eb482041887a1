"""A JupyterLab server and a headless Debian chromium for the real-browser tests.

The tests skip when playwright or /usr/bin/chromium is missing, unless
GANDIAG_REQUIRE_BROWSER=1 (CI sets it), where a missing piece fails instead: the browser
test can never silently skip in CI. We drive the system chromium; no browser download.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from types import SimpleNamespace

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
TOKEN = "gandiag-browser-test"
KERNEL = "gandiag-test"


def _missing(what: str, fix: str) -> None:
    if os.environ.get("GANDIAG_REQUIRE_BROWSER") == "1":
        pytest.fail(f"{what}; GANDIAG_REQUIRE_BROWSER=1 says the browser test must run: {fix}")
    pytest.skip(f"{what}: {fix} (or set GANDIAG_REQUIRE_BROWSER=1 to make this a failure)")


@pytest.fixture
def browser(tmp_path):
    """A headless chromium with a fresh profile (playwright's sync API)."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("playwright is not installed", "python -m pip install playwright "
                 "(no `playwright install`: the test uses the system chromium)")
    if not os.access(CHROMIUM, os.X_OK):
        _missing(f"{CHROMIUM} is missing", "apt-get install -y chromium")
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"), executable_path=CHROMIUM, args=CHROMIUM_ARGS,
            viewport={"width": 1400, "height": 2400})
        try:
            yield context
        finally:
            context.close()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def jupyter_lab(tmp_path):
    """A JupyterLab on 127.0.0.1 serving a fresh folder: `lab.url(path)` is the address of a
    page (with the token), `lab.root` the folder where notebooks go, `lab.kernel` the
    kernelspec they should name. Config, runtime, data and workspaces live in tmp_path, so
    the user's Jupyter settings play no part."""
    root, home = tmp_path / "notebooks", tmp_path / "jupyter"
    root.mkdir()
    env = dict(os.environ, JUPYTER_CONFIG_DIR=str(home / "config"), JUPYTER_RUNTIME_DIR=str(home / "runtime"),
               JUPYTER_DATA_DIR=str(home / "data"), JUPYTERLAB_SETTINGS_DIR=str(home / "settings"))
    # Every cell stays in the page (JupyterLab 4 leaves cells out of view out of the DOM),
    # so a test can read any cell's prompt and output.
    tracker = home / "settings" / "@jupyterlab" / "notebook-extension" / "tracker.jupyterlab-settings"
    tracker.parent.mkdir(parents=True)
    tracker.write_text(json.dumps({"windowingMode": "none"}))
    # The notebook's kernel ("gandiag-test") is this interpreter, the one that has gandiag,
    # whatever other kernelspecs the machine holds.
    kernelspec = home / "data" / "kernels" / KERNEL
    kernelspec.mkdir(parents=True)
    (kernelspec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (gandiag test)", "language": "python"}))
    # No "news from Jupyter?" notification over the page.
    (home / "config" / "labconfig").mkdir(parents=True)
    (home / "config" / "labconfig" / "page_config.json").write_text(json.dumps(
        {"disabledExtensions": {"@jupyterlab/apputils-extension:announcements": True}}))
    port = _free_port()
    log_path = tmp_path / "jupyter-lab.log"
    with open(log_path, "wb") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root",
             "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
             f"--ServerApp.token={TOKEN}", f"--ServerApp.root_dir={root}",
             f"--LabApp.workspaces_dir={home / 'workspaces'}"],
            env=env, cwd=root, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True)  # its own process group: killpg ends it and its children
    base_url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(server, f"{base_url}/api/status?token={TOKEN}", log_path)
        yield SimpleNamespace(url=lambda path: f"{base_url}/{path}?token={TOKEN}", root=root, kernel=KERNEL)
    finally:
        _stop(server)


def _wait_until_up(server: subprocess.Popen, url: str, log_path: Path, timeout: float = 60) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if server.poll() is not None:
            pytest.fail(f"jupyter lab exited with {server.returncode}:\n{log_path.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.25)
    pytest.fail(f"jupyter lab did not answer at {url} in {timeout} s:\n{log_path.read_text()[-3000:]}")


def _stop(server: subprocess.Popen) -> None:
    # SIGTERM lets the server shut its kernels down (they run in their own sessions, so
    # killpg does not reach them; a kernel left behind also exits when its parent dies).
    try:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=20)
    except ProcessLookupError:
        pass
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait(timeout=10)
