"""The notebooks as a person meets them: JupyterLab in headless Chromium, run cell by cell.

Each test serves a temporary copy of notebooks/ with `tkgs-runbook lab` (the README's command),
opens a stage notebook, runs it from the menus, and checks what a person sees; a screenshot of
each notebook is saved in the test's temporary folder.
"""

from __future__ import annotations

import yaml

import pytest

from browser import Lab, NotebookPage, copy_notebooks, error_outputs, start_chromium, stop_browser, wait_for
from helpers import variant
from sim_site import site_data

pytestmark = pytest.mark.slow


@pytest.fixture
def chromium(tmp_path):
    driver = start_chromium(tmp_path / "chromium-profile")
    yield driver
    stop_browser(driver)


def start_lab(tmp_path, defaults=None, env=None) -> Lab:
    return Lab(copy_notebooks(tmp_path / "notebooks", defaults), tmp_path / "home",
               {"TKGS_RUNS_DIR": str(tmp_path / "runs"), **(env or {})})


def test_plan_notebook_in_jupyterlab_form_tables_picture_and_a_broken_site(tmp_path, chromium):
    lab = start_lab(tmp_path)
    try:
        page = NotebookPage(chromium, lab, "01_plan_networks.ipynb")
        page.run_all()
        page.wait_done()
        page.screenshot(tmp_path / "01_plan_networks.png")
        assert page.find("button.jupyter-widgets"), "the parameter form did not render"
        assert page.form_field("site_file").get_attribute("value") == "examples/example-site.yaml"
        assert len(page.find(".jp-OutputArea-output table")) >= 3  # findings, subnet summary, allocations
        assert page.find(".jp-OutputArea-output img"), "the address-space picture is missing"
        assert "No errors: the plan is ready for the next stage." in page.page_text()
        assert error_outputs(page.save()) == []
        assert (tmp_path / "runs" / "lab01-by-hand" / "address-space.png").exists()

        # The form's values take effect: a broken site and another output folder, then run below.
        broken = tmp_path / "broken.yaml"
        broken.write_text(yaml.safe_dump(variant({"haproxy.load_balancer_ranges": ["10.64.0.1/23"]})))
        page.set_field("site_file", str(broken))
        page.set_field("output_dir", str(tmp_path / "from-the-form"))
        page.click_button("Use these values")
        wait_for(lambda: "Parameters set" in page.page_text(), 30, "the form to confirm the values")
        page.run_from(3)
        page.wait_done()
        page.screenshot(tmp_path / "01_plan_networks-broken.png")
        text = page.page_text()
        assert "haproxy.load_balancer_ranges[0]" in text and "NOT written" in text  # the findings table
        (error,) = [t for t in page.red_texts() if t[0].startswith("ValidationFailed")]
        assert "Traceback" not in error[0] and "10.64.0.1/23" in error[0]
        assert error[1] not in ("rgba(0, 0, 0, 0)", "transparent"), "the error is not shown in colour"
        assert (tmp_path / "from-the-form" / "address-space.png").exists()
        assert not (tmp_path / "from-the-form" / "anyip-routes.cfg").exists()
        (failed,) = error_outputs(page.save())
        assert failed.startswith("ValidationFailed: The site has 3 errors; nothing was changed.")
    finally:
        lab.stop()


def test_a_workspace_reopened_with_two_notebooks_open_has_both_kernels_idle_and_each_runs_a_cell(tmp_path, chromium):
    """JupyterLab reopens a saved workspace's notebooks together, so their kernels start side by side:
    each must still reach idle and run a cell (two kernels on one socket name stayed "Connecting")."""
    names = ("01_plan_networks.ipynb", "02_prepare_vsphere.ipynb")
    lab = start_lab(tmp_path)
    try:
        first = NotebookPage(chromium, lab, names[0])  # the first day: one opened, then the other beside it
        first.open_from_the_file_browser(names[1])
        NotebookPage(chromium, lab, names[1], navigate=False)
        wait_for(lambda: [f"notebook:{name}" for name in names]
                 == lab.workspace()["layout-restorer:data"]["main"]["dock"]["widgets"], 60,
                 "JupyterLab to save the workspace with both notebooks open")
    finally:
        lab.stop()
    lab = Lab(lab.folder, tmp_path / "home", {"TKGS_RUNS_DIR": str(tmp_path / "runs")})  # the next day
    try:
        chromium.get(f"{lab.url}/lab?token={lab.token}")
        for name in names:
            page = NotebookPage(chromium, lab, name, navigate=False)
            page.run_cell(1)  # the parameters cell: its prompt is numbered only when the kernel has run it
            wait_for(lambda: page.prompts()[1] == "[1]:" and page.kernel_idle(), 60, f"{name}'s cell to run")
        page.screenshot(tmp_path / "reopened-workspace.png")
    finally:
        lab.stop()


def test_prepare_notebook_in_jupyterlab_asks_for_the_password_and_plans(tmp_path, chromium, vcsim):
    from tkgs_simulators.ova import build_ova

    data = site_data(vcsim)
    data["content_libraries"]["haproxy"]["ova"] = str(build_ova(tmp_path / "haproxy-v0.1.10.ova",
                                                                disk_size=256 * 1024))
    site_file = tmp_path / "site.yaml"
    site_file.write_text(yaml.safe_dump(data, sort_keys=False))
    lab = start_lab(tmp_path, defaults={"site_file": str(site_file)})
    try:
        page = NotebookPage(chromium, lab, "02_prepare_vsphere.ipynb")
        page.run_all()
        prompt = page.answer_prompt({"vCenter password": vcsim.password})
        assert "TKGS_VCENTER_PASSWORD" in prompt
        page.wait_done()
        page.screenshot(tmp_path / "02_prepare_vsphere.png")
        text = page.page_text()
        assert "port group tkgs-workload" in text and "create" in text
        assert "Dry run: nothing was changed" in text and "the HAProxy OVA item" in text
        saved = page.save()
        assert error_outputs(saved) == []
        assert vcsim.password not in (lab.folder / "02_prepare_vsphere.ipynb").read_text()
    finally:
        lab.stop()


def test_deploy_notebook_in_jupyterlab_asks_for_three_passwords_deploys_and_shows_the_ca(
        tmp_path, chromium, vcsim, monkeypatch):
    """Applied from the browser, as a person would after reading the plan; the appliance's first
    boot is played beside the simulator."""
    from appliance_material import appliance_ova
    from tkgs_simulators.first_boot import FirstBoot
    from tkgs_lib.site import load_site
    from tkgs_lib.stages.flow import StageRun
    from tkgs_lib.vsphere.connection import connect

    data = site_data(vcsim, **{"haproxy.boot_timeout": 30})
    data["content_libraries"]["haproxy"]["ova"] = str(appliance_ova(tmp_path))
    site_file = tmp_path / "site.yaml"
    site_file.write_text(yaml.safe_dump(data, sort_keys=False))
    site = load_site(site_file)
    with connect(site.vcenter, password=vcsim.password) as session:  # stage 2 first, in this process
        run = StageRun("prepare", site, tmp_path, vcenter=session, progress=False)
        run.carry_out(run.plan(), apply=True)
    answers = {"vCenter password": vcsim.password, "root password": "r00t-in-the-browser",
               "Data Plane API password": "dataplane-in-the-browser"}
    lab = start_lab(tmp_path, defaults={"site_file": str(site_file), "apply": True})
    try:
        with FirstBoot(vcsim) as first_boot:
            page = NotebookPage(chromium, lab, "03_deploy_haproxy.ipynb")
            page.run_all()
            asked = {page.answer_prompt(answers).split(" (")[0] for _ in range(3)}
            assert asked == {"vCenter password for administrator@vsphere.local", "the appliance's root password",
                             "the Data Plane API password"}
            page.wait_done(timeout=180)
            page.screenshot(tmp_path / "03_deploy_haproxy.png")
            assert first_boot.boots["haproxy01"].configured
        text = page.page_text()
        assert "appliance.root_pwd" in text and "********" in text
        assert "After apply" in text and "SHA-256 fingerprint" in text and "haproxy-ca.pem" in text
        saved = page.save()
        assert error_outputs(saved) == []
        notebook_text = (lab.folder / "03_deploy_haproxy.ipynb").read_text()
        assert not [a for a in answers.values() if a in notebook_text]
    finally:
        lab.stop()


def run_in_the_appliance_lab(tmp_path, appliance, notebook: str, answers: dict, prompts: int, **defaults):
    """JupyterLab and Chromium started inside the appliance's lab, where its management address is
    reachable, as the user's machine is. Runs ``notebook`` on the appliance's site, answers
    ``prompts`` password prompts from ``answers`` (words of the prompt → value), then stops the
    appliance. Returns the prompts asked, the page's text, the saved notebook's error outputs and
    the saved notebook's text."""
    notebooks = copy_notebooks(tmp_path / "notebooks", {"site_file": str(appliance.site_file),
                                                         "output_dir": str(appliance.run_folder), **defaults})

    def in_the_lab():
        lab = Lab(notebooks, tmp_path / "home", {"TKGS_RUNS_DIR": str(tmp_path / "runs")})
        driver = start_chromium(tmp_path / "chromium-profile")
        try:
            page = NotebookPage(driver, lab, notebook)
            page.run_all()
            asked = {page.answer_prompt(answers).split(" (")[0] for _ in range(prompts)}
            page.wait_done(timeout=120)
            page.screenshot(tmp_path / notebook.replace(".ipynb", ".png"))
            return asked, page.page_text(), error_outputs(page.save())
        finally:
            stop_browser(driver)
            lab.stop()

    try:
        asked, text, errors = appliance.sim.in_lab(in_the_lab)
    finally:
        appliance.sim.stop()
    return asked, text, errors, (notebooks / notebook).read_text()


def test_verify_notebook_in_jupyterlab_from_the_lab_asks_for_two_passwords_and_passes(tmp_path):
    from appliance_fixtures import DATAPLANE_PASSWORD, ROOT_PASSWORD, start_appliance

    appliance = start_appliance(tmp_path)
    asked, text, errors, saved = run_in_the_appliance_lab(
        tmp_path, appliance, "04_verify_haproxy.ipynb",
        {"root password": ROOT_PASSWORD, "Data Plane API password": DATAPLANE_PASSWORD}, prompts=2)
    assert asked == {"the appliance's root password", "the Data Plane API password"}
    assert "All 19 checks of the appliance passed." in text and "version 2.1.0 (stand-in)" in text
    assert errors == []
    assert ROOT_PASSWORD not in saved and DATAPLANE_PASSWORD not in saved


def test_repair_notebook_in_jupyterlab_from_the_lab_shows_the_diff_and_repairs_the_articles_line(tmp_path):
    """The appliance boots with the article's line; a person runs notebook 05 with apply in the lab:
    one prompt (root's password, for SSH), the diff, the plan, the repair, every check ok after it."""
    from appliance_fixtures import ROOT_PASSWORD, start_appliance

    appliance = start_appliance(tmp_path, faults={"service_ip_range": "10.64.0.1/23"})
    asked, text, errors, saved = run_in_the_appliance_lab(
        tmp_path, appliance, "05_repair_haproxy.ipynb", {"root password": ROOT_PASSWORD}, prompts=1, apply=True)
    assert asked == {"the appliance's root password"}
    assert errors == []
    assert "-10.64.0.1/23\n+10.64.1.0/24" in text  # the diff, before anything changed
    assert "Applied: change /etc/vmware/anyip-routes.cfg (and anyip-routes.service)." in text
    assert "After apply (every row is ok)" in text
    assert "local route for 10.64.1.0/24 local 10.64.1.0/24 dev lo present ok" in text
    assert "anyip-routes.service active active ok" in text
    assert ROOT_PASSWORD not in saved


def test_every_stage_notebook_in_jupyterlab_renders_its_typed_parameter_form(tmp_path, chromium):
    """A person opening any stage's notebook gets the form of the parameters its stage passes (text fields, the
    apply checkbox): its first cells run in JupyterLab, in one session, without an error."""
    import json

    from tkgs_lib.stages import STAGES

    lab = start_lab(tmp_path)
    try:
        page = None
        for stage in STAGES:
            if page is None:
                page = NotebookPage(chromium, lab, stage.notebook)
            else:  # opened as a person does, beside the last (whose kernel is shut down and tab closed)
                page.open_from_the_file_browser(stage.notebook)
                page = NotebookPage(chromium, lab, stage.notebook, navigate=False)
            cells = json.loads((lab.folder / stage.notebook).read_text())["cells"]
            form = next(i for i, c in enumerate(cells) if "show_parameter_form(" in "".join(c["source"]))
            for index in range(form + 1):
                if cells[index]["cell_type"] == "code":
                    page.run_cell(index)
                    page.wait_done(60)
            wait_for(lambda: page.find(f"{page.notebook} button.jupyter-widgets"), 30,
                     f"{stage.notebook}'s parameter form")
            assert page.form_field("site_file").get_attribute("value") == "examples/example-site.yaml"
            if "apply" in stage.parameters:
                assert page.form_field("apply").get_attribute("type") == "checkbox", stage.notebook
            assert error_outputs(page.save()) == [], stage.notebook
            page.menu("Kernel", "Shut Down Kernel")
            page.menu("File", "Close Tab")
    finally:
        lab.stop()
