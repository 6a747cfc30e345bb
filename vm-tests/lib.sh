# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# bgswitch end-to-end harness, sourced by every vm-tests/ scenario and by scripts/demo.sh.
#
# Topology (fresh network namespaces, unique names, only addresses inside them):
#
#   cl  10.0.1.2 --- c1 [ LB 10.0.1.1 ] b1 --- 10.1.1.2 blue  b1
#   cl2 10.0.2.2 --- c2 [            ] b2 --- 10.1.2.2 blue  b2
#                       [  bgctl,    ] g1 --- 10.2.1.2 green g1
#                       [  XDP native] g2 --- 10.2.2.2 green g2
#
# Every LB interface gets the switch attached natively; bgctl always runs inside the LB's
# namespace so ifindexes, routes and neighbours resolve there. Backends serve HTTP on 80
# and 8080 and UDP echo on 9000 and 9001 (vm-tests/responder.py), each naming its color
# and id. nat VIP 10.100.0.1 (backends' route back goes via the LB); dsr VIP 10.100.0.2,
# held on each backend's lo with arp_ignore/arp_announce (replies go back through the LB's
# kernel, untouched by the switch). Pins live on a bpffs mounted under /run (not
# /sys/fs/bpf: `ip netns exec` remounts /sys). bgs_cleanup (trapped on EXIT INT TERM)
# removes namespaces, processes, pins and the mount even on failure.

BGS_SKIP=249
BGS_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BGS_BUILD=${BGS_BUILD:-$BGS_ROOT/build/rel}
BGCTL=${BGCTL:-$BGS_BUILD/bgctl}
BGS_ID=${BGS_ID:-$$$RANDOM}
BGS_ID=${BGS_ID:0:9}
BGS_RUN=/run/bgs-e2e-$BGS_ID
NS_CL=bgs$BGS_ID-cl
NS_CL2=bgs$BGS_ID-cl2
NS_LB=bgs$BGS_ID-lb
BACKENDS=(b1 b2 g1 g2)
declare -A BE_COLOR=([b1]=blue [b2]=blue [g1]=green [g2]=green)
declare -A BE_ADDR=([b1]=10.1.1.2 [b2]=10.1.2.2 [g1]=10.2.1.2 [g2]=10.2.2.2)
declare -A BE_LB=([b1]=10.1.1.1 [b2]=10.1.2.1 [g1]=10.2.1.1 [g2]=10.2.2.1)
CL_ADDR=10.0.1.2
CL2_ADDR=10.0.2.2
VIP_NAT=10.100.0.1
VIP_DSR=10.100.0.2
# IPv6: the same plan under fd00::/8 (client fd00:0:1::2, backend b1 fd00:1:1::2, ...).
declare -A BE_ADDR6=([b1]=fd00:1:1::2 [b2]=fd00:1:2::2 [g1]=fd00:2:1::2 [g2]=fd00:2:2::2)
declare -A BE_LB6=([b1]=fd00:1:1::1 [b2]=fd00:1:2::1 [g1]=fd00:2:1::1 [g2]=fd00:2:2::1)
CL_ADDR6=fd00:0:1::2
CL2_ADDR6=fd00:0:2::2
VIP6_NAT=fd00:100::1
VIP6_DSR=fd00:100::2
BGS_PIDS=()
BGS_QUIET=${BGS_QUIET:-0}

# Time scale. BGS_TEST_SLOWDOWN=N (a whole number, default 1): this machine runs N times
# slower than the host the scenarios' timings were set on (vm/run.sh sets it in its emulated
# VM). The intervals, grace periods and deadlines a scenario waits on or configures go through
# slow/slow_d, so at 1 nothing changes; the counts and orderings it asserts never scale.
BGS_SLOW=${BGS_TEST_SLOWDOWN:-1}
[[ $BGS_SLOW =~ ^[1-9][0-9]*$ ]] || BGS_SLOW=1
# slow N: the whole number N (loop rounds of a bounded wait, milliseconds) times the slowdown.
slow() { echo $(($1 * BGS_SLOW)); }
# slow_d D: a duration (0.5, 2s, 100ms: a number and an optional unit) times the slowdown,
# in D's own unit.
slow_d() {
	awk -v d="$1" -v k="$BGS_SLOW" 'BEGIN {
		u = d; sub(/^[0-9.]+/, "", u); v = (d + 0) * k
		if (v == int(v)) printf "%d%s\n", v, u; else printf "%g%s\n", v, u }'
}

export BGSWITCH_PIN_DIR=$BGS_RUN/bpf/bgswitch
export BGSWITCH_HISTORY=$BGS_RUN/history.jsonl
export LIBXDP_BPFFS=$BGS_RUN/bpf

ns_be() { echo "bgs$BGS_ID-$1"; }

log() { [ "$BGS_QUIET" = 1 ] || echo "# $*" >&2; }
fail() {
	echo "FAIL: $*" >&2
	exit 1
}
skip() {
	echo "SKIP: $*"
	exit $BGS_SKIP
}
ok() { echo "ok - $*"; }

# check DESCRIPTION COMMAND...: run a command, fail the scenario with its description if it fails.
check() {
	local what=$1
	shift
	"$@" || fail "$what"
	ok "$what"
}

bgs_require() {
	[ "$(id -u)" -eq 0 ] || skip "needs root (network namespaces, XDP, bpffs)"
	[ -x "$BGCTL" ] || skip "no bgctl at $BGCTL (build first: make)"
	local t
	for t in ip ethtool python3 jq timeout mount; do
		command -v "$t" >/dev/null || skip "missing tool '$t' (run make deps)"
	done
	ip netns add "bgs$BGS_ID-probe" 2>/dev/null || skip "cannot create network namespaces"
	ip netns del "bgs$BGS_ID-probe"
}

# Run a command in a namespace.
nsx() {
	local ns=$1
	shift
	ip netns exec "$ns" "$@"
}

# bgctl inside the LB's namespace.
lbctl() { ip netns exec "$NS_LB" "$BGCTL" "$@"; }

bgs_cleanup() {
	local rc=$?
	local ns pid m
	trap - EXIT INT TERM
	for pid in "${BGS_PIDS[@]}"; do
		kill "$pid" 2>/dev/null
	done
	for ns in "$NS_CL" "$NS_CL2" "$NS_LB" $(for b in "${BACKENDS[@]}"; do ns_be "$b"; done); do
		if ip netns list | grep -qw "$ns"; then
			for pid in $(ip netns pids "$ns" 2>/dev/null); do
				kill "$pid" 2>/dev/null
			done
			ip netns del "$ns" 2>/dev/null
		fi
	done
	if mountpoint -q "$BGS_RUN/bpf" 2>/dev/null; then
		rm -rf "${BGS_RUN:?}/bpf/"* 2>/dev/null
	fi
	# every mount under the run directory, deepest first (bgctl init may have made some)
	for m in $(findmnt -rn -o TARGET 2>/dev/null | grep "^$BGS_RUN/" | sort -r); do
		umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null
	done
	[ -n "${BGS_KEEP_RUN:-}" ] || rm -rf "$BGS_RUN"
	return $rc
}

# Signal handlers: clean up and exit (EXIT's handler runs the cleanup for normal exits).
bgs_on_signal() {
	echo "interrupted: cleaning up" >&2
	bgs_cleanup
	exit 130
}

bgs_trap() {
	trap bgs_cleanup EXIT
	trap bgs_on_signal INT TERM
}

# veth pair between LB (lb_if) and a namespace (eth0 there), with the offload settings the
# data path needs: checksums filled in by the senders, NAPI (GRO) on to receive redirects.
bgs_link() {
	local ns=$1 lb_if=$2 lb_addr=$3 addr=$4 lb_addr6=${5:-} addr6=${6:-}
	ip -n "$NS_LB" link add "$lb_if" type veth peer name eth0 netns "$ns"
	ip -n "$NS_LB" addr add "$lb_addr/24" dev "$lb_if"
	ip -n "$ns" addr add "$addr/24" dev eth0
	if [ -n "$addr6" ]; then
		ip -n "$NS_LB" addr add "$lb_addr6/64" dev "$lb_if" nodad
		ip -n "$ns" addr add "$addr6/64" dev eth0 nodad
	fi
	ip -n "$NS_LB" link set "$lb_if" up
	ip -n "$ns" link set eth0 up
	ip -n "$ns" link set lo up
	ip -n "$ns" route add default via "$lb_addr"
	[ -z "$addr6" ] || ip -n "$ns" -6 route add default via "$lb_addr6"
	nsx "$NS_LB" ethtool -K "$lb_if" tx off gro on >/dev/null 2>&1
	nsx "$ns" ethtool -K eth0 tx off gro on >/dev/null 2>&1
	# Permanent neighbours both ways: no first packet waits on ARP or ND.
	local lb_mac mac
	lb_mac=$(ip -n "$NS_LB" -j link show "$lb_if" | jq -r '.[0].address')
	mac=$(ip -n "$ns" -j link show eth0 | jq -r '.[0].address')
	ip -n "$ns" neigh replace "$lb_addr" lladdr "$lb_mac" dev eth0 nud permanent
	ip -n "$NS_LB" neigh replace "$addr" lladdr "$mac" dev "$lb_if" nud permanent
	if [ -n "$addr6" ]; then
		ip -n "$ns" neigh replace "$lb_addr6" lladdr "$lb_mac" dev eth0 nud permanent
		ip -n "$NS_LB" neigh replace "$addr6" lladdr "$mac" dev "$lb_if" nud permanent
	fi
}

sysctl_ns() { nsx "$1" sysctl -qw "$2" >/dev/null; }

# bgctl init of the scenario's pinned state, with BGS_INIT_ARGS (its words, e.g.
# "--timeout health_grace=3s"): the creation options a scenario needs (sizes, timeouts).
bgs_pins_init() {
	local args=()
	read -ra args <<<"${BGS_INIT_ARGS:-}"
	lbctl init "${args[@]}" >/dev/null || fail "bgctl init ${args[*]} failed"
}

# Build the namespaces and links, start the backends, init bgswitch and attach it.
bgs_topo_up() {
	local b ns i
	bgs_trap
	mkdir -p "$BGS_RUN/bpf"
	mount -t bpf -o mode=0700 bpf "$BGS_RUN/bpf" || fail "cannot mount a bpffs at $BGS_RUN/bpf"
	for ns in "$NS_CL" "$NS_CL2" "$NS_LB"; do
		ip netns add "$ns"
	done
	ip -n "$NS_LB" link set lo up
	sysctl_ns "$NS_LB" net.ipv4.ip_forward=1
	sysctl_ns "$NS_LB" net.ipv4.conf.all.rp_filter=0
	sysctl_ns "$NS_LB" net.ipv4.conf.default.rp_filter=0
	sysctl_ns "$NS_LB" net.ipv6.conf.all.forwarding=1
	bgs_link "$NS_CL" c1 10.0.1.1 "$CL_ADDR" fd00:0:1::1 "$CL_ADDR6"
	bgs_link "$NS_CL2" c2 10.0.2.1 "$CL2_ADDR" fd00:0:2::1 "$CL2_ADDR6"
	for b in "${BACKENDS[@]}"; do
		ns=$(ns_be "$b")
		ip netns add "$ns"
		bgs_link "$ns" "$b" "${BE_LB[$b]}" "${BE_ADDR[$b]}" "${BE_LB6[$b]}" "${BE_ADDR6[$b]}"
		ip -n "$ns" addr add "$VIP_DSR/32" dev lo
		ip -n "$ns" addr add "$VIP6_DSR/128" dev lo nodad
		sysctl_ns "$ns" net.ipv4.conf.all.arp_ignore=1
		sysctl_ns "$ns" net.ipv4.conf.all.arp_announce=2
		sysctl_ns "$ns" net.ipv4.conf.all.rp_filter=0
		sysctl_ns "$ns" net.ipv4.conf.eth0.rp_filter=0
		sysctl_ns "$NS_LB" "net.ipv4.conf.$b.rp_filter=0"
		nsx "$ns" python3 "$BGS_ROOT/vm-tests/responder.py" "${BE_COLOR[$b]}" "$b" \
			--http 80 --http 8080 --udp 9000 --udp 9001 --ready "$BGS_RUN/ready.$b" \
			>/dev/null 2>&1 &
		BGS_PIDS+=($!)
	done
	for i in $(seq 1 "$(slow 100)"); do
		[ "$(ls "$BGS_RUN"/ready.* 2>/dev/null | wc -l)" -eq 4 ] && break
		sleep 0.05
	done
	[ "$(ls "$BGS_RUN"/ready.* 2>/dev/null | wc -l)" -eq 4 ] || fail "backends did not start"
	bgs_pins_init
	for i in c1 c2 "${BACKENDS[@]}"; do
		if ! out=$(lbctl attach "$i" 2>&1); then
			case "$out" in
			*"not supported"* | *"Operation not supported"*)
				skip "XDP native mode on veth is not available here: $out" ;;
			esac
			fail "bgctl attach $i: $out"
		fi
	done
	log "topology $BGS_ID up: client $CL_ADDR, preview client $CL2_ADDR, LB, blue b1 b2, green g1 g2"
}

# Only the pinned state and an LB namespace with a few veths (no traffic): for CLI tests.
bgs_state_up() {
	bgs_trap
	mkdir -p "$BGS_RUN/bpf"
	mount -t bpf -o mode=0700 bpf "$BGS_RUN/bpf" || fail "cannot mount a bpffs at $BGS_RUN/bpf"
	ip netns add "$NS_LB"
	ip netns add "$NS_CL"
	ip -n "$NS_LB" link set lo up
	bgs_link "$NS_CL" c1 10.0.1.1 "$CL_ADDR"
	ip -n "$NS_LB" link add b1 type veth peer name b1p
	ip -n "$NS_LB" link set b1p up
	ip -n "$NS_LB" addr add 10.1.1.1/24 dev b1
	ip -n "$NS_LB" link set b1 up
	ip -n "$NS_LB" neigh replace 10.1.1.2 lladdr 02:00:00:00:01:02 dev b1 nud permanent
	ip -n "$NS_LB" neigh replace 10.1.1.3 lladdr 02:00:00:00:01:03 dev b1 nud permanent
	bgs_pins_init
}

# A service with two blue and two green backends, set up by bgctl only.
# bgs_service NAME nat|dsr tcp|udp [4|6]
bgs_service() {
	local name=$1 mode=$2 proto=$3 fam=${4:-4} vip port beport b addr
	if [ "$mode" = nat ]; then
		[ "$fam" = 6 ] && vip="[$VIP6_NAT]" || vip=$VIP_NAT
		[ "$proto" = tcp ] && port=80 beport=8080 || port=9000 beport=9001
	else
		[ "$fam" = 6 ] && vip="[$VIP6_DSR]" || vip=$VIP_DSR
		[ "$proto" = tcp ] && port=80 beport=80 || port=9000 beport=9000
	fi
	lbctl service add "$name" --vip "$vip:$port/$proto" --mode "$mode" >/dev/null ||
		fail "service add $name"
	for b in "${BACKENDS[@]}"; do
		[ "$fam" = 6 ] && addr="[${BE_ADDR6[$b]}]" || addr=${BE_ADDR[$b]}
		lbctl backend add "$name" "${BE_COLOR[$b]}" "$addr:$beport" >/dev/null ||
			fail "backend add $name $b"
	done
}

# Traffic from a client namespace; prints client.py's JSON. UDP flows take source ports
# never used before in this run (below the ephemeral range), so none continues an old flow.
# traffic NS http|udp VIP PORT COUNT
UDP_SPORT_FILE=$BGS_RUN/udp_sport
traffic() {
	local ns=$1 kind=$2 vip=$3 port=$4 n=$5 extra=() base
	if [ "$kind" = udp ]; then
		base=$(cat "$UDP_SPORT_FILE" 2>/dev/null || echo 10000)
		[ $((base + n)) -lt 32000 ] || fail "out of fresh UDP source ports"
		echo $((base + n)) >"$UDP_SPORT_FILE"
		extra=(--sport-base "$base")
	fi
	nsx "$ns" timeout "$(slow 120)" python3 "$BGS_ROOT/vm-tests/client.py" "$kind" "$vip" \
		"$port" "$n" --timeout "$(slow 1)" --deadline "$(slow 60)" "${extra[@]}"
}

# One long-lived flow in the background; its answers go to FILE, one per line.
# hold NS tcp|udp VIP PORT FILE DURATION
hold_start() {
	local ns=$1 proto=$2 vip=$3 port=$4 file=$5 dur
	dur=$(slow_d "${6:-60}")
	nsx "$ns" timeout $((${dur%.*} + 10)) python3 "$BGS_ROOT/vm-tests/client.py" hold "$vip" \
		"$port" --proto "$proto" --interval 0.2 --timeout "$(slow 2)" --duration "$dur" --out "$file" \
		--stop "$file.stop" >/dev/null 2>&1 &
	BGS_PIDS+=($!)
	HOLD_PID=$!
}

hold_stop() {
	local file=$1 pid=$2 i
	touch "$file.stop"
	for i in $(seq 1 "$(slow 50)"); do
		kill -0 "$pid" 2>/dev/null || return 0
		sleep 0.1
	done
	kill "$pid" 2>/dev/null
}

# Wait until FILE has at least N answer lines (bounded).
wait_lines() {
	local file=$1 n=$2 i c
	for i in $(seq 1 "$(slow 100)"); do
		c=$(grep -c '^[0-9]' "$file" 2>/dev/null)
		[ "${c:-0}" -ge "$n" ] && return 0
		sleep 0.05
	done
	return 1
}

# Backends that answered the hold flow after line K (distinct "color id").
hold_backends_after() {
	local file=$1 k=$2
	grep '^[0-9]' "$file" | tail -n +"$((k + 1))" | awk '$2 != "error" {print $2, $3}' | sort -u
}

# jqt FILTER: true if FILTER is true of the JSON on stdin (quiet).
jqt() { jq -e "$1" >/dev/null; }

# jq over bgctl -j output.
lbjq() {
	local filter=$1
	shift
	lbctl -j "$@" | jq -r "$filter"
}
