#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# vm/run.sh [--smoke]: the test suite on Debian 12's stock kernel (6.1) in a qemu VM.
#
# Fetches the linux-image-amd64 package with `apt-get download` and unpacks it under
# build/vm-6.1/kernel (never installed), builds a busybox initramfs with the virtio and 9p
# modules of that package, and boots it in qemu (TCG: no KVM needed) with the host's root
# shared read-only over 9p and this tree read-write. Inside, vm/guest.sh runs tests/run.sh on
# build/san and build/rel (built by the host) and writes its exit status back. The guest's
# console is this script's output; its exit status is the suite's.
#
# --smoke runs a subset (three data-plane packet tests and one end-to-end flip); BGS_ONLY
# (an extended regexp on test names, see tests/run.sh) picks any other subset; BGS_VM_CMD
# runs that shell command in the guest instead of the suite (its status is the result).
# Bounds: BGS_VM_TIMEOUT (whole run, seconds), BGS_VM_MEM, BGS_VM_CPUS. The guest runs several
# times slower than the host (BGS_TEST_SLOWDOWN scales the test binaries' watchdogs): the
# scenarios that assert host timings (100 ms health checks, sub-second latency bounds) fail
# there on time, not on the kernel; the smoke subset has none of them.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
out=build/vm-6.1
kdir=$out/kernel
smoke=0
[ "${1:-}" != --smoke ] || smoke=1
VM_TIMEOUT=${BGS_VM_TIMEOUT:-$([ $smoke = 1 ] && echo 900 || echo 5400)}
VM_MEM=${BGS_VM_MEM:-3G}
VM_CPUS=${BGS_VM_CPUS:-2}
SMOKE_ONLY='^(test_(routing|nat_dsr|upgrade)|test_flip_nat\.sh)$'

fail() {
	echo "vm-6.1: $*" >&2
	exit 1
}

[ "$(id -u)" -eq 0 ] || fail "needs root (qemu shares the host's root as root over 9p)"
for t in qemu-system-x86_64 busybox depmod modprobe cpio gzip apt-get dpkg-deb timeout; do
	command -v "$t" >/dev/null || fail "missing tool '$t' (run make deps)"
done
for b in build/rel/bgctl build/san/tests; do
	[ -e "$b" ] || fail "no $b: build first (make all; make SAN=1 test-build)"
done
mkdir -p "$out"

# 1. The kernel: the package linux-image-amd64 depends on, unpacked (not installed).
if ! ls "$kdir"/boot/vmlinuz-* >/dev/null 2>&1; then
	pkg=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
	[ -n "$pkg" ] || fail "apt knows no linux-image-amd64 (apt-get update?)"
	rm -rf "$out/deb" "$kdir.tmp"
	mkdir -p "$out/deb"
	echo "vm-6.1: fetching $pkg"
	(cd "$out/deb" && timeout 600 apt-get download -o APT::Sandbox::User=root "$pkg") ||
		fail "apt-get download $pkg failed"
	dpkg-deb -x "$out"/deb/"$pkg"_*.deb "$kdir.tmp"
	mv "$kdir.tmp" "$kdir"
	rm -rf "$out/deb"
fi
vmlinuz=$(ls "$kdir"/boot/vmlinuz-* | head -n 1)
kver=${vmlinuz##*/vmlinuz-}
[ -f "$kdir/lib/modules/$kver/modules.dep" ] || depmod -b "$kdir" "$kver"

# 2. The initramfs: static busybox, the modules to reach the 9p shares (in load order, from
# the package's own dependency data) and vm/init.
initrd=$out/initramfs-$kver.cpio.gz
if [ ! -f "$initrd" ] || [ vm/init -nt "$initrd" ]; then
	root=$out/initramfs
	rm -rf "$root"
	mkdir -p "$root"/{bin,modules,proc,sys,dev,newroot}
	cp "$(command -v busybox)" "$root/bin/busybox"
	for a in sh mount insmod mkdir sed cat sleep poweroff switch_root; do
		ln -s busybox "$root/bin/$a"
	done
	: >"$root/modules.list"
	for m in virtio_pci 9pnet_virtio 9p; do
		modprobe -d "$kdir" -S "$kver" --show-depends "$m" | awk '$1 == "insmod" {print $2}'
	done | awk '!seen[$0]++' | while read -r ko; do
		cp "$ko" "$root/modules/"
		basename "$ko" >>"$root/modules.list"
	done
	cp vm/init "$root/init"
	(cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) >"$initrd.tmp"
	mv "$initrd.tmp" "$initrd"
	rm -rf "$root"
fi

# 3. Boot, run, read the verdict.
rm -f "$out/status"
{
	[ $smoke = 0 ] || echo "BGS_ONLY='$SMOKE_ONLY'"
	[ -z "${BGS_ONLY:-}" ] || echo "BGS_ONLY='$BGS_ONLY'"
	[ -z "${BGS_VM_CMD:-}" ] || printf 'BGS_VM_CMD=%q\n' "$BGS_VM_CMD"
	# TCG is several times slower than the host: wider per-test bounds.
	echo "BGS_TEST_TIMEOUT=${BGS_TEST_TIMEOUT:-900}"
	echo "BGS_VM_TEST_TIMEOUT=${BGS_VM_TEST_TIMEOUT:-1200}"
	echo "BGS_TEST_SLOWDOWN=${BGS_TEST_SLOWDOWN:-5}"
	echo "export BGS_ONLY BGS_TEST_TIMEOUT BGS_VM_TEST_TIMEOUT BGS_TEST_SLOWDOWN"
} >"$out/guest.env"
echo "vm-6.1: booting $kver (qemu TCG, $VM_CPUS CPUs, $VM_MEM, bound ${VM_TIMEOUT}s)"
start=$(date +%s)
set +e
timeout --kill-after=10 "$VM_TIMEOUT" qemu-system-x86_64 \
	-machine q35,accel=tcg -cpu max -smp "$VM_CPUS" -m "$VM_MEM" \
	-nographic -no-reboot -nic none \
	-kernel "$vmlinuz" -initrd "$initrd" \
	-append "console=ttyS0 panic=-1 loglevel=4 bgs.tree=$here" \
	-fsdev local,id=hostroot,path=/,security_model=passthrough,readonly=on,multidevs=remap \
	-device virtio-9p-pci,fsdev=hostroot,mount_tag=hostroot \
	-fsdev local,id=tree,path="$here",security_model=passthrough,multidevs=remap \
	-device virtio-9p-pci,fsdev=tree,mount_tag=tree \
	</dev/null
qrc=$?
set -e
echo "vm-6.1: VM ran $(($(date +%s) - start)) s"
[ $qrc -ne 124 ] && [ $qrc -ne 137 ] || fail "timed out after ${VM_TIMEOUT}s"
[ -f "$out/status" ] || fail "the guest reported no result (qemu exit status $qrc)"
rc=$(cat "$out/status")
echo "vm-6.1: suite exit status $rc on $kver"
exit "$rc"
