"""`tkgs-runbook lab` with several notebooks' kernels at once, as JupyterLab has when it reopens a
workspace: each kernel started through the server's REST API and asked to run a cell over the
server's kernel websocket, as the browser does (no browser needed here; test_browser has that)."""

from __future__ import annotations

import ast
import asyncio
import json
import os
import stat
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from browser import Lab, copy_notebooks

pytestmark = pytest.mark.slow


@pytest.fixture
def lab(tmp_path):
    lab = Lab(copy_notebooks(tmp_path / "notebooks"), tmp_path / "home", {"TKGS_RUNS_DIR": str(tmp_path / "runs")})
    yield lab
    lab.stop()


def api(lab: Lab, method: str, path: str, body=None):
    request = urllib.request.Request(f"{lab.url}{path}", method=method,
                                     data=None if body is None else json.dumps(body).encode(),
                                     headers={"Authorization": f"token {lab.token}",
                                              "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as answer:
        text = answer.read()
    return json.loads(text) if text else None


def open_notebook(lab: Lab, name: str) -> str:
    """A session for notebook ``name`` (its kernel started), as opening it in JupyterLab makes; its kernel id."""
    session = api(lab, "POST", "/api/sessions", {"path": name, "type": "notebook", "name": name,
                                                 "kernel": {"name": "python3"}})
    return session["kernel"]["id"]


def run_cell(lab: Lab, kernel_id: str, code: str, timeout: float = 60) -> dict:
    """Run ``code`` in the kernel through the server's websocket; its execute_result's data, or the
    error the kernel replied with (AssertionError). A kernel that never answers fails on timeout."""
    from tornado.httpclient import HTTPRequest
    from tornado.websocket import websocket_connect

    async def run() -> dict:
        url = f"ws://127.0.0.1:{lab.port}/api/kernels/{kernel_id}/channels?session_id={uuid.uuid4().hex}"
        connection = await websocket_connect(HTTPRequest(url, headers={"Authorization": f"token {lab.token}"}))
        try:
            msg_id = uuid.uuid4().hex
            await connection.write_message(json.dumps({
                "channel": "shell", "buffers": [], "metadata": {}, "parent_header": {},
                "header": {"msg_id": msg_id, "msg_type": "execute_request", "session": uuid.uuid4().hex,
                           "username": "test", "version": "5.3", "date": ""},
                "content": {"code": code, "silent": False, "store_history": False, "user_expressions": {},
                            "allow_stdin": False, "stop_on_error": True}}))
            result, replied, idle = {}, False, False
            while not (replied and idle):  # the reply (shell) and the output (iopub) come in either order
                raw = await connection.read_message()
                assert raw is not None, f"kernel {kernel_id}'s websocket closed before it answered"
                message = json.loads(raw)
                if message.get("parent_header", {}).get("msg_id") != msg_id:
                    continue
                kind, content = message["msg_type"], message["content"]
                if kind == "execute_result":
                    result = content["data"]
                elif kind == "execute_reply":
                    assert content["status"] == "ok", f"the cell failed: {content['ename']}: {content['evalue']}"
                    replied = True
                elif kind == "status":
                    idle = content["execution_state"] == "idle"
            return result
        finally:
            connection.close()

    async def bounded() -> dict:
        try:
            return await asyncio.wait_for(run(), timeout)
        except asyncio.TimeoutError:
            raise AssertionError(f"kernel {kernel_id} did not answer {code!r} within {timeout:.0f} s") from None

    return asyncio.run(bounded())


NOTEBOOKS = ("01_plan_networks.ipynb", "02_prepare_vsphere.ipynb")


def test_two_notebooks_kernels_started_at_once_each_run_a_cell(lab):
    with ThreadPoolExecutor(2) as pool:  # both sessions asked for together, as a reopened workspace does
        kernels = list(pool.map(lambda name: open_notebook(lab, name), NOTEBOOKS))
    assert len(set(kernels)) == 2
    for n, kernel in enumerate(kernels):
        assert run_cell(lab, kernel, f"{n} + 40") == {"text/plain": str(n + 40)}
    # and each again, in the other order: neither's answers go to the other
    for n, kernel in reversed(list(enumerate(kernels))):
        assert run_cell(lab, kernel, f"'kernel {n}'") == {"text/plain": f"'kernel {n}'"}


def test_two_notebooks_kernels_started_one_after_the_other_each_run_a_cell(lab):
    first = open_notebook(lab, NOTEBOOKS[0])
    assert run_cell(lab, first, "6 * 7") == {"text/plain": "42"}
    second = open_notebook(lab, NOTEBOOKS[1])
    assert run_cell(lab, second, "6 * 8") == {"text/plain": "48"}
    assert run_cell(lab, first, "6 * 9") == {"text/plain": "54"}


def test_the_kernels_listen_on_unix_sockets_of_their_own_in_a_private_folder_removed_at_the_end(lab):
    kernels = [open_notebook(lab, name) for name in NOTEBOOKS]
    for kernel in kernels:
        run_cell(lab, kernel, "1")
    pids = {run_cell(lab, k, "__import__('os').getpid()")["text/plain"] for k in kernels}
    assert len(pids) == 2
    # where each kernel's sockets are, as the kernel itself was told (its connection file), without its key
    where = ("{k: v for k, v in __import__('ipykernel.connect').connect.get_connection_info(unpack=True).items()"
             " if k != 'key'}")
    infos = [ast.literal_eval(run_cell(lab, k, where)["text/plain"]) for k in kernels]
    assert {i["transport"] for i in infos} == {"ipc"}  # never TCP
    names = [i["ip"] for i in infos]
    assert len(set(names)) == 2, f"the two kernels share socket names: {names}"
    folders = {Path(n).parent for n in names}
    assert len(folders) == 1
    (folder,) = folders
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700 and folder.stat().st_uid == os.geteuid()
    for info in infos:
        for port in ("shell_port", "iopub_port", "stdin_port", "control_port", "hb_port"):
            path = f"{info['ip']}-{info[port]}"
            assert stat.S_ISSOCK(os.stat(path).st_mode) and len(path.encode()) < 107
    lab.stop()
    assert not folder.exists()
