#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# bench/fwd.sh BUILD_DIR [OUT_DIR]: packets per second through one LB core on veth, bgswitch
# next to nftables DNAT + conntrack and a minimal XDP program, in the same run and topology
# (`make bench-fwd`); then a flip and a rollback under load (`FWD_FLIP=1`, on by default).
#
#   client ns: c0 ---- LBIF [ LB ns: bgswitch | fwd_min | nftables ] b1 b2 g1 g2 ---- backends
#
# The generator (bench/fwd_bench, fwd_gen in BPF_PROG_TEST_RUN live-frames mode) sends from
# the client's veth on CPU 0; the LB's receive side (LBIF's NAPI, made threaded) is pinned to
# CPU 1 and does all the LB's work for a packet (its XDP program or the kernel's forwarding,
# up to handing the frame to the backend's veth); its CPU time is read from /proc
# (pps_per_lb_cpu: packets per second of LB CPU); the backends' veths count with fwd_count
# (XDP, per CPU) and drop. Each round measures every
# case once, interleaved; results go to OUT_DIR (default docs/bench-data) as CSV.
#
# Environment: FWD_ROUNDS (7), FWD_SECONDS (2), FWD_WARMUP (0.5), FWD_FLOWS (256),
# FWD_FLIP (1), FWD_BE_ON_LB (1; 0: the backends' receive in threads on CPU 0),
# FWD_CASES (all: a space-separated subset of the case names below);
# FWD_PERF=DIR records the LB receive thread of each case with `perf record -g` into
# DIR/CASE.perf.data.
set -uo pipefail

build=$(cd "${1:-build/rel}" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
out=${2:-$here/../docs/bench-data}
mkdir -p "$out"
out=$(cd "$out" && pwd)
export BGS_BUILD=$build
. "$here/../vm-tests/lib.sh"

ROUNDS=${FWD_ROUNDS:-7}
SECONDS_RUN=${FWD_SECONDS:-2}
WARMUP=${FWD_WARMUP:-0.5}
FLOWS=${FWD_FLOWS:-256}
FB=$build/bench/fwd_bench
PIN=$BGS_RUN/bpf/fwd
LBIF=f${BGS_ID:0:8}
GEN_CPU=0
LB_CPU=1
declare -A BE_MAC=([b1]=02:be:00:00:00:00 [b2]=02:be:00:00:00:01 [g1]=02:be:00:00:00:02
	[g2]=02:be:00:00:00:03)
VIP_NFT=10.100.0.3
VIP6_NFT=fd00:100::3
VIP_MIN=10.100.0.4
VIP6_MIN=fd00:100::4

[ -x "$FB" ] || { echo "fwd: $FB not built (make bench-fwd)" >&2; exit 1; }
bgs_require
command -v nft >/dev/null || skip "no nft (run make deps)"
[ "$(nproc)" -ge 2 ] || skip "needs two CPUs (generator and LB on separate cores)"

# The topology: the harness's namespaces and links (permanent neighbours both ways), the
# backends' MACs fixed so the counter tells them apart by the destination MAC's last byte.
topo_up() {
	local b ns
	bgs_trap
	mkdir -p "$BGS_RUN/bpf"
	mount -t bpf -o mode=0700 bpf "$BGS_RUN/bpf" || fail "cannot mount a bpffs at $BGS_RUN/bpf"
	ip netns add "$NS_CL"
	ip netns add "$NS_LB"
	ip -n "$NS_LB" link set lo up
	sysctl_ns "$NS_LB" net.ipv4.ip_forward=1
	sysctl_ns "$NS_LB" net.ipv4.conf.all.rp_filter=0
	sysctl_ns "$NS_LB" net.ipv4.conf.default.rp_filter=0
	sysctl_ns "$NS_LB" net.ipv6.conf.all.forwarding=1
	bgs_link "$NS_CL" "$LBIF" 10.0.1.1 "$CL_ADDR" fd00:0:1::1 "$CL_ADDR6"
	for b in "${BACKENDS[@]}"; do
		ns=$(ns_be "$b")
		ip netns add "$ns"
		bgs_link "$ns" "$b" "${BE_LB[$b]}" "${BE_ADDR[$b]}" "${BE_LB6[$b]}" "${BE_ADDR6[$b]}"
		ip -n "$ns" link set eth0 address "${BE_MAC[$b]}"
		# a unique name, so that its NAPI thread can be found (napi/NAME-ID)
		ip -n "$ns" link set eth0 down
		ip -n "$ns" link set eth0 name "$(be_if "$b")"
		ip -n "$ns" link set "$(be_if "$b")" up
		ip -n "$ns" route replace default via "${BE_LB[$b]}"
		ip -n "$NS_LB" neigh replace "${BE_ADDR[$b]}" lladdr "${BE_MAC[$b]}" dev "$b" nud permanent
		ip -n "$NS_LB" neigh replace "${BE_ADDR6[$b]}" lladdr "${BE_MAC[$b]}" dev "$b" \
			nud permanent
	done
	# The LB's receive work in a kernel thread of its own, pinned to LB_CPU. The backends'
	# receive (their count) runs in softirq where the LB's transmit schedules it: on the
	# LB's CPU, in its thread's time, the same for every case (FWD_BE_ON_LB=0: in threads
	# of their own pinned to GEN_CPU; on a VM each transmit then wakes a thread on the
	# other CPU, which costs the kernel's per-packet path far more than XDP's batches).
	nsx "$NS_LB" sh -c "echo 1 > /sys/class/net/$LBIF/threaded" ||
		skip "threaded NAPI not available on veth here"
	if [ "${FWD_BE_ON_LB:-1}" != 1 ]; then
		for b in "${BACKENDS[@]}"; do
			nsx "$(ns_be "$b")" sh -c "echo 1 > /sys/class/net/$(be_if "$b")/threaded" ||
				fail "threaded NAPI on $b"
		done
	fi
}

# A backend's veth, in its namespace.
be_if() { echo "k${BGS_ID:0:6}$1"; }

# The NAPI threads of an interface (by name: napi/IFACE-ID, cut to 15 characters).
napi_pids() {
	ps -eo pid=,comm= | awk -v n="$(cut -c1-15 <<<"napi/$1-")" 'index($2, n) == 1 { print $1 }'
}

# Pin LBIF's NAPI thread and the backends' (re-done before each run: attaching XDP may
# recreate them).
pin_napi() {
	local pid b p
	if [ "${FWD_BE_ON_LB:-1}" != 1 ]; then
		for b in "${BACKENDS[@]}"; do
			for p in $(napi_pids "$(be_if "$b")"); do
				taskset -pc "$GEN_CPU" "$p" >/dev/null || fail "cannot pin NAPI thread $p"
			done
		done
	fi
	pid=$(napi_pids "$LBIF")
	[ -n "$pid" ] || fail "no NAPI thread for $LBIF"
	[ "$(wc -w <<<"$pid")" -eq 1 ] || fail "several NAPI threads for $LBIF: $pid"
	NAPI_PID=$pid
	for p in $pid; do
		taskset -pc "$LB_CPU" "$p" >/dev/null || fail "cannot pin NAPI thread $p"
	done
}

nft_up() {
	nsx "$NS_LB" nft -f - <<EOF || fail "nft rules"
table ip fwdbench {
	chain pre {
		type nat hook prerouting priority dstnat;
		ip daddr $VIP_NFT tcp dport 80 dnat to jhash ip saddr . tcp sport mod 2 map { 0 : ${BE_ADDR[b1]}, 1 : ${BE_ADDR[b2]} } : 8080
		ip daddr $VIP_NFT udp dport 9000 dnat to jhash ip saddr . udp sport mod 2 map { 0 : ${BE_ADDR[b1]}, 1 : ${BE_ADDR[b2]} } : 9001
	}
}
table ip6 fwdbench {
	chain pre {
		type nat hook prerouting priority dstnat;
		ip6 daddr $VIP6_NFT tcp dport 80 dnat to jhash ip6 saddr . tcp sport mod 2 map { 0 : ${BE_ADDR6[b1]}, 1 : ${BE_ADDR6[b2]} } : 8080
		ip6 daddr $VIP6_NFT udp dport 9000 dnat to jhash ip6 saddr . udp sport mod 2 map { 0 : ${BE_ADDR6[b1]}, 1 : ${BE_ADDR6[b2]} } : 9001
	}
}
EOF
}

setup() {
	local f p bp
	topo_up
	lbctl init >/dev/null || fail "bgctl init"
	bgs_service nat4tcp nat tcp 4
	bgs_service nat4udp nat udp 4
	bgs_service dsr4tcp dsr tcp 4
	bgs_service dsr4udp dsr udp 4
	bgs_service nat6tcp nat tcp 6
	bgs_service nat6udp nat udp 6
	bgs_service dsr6tcp dsr tcp 6
	bgs_service dsr6udp dsr udp 6
	mkdir -p "$PIN/map" "$PIN/prog"
	nsx "$NS_LB" "$FB" load "$PIN" --tx b1 --tx b2 \
		--min "$VIP_MIN,80,tcp,${BE_ADDR[b1]},8080,${BE_MAC[b1]},0" \
		--min "$VIP_MIN,9000,udp,${BE_ADDR[b1]},9001,${BE_MAC[b1]},0" \
		--min "$VIP6_MIN,80,tcp,${BE_ADDR6[b1]},8080,${BE_MAC[b1]},0" \
		--min "$VIP6_MIN,9000,udp,${BE_ADDR6[b1]},9001,${BE_MAC[b1]},0" ||
		fail "fwd_bench load"
	for b in "${BACKENDS[@]}"; do
		ip -n "$(ns_be "$b")" link set "$(be_if "$b")" xdpdrv pinned "$PIN/prog/fwd_count" ||
			fail "attach fwd_count on $b"
	done
	nft_up
	CL_MAC=$(ip -n "$NS_CL" -j link show eth0 | jq -r '.[0].address')
	LB_MAC=$(ip -n "$NS_LB" -j link show "$LBIF" | jq -r '.[0].address')
}

# What the LB's client-facing interface runs: bgswitch, fwd_min or nothing (nftables).
LB_PROG=none
lb_prog() {
	local want=$1
	[ "$want" = "$LB_PROG" ] && return 0
	case $LB_PROG in
	bgswitch) lbctl detach "$LBIF" >/dev/null || fail "bgctl detach" ;;
	min | null) ip -n "$NS_LB" link set "$LBIF" xdpdrv off || fail "detach fwd_$LB_PROG" ;;
	esac
	case $want in
	bgswitch) lbctl attach "$LBIF" >/dev/null || fail "bgctl attach $LBIF" ;;
	min | null) ip -n "$NS_LB" link set "$LBIF" xdpdrv pinned "$PIN/prog/fwd_$want" ||
		fail "attach fwd_$want" ;;
	esac
	LB_PROG=$want
}

# case name (IMPL FAMILY PROTO: nat|dsr|syn = bgswitch, min, nft, null) -> LB program, VIP,
# port, frame
case_args() {
	local c=$1 impl fam proto vip port
	impl=${c%%[46]*}
	fam=${c//[^46]/}
	proto=${c##*[46]}
	case $impl in
	nat | syn) [ "$fam" = 4 ] && vip=$VIP_NAT || vip=$VIP6_NAT ;;
	dsr) [ "$fam" = 4 ] && vip=$VIP_DSR || vip=$VIP6_DSR ;;
	nft) [ "$fam" = 4 ] && vip=$VIP_NFT || vip=$VIP6_NFT ;;
	min | null) [ "$fam" = 4 ] && vip=$VIP_MIN || vip=$VIP6_MIN ;;
	esac
	[ "$proto" = tcp ] && port=80 || port=9000
	case $impl in
	nat | dsr | syn) echo "bgswitch $vip $port v$fam$proto" ;;
	*) echo "$impl $vip $port v$fam$proto" ;;
	esac
}

# run_case CASE [fwd_bench run options]: fwd_bench's JSON in $BGS_RUN/run.json (not in a
# subshell: the LB's program is remembered in LB_PROG).
run_case() {
	local c=$1 prog vip port frame src new=()
	shift
	# syn4tcp: every frame a SYN of a new flow (a conntrack insert each), nat v4
	[ "${c:0:3}" = syn ] && new=(--new-every 1)
	read -r prog vip port frame <<<"$(case_args "$c")"
	lb_prog "$prog"
	pin_napi
	[ "${frame:1:1}" = 4 ] && src=$CL_ADDR || src=$CL_ADDR6
	if [ -n "${FWD_PERF:-}" ]; then
		perf record -q -t "$NAPI_PID" -g -o "$FWD_PERF/$c.perf.data" -- \
			sleep "$(awk -v a="$WARMUP" -v b="$SECONDS_RUN" 'BEGIN { print a + b }')" \
			>/dev/null 2>&1 &
		BGS_PIDS+=($!)
	fi
	nsx "$NS_LB" "$FB" run "$PIN" --netns "/run/netns/$NS_CL" --ifname eth0 --cpu "$GEN_CPU" \
		--frame "$frame" --src "$src" --dst "$vip" --dport "$port" --smac "$CL_MAC" \
		--dmac "$LB_MAC" --napi-pid "$NAPI_PID" --flows "$FLOWS" --warmup "$WARMUP" --seconds "$SECONDS_RUN" "${new[@]}" "$@" \
		>"$BGS_RUN/run.json"
}

machine() {
	echo "# $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores" \
		"($(lscpu | sed -n 's/^Model name: *//p' | head -n1)), Linux $(uname -r)," \
		"load average $(cut -d' ' -f1-3 /proc/loadavg)"
}

CASES=${FWD_CASES:-"nat4tcp nat4udp dsr4tcp dsr4udp nat6tcp nat6udp dsr6tcp dsr6udp
	min4tcp min4udp min6tcp min6udp nft4tcp nft4udp nft6tcp nft6udp syn4tcp null4tcp null6tcp"}

setup
log "topology $BGS_ID up; generator on CPU $GEN_CPU, $LBIF's NAPI thread on CPU $LB_CPU"
csv=$out/fwd.csv
[ "$ROUNDS" -eq 0 ] || {
	machine
	echo "round,case,pps,offered_pps,misrouted,delivered,lb_cpu_ms,pps_per_lb_cpu"
} >"$csv"
for r in $(seq 1 "$ROUNDS"); do
	for c in $CASES; do
		run_case "$c" || fail "case $c round $r"
		j=$(cat "$BGS_RUN/run.json")
		pps=$(jq -r '.pps | floor' <<<"$j")
		[ "$pps" -gt 0 ] || fail "case $c delivered nothing: $j"
		echo "$r,$c,$pps,$(jq -r '.offered_pps | floor' <<<"$j"),$(jq -r .misrouted <<<"$j"),$(jq -r .delivered <<<"$j"),$(jq -r '.lb_cpu_ms | floor' <<<"$j"),$(jq -r '.pps_per_lb_cpu | floor' <<<"$j")" |
			tee -a "$csv"
	done
done
[ "$ROUNDS" -eq 0 ] || machine >>"$csv"

[ "${FWD_FLIP:-1}" = 1 ] || exit 0

# A flip and a rollback under load: established TCP flows and one new flow (SYN) in 16
# frames, nat v4 service nat4tcp; flip at 2 s, rollback at 5 s of an 8 s measurement.
log "flip under load"
run_case nat4tcp --new-every 16 --warmup 0.2 --seconds 8 --bins "$out/flip-bins.csv" \
	--syn-log "$BGS_RUN/syn.csv" \
	--at 2 "ip netns exec $NS_LB $BGCTL flip nat4tcp --drain-timeout 30s >/dev/null" \
	--at 5 "ip netns exec $NS_LB $BGCTL rollback nat4tcp >/dev/null" || fail "flip run"
j=$(cat "$BGS_RUN/run.json")
echo "$j" >"$out/flip-run.json"
[ "$(jq '[.at[].rc] | all(. == 0)' <<<"$j")" = true ] || fail "flip or rollback failed: $j"
gzip -9n <"$BGS_RUN/syn.csv" >"$out/flip-syn.csv.gz"
python3 "$here/flip_report.py" "$out/flip-run.json" "$out/flip-syn.csv.gz" "$out/flip-bins.csv" \
	| tee "$out/flip-summary.txt"
