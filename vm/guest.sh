#!/bin/bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# PID 1 of the test VM, in the host's root (read-only, over 9p) with the source tree mounted
# read-write: gives the guest its own /run, /tmp, bpffs and module loading from the unpacked
# kernel package, runs tests/run.sh on the builds the host made, writes its exit status to
# build/vm-6.1/status (the host's verdict) and its summary line to build/vm-6.1/summary, and
# powers the VM off.
tree=$(cd "$(dirname "$0")/.." && pwd)
out=$tree/build/vm-6.1
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/root LANG=C.UTF-8

off() {
	sync
	echo o >/proc/sysrq-trigger
	sleep 10
}

mkdir -p /dev/pts /dev/shm
mount -t devpts -o newinstance,ptmxmode=0666 devpts /dev/pts
for d in /run /tmp /dev/shm; do
	mount -t tmpfs -o mode=1777 tmpfs "$d" || { echo "bgs-vm: cannot mount tmpfs on $d"; off; }
done
# a writable home; not a tmpfs on /root when the tree is under it (it would hide the tree)
case $tree/ in
/root/*)
	export HOME=/tmp/home
	mkdir -p -m 0700 "$HOME"
	;;
*)
	mount -t tmpfs -o mode=0700 tmpfs /root || { echo "bgs-vm: cannot mount tmpfs on /root"; off; }
	;;
esac
for f in fd:/proc/self/fd stdin:/proc/self/fd/0 stdout:/proc/self/fd/1 stderr:/proc/self/fd/2; do
	ln -sfn "${f#*:}" "/dev/${f%%:*}"
done
# /boot as on an installed Debian: libbpf reads the kernel's config there (__kconfig; Debian
# builds no /proc/config.gz).
mount -t tmpfs -o mode=0755 tmpfs /boot && cp "$out"/kernel/boot/config-* /boot/
mount -t bpf bpf /sys/fs/bpf
mount -t cgroup2 cgroup2 /sys/fs/cgroup 2>/dev/null
mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null
echo "$tree/vm/modprobe" >/proc/sys/kernel/modprobe
ip link set lo up
hostname bgs-vm-6-1

# The options the host chose (BGS_ONLY, timeouts; BGS_VM_CMD runs a command instead of the
# suite), then the suite.
[ ! -f "$out/guest.env" ] || . "$out/guest.env"
cd "$tree" || off
mods=(veth)
for m in "${mods[@]}"; do
	"$tree/vm/modprobe" "$m" || echo "bgs-vm: cannot load module $m"
done
echo "bgs-vm: kernel $(uname -r), $(nproc) CPUs, running tests/run.sh ${BGS_ONLY:+(only: $BGS_ONLY)}"
if [ -n "${BGS_VM_CMD:-}" ]; then
	bash -c "$BGS_VM_CMD"
	rc=$?
else
	# the suite's last line ("N passed, N failed") is the host's count
	tests/run.sh build/san build/rel 2>&1 | tee /tmp/suite.out
	rc=${PIPESTATUS[0]}
	tail -n 1 /tmp/suite.out >"$out/summary"
fi
echo $rc >"$out/status"
off
