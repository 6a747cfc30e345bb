#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# bench/bgctl_time.sh BUILD_DIR [MD_FILE]: wall time of bgctl, median over BGCTL_RUNS runs
# (default 100), next to `bgctl --version` as the process-start baseline:
#   - `bgctl flip NAME` (each run flips the service to its other color),
#   - `bgctl status -j` with 100 services x 16 backends (8 blue, 8 green).
# The state is made with bgctl itself in a private network namespace (permanent neighbours
# for the backends) on a bpffs under /run; everything is removed on exit, even on failure.
# Skips (exit 0, with a message) when BUILD_DIR/bgctl is absent.
set -euo pipefail

NSVC=100
NBE=16

if [ "${1:-}" = "--inner" ]; then
	inner=1
	shift
fi
build=${1:-build/rel}
md=${2:-}
bgctl=$build/bgctl
runs=${BGCTL_RUNS:-100}

say_md() {
	[ -z "$md" ] || printf '%s\n' "$@" >>"$md"
}

# ---- inside the namespace: set up with bgctl, then time it ----
if [ -n "${inner:-}" ]; then
	fail() {
		echo "bgctl_time: $*" >&2
		exit 1
	}
	# median of the numbers on stdin
	median() {
		sort -n | awk '{ a[NR] = $1 } END { if (NR % 2) print a[(NR + 1) / 2];
			else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
	}
	usecs() {
		local t=${1/./}
		echo $((10#$t))
	}
	ms() {
		awk -v u="$1" 'BEGIN { printf "%.2f", u / 1000 }'
	}

	t0=$(usecs "$EPOCHREALTIME")
	"$bgctl" init --max-services 128 >/dev/null || fail "bgctl init failed"
	for ((s = 0; s < NSVC; s++)); do
		name=$(printf 'svc%03d' "$s")
		"$bgctl" service add "$name" --vip "10.0.2.1:$((1000 + s))/tcp" --mode dsr \
			>/dev/null ||
			fail "bgctl service add $name failed"
		for ((b = 0; b < NBE; b++)); do
			color=blue
			[ "$b" -lt $((NBE / 2)) ] || color=green
			"$bgctl" backend add "$name" "$color" "10.0.0.$((10 + b))" >/dev/null ||
				fail "bgctl backend add $name $color 10.0.0.$((10 + b)) failed"
		done
	done
	t1=$(usecs "$EPOCHREALTIME")
	echo "set-up: $NSVC services x $NBE backends with bgctl in $(ms $((t1 - t0))) ms"

	# The status under test must show what was set up.
	st=$("$bgctl" status -j) || fail "bgctl status -j failed"
	n=$(jq '[.. | objects | select(has("name") and has("generation"))] | length' <<<"$st") ||
		fail "bgctl status -j printed no JSON"
	[ "$n" -ge "$NSVC" ] || fail "bgctl status -j shows $n services, not $NSVC"
	gen0=$("$bgctl" status -j svc000 |
		jq '[.. | objects | select(has("generation")) | .generation] | first')

	: >version.us
	: >flip.us
	: >status.us
	for ((i = 0; i < runs; i++)); do
		a=$(usecs "$EPOCHREALTIME")
		"$bgctl" --version >/dev/null || fail "bgctl --version failed"
		b=$(usecs "$EPOCHREALTIME")
		"$bgctl" flip svc000 --reason bench >/dev/null || fail "bgctl flip svc000 failed"
		c=$(usecs "$EPOCHREALTIME")
		"$bgctl" status -j >/dev/null || fail "bgctl status -j failed"
		d=$(usecs "$EPOCHREALTIME")
		echo $((b - a)) >>version.us
		echo $((c - b)) >>flip.us
		echo $((d - c)) >>status.us
	done
	gen1=$("$bgctl" status -j svc000 |
		jq '[.. | objects | select(has("generation")) | .generation] | first')
	# Proof that every run flipped: one generation per flip.
	[ "$((gen1 - gen0))" -eq "$runs" ] ||
		fail "generation went $gen0 -> $gen1 over $runs flips"

	# Walking conntrack: 1,000,000 flows of one service, timed through bgctl.
	nflows=1000000
	"$build/bench/ct_fill" "$BGSWITCH_PIN_DIR" svc001 "$nflows" >/dev/null ||
		fail "ct_fill could not insert $nflows flows"
	: >drain.us
	: >sflows.us
	for ((i = 0; i < 10; i++)); do
		a=$(usecs "$EPOCHREALTIME")
		"$bgctl" drain svc001 -j >drain.json || fail "bgctl drain svc001 -j failed"
		b=$(usecs "$EPOCHREALTIME")
		"$bgctl" status svc001 --flows -j >sflows.json ||
			fail "bgctl status svc001 --flows -j failed"
		c=$(usecs "$EPOCHREALTIME")
		echo $((b - a)) >>drain.us
		echo $((c - b)) >>sflows.us
	done
	# Proof that both walked every flow: the per-color totals add up to all of them.
	for j in drain.json sflows.json; do
		got=$(jq '[.. | objects | select(has("backends") and has("flows")) | .flows] | add' "$j")
		[ "$got" = "$nflows" ] || { cp "$j" /tmp/bgs-ctl-last-$j; fail "$j counts $got flows, not $nflows"; }
	done

	v=$(median <version.us)
	f=$(median <flip.us)
	s=$(median <status.us)
	dr=$(median <drain.us)
	sf=$(median <sflows.us)
	fnet=$(awk -v a="$f" -v b="$v" 'BEGIN { printf "%.2f", (a - b) / 1000 }')
	snet=$(awk -v a="$s" -v b="$v" 'BEGIN { printf "%.2f", (a - b) / 1000 }')
	verdict() {
		awk -v u="$1" -v t="$2" 'BEGIN { print (u / 1000 < t) ? "met" : "MISSED" }'
	}
	printf '%-46s %10s %12s %10s\n' "command (median of $runs runs)" "ms" "- --version" "target"
	printf '%-46s %10s %12s %10s\n' "bgctl --version (process start)" "$(ms "$v")" "" ""
	printf '%-46s %10s %12s %10s %s\n' "bgctl flip svc000" "$(ms "$f")" "$fnet" "< 10 ms" \
		"$(verdict "$f" 10)"
	printf '%-46s %10s %12s %10s %s\n' "bgctl status -j ($NSVC services x $NBE backends)" \
		"$(ms "$s")" "$snet" "< 100 ms" "$(verdict "$s" 100)"
	printf '%-46s %10s %12s %10s %s\n' "bgctl drain svc001 -j ($nflows flows, 10 runs)" \
		"$(ms "$dr")" "" "< 1000 ms" "$(verdict "$dr" 1000)"
	printf '%-46s %10s %12s %10s %s\n' "bgctl status svc001 --flows -j (10 runs)" \
		"$(ms "$sf")" "" "< 1000 ms" "$(verdict "$sf" 1000)"
	echo "flips proven: generation $gen0 -> $gen1; flow walks proven: $nflows flows counted"
	say_md "Median wall time of $runs runs each (interleaved), as seen by the calling shell"
	say_md "(fork + exec included: \`bgctl --version\` is that baseline). State made with"
	say_md "bgctl: \`bgctl init --max-services 128\`, $NSVC dsr services x $NBE backends"
	say_md "(8 blue, 8 green). Each flip is proven by the service's generation: $gen0 -> $gen1"
	say_md "over $runs flips. Audit history on $(df --output=fstype . | tail -n1)."
	say_md ""
	say_md "| command | ms | minus \`--version\` | target |"
	say_md "|---|---:|---:|---|"
	say_md "| \`bgctl --version\` (process start) | $(ms "$v") | | |"
	say_md "| \`bgctl flip svc000\` | $(ms "$f") | $fnet | < 10 ms $(verdict "$f" 10) |"
	say_md "| \`bgctl status -j\`, $NSVC services x $NBE backends | $(ms "$s") | $snet |" \
		"< 100 ms $(verdict "$s" 100) |"
	say_md "| \`bgctl drain svc001 -j\`, $nflows flows (median of 10) | $(ms "$dr") | |" \
		"< 1000 ms $(verdict "$dr" 1000) |"
	say_md "| \`bgctl status svc001 --flows -j\`, $nflows flows (median of 10) | $(ms "$sf") | |" \
		"< 1000 ms $(verdict "$sf" 1000) |"
	exit 0
fi

# ---- outside: namespace, bpffs, then this script again inside ----
[ -z "$md" ] || : >"$md"
if [ ! -x "$bgctl" ]; then
	echo "bgctl_time: $bgctl is not built: skipped"
	say_md "Skipped: \`$bgctl\` was not built."
	exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
	echo "bgctl_time: needs root" >&2
	exit 1
fi
command -v jq >/dev/null || {
	echo "bgctl_time: needs jq (make deps)" >&2
	exit 1
}

[ -z "$md" ] || md=$(cd "$(dirname "$md")" && pwd)/$(basename "$md")
here=$(cd "$(dirname "$0")" && pwd)
ns=bgs-ctl-$$
mnt=/run/bgs-ctl.$$
tmp=$(mktemp -d /tmp/bgs-ctl.XXXXXX)

child=
cleanup() {
	# stop the inner run first (a signal here is handled at once: it runs in background)
	if [ -n "$child" ] && kill "$child" 2>/dev/null; then
		wait "$child" 2>/dev/null || true
	fi
	ip netns del "$ns" 2>/dev/null || true
	if mountpoint -q "$mnt" 2>/dev/null; then
		umount "$mnt" || true
	fi
	rmdir "$mnt" 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ip netns add "$ns"
ip -n "$ns" link set lo up
ip -n "$ns" link add lb0 type veth peer name peer0
ip -n "$ns" link set lb0 up
ip -n "$ns" link set peer0 up
ip -n "$ns" addr add 10.0.0.1/24 dev lb0
for ((b = 0; b < NBE; b++)); do
	mac=$(printf '02:be:00:00:00:%02x' $((10 + b)))
	ip -n "$ns" neigh replace "10.0.0.$((10 + b))" lladdr "$mac" dev lb0 nud permanent
done
mkdir -p "$mnt"
mount -t bpf bpffs "$mnt"

# Time a private copy: the shared build directory may be relinked while this runs.
mkdir -p "$tmp/bin/bench"
cp "$bgctl" "$tmp/bin/bgctl"
cp "$build/bench/ct_fill" "$tmp/bin/bench/ct_fill" ||
	{ echo "bgctl_time: $build/bench/ct_fill is not built (make bench)" >&2; exit 1; }
build=$tmp/bin
cd "$tmp"
BGSWITCH_PIN_DIR=$mnt/bgswitch BGSWITCH_HISTORY=$tmp/history.jsonl LIBXDP_BPFFS=$mnt \
	BGCTL_RUNS=$runs ip netns exec "$ns" "$here/bgctl_time.sh" --inner "$build" "$md" &
child=$!
wait "$child"
