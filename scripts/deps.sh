#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# Install, from Debian's packages, everything the build, the tests and the demo need.
# Idempotent: checks what is there first and calls apt only for what is missing.
set -euo pipefail

pkgs=(
	make gcc libc6-dev pkg-config clang llvm libclang-rt-14-dev
	libbpf-dev libxdp-dev xdp-tools bpftool linux-libc-dev libelf-dev zlib1g-dev
	libmnl-dev libjson-c-dev libcyaml-dev libyaml-dev libsystemd-dev libcurl4-openssl-dev
	libmicrohttpd-dev
	iproute2 ethtool jq python3 curl procps util-linux nftables
)

missing=()
for p in "${pkgs[@]}"; do
	st=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
	[ "$st" = "install ok installed" ] || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
	echo "deps: all ${#pkgs[@]} packages present"
	exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
	echo "deps: missing packages: ${missing[*]}; run 'make deps' as root" >&2
	exit 1
fi
echo "deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
