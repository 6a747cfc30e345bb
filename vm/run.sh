#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# vm/run.sh [--smoke | --part NAME | --list]: the test suite on Debian 12's stock kernel (6.1)
# in qemu VMs.
#
# Fetches the linux-image-amd64 package with `apt-get download` and unpacks it under
# build/vm-6.1/kernel (never installed), builds a busybox initramfs with the virtio and 9p
# modules of that package, and boots it in qemu (TCG: no KVM needed) with the host's root
# shared read-only over 9p and this tree read-write. Inside, vm/guest.sh runs tests/run.sh on
# build/san and build/rel (built by the host) and writes its exit status and output back. The
# guest's console is this script's output.
#
# The whole suite does not fit one bounded VM: with no option it runs in parts, one VM each,
# one after another (PARTS below: every test binary and scenario is in exactly one part, or
# the run stops before booting), then prints the summed "N passed, N failed" and the time of
# each part; its exit status is non-zero if any part failed. --part NAME runs one part;
# --list prints each part's tests; --smoke runs a subset (three data-plane packet tests and
# one end-to-end flip, what CI runs); EXCLUDED (below) names the tests left out in the VM,
# with the reason, printed and counted as skipped; BGS_ONLY (an extended regexp on test
# names, see tests/run.sh) runs any other subset in one VM; BGS_VM_CMD runs that shell
# command in the guest instead of the suite (its status is the result).
#
# Bounds: each VM run BGS_VM_TIMEOUT seconds (default: the part's own bound below, 900 for
# --smoke), BGS_VM_MEM, BGS_VM_CPUS. The guest runs several times slower than the host:
# BGS_TEST_SLOWDOWN (default 5) scales the test binaries' watchdogs and the intervals, grace
# periods and deadlines of the scenarios (vm-tests/lib.sh), never what they count.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
out=build/vm-6.1
kdir=$out/kernel
VM_MEM=${BGS_VM_MEM:-3G}
VM_CPUS=${BGS_VM_CPUS:-2}
SMOKE_ONLY='^(test_(routing|nat_dsr|upgrade)|test_flip_nat\.sh)$'
# The parts: name, bound (seconds of VM time), the tests (a regexp as BGS_ONLY takes). TCG's
# speed varies about threefold between hosts of the same kind (the packets part took 210 s
# on one, 638 s on another): the bounds allow for the slow ones.
PARTS=(
	"packets 2400 ^test_[a-z0-9_]+$"
	"cli 3600 ^test_(bgctl_.*|canary_preview|drain_kill|flip_.*|history_disk)\.sh$"
	"agent 3600 ^test_agent_.*\.sh$"
	"soak 3600 ^test_(soak|hostile)_.*\.sh$"
)
# Left out in the VM ("NAME: REASON"): each counted as skipped with its reason, and printed.
# None now: the health blip's grace period is a creation option (bgctl init --timeout) that
# the scenario scales with the slowdown.
EXCLUDED=""

fail() {
	echo "vm-6.1: $*" >&2
	exit 1
}

# Every test name: the binaries of build/san/tests and the scenarios.
all_tests() {
	local f
	for f in build/san/tests/test_* vm-tests/test_*.sh; do
		[ -f "$f" ] && [ -x "$f" -o "${f%.sh}" != "$f" ] && basename "$f"
	done
}

# The part a test is in (its name), or nothing; more than one is an error of PARTS.
part_of() {
	local t=$1 p n=0 name
	for p in "${PARTS[@]}"; do
		read -r pname _ pre <<<"$p"
		[[ $t =~ $pre ]] && { name=$pname; n=$((n + 1)); }
	done
	[ $n -le 1 ] || fail "$t is in $n parts (PARTS in vm/run.sh)"
	echo "${name:-}"
}

mode=one
part=
case ${1:-} in
--smoke) mode=smoke ;;
--part)
	mode=part
	part=${2:-}
	;;
--list) mode=list ;;
"") [ -n "${BGS_ONLY:-}${BGS_VM_CMD:-}" ] || mode=all ;;
-h | --help)
	sed -n '4,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
	exit 0
	;;
*) fail "unknown option '$1' (vm/run.sh --help)" ;;
esac

if [ $mode = list ] || [ $mode = all ]; then
	[ -d build/san/tests ] || fail "no build/san/tests: build first (make all; make SAN=1 test-build)"
	orphans=()
	for t in $(all_tests); do
		p=$(part_of "$t")
		[ -n "$p" ] || orphans+=("$t")
		[ $mode = list ] && [ -n "$p" ] && echo "$p $t"
	done
	[ ${#orphans[@]} -eq 0 ] || fail "in no part of PARTS (vm/run.sh): ${orphans[*]}"
	[ $mode = list ] && exit 0
	# every part in its own VM, one after another; the results summed
	tp=0 tf=0 ts=0 bad=0 times=()
	t0=$(date +%s)
	for p in "${PARTS[@]}"; do
		read -r pname _ _ <<<"$p"
		echo "vm-6.1: ==== part $pname"
		ps=$(date +%s)
		rc=0
		"$0" --part "$pname" || rc=$? # a part that fails or times out: the next still runs
		times+=("$pname $(($(date +%s) - ps)) s")
		line=$(cat build/vm-6.1/summary 2>/dev/null || true)
		if [[ $line =~ ^([0-9]+)\ passed,\ ([0-9]+)\ failed(,\ ([0-9]+)\ skipped)?$ ]]; then
			tp=$((tp + BASH_REMATCH[1]))
			tf=$((tf + BASH_REMATCH[2]))
			ts=$((ts + ${BASH_REMATCH[4]:-0}))
		else
			echo "vm-6.1: part $pname gave no result (exit status $rc)"
			tf=$((tf + 1))
		fi
		[ $rc -eq 0 ] || bad=1
		echo "vm-6.1: part $pname: ${line:-no result} (${times[-1]#* })"
	done
	echo "vm-6.1: parts: $(IFS=,; echo "${times[*]}" | sed 's/,/, /g'); in all $(($(date +%s) - t0)) s"
	echo "vm-6.1: all parts on 6.1: $tp passed, $tf failed$([ $ts -eq 0 ] || echo ", $ts skipped")"
	exit $bad
fi

[ -z "$EXCLUDED" ] || while IFS= read -r line; do
	echo "vm-6.1: excluded: $line"
done <<<"$EXCLUDED"

ONLY=${BGS_ONLY:-}
case $mode in
smoke)
	ONLY=$SMOKE_ONLY
	VM_TIMEOUT=${BGS_VM_TIMEOUT:-900}
	;;
part)
	VM_TIMEOUT=
	for p in "${PARTS[@]}"; do
		read -r pname pbound pre <<<"$p"
		[ "$pname" = "$part" ] && ONLY=$pre VM_TIMEOUT=${BGS_VM_TIMEOUT:-$pbound}
	done
	[ -n "$VM_TIMEOUT" ] || fail "no part '$part' (vm/run.sh --list)"
	;;
*) VM_TIMEOUT=${BGS_VM_TIMEOUT:-5400} ;;
esac

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
rm -f "$out/status" "$out/summary"
{
	[ -z "$ONLY" ] || echo "BGS_ONLY='$ONLY'"
	[ -z "${BGS_VM_CMD:-}" ] || printf 'BGS_VM_CMD=%q\n' "$BGS_VM_CMD"
	printf 'BGS_EXCLUDE=%q\n' "$EXCLUDED"
	# TCG is several times slower than the host: wider per-test bounds.
	echo "BGS_TEST_TIMEOUT=${BGS_TEST_TIMEOUT:-900}"
	echo "BGS_VM_TEST_TIMEOUT=${BGS_VM_TEST_TIMEOUT:-1200}"
	echo "BGS_TEST_SLOWDOWN=${BGS_TEST_SLOWDOWN:-5}"
	echo "export BGS_ONLY BGS_EXCLUDE BGS_TEST_TIMEOUT BGS_VM_TEST_TIMEOUT BGS_TEST_SLOWDOWN"
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
echo "vm-6.1: suite exit status $rc on $kver${part:+, part $part}"
exit "$rc"
