"""JupyterLab in a real browser: the README's `tkgs-runbook lab` serving a copy of the notebooks, and
headless Chromium (Debian's chromium and chromium-driver) driven by selenium, as a person clicks.

Where Chromium, its driver or selenium is missing the tests skip with the reason; under CI=true
they fail instead, so a missing install step cannot hide.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Callable, Optional

import pytest

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
SCRIPT = Path(sys.executable).with_name("tkgs-runbook")
NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"


def unavailable(reason: str):
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"the browser tests cannot run on CI: {reason}", pytrace=False)
    pytest.skip(reason)


def wait_for(condition: Callable[[], object], timeout: float, what: str):
    """The first truthy value of ``condition()``; an exception inside counts as not yet."""
    deadline = time.monotonic() + timeout
    last: Optional[BaseException] = None
    while time.monotonic() < deadline:
        try:
            value = condition()
            if value:
                return value
        except Exception as exc:  # noqa: BLE001 (the page is still changing)
            last = exc
        time.sleep(0.25)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}" + (f" (last: {last})" if last else ""))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Lab:
    """`tkgs-runbook lab` serving ``folder`` on loopback with a token, under a fresh HOME."""

    def __init__(self, folder: Path, home: Path, env: dict) -> None:
        self.folder, self.token = folder, secrets.token_hex(16)
        home.mkdir(parents=True, exist_ok=True)
        clean = {k: v for k, v in os.environ.items() if not k.startswith(("TKGS_", "JUPYTER_"))}
        self.log = open(home / "lab.log", "w")
        for attempt in range(3):  # a port found free can be taken before the lab binds it: then another
            self.port = free_port()
            self.proc = subprocess.Popen(
                [str(SCRIPT), "lab", str(folder), "--port", str(self.port), "--no-browser"],
                env={**clean, "HOME": str(home), "JUPYTER_TOKEN": self.token, **env},
                stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
            try:
                if wait_for(self._up_or_ended, 90, "JupyterLab to answer") == "up":
                    return
            except AssertionError:
                self.stop()  # never answered: not left running
                raise
            said = Path(self.log.name).read_text()
            if attempt == 2 or f"port {self.port} is not available" not in said:
                self.log.close()
                raise AssertionError(f"`tkgs-runbook lab` ended (exit {self.proc.returncode}): {said[-3000:]}")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _up_or_ended(self) -> str:
        if self.proc.poll() is not None:
            return "ended"
        with urllib.request.urlopen(f"{self.url}/api/status?token={self.token}", timeout=2) as answer:
            return "up" if answer.status == 200 else ""

    def workspace(self) -> dict:
        """The default workspace as JupyterLab saved it (the notebooks open, the layout)."""
        request = urllib.request.Request(f"{self.url}/lab/api/workspaces/default",
                                         headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(request, timeout=10) as answer:
            return json.loads(answer.read())["data"]

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.log.close()


def start_chromium(profile: Path):
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        unavailable("selenium is not installed (pip install -e '.[dev]')")
    if not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)):
        unavailable(f"{CHROMIUM} or {CHROMEDRIVER} is missing: apt-get install chromium chromium-driver")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-gpu",
                 f"--user-data-dir={profile}", "--window-size=1400,1000"):
        options.add_argument(flag)
    # Both paths given: selenium's driver manager, which would try a download, never runs.
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


class NotebookPage:
    """One notebook open in JupyterLab, driven as a person would: menus, clicks and keys."""

    def __init__(self, driver, lab: Lab, name: str, navigate: bool = True) -> None:
        """``navigate``: open the notebook's address; else bring its tab, already open in the page (a
        restored workspace), to the front."""
        from selenium.webdriver.common.by import By

        self.driver, self.lab, self.name, self.By = driver, lab, name, By
        self.notebook = ".jp-Notebook"  # the selector of this notebook's cells' container
        if navigate:
            driver.get(f"{lab.url}/lab/tree/{name}?token={lab.token}")
        else:
            (tab,) = wait_for(lambda: [t for t in self.find(".lm-DockPanel-tabBar .lm-TabBar-tab") if t.text == name],
                              90, f"the tab of {name}")
            tab.click()
            self.notebook = f"#{tab.get_attribute('data-id')} .jp-Notebook"  # the other tabs hold cells too
        wait_for(lambda: self.cells() and self.kernel_idle(), 90, f"{name} to open with an idle kernel")

    def find(self, css: str):
        return self.driver.find_elements(self.By.CSS_SELECTOR, css)

    def cells(self):
        return self.find(f"{self.notebook} .jp-Cell")

    def kernel_idle(self) -> bool:
        return "Idle" in self.driver.find_element(self.By.ID, "jp-main-statusbar").text

    def open_from_the_file_browser(self, name: str) -> None:
        """Open notebook ``name`` beside this one, as a person does: a double click in the file browser."""
        from selenium.webdriver.common.action_chains import ActionChains

        (item,) = wait_for(lambda: [i for i in self.find(".jp-DirListing-item") if i.text.split("\n")[0] == name], 30,
                           f"{name} in the file browser")
        ActionChains(self.driver).double_click(item).perform()

    def menu(self, menu: str, item: str) -> None:
        (top,) = [e for e in self.find(".lm-MenuBar-item") if e.text == menu]
        top.click()
        entry = wait_for(lambda: [e for e in self.find(".lm-Menu-item .lm-Menu-itemLabel") if e.text == item],
                         10, f"the menu item {menu} > {item}")
        entry[0].click()

    def run_all(self) -> None:
        self._before = self.prompts()
        self.menu("Run", "Run All Cells")

    def run_from(self, index: int) -> None:
        """Select cell ``index`` (0-based) and run it and every cell below it."""
        self._before = self.prompts()
        self.cells()[index].find_element(self.By.CSS_SELECTOR, ".jp-InputPrompt").click()
        self.menu("Run", "Run Selected Cell and All Below")

    def run_cell(self, index: int) -> None:
        """Select cell ``index`` (0-based) and run it alone."""
        self._before = self.prompts()
        self.cells()[index].find_element(self.By.CSS_SELECTOR, ".jp-InputPrompt").click()
        self.menu("Run", "Run Selected Cell")

    def prompts(self) -> list[str]:
        """Each cell's execution prompt: "[ ]:" not run, "[*]:" queued or running, "[7]:" done."""
        return [p.text for p in self.find(f"{self.notebook} .jp-InputPrompt")]

    def busy(self) -> bool:
        return any("*" in p for p in self.prompts()) or not self.kernel_idle()

    def wait_done(self, timeout: float = 120) -> None:
        """Wait until the cells run by the last run_all/run_from have finished: their prompts changed
        (so the run has begun, however slowly the page reacts) and none is running."""
        wait_for(lambda: self.prompts() != self._before and not self.busy(), timeout,
                 f"{self.name} to finish running")

    def answer_prompt(self, answers: dict[str, str], timeout: float = 60) -> str:
        """Answer the input box a cell opened (getpass) with the answer whose key its prompt names;
        returns the prompt's words once the box is gone. JupyterLab may redraw the box while output
        arrives, so each try finds it afresh."""
        from selenium.common.exceptions import StaleElementReferenceException
        from selenium.webdriver.common.keys import Keys

        def open_prompt():
            for box in reversed(self.find(".jp-Stdin-input")):
                words = box.find_element(self.By.XPATH, "..").text.strip()
                if words:
                    return box, words
            return None

        deadline = time.monotonic() + timeout
        while True:
            box, prompt = wait_for(open_prompt, max(1.0, deadline - time.monotonic()), "an input prompt")
            answer = next((value for key, value in answers.items() if key in prompt), None)
            assert answer is not None, f"an unexpected prompt: {prompt}"
            try:
                box.send_keys(answer + Keys.ENTER)
            except StaleElementReferenceException:
                continue  # redrawn under us: find it again
            break

        def answered() -> bool:
            current = open_prompt()
            return current is None or current[1] != prompt
        wait_for(answered, 30, "the answered prompt to close")
        return prompt

    def form_field(self, name: str):
        """The input of the parameter form's field labelled ``name``."""
        for widget in self.find(".jupyter-widgets.widget-text, .jupyter-widgets.widget-checkbox"):
            labels = widget.find_elements(self.By.CSS_SELECTOR, "label")
            if any(label.text.strip() == name for label in labels):
                return widget.find_element(self.By.CSS_SELECTOR, "input")
        raise AssertionError(f"the parameter form has no field {name}")

    def set_field(self, name: str, value: str) -> None:
        from selenium.webdriver.common.keys import Keys

        field = self.form_field(name)
        field.click()
        field.send_keys(Keys.CONTROL, "a")
        field.send_keys(Keys.DELETE)
        field.send_keys(value)
        field.send_keys(Keys.TAB)

    def click_button(self, text: str) -> None:
        (button,) = [b for b in self.find("button.jupyter-widgets") if b.text.strip() == text]
        button.click()

    def page_text(self) -> str:
        return self.driver.find_element(self.By.CSS_SELECTOR, ".jp-Notebook").text

    def red_texts(self) -> list[tuple[str, str]]:
        """(text, background colour) of each stderr-rendered output: a failed cell's error, or stderr."""
        return [(e.text, e.value_of_css_property("background-color"))
                for e in self.find(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']")]

    def save(self) -> dict:
        """Save the notebook and return it as it landed on disk."""
        path = self.lab.folder / self.name
        before = path.stat().st_mtime_ns
        self.menu("File", "Save Notebook")
        wait_for(lambda: path.stat().st_mtime_ns != before, 30, f"{self.name} to be saved")
        return json.loads(path.read_text())

    def screenshot(self, path: Path) -> Path:
        self.driver.save_screenshot(str(path))
        return path


def error_outputs(notebook: dict) -> list[str]:
    return [f"{o.get('ename')}: {o.get('evalue')}" for cell in notebook["cells"] for o in cell.get("outputs", [])
            if o.get("output_type") == "error"]


def copy_notebooks(target: Path, defaults: Optional[dict[str, str]] = None) -> Path:
    """A copy of notebooks/ (so autosave never writes outputs into the committed ones); ``defaults``
    rewrites parameter defaults in the copy, as papermill would inject them."""
    target.mkdir(parents=True)
    for source in NOTEBOOKS.glob("*.ipynb"):
        nb = json.loads(source.read_text())
        for cell in nb["cells"]:
            if "parameters" in cell.get("metadata", {}).get("tags", []):
                lines = "".join(cell["source"]).splitlines(keepends=True)
                for name, value in (defaults or {}).items():
                    lines = [f"{name} = {value!r}\n" if line.startswith(f"{name}:") else line for line in lines]
                cell["source"] = "".join(lines)
        (target / source.name).write_text(json.dumps(nb, indent=1))
    return target


def stop_browser(driver) -> None:
    try:
        driver.quit()
    except Exception:  # noqa: BLE001 (cleanup)
        pass


def remove(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
