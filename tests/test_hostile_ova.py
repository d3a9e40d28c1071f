"""OVAs built to hurt: each is refused in one sentence, read whole before the first change (the
prepare stage leaves vCenter as it was; the deploy stage never imports it), and no finding shows a
secret value. The descriptors are the generated appliance's with one thing made hostile."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest
import yaml

from sim_site import site_data
from tkgs_lib.errors import OvaError, TkgsError
from tkgs_simulators.ova import build_ova, haproxy_descriptor
from tkgs_lib.site import load_site
from tkgs_lib.stages.flow import StageRun
from tkgs_lib.vsphere.connection import connect
from pyVmomi import vim

pytestmark = pytest.mark.vcsim
GOOD = haproxy_descriptor()
BOMB = ('<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;">'
        '<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;"><!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;">]>')
HOSTILE_DESCRIPTORS = {
    "malformed XML": (GOOD[:len(GOOD) // 2], "is not valid XML"),
    "an entity bomb": (BOMB + GOOD.split("?>", 1)[1].replace("<Info>", "<Info>&lol4;", 1),
                       "holds a document type or entity declaration"),
    "an external entity": ('<?xml version="1.0"?><!DOCTYPE e [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
                           + GOOD.split("?>", 1)[1].replace("<Info>", "<Info>&x;", 1),
                           "holds a document type or entity declaration"),
    "absurd units": (GOOD.replace('ovf:capacityAllocationUnits="byte * 2^30"',
                                  'ovf:capacityAllocationUnits="byte * 10^99999999"'), "larger than any disk"),
    "a non-ASCII digit": (GOOD.replace("<rasd:VirtualQuantity>2</rasd:VirtualQuantity>",
                                       "<rasd:VirtualQuantity>²</rasd:VirtualQuantity>", 1)
                          .replace('ovf:capacity="20"', 'ovf:capacity="2²"'), "is not a whole number of ASCII digits"),
    "a superscript CPU count": (GOOD.replace("<rasd:VirtualQuantity>2</rasd:VirtualQuantity>",
                                             "<rasd:VirtualQuantity>²</rasd:VirtualQuantity>", 1),
                                "the CPU count (the VirtualQuantity of the VirtualHardwareSection's Item of "
                                "ResourceType 3) is '²'"),
}


def hostile_member_ova(path: Path, name: str) -> Path:
    """An OVA holding, besides its descriptor, a file whose name leads out of it."""
    with tarfile.open(path, "w") as tar:
        for member, data in (("haproxy-v0.1.10.ovf", GOOD.encode()), (name, b"x")):
            info = tarfile.TarInfo(member)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def ovas(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    made = {}
    for case, (descriptor, words) in HOSTILE_DESCRIPTORS.items():
        assert descriptor != GOOD or case == "malformed XML", case  # the replacement took
        made[case] = (build_ova(tmp_path / f"{case.replace(' ', '-')}.ova", descriptor=descriptor,
                                disk_size=4096), words)
    made["a member named ../../x"] = (hostile_member_ova(tmp_path / "up.ova", "../../x"), "a path into other folders")
    made["a member named /tmp/x"] = (hostile_member_ova(tmp_path / "abs.ova", "/tmp/x"), "an absolute or Windows path")
    return made


def vcenter_objects(sim, site) -> dict:
    """What prepare would make: libraries, tags, categories and port groups."""
    with connect(site.vcenter, password=sim.password) as session:
        view = session.content.viewManager.CreateContainerView(session.content.rootFolder, [vim.Network], True)
        return {"libraries": sorted(session.rest.get("/rest/com/vmware/content/library") or []),
                "tags": sorted(session.rest.get("/rest/com/vmware/cis/tagging/tag") or []),
                "categories": sorted(session.rest.get("/rest/com/vmware/cis/tagging/category") or []),
                "portgroups": sorted(n.name for n in view.view)}


def one_sentence(exc: TkgsError) -> str:
    text = str(exc)
    assert "Traceback" not in text and "\n" not in text and len(text) < 600, text
    return text


def test_each_hostile_ova_is_refused_by_prepare_before_anything_is_made(vcsim_module, tmp_path, monkeypatch):
    monkeypatch.setenv("TKGS_VCENTER_PASSWORD", vcsim_module.password)
    for case, (ova, words) in ovas(tmp_path).items():
        site_file = tmp_path / f"{ova.stem}.yaml"
        site_file.write_text(yaml.safe_dump(site_data(vcsim_module, **{"content_libraries.haproxy.ova": str(ova)})))
        site = load_site(site_file)
        before = vcenter_objects(vcsim_module, site)
        run = StageRun("prepare", site, tmp_path / ova.stem, progress=False)
        try:
            run.connect_vcenter()
            with pytest.raises(OvaError) as refused:
                run.carry_out(run.plan(), apply=True)
        finally:
            run.close()
        assert words in one_sentence(refused.value), case
        assert refused.value.message.startswith("content_libraries.haproxy.ova: "), case
        assert vcenter_objects(vcsim_module, site) == before, f"{case}: vCenter was changed"


def test_each_hostile_ova_is_refused_by_deploy_in_one_sentence(vcsim_module, tmp_path, monkeypatch):
    monkeypatch.setenv("TKGS_VCENTER_PASSWORD", vcsim_module.password)
    for case, (ova, words) in ovas(tmp_path).items():
        site_file = tmp_path / f"{ova.stem}.yaml"
        site_file.write_text(yaml.safe_dump(site_data(vcsim_module, content_libraries=None,
                                                      **{"haproxy.ova": str(ova)})))
        run = StageRun("deploy", load_site(site_file), tmp_path / ova.stem, progress=False)
        try:
            run.connect_vcenter()
            with pytest.raises(OvaError) as refused:
                run.read()
        finally:
            run.close()
        assert words in one_sentence(refused.value), case


def test_no_finding_shows_a_secret_value_even_for_an_ova_that_mistypes_it(vcsim_module, tmp_path, monkeypatch):
    from appliance_material import write_ca

    cert, key = write_ca(tmp_path / "ca")
    mistyped = GOOD.replace('ovf:key="ca_cert_key" ovf:type="string"', 'ovf:key="ca_cert_key" ovf:type="boolean"') \
        .replace('ovf:key="root_pwd" ovf:type="string"', 'ovf:key="root_pwd" ovf:type="int"')
    assert mistyped.count('ovf:type="boolean"') == 2 and 'ovf:type="int"' in mistyped
    ova = build_ova(tmp_path / "mistyped.ova", descriptor=mistyped, disk_size=4096)
    root = "canary-root-never-shown-7"
    monkeypatch.setenv("TKGS_VCENTER_PASSWORD", vcsim_module.password)
    monkeypatch.setenv("TKGS_HAPROXY_ROOT_PASSWORD", root)
    monkeypatch.setenv("TKGS_HAPROXY_DATAPLANE_PASSWORD", "canary-dataplane-never-shown-7")
    site_file = tmp_path / "site.yaml"
    site_file.write_text(yaml.safe_dump(site_data(vcsim_module, content_libraries=None, **{
        "haproxy.ova": str(ova), "haproxy.ca_cert_file": str(cert), "haproxy.ca_key_file": str(key)})))
    run = StageRun("deploy", load_site(site_file), tmp_path / "run", progress=False)
    try:
        run.connect_vcenter()
        plan = run.plan(run.read())
    finally:
        run.close()
    shown = "\n".join(f"{f.path} {f.message} {f.fix}" for f in plan.findings) + repr(plan)
    assert "property appliance.ca_cert_key: its value (a secret, not shown) is not a boolean" in shown
    assert "property appliance.root_pwd: its value (a secret, not shown) is not a whole number" in shown
    key_body = [line for line in key.read_text().splitlines() if "-----" not in line]
    assert root not in shown and not [line for line in key_body if line in shown]
