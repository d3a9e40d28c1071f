"""How the logs beside this file were recorded: the real ``ovf-to-cloud-init.sh`` of a tag of
haproxytech/vmware-haproxy, run by bash as its unit runs it (``2>&1 | tee -a`` its log), with its absolute
paths moved under a temporary folder and ``ovf-rpctool`` answering from the properties (a JSON file) and
the OVF environment they make (:mod:`tkgs_simulators.appliance.ovf_environment`).

    python tests/recorded/record_first_boot.py v0.1.10 props.json out.log <clone of vmware-haproxy>

The test suite only reads the recorded logs: it needs no clone.
"""
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from tkgs_simulators.appliance.ovf_environment import ovf_environment  # noqa: E402

NICS = {"management": "00:50:56:aa:bb:01", "workload": "00:50:56:aa:bb:02", "frontend": "00:50:56:aa:bb:03"}


def main(tag: str, props_file: str, out: str, clone: str) -> None:
    props = json.loads(Path(props_file).read_text())
    root = Path(tempfile.mkdtemp())

    def show(path: str) -> str:
        return subprocess.run(["git", "-C", clone, "show", f"{tag}:{path}"], capture_output=True, text=True,
                              check=True).stdout

    for folder in ("var/lib/vmware", "etc/ssh", "etc/haproxy", "etc/vmware", "bin"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    for name, mac in NICS.items():
        (root / "sys/class/net" / name).mkdir(parents=True)
        (root / "sys/class/net" / name / "address").write_text(mac + "\n")
    files = "ansible/roles/cloudinit/files/var/lib/vmware"
    script = show(f"{files}/ovf-to-cloud-init.sh")
    script = script.replace("/var/lib/vmware", f"{root}/var/lib/vmware").replace("/etc/", f"{root}/etc/")
    (root / "var/lib/vmware/ovf-to-cloud-init.sh").write_text(script.replace('"/sys', f'"{root}/sys'))
    for name in ("userdata.txt", "metadata.txt"):
        (root / "var/lib/vmware" / name).write_text(show(f"{files}/{name}"))
    (root / "etc/ssh/sshd_config").write_text("PermitRootLogin no\n#ListenAddress 0.0.0.0\n")
    (root / "etc/haproxy/haproxy.cfg").write_text("userlist controller\n")
    (root / "etc/haproxy/dataplaneapi.cfg").write_text("TLS_HOST=0.0.0.0\nTLS_PORT=5556\n")
    (root / "props.json").write_text(json.dumps(props))
    (root / "ovfenv.xml").write_text(ovf_environment(props, NICS))
    rpctool = root / "bin/ovf-rpctool"
    rpctool.write_text(f"""#!/usr/bin/env python3
import json, sys
props = json.load(open("{root}/props.json"))
if sys.argv[1:3] == ["get", "ovfenv"]:
    print(open("{root}/ovfenv.xml").read())
elif sys.argv[1] == "get":
    print("")
elif sys.argv[1] == "get.ovf":
    print(props.get(sys.argv[2], ""))
""")
    rpctool.chmod(0o755)
    subprocess.run(["/bin/sh", "-c", f"bash {root}/var/lib/vmware/ovf-to-cloud-init.sh 2>&1 | tee -a {root}/ovf.log"],
                   cwd=root / "var/lib/vmware", env={**os.environ, "PATH": f"{root}/bin:{os.environ['PATH']}"},
                   capture_output=True)
    Path(out).write_text((root / "ovf.log").read_text().replace(str(root), ""))


if __name__ == "__main__":
    main(*sys.argv[1:5])
