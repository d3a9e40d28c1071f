"""After each entry of the ledger, in every stage that changes something, the answer is lost.

A clean apply of the stage first shows its ledger: every request that may change something, in order.
Then, for each request, a fresh system: the request is carried out and its answer lost (a proxy between
the runbook and the vCenter simulator resets the connection after vCenter acted; the simulated
appliance's login shell runs the command and drops the session before its answer leaves). The stage's
sentence must then say what was done (every row all of whose requests were answered "done") and that the
row of the lost request may have been changed, never "Nothing was changed"; the run folder's ledger must
hold that request as unknown; and what the simulators then hold must be what the sentence says: a rerun
without apply finds every row the sentence calls changed already as the site wants it.
"""

from __future__ import annotations

import re

import pytest
import yaml

from lossy_vcenter import LossyVCenter, Rule
from sim_site import site_data
from tkgs_lib import effects
from tkgs_lib.errors import TkgsError
from tkgs_lib.site import load_site
from tkgs_lib.stages.flow import StageRun
from tkgs_simulators.first_boot import FirstBoot
from tkgs_simulators.ova import build_ova
from tkgs_simulators.vcsim import VCenterSimulator

pytestmark = [pytest.mark.slow, pytest.mark.vcsim]
PASSWORDS = {"TKGS_HAPROXY_ROOT_PASSWORD": "canary-r00t-ledger-faults", "TKGS_HAPROXY_DATAPLANE_PASSWORD": "canary-dp-ledger"}


def write_site(sim, folder, port=None):
    ova = folder / "haproxy-v0.1.10.ova"
    if not ova.exists():
        build_ova(ova, disk_size=64 * 1024)
    data = site_data(sim, **{"content_libraries.haproxy.ova": str(ova), "haproxy.boot_timeout": 30})
    data["vcenter"]["port"] = port or sim.port
    path = folder / f"site-{data['vcenter']['port']}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def carried_out(name: str, site_file, folder, apply: bool = True):
    """The stage's plan carried out, in this process, as its notebook does: (its plan, the error it stopped
    with or None)."""
    folder.mkdir(parents=True, exist_ok=True)
    run = StageRun(name, load_site(site_file), folder, progress=False)
    try:
        run.connect_vcenter()
        plan = run.plan()
        try:
            run.carry_out(plan, apply)
        except TkgsError as exc:
            return plan, exc
        return plan, None
    finally:
        run.close()


def match_of(effect: effects.Effect) -> re.Pattern[bytes]:
    """What the lossy proxy recognises the effect's request by: a SOAP method in the body, a REST request
    line (any object's id: each fresh simulator gives its own), or (an upload, named in words) any PUT."""
    request = effect.request
    if not request.startswith(("GET ", "POST ", "PUT ", "PATCH ", "DELETE ")):
        return re.compile(re.escape(f"<{request}".encode()))  # a SOAP method: <AddDVPortgroup_Task ...>
    method, _, rest = request.partition(" ")
    if not rest.startswith("/"):
        return re.compile(re.escape(f"{method} /".encode()))  # an upload's bytes, to the address vCenter gave
    path, _, action = rest.partition("?action=")
    line = re.escape(f"{method} {path}")
    line = re.sub(r"id:[^/?]+", "id:[^/? ]+", line.replace(r"\:", ":"))
    if action:
        line += re.escape(f"?{'~' if path.startswith('/rest/') else ''}action={action}")
    return re.compile(line.encode() + rb"[ &]")


def rows_in(sentence: str, heading: str) -> str:
    found = re.search(rf"{heading}: (.*?)\.(?: [A-Z]|$)", sentence)
    return found.group(1) if found else ""


@pytest.fixture
def env(monkeypatch):
    for name, value in PASSWORDS.items():
        monkeypatch.setenv(name, value)
    return monkeypatch


def each_lost_answer(vcsim_binary, tmp_path, env, stage: str, before=()):
    """Yield, for each request of ``stage``'s clean apply (after ``before``'s stages, applied), the
    sentence, the ledger and the rerun's plan of an apply whose answer to that request was lost."""
    def fresh(name):
        sim = VCenterSimulator(binary=vcsim_binary, workdir=tmp_path / name / "vcsim").start()
        env.setenv("TKGS_VCENTER_PASSWORD", sim.password)
        site = write_site(sim, tmp_path / name)
        for earlier in before:
            _, error = carried_out(earlier, site, tmp_path / name / "run")
            assert error is None, error
        return sim, site

    sim, site = fresh("clean")
    with FirstBoot(sim):
        _, error = carried_out(stage, site, tmp_path / "clean" / "run")
    sim.stop()
    assert error is None, error
    ledger = [e for e in effects.read_effects(tmp_path / "clean" / "run" / effects.EFFECTS_FILE) if e.stage == stage]
    assert ledger, f"stage {stage} sent nothing that changes vCenter"
    seen: dict[bytes, int] = {}  # by pattern
    for number, effect in enumerate(ledger):
        match = match_of(effect)
        skip = seen.get(match.pattern, 0)
        seen[match.pattern] = skip + 1
        if skip:  # the same request again (a progress report, the next port group): its first loss is enough
            continue
        sim, site = fresh(f"lost-{number}")
        try:
            with FirstBoot(sim), LossyVCenter(sim, Rule(match, "cut")) as lossy:
                rule = lossy.rules[0]
                lossy_site = write_site(sim, tmp_path / f"lost-{number}", port=lossy.port)
                _, error = carried_out(stage, lossy_site, tmp_path / f"lost-{number}" / "run")
            assert rule.fired, f"no request matched {match!r}"
            kept = [e for e in effects.read_effects(tmp_path / f"lost-{number}" / "run" / effects.EFFECTS_FILE)
                    if e.stage == stage]
            rerun, again = carried_out(stage, site, tmp_path / f"lost-{number}" / "rerun", apply=False)
            yield effect, error, kept, rerun
        finally:
            sim.stop()


def judged(effect, error, kept, rerun) -> None:
    assert isinstance(error, TkgsError), f"{effect.request}: the stage did not stop on the lost answer"
    sentence = error.message
    assert "Nothing was changed" not in sentence, sentence
    lost = [e for e in kept if e.may_have_happened]
    assert lost and (lost[0].request == effect.request or match_of(lost[0]).pattern == match_of(effect).pattern), \
        [(e.request, e.outcome) for e in kept]
    unsure = rows_in(sentence, r"May have changed \(rerun without apply to see whether it did\)")
    assert effect.step in unsure and "sent, no answer came" in unsure, sentence
    changed = rows_in(sentence, "Changed")
    done_rows = {e.step for e in kept if e.step} - {e.step for e in kept if not e.happened}
    assert all(row in changed for row in done_rows), (done_rows, sentence)
    ok = {f"{s.action} {s.object}" for s in rerun.steps if s.action == "ok"}
    rows = {f"{s.action} {s.object}": s for s in rerun.steps}
    for row in done_rows:  # what the sentence calls changed, vCenter holds: its row is ok on a rerun
        name = row.split(" ", 1)[1]
        assert any(r.endswith(name) for r in ok), (row, {k: v.action for k, v in rows.items()})


def test_prepare_says_what_it_changed_after_each_lost_answer(vcsim_binary, tmp_path, env):
    count = 0
    for effect, error, kept, rerun in each_lost_answer(vcsim_binary, tmp_path, env, "prepare"):
        judged(effect, error, kept, rerun)
        count += 1
    assert count >= 8  # port groups, a tag category, a tag, its attachment, a policy, two libraries, an item...


def test_deploy_says_what_it_changed_after_each_lost_answer(vcsim_binary, tmp_path, env):
    count = 0
    for effect, error, kept, rerun in each_lost_answer(vcsim_binary, tmp_path, env, "deploy", before=("prepare",)):
        judged(effect, error, kept, rerun)
        count += 1
    assert count >= 2


def test_repair_says_what_it_changed_after_each_lost_answer(tmp_path, env):
    """Each command the repair sends runs to its end on the simulated appliance, and its answer is lost (the
    session dropped before the exit status leaves): the repair reconnects and puts the files back, and its
    sentence says the row may have changed, naming the command, never that nothing was."""
    from appliance_fixtures import PASSWORD_ENV, start_appliance

    for name, value in PASSWORD_ENV.items():
        env.setenv(name, value)

    def repaired(lab, folder, apply=True):
        def work():
            run = StageRun("repair", lab.site, folder, progress=False)
            try:
                plan = run.plan()
                try:
                    run.carry_out(plan, apply)
                except TkgsError as exc:
                    return plan, exc
                return plan, None
            finally:
                run.close()
        return lab.sim.in_lab(work)

    article = {"service_ip_range": "10.64.0.1/23"}
    for name in ("clean", *(f"lost-{n}" for n in range(12))):
        (tmp_path / name).mkdir()
    clean = start_appliance(tmp_path / "clean", faults=article)
    try:
        _, error = repaired(clean, clean.run_folder)
    finally:
        clean.sim.stop()
    assert error is None, error
    ledger = [e for e in effects.read_effects(clean.run_folder / effects.EFFECTS_FILE) if e.stage == "repair"]
    assert len(ledger) >= 4, [e.request for e in ledger]  # a backup, stop, replace, start
    for number, effect in enumerate(ledger):
        command = effect.request.strip("`").removesuffix("...")
        lab = start_appliance(tmp_path / f"lost-{number}", faults={**article, "lose_answer_at": [command]})
        try:
            _, error = repaired(lab, lab.run_folder)
            kept = [e for e in effects.read_effects(lab.run_folder / effects.EFFECTS_FILE) if e.stage == "repair"]
            rerun, _ = repaired(lab, tmp_path / f"lost-{number}" / "rerun", apply=False)
        finally:
            lab.sim.stop()
        judged(effect, error, kept, rerun)
