"""Content libraries and the OVA item, against VMware's vCenter simulator."""

from __future__ import annotations

import hashlib
import tarfile
from pathlib import Path

import pytest

from sim_site import site_for
from tkgs_lib.errors import ConflictError, ManifestMismatch, NotFound, OvaError, TkgsError, VSphereError
from tkgs_lib.ova import DIGEST_PREFIX, Ova
from tkgs_simulators.ova import build_ova
from tkgs_lib.vsphere.connection import connect
from tkgs_lib.vsphere.inventory import Inventory
from tkgs_lib.vsphere.content_api import UPDATE_SESSION, ContentLibraryApi
from tkgs_lib.vsphere.library import (ContentLibraryOps, library_item_table, library_table, plan_content_libraries,
                                      read_content_libraries)

pytestmark = pytest.mark.vcsim

SUBSCRIBED, LOCAL, ITEM = "Tanzu VMware", "HAProxy", "haproxy-v0.1.10"
URL = "https://wp-content.vmware.com/v2/latest/lib.json"


@pytest.fixture(scope="module")
def ova(tmp_path_factory) -> Path:
    return build_ova(tmp_path_factory.mktemp("ova"), disk_size=3 << 20)


def _site(vcsim, ova_path, **overrides):
    return site_for(vcsim, **{"content_libraries.haproxy.ova": str(ova_path), **overrides})


@pytest.fixture
def vc(vcsim):
    """A logged-in session to a fresh simulator."""
    site = site_for(vcsim)
    with connect(site.vcenter, vcsim.password) as session:
        yield session


def update_sessions(api) -> list[str]:
    """Every open update session: an upload, failed or repeated, must leave none behind."""
    return api.rest.get(UPDATE_SESSION) or []


def read_libraries(vc, site, *, progress=False):
    return read_content_libraries(ContentLibraryApi(vc.rest), site, Inventory(vc, site.vcenter), progress=progress)


def plan_libraries(vc, site, *, progress=False):
    """Read vCenter and the OVA, and plan both libraries and the item, with operations on this vCenter."""
    return plan_content_libraries(site, read_libraries(vc, site, progress=progress),
                                  ContentLibraryOps(ContentLibraryApi(vc.rest), progress=progress))


def _moid(vc, site, name):
    return Inventory(vc, site.vcenter).datastore(name)._moId


def _count_requests(vc) -> list[tuple[str, str]]:
    """Every request the REST client makes from now on (method, path): a real hook, not a mock."""
    calls: list[tuple[str, str]] = []
    vc.rest.session.hooks["response"].append(
        lambda r, *a, **k: calls.append((r.request.method, r.request.path_url.split("?")[0])))
    return calls


def test_creates_both_libraries_and_uploads_the_ova(vcsim, vc, ova):
    site = _site(vcsim, ova)
    api = ContentLibraryApi(vc.rest)
    plan = plan_libraries(vc, site, progress=False)
    assert [(s.object, s.action) for s in plan.steps] == [
        (f"subscribed library '{SUBSCRIBED}'", "create"), (f"local library '{LOCAL}'", "create"),
        (f"OVA item '{ITEM}' in '{LOCAL}'", "create")]
    assert api.libraries_named(SUBSCRIBED) == [] and api.libraries_named(LOCAL) == []  # planning changed nothing

    plan.apply(progress=False)

    ds = _moid(vc, site, "LocalDS_0")
    (sub,) = api.libraries_named(SUBSCRIBED)
    assert (sub.type, sub.subscription_url, sub.on_demand, sub.automatic_sync, sub.datastore_ids) == \
        ("SUBSCRIBED", URL, False, True, (ds,))
    (local,) = api.libraries_named(LOCAL)
    assert (local.type, local.datastore_ids) == ("LOCAL", (ds,))
    (item,) = api.items_named(local.id, ITEM)
    content = Ova(ova).content()
    assert item.type == "ovf" and item.manifest_digest == content.manifest_digest
    assert item.description == f"{DIGEST_PREFIX}{content.manifest_digest}"
    assert item.files == tuple(sorted(content.files))
    # The bytes that landed on the simulator's datastore are the OVA's, member by member.
    stored = Path(ds.split("@")[0]) / f"contentlib-{local.id}" / item.id
    with tarfile.open(ova) as tar:
        for name, _ in content.files:
            assert hashlib.sha256((stored / name).read_bytes()).digest() == \
                hashlib.sha256(tar.extractfile(name).read()).digest(), name


def test_headless_the_upload_leaves_its_final_progress_line_in_stdout(vcsim, vc, ova, capsys):
    plan_libraries(vc, _site(vcsim, ova), progress=True).apply(progress=False)
    lines = capsys.readouterr().out.replace("\r", "\n").splitlines()
    uploading = [line for line in lines if line.startswith(f"uploading {ova.name}:")]
    assert uploading and uploading[-1].startswith(f"uploading {ova.name}: 100%"), lines


def test_a_rerun_plans_only_ok_rows_and_uploads_nothing(vcsim, vc, ova):
    site = _site(vcsim, ova)
    plan_libraries(vc, site, progress=False).apply(progress=False)
    api = ContentLibraryApi(vc.rest)
    sessions = update_sessions(api)
    (local,) = api.libraries_named(LOCAL)
    (before,) = api.items_named(local.id, ITEM)
    calls = _count_requests(vc)

    rerun = plan_libraries(vc, site, progress=False)
    assert [s.action for s in rerun.steps] == ["ok", "ok", "ok"] and rerun.is_noop
    assert rerun.apply(progress=False) == []

    assert update_sessions(api) == sessions  # no new update session...
    assert not [c for c in calls if c[0] in ("PUT", "PATCH", "DELETE")]  # ...no upload, no change
    assert not [c for c in calls if c[0] == "POST" and not c[1].endswith(("/library", "/item"))]
    assert api.items_named(local.id, ITEM) == [before]  # same item, same files, same digest


def test_a_manifest_mismatch_is_refused_before_anything_is_created(vcsim, vc, tmp_path):
    bad = build_ova(tmp_path, corrupt=True, disk_size=1 << 20)
    site = _site(vcsim, bad)
    calls = _count_requests(vc)
    with pytest.raises(ManifestMismatch, match=r"haproxy-v0\.1\.10\.ova\.vmdk does not match the manifest") as caught:
        plan_libraries(vc, site, progress=False)
    assert caught.value.expected and caught.value.actual
    api = ContentLibraryApi(vc.rest)
    assert api.libraries_named(SUBSCRIBED) == [] and api.libraries_named(LOCAL) == []
    assert update_sessions(api) == []
    assert not [c for c in calls if c[0] != "GET" and not c[1].endswith(("/library",))]  # only reads


def test_another_ova_under_the_same_item_name_is_a_conflict(vcsim, vc, ova, tmp_path):
    plan_libraries(vc, _site(vcsim, ova), progress=False).apply(progress=False)
    other = build_ova(tmp_path, disk_size=3 << 20, seed=7)  # same names and sizes, other bytes
    api = ContentLibraryApi(vc.rest)
    sessions = update_sessions(api)

    plan = plan_libraries(vc, _site(vcsim, other), progress=False)
    assert [s.action for s in plan.steps] == ["ok", "ok", "conflict"]
    why = plan.steps[2].why
    assert Ova(ova).manifest_digest() in why and Ova(other).manifest_digest() in why
    assert "content_libraries.haproxy.item" in why
    with pytest.raises(ConflictError, match="nothing was changed"):
        plan.apply(progress=False)
    (local,) = api.libraries_named(LOCAL)
    (item,) = api.items_named(local.id, ITEM)
    assert item.manifest_digest == Ova(ova).manifest_digest() and update_sessions(api) == sessions


def test_an_item_made_by_hand_is_a_conflict(vcsim, vc, ova):
    site = _site(vcsim, ova)
    api = ContentLibraryApi(vc.rest)
    library = api.create_local_library(LOCAL, _moid(vc, site, "LocalDS_0"))
    api.create_item(library, ITEM, "uploaded by someone")
    plan = plan_libraries(vc, site, progress=False)
    assert [s.action for s in plan.steps] == ["create", "ok", "conflict"]
    assert "records no sha256-manifest: digest" in plan.steps[2].why


def test_content_libraries_datastore_overrides_the_first_datastore(vcsim, vc, ova):
    site = _site(vcsim, ova, **{"content_libraries.datastore": "LocalDS_1"})
    plan = plan_libraries(vc, site, progress=False)
    assert all("LocalDS_1" in s.desired for s in plan.steps[:2])
    plan.apply(progress=False)
    api = ContentLibraryApi(vc.rest)
    ds1 = _moid(vc, site, "LocalDS_1")
    assert ds1 != _moid(vc, site, "LocalDS_0")
    assert [lib.datastore_ids for lib in api.libraries_named(SUBSCRIBED) + api.libraries_named(LOCAL)] == \
        [(ds1,), (ds1,)]
    table = library_table(site, read_libraries(vc, site))
    assert list(table["storage"]) == ["LocalDS_1", "LocalDS_1"]


def test_an_unknown_backing_datastore_names_the_field(vcsim, vc, ova):
    site = _site(vcsim, ova, **{"content_libraries.datastore": "NoSuchDS"})
    with pytest.raises(NotFound, match=r"datastore 'NoSuchDS' \(site field content_libraries.datastore\)"):
        plan_libraries(vc, site, progress=False)


def test_an_ova_that_is_not_there_is_one_sentence_before_anything_is_created(vcsim, vc, tmp_path):
    missing = tmp_path / "haproxy-v0.1.10.ova"
    calls = _count_requests(vc)
    with pytest.raises(OvaError) as caught:
        plan_libraries(vc, _site(vcsim, missing), progress=False)
    assert str(caught.value) == (f"content_libraries.haproxy.ova: the OVA file {missing} does not exist; download "
                                 f"the HAProxy OVA and give its path (relative to the site file).")
    assert not [c for c in calls if c[0] != "GET" and not c[1].endswith("/library")]  # only reads


def test_a_subscribed_library_with_other_settings_is_a_conflict(vcsim, vc, ova):
    site = _site(vcsim, ova, **{"content_libraries.kubernetes.download": "immediately"})
    api = ContentLibraryApi(vc.rest)
    api.create_subscribed_library(SUBSCRIBED, _moid(vc, site, "LocalDS_0"), "https://example.com/lib.json",
                                  on_demand=True)
    plan = plan_libraries(vc, site, progress=False)
    assert [s.action for s in plan.steps] == ["conflict", "create", "create"]
    why = plan.steps[0].why
    assert "https://example.com/lib.json" in why and URL in why
    assert "downloads on_demand, the site wants immediately" in why
    with pytest.raises(ConflictError):
        plan.apply(progress=False)
    assert api.libraries_named(LOCAL) == []  # the conflict stopped everything


def test_the_report_shows_what_vcenter_keeps_of_the_subscription(vcsim, vc, ova):
    site = _site(vcsim, ova, **{"content_libraries.kubernetes.download": "on_demand"})
    plan_libraries(vc, site, progress=False).apply(progress=False)
    rows = library_table(site, read_libraries(vc, site)).records()
    assert rows == [
        {"library": SUBSCRIBED, "type": "subscribed", "subscription URL": URL, "download": "on_demand",
         "automatic sync": "on", "SSL thumbprint": "", "last sync": "never reported", "storage": "LocalDS_0"},
        # What does not apply to a local library is empty, and empty is always "" (never None).
        {"library": LOCAL, "type": "local", "subscription URL": "", "download": "", "automatic sync": "",
         "SSL thumbprint": "", "last sync": "", "storage": "LocalDS_0"}]


def test_the_report_confirms_the_ova_item_is_there_with_its_files_and_digest(vcsim, vc, ova):
    site = _site(vcsim, ova)
    (before,) = library_item_table(site, read_libraries(vc, site)).records()
    assert before == {"library": LOCAL, "item": ITEM, "found": "no", "files": "", "total size": "",
                      "recorded manifest digest": ""}
    plan_libraries(vc, site, progress=False).apply(progress=False)

    content = Ova(ova).content()
    (after,) = library_item_table(site, read_libraries(vc, site)).records()
    assert (after["library"], after["item"], after["found"]) == (LOCAL, ITEM, "yes")
    assert after["files"] == ", ".join(f"{name} ({size:,} B)" for name, size in sorted(content.files))
    assert after["total size"].startswith(f"{content.total_size:,} B (3.0 MiB)")
    assert after["recorded manifest digest"] == f"{DIGEST_PREFIX}{content.manifest_digest}"


def test_a_failed_upload_leaves_no_item_behind(vcsim, ova, tmp_path):
    # vCenter refuses the disk's PUT after the descriptor and manifest were uploaded into the new item.
    from lossy_vcenter import LossyVCenter, Rule

    with LossyVCenter(vcsim, Rule(b".ova.vmdk HTTP/1.1", "refuse", 404)) as lossy:
        site = _site(vcsim, ova, **{"vcenter.port": lossy.port})
        with connect(site.vcenter, vcsim.password) as vc:
            plan = plan_libraries(vc, site, progress=False)
            with pytest.raises(TkgsError, match=r"OVA item 'haproxy-v0.1.10'.*failed, and the item was removed.*"
                                                r"haproxy-v0.1.10.ova.vmdk.*404"):
                plan.apply(progress=False)
            api = ContentLibraryApi(vc.rest)
            (local,) = api.libraries_named(LOCAL)  # the steps before it stand, complete
            assert api.items_named(local.id, ITEM) == []
            assert update_sessions(api) == []  # the failed session was deleted too


def test_the_upload_is_verified_by_a_pinned_thumbprint_too(vcsim, ova):
    # The PUTs go to the upload URL vCenter hands out, over the same pinned TLS as every request.
    site = _site(vcsim, ova, **{"vcenter.ca_file": None, "vcenter.thumbprint": vcsim.thumbprint})
    with connect(site.vcenter, vcsim.password) as session:
        plan_libraries(session, site, progress=False).apply(progress=False)
        assert plan_libraries(session, site, progress=False).is_noop


def test_an_upload_address_on_another_host_gets_no_session_id_and_nothing_remains(vcsim, ova):
    """vCenter names itself in the upload address; the simulator says 127.0.0.1. Logged in as
    'localhost' (its certificate names both), that address is another origin: no PUT goes there."""
    site = _site(vcsim, ova, **{"vcenter.server": "localhost"})
    with connect(site.vcenter, vcsim.password) as session:
        calls = _count_requests(session)
        plan = plan_libraries(session, site, progress=False)
        with pytest.raises(VSphereError) as caught:
            plan.apply(progress=False)
        api = ContentLibraryApi(session.rest)
        (local,) = api.libraries_named(LOCAL)  # the step before it stands
        assert api.items_named(local.id, ITEM) == [] and update_sessions(api) == []
    message = str(caught.value)
    assert f"https://127.0.0.1:{vcsim.port}/" in message and f"https://localhost:{vcsim.port}" in message
    assert "failed, and the item was removed" in message and "vcenter.server" in message
    assert not [c for c in calls if c[0] == "PUT"]  # nothing was sent to the other address


def test_vcenter_lost_mid_upload_says_how_far_it_got_and_what_is_left(vcsim, vc, tmp_path, monkeypatch):
    """The simulator is killed for real while the disk streams (the seam is our own body iterator,
    which kills it after 2 MiB): one sentence says how far the file got, and that the half-made item
    could not be removed, naming it, because vCenter is gone."""
    from tkgs_lib.vsphere import upload

    path = build_ova(tmp_path, disk_size=4 << 20)
    site = _site(vcsim, path)
    plan = plan_libraries(vc, site, progress=False)
    streamed = upload.StreamedBody.__iter__

    def lose_vcenter_after_two_mib(body):
        for n, chunk in enumerate(streamed(body)):
            if len(body) >= 4 << 20 and n == 2:
                vcsim.crash()
            yield chunk

    monkeypatch.setattr(upload.StreamedBody, "__iter__", lose_vcenter_after_two_mib)
    with pytest.raises(TkgsError) as caught:
        plan.apply(progress=False)
    message = str(caught.value)
    assert "vCenter closed the connection after 2 MB of 4 MB of haproxy-v0.1.10.ova.vmdk" in message, message
    assert "removing the item failed too: delete library item 'haproxy-v0.1.10' in vCenter" in message
    assert "Traceback" not in message and "HTTPSConnectionPool" not in message and "SSLEOFError" not in message
