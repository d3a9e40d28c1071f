#!/usr/bin/env bash
# Set up a fresh machine for tkgs-runbook: the Debian packages the simulator and tests need
# (when run as root on Debian), then a virtual environment in .venv with the package installed.
set -euo pipefail
cd "$(dirname "$0")/.."

# Go and govmomi's sources build the vCenter simulator; chromium and its driver run the notebooks in
# JupyterLab for the browser tests; openssh-server, iputils-ping, iputils-arping, iproute2, haproxy and openssl
# make the simulated appliance (its sshd and HAProxy are started only inside the simulator's own namespaces,
# never as services; openssl hashes the Data Plane API password as the appliance's first boot does; the
# appliance's Photon iputils carries arping as well as ping); kubernetes-client is Debian's kubectl, which the
# tests run against the Kubernetes stand-ins.
debs=(golang-go golang-github-vmware-govmomi-dev curl chromium chromium-driver openssh-server iputils-ping
      iputils-arping iproute2 haproxy openssl)
# Another package may own /usr/bin/kubectl (Google Cloud SDK's kubectl): dpkg then refuses to install
# kubernetes-client over it, so its files are unpacked under the cache instead, where the tests look
# ($TKGS_CACHE_DIR or ~/.cache/tkgs-runbook, kubernetes-client/usr/bin/kubectl).
kubectl_owner=$(dpkg-query -S /usr/bin/kubectl 2>/dev/null | cut -d: -f1 || true)
if [ -z "$kubectl_owner" ] || [ "$kubectl_owner" = kubernetes-client ]; then
    debs+=(kubernetes-client)
fi
if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    missing=()
    for p in "${debs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
    # A minimal Debian has no python3, or one without venv (ensurepip).
    python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || missing+=(python3 python3-venv)
    if [ ${#missing[@]} -gt 0 ]; then
        echo "installing Debian packages: ${missing[*]}"
        apt-get update -qq
        # policy-rc.d 101: installing openssh-server or haproxy must not start a service on this machine.
        policy=/usr/sbin/policy-rc.d
        [ -e "$policy" ] || { printf '#!/bin/sh\nexit 101\n' > "$policy"; chmod +x "$policy"; made_policy=1; }
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
        [ -z "${made_policy:-}" ] || rm -f "$policy"
    fi
    cache=${TKGS_CACHE_DIR:-$HOME/.cache/tkgs-runbook}
    if [ -n "$kubectl_owner" ] && [ "$kubectl_owner" != kubernetes-client ] \
        && [ ! -x "$cache/kubernetes-client/usr/bin/kubectl" ]; then
        echo "unpacking Debian's kubernetes-client under $cache (package $kubectl_owner owns /usr/bin/kubectl)"
        mkdir -p "$cache/kubernetes-client"
        download=$(mktemp -d)
        chmod 755 "$download"  # apt's download user writes there
        [ -n "${missing[*]}" ] || apt-get update -qq
        (cd "$download" && apt-get download -qq kubernetes-client >/dev/null)
        dpkg-deb -x "$download"/kubernetes-client_*.deb "$cache/kubernetes-client"
        rm -rf "$download"
    fi
else
    echo "note: not root on Debian; install ${debs[*]} yourself for the simulator and browser tests" >&2
fi

python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
    || { echo "tkgs-runbook needs Python 3.11 or newer; found $(python3 --version)" >&2; exit 1; }
# Apache Airflow (the airflow extra) only when asked, TKGS_AIRFLOW=1: scripts/run-tests.sh asks on CI
# (CI=true) so the fleet's Airflow DAG is tested there; it adds about 100 packages (190 MB, a minute
# and a half); elsewhere that test is skipped, saying why.
extras=dev
if [ "${TKGS_AIRFLOW:-}" = 1 ]; then
    extras=dev,airflow
fi
# Installed already for this very pyproject.toml with these extras (or with Airflow as well): nothing
# to do (a rerun takes a second, not a minute).
stamp=.venv/.tkgs-installed
project=$(sha256sum pyproject.toml | cut -d' ' -f1)
wanted="$project $extras"
installed=$(cat "$stamp" 2>/dev/null || true)
if [ -x .venv/bin/tkgs-runbook ] && { [ "$installed" = "$wanted" ] || [ "$installed" = "$project dev,airflow" ]; }; then
    exit 0
fi
python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e ".[$extras]"
echo "$wanted" > "$stamp"
