"""Reading OVAs in place: members, manifest checks, the OVF descriptor; the generated HAProxy OVA."""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
import tracemalloc
from pathlib import Path

import pytest

from tkgs_lib.errors import ManifestMismatch, OvaError
from tkgs_lib.ova import Ova, parse_descriptor, parse_manifest
from tkgs_simulators.ova import build_ova

REFERENCE_OVF = Path(__file__).resolve().parents[2] / "shared" / "reference" / "ovf"

NAME = "haproxy-v0.1.10"
DISK = f"{NAME}.ova.vmdk"


def _tar(path: Path, files: dict[str, bytes]) -> Path:
    """A hand-made OVA (for the malformed cases build_ova does not make)."""
    with tarfile.open(path, "w", format=tarfile.USTAR_FORMAT) as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture(scope="module")
def ova_path(tmp_path_factory) -> Path:
    return build_ova(tmp_path_factory.mktemp("ova"), disk_size=3 << 20)


def test_members_are_read_in_place_with_their_offsets(ova_path):
    ova = Ova(ova_path)
    assert [m.name for m in ova.members] == [f"{NAME}.ovf", f"{NAME}.mf", DISK]
    assert ova.member(DISK).size == 3 << 20
    with tarfile.open(ova_path) as tar:
        for m in ova.members:
            expected = tar.extractfile(m.name).read()
            assert ova.read_bytes(m.name) == expected
            with ova_path.open("rb") as raw:  # the offset really is where the bytes start
                raw.seek(m.offset)
                assert raw.read(16) == expected[:16]


def test_member_reader_is_a_bounded_file_like_window(ova_path):
    ova = Ova(ova_path)
    with ova.open(DISK, chunk_size=1 << 20) as reader:
        assert len(reader) == 3 << 20 and reader.tell() == 0
        head = reader.read(10)
        assert reader.tell() == 10 and len(head) == 10
        rest = b"".join(reader)  # iterating continues from the current position
        assert len(head + rest) == 3 << 20
        assert reader.read(5) == b""  # never reads past the member into the tar's padding


def test_manifest_lines_tolerate_spacing_and_case():
    a, b = "a" * 64, "B" * 40
    entries = parse_manifest(f"SHA256(x.ovf)= {a}\n\n  sha1 ( y disk.vmdk ) =  {b}  \r\n")
    assert entries["x.ovf"].algorithm == "SHA256" and entries["x.ovf"].digest == a
    assert entries["y disk.vmdk"].algorithm == "SHA1" and entries["y disk.vmdk"].digest == b.lower()


@pytest.mark.parametrize("text, words", [
    ("MD5(x.ovf)= abcd\n", "line 1"),
    (f"SHA256(x.ovf)= {'a' * 40}\n", "64 hex digits"),
    (f"SHA256(x.ovf)= {'a' * 64}\nSHA256(x.ovf)= {'a' * 64}\n", "twice"),
    ("\n", "lists no file"),
])
def test_unreadable_manifests_say_why(text, words):
    with pytest.raises(OvaError, match=words):
        parse_manifest(text, where="x.mf")


@pytest.mark.parametrize("algorithm", ["SHA256", "SHA1"])
def test_a_correct_ova_verifies(tmp_path, algorithm):
    path = build_ova(tmp_path, algorithm=algorithm, disk_size=1 << 20)
    entries = Ova(path).verify(progress=False)
    assert set(entries) == {f"{NAME}.ovf", DISK}
    assert {e.algorithm for e in entries.values()} == {algorithm}


def test_headless_the_check_leaves_its_final_progress_line_in_stdout(tmp_path, capsys):
    """Under papermill (as under pytest) nobody can watch a widget: the record keeps plain text."""
    path = build_ova(tmp_path, disk_size=1 << 20)
    Ova(path).verify(progress=True)
    out = capsys.readouterr().out
    final = out.replace("\r", "\n").strip().splitlines()[-1]
    assert final.startswith(f"checking {path.name}: 100%"), out


def test_a_wrong_digest_names_the_file_and_both_digests(tmp_path):
    path = build_ova(tmp_path, corrupt=True, disk_size=1 << 20)
    with pytest.raises(ManifestMismatch) as caught:
        Ova(path).verify(progress=False)
    err = caught.value
    assert err.file == DISK and err.expected and err.actual and err.expected != err.actual
    with tarfile.open(path) as tar:
        assert err.actual == _sha256(tar.extractfile(DISK).read())
    assert DISK in str(err) and err.expected in str(err) and err.actual in str(err)


def test_a_file_listed_but_absent_is_refused(tmp_path):
    ovf = b"<Envelope/>"
    mf = f"SHA256(x.ovf)= {_sha256(ovf)}\nSHA256(x-disk1.vmdk)= {'0' * 64}\n".encode()
    path = _tar(tmp_path / "x.ova", {"x.ovf": ovf, "x.mf": mf})
    with pytest.raises(ManifestMismatch, match="x-disk1.vmdk.*no such file") as caught:
        Ova(path).verify(progress=False)
    assert caught.value.file == "x-disk1.vmdk"


def test_a_file_not_listed_is_refused(tmp_path):
    ovf, disk = b"<Envelope/>", b"extra bytes"
    mf = f"SHA256(x.ovf)= {_sha256(ovf)}\n".encode()
    path = _tar(tmp_path / "x.ova", {"x.ovf": ovf, "x.mf": mf, "x-disk1.vmdk": disk})
    with pytest.raises(ManifestMismatch, match="x-disk1.vmdk is not listed"):
        Ova(path).verify(progress=False)


def test_an_ova_without_manifest_cannot_be_verified(tmp_path):
    path = _tar(tmp_path / "x.ova", {"x.ovf": b"<Envelope/>"})
    with pytest.raises(ManifestMismatch, match=r"no manifest \(\.mf\)"):
        Ova(path).verify(progress=False)


@pytest.mark.parametrize("make, words", [
    (lambda p: p.write_bytes(b"this is not a tar archive" * 100), "not a tar archive"),
    (lambda p: _tar(p, {"x.vmdk": b"disk"}), "exactly one OVF descriptor"),
    (lambda p: None, "no such OVA file"),
])
def test_what_is_not_an_ova_is_said_in_one_sentence(tmp_path, make, words):
    path = tmp_path / "broken.ova"
    make(path)
    with pytest.raises(OvaError, match=words):
        Ova(path)


def test_a_truncated_ova_is_refused(tmp_path):
    path = build_ova(tmp_path, disk_size=1 << 20)
    with path.open("r+b") as f:
        f.truncate(path.stat().st_size // 2)
    with pytest.raises(OvaError, match="truncated"):
        Ova(path)


def test_verification_streams_with_flat_memory(tmp_path):
    path = build_ova(tmp_path, disk_size=48 << 20, fill="zeros")
    ova = Ova(path)
    tracemalloc.start()
    try:
        ova.verify(progress=False)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 << 20  # a few 1 MiB chunks, never the 48 MiB disk


def test_manifest_digest_and_content_identify_the_ova(ova_path, tmp_path):
    ova = Ova(ova_path)
    assert Ova(ova_path).manifest_digest() == _sha256(ova.read_bytes(f"{NAME}.mf"))
    content = ova.content()
    assert content.manifest_digest == ova.manifest_digest()
    assert content.files == tuple((m.name, m.size) for m in ova.members)
    assert content.total_size == sum(m.size for m in ova.members)
    same = build_ova(tmp_path / "same.ova", disk_size=3 << 20)
    other = build_ova(tmp_path / "other.ova", disk_size=3 << 20, seed=1)
    assert Ova(same).content() == content  # deterministic: same inputs, same content
    assert Ova(other).content().files == content.files  # same names and sizes...
    assert Ova(other).content() != content  # ...but other bytes: another digest


def test_generated_descriptor_has_the_appliance_facts(ova_path):
    d = Ova(ova_path).descriptor()
    assert d.name == NAME and d.version == "v0.1.10"
    assert [(o.id, o.default) for o in d.deployment_options] == [("default", True), ("frontend", False)]
    assert d.default_deployment == "default"
    assert d.networks_for("default") == ["Management", "Workload"]
    assert d.networks_for("frontend") == ["Management", "Workload", "Frontend"]
    assert d.transport == "com.vmware.guestInfo" and d.cpus == 2 and d.memory_mb == 4096
    (disk,) = d.disks
    assert disk.file == DISK and disk.file_size == 3 << 20 and disk.capacity == 20 << 30
    keys = [p.key for p in d.properties]
    assert "network.additional_workload_networks" not in keys  # only from v0.2.0
    assert {p.key for p in d.properties if p.password} == {"appliance.root_pwd", "loadbalance.haproxy_pwd"}
    assert d.property("loadbalance.dataplane_port").type == "int"
    assert d.property("loadbalance.dataplane_port").default == "5556"
    assert d.property("network.nameservers").default == "1.1.1.1, 1.0.0.1"
    assert d.property("network.management_ip").default is None
    assert d.property("network.frontend_ip").configurations == ("frontend",)
    frontend_only = {p.key for p in d.properties} - {p.key for p in d.properties_for("default")}
    assert frontend_only == {"network.frontend_ip", "network.frontend_gateway"}


def test_v0_2_descriptor_adds_additional_workload_networks(tmp_path):
    d = Ova(build_ova(tmp_path, name="haproxy-v0.2.0", disk_size=1024)).descriptor()
    assert d.version == "v0.2.0"
    assert "network.additional_workload_networks" in [p.key for p in d.properties]


def test_a_descriptor_that_is_not_ovf_is_refused():
    with pytest.raises(OvaError, match="not valid XML"):
        parse_descriptor(b"<Envelope>", where="x.ovf")
    with pytest.raises(OvaError, match="not an OVF descriptor"):
        parse_descriptor(b"<html/>", where="x.ovf")


@pytest.mark.parametrize("resource, element", [("2", "CPU count"), ("4096", "memory size")])
def test_a_hardware_count_that_is_not_ascii_digits_is_refused_naming_its_element(tmp_path, resource, element):
    """'²' is a digit to str.isdigit(); read as "no count" it once passed prepare and reached deploy."""
    good = Ova(build_ova(tmp_path, disk_size=1024)).read_bytes(f"{NAME}.ovf").decode()
    quantity = f"<rasd:VirtualQuantity>{resource}</rasd:VirtualQuantity>"
    assert good.count(quantity) == 1
    with pytest.raises(OvaError) as raised:
        parse_descriptor(good.replace(quantity, "<rasd:VirtualQuantity>²</rasd:VirtualQuantity>"), where="x.ovf")
    assert str(raised.value).startswith(f"x.ovf: the {element} (the VirtualQuantity of the VirtualHardwareSection's "
                                        f"Item of ResourceType ")
    assert str(raised.value).endswith("is '²', not a whole number of at most 12 ASCII digits.")


@pytest.mark.skipif(not REFERENCE_OVF.is_dir(), reason="the appliance's reference descriptors are not here")
@pytest.mark.parametrize("version", ["v0.1.10", "v0.2.0"])
def test_the_real_descriptors_read_as_the_generated_one(version, tmp_path):
    d = parse_descriptor((REFERENCE_OVF / f"haproxy-{version}.ovf").read_bytes())
    assert d.name == f"haproxy-{version}" and d.version == version
    assert d.default_deployment == "default"
    assert [o.label for o in d.deployment_options] == ["Default", "Frontend Network"]
    assert d.networks_for("default") == ["Management", "Workload"]
    assert d.networks_for("frontend") == ["Management", "Workload", "Frontend"]
    assert d.transport == "com.vmware.guestInfo" and d.cpus == 2 and d.memory_mb == 4096
    assert [(x.file, x.file_size) for x in d.disks] == [(f"haproxy-{version}.ova.vmdk", 2097152)]
    real = {p.key: p for p in d.properties if p.user_configurable}
    generated = Ova(build_ova(tmp_path, name=f"haproxy-{version}", disk_size=1024)).descriptor()
    ours = {p.key: p for p in generated.properties}
    assert set(real) == set(ours)  # the generated OVA offers exactly the real properties
    for key, p in real.items():
        q = ours[key]
        assert (q.type, q.default, q.password, q.configurations) == \
            (p.type, p.default, p.password, p.configurations), key



@pytest.mark.vcsim
@pytest.mark.parametrize("deployment, nics", [("frontend", 3), ("default", 2)])
def test_the_simulator_imports_the_generated_descriptor(vcsim_module, ova_path, deployment, nics):
    from pyVmomi import vim
    from sim_site import site_for
    from tkgs_lib.vsphere.connection import connect
    from tkgs_lib.vsphere.inventory import Inventory

    ova = Ova(ova_path)
    descriptor = ova.descriptor()
    site = site_for(vcsim_module)
    with connect(site.vcenter, vcsim_module.password) as vc:
        inventory = Inventory(vc, site.vcenter)
        portgroup = inventory.networks()["DC0_DVPG0"]
        params = vim.OvfManager.CreateImportSpecParams(
            entityName=f"haproxy-{deployment}", deploymentOption=deployment,
            networkMapping=[vim.OvfManager.NetworkMapping(name=name, network=portgroup)
                            for name in descriptor.networks_for(deployment)])
        result = vc.content.ovfManager.CreateImportSpec(
            ova.read_bytes(ova.descriptor_member.name).decode(), inventory.cluster.resourcePool,
            inventory.datastore("LocalDS_0"), params)
    assert not result.error
    spec = result.importSpec.configSpec
    cards = [c.device for c in spec.deviceChange if isinstance(c.device, vim.vm.device.VirtualEthernetCard)]
    assert len(cards) == nics == len(descriptor.networks_for(deployment))
    assert (spec.numCPUs, spec.memoryMB) == (2, 4096)
    assert [f.path for f in result.fileItem] == [DISK]


def test_a_fifo_is_refused_rather_than_read_forever(tmp_path):
    fifo = tmp_path / "haproxy.ova"
    os.mkfifo(fifo)
    with pytest.raises(OvaError, match="not a regular file"):
        Ova(fifo)
