#!/usr/bin/env bash
# Debian packages the tests start for real: XRootD (transfer), Slurm + munge (HPC backend),
# Chromium (browser tests), the C compiler and Kerberos headers that psana's pykerberos builds
# against (LCLS-II XTC2 reader). Installs only what is missing; needs root (CI and dev machines are).
set -euo pipefail
want=(xrootd-server xrootd-client slurm-wlm munge chromium gcc libkrb5-dev)
missing=()
for pkg in "${want[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
    echo "installing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >/dev/null
    apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
fi
