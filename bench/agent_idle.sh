#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# bench/agent_idle.sh [BUILD_DIR] [SERVICES] [BACKENDS_PER_COLOR] [SECONDS]: bgagent's idle cost.
#
# In a private network namespace: SERVICES dsr services (default 100), each with
# BACKENDS_PER_COLOR backends per color (default 8), every backend HTTP-checked every second
# (one responder.py serves them all). Once every backend is up, the agent's own CPU time
# (utime + stime from /proc) is measured over SECONDS (default 20) and printed as a share of
# one core. The target is under 2%. Before that it prints how long the agent's start took to
# apply the config (creating every service and backend), up to its "ready" line; with
# APPLY_ONLY=1 it stops there. Then, for the split of the cost, the same agent is reloaded
# (SIGHUP) with every check interval at 1h and measured again over SECONDS: its cost without
# checks (ticks, conntrack walks, metrics server); the difference is the checks'. Last, in
# the same run, bench/http_floor makes the same checks a second with a minimal client: the
# floor that the kernel's loopback TCP work sets for any checker.
# AGENT_MD=FILE writes the figures as markdown (bench/run.sh puts them in docs/bench.md);
# AGENT_STRICT=1 makes a missed target exit 1. Everything it made is removed on exit.
set -euo pipefail

build=${1:-build/rel}
nsvc=${2:-100}
nbe=${3:-8}
secs=${4:-20}
top=$(cd "$(dirname "$0")/.." && pwd)
ns=bgs-agentbench-$$
run=/run/bgs-agentbench.$$
agent=

cleanup() {
	[ -n "$agent" ] && kill "$agent" 2>/dev/null && wait "$agent" 2>/dev/null
	for pid in $(ip netns pids "$ns" 2>/dev/null); do kill "$pid" 2>/dev/null; done
	ip netns del "$ns" 2>/dev/null || true
	rm -rf "${run:?}/bpf/"* 2>/dev/null || true
	umount "$run/bpf" 2>/dev/null || true
	rm -rf "$run"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

[ "$(id -u)" -eq 0 ] || { echo "agent_idle: needs root" >&2; exit 1; }
mkdir -p "$run/bpf"
mount -t bpf -o mode=0700 bpf "$run/bpf"
export LIBXDP_BPFFS=$run/bpf
ip netns add "$ns"
ip -n "$ns" link set lo up
for i in $(seq 1 $((2 * nbe))); do
	ip -n "$ns" addr add "10.201.0.$i/32" dev lo
done
ip netns exec "$ns" python3 "$top/vm-tests/responder.py" bench x --http 8080 \
	--ready "$run/ready" >/dev/null 2>&1 &
for _ in $(seq 1 100); do [ -e "$run/ready" ] && break; sleep 0.05; done
ip netns exec "$ns" "$build/bgctl" --pin-dir "$run/bpf/bgswitch" init \
	--max-services $((nsvc + 1)) --maglev-size 1021 --ct-entries 65536 >/dev/null

{
	echo "pin_dir: $run/bpf/bgswitch"
	echo "history_file: $run/history.jsonl"
	echo "state_file: $run/bgagent.json"
	echo "metrics: {listen: \"127.0.0.1:9469\"}"
	echo "upgrade_on_start: false"
	echo "services:"
	for s in $(seq 1 "$nsvc"); do
		echo "  - name: s$s"
		echo "    vip: \"10.100.$((s / 250)).$((s % 250 + 1)):80/tcp\""
		echo "    mode: dsr"
		echo "    pools:"
		for c in blue green; do
			off=$([ $c = blue ] && echo 0 || echo "$nbe")
			printf '      %s: [' "$c"
			for b in $(seq 1 "$nbe"); do
				printf '%s{address: "10.201.0.%d"}' "$([ "$b" = 1 ] || echo ', ')" $((off + b))
			done
			echo "]"
		done
		echo "    health_check: {type: http, port: 8080, interval: 1s, timeout: 500ms}"
	done
} >"$run/bgswitch.yaml"

t0=$(date +%s)
a0=$(date +%s%N)
ip netns exec "$ns" "${BGAGENT:-$build/bgagent}" --config "$run/bgswitch.yaml" \
	>"$run/agent.log" 2>&1 &
agent=$!
total=$((nsvc * nbe * 2))
for _ in $(seq 1 12000); do
	grep -q "ready: " "$run/agent.log" && break
	kill -0 "$agent" 2>/dev/null || { tail -5 "$run/agent.log" >&2; exit 1; }
	sleep 0.05
done
grep -q "ready: " "$run/agent.log" || { echo "agent_idle: no ready line in 600 s" >&2; exit 1; }
echo "agent_idle: config applied ($nsvc services, $total backends created) in" \
	"$((($(date +%s%N) - a0) / 1000000)) ms"
[ -z "${APPLY_ONLY:-}" ] || exit 0
up=0
for _ in $(seq 1 600); do
	up=$(ip netns exec "$ns" curl -sf --max-time 5 http://127.0.0.1:9469/metrics |
		grep -c '^bgswitch_backend_healthy{.*} 1$' || true)
	[ "$up" -ge "$total" ] && break
	kill -0 "$agent" 2>/dev/null || { tail -5 "$run/agent.log" >&2; exit 1; }
	sleep 0.5
done
[ "$up" -ge "$total" ] || { echo "agent_idle: only $up of $total backends up" >&2; exit 1; }
echo "agent_idle: $nsvc services x 2 colors x $nbe backends ($total) up after $(($(date +%s) - t0)) s"
sleep 2
[ -z "${AGENT_PERF:-}" ] || perf record -g -o "$AGENT_PERF" -p "$agent" -- sleep 5 >/dev/null 2>&1
hz=$(getconf CLK_TCK)
# the agent's own CPU time (utime + stime of all its threads) over $secs, as % of one core
measure() {
	local c0 c1 w0 w1
	c0=$(awk '{print $14 + $15}' "/proc/$agent/stat")
	w0=$(date +%s.%N)
	sleep "$secs"
	c1=$(awk '{print $14 + $15}' "/proc/$agent/stat")
	w1=$(date +%s.%N)
	awk -v c=$((c1 - c0)) -v hz="$hz" -v w0="$w0" -v w1="$w1" \
		'BEGIN {printf "%.2f", 100 * c / hz / (w1 - w0)}'
}
checks() {
	ip netns exec "$ns" curl -sf --max-time 5 http://127.0.0.1:9469/metrics |
		awk '/^bgswitch_health_checks_total/ {s += $2} END {printf "%d", s}'
}
k0=$(checks)
pct=$(measure)
k1=$(checks)
rate=$(((k1 - k0) / secs))
met=$(awk -v p="$pct" 'BEGIN {print (p < 2) ? "met" : "NOT met"}')
echo "agent_idle: bgagent used $pct% of one core over ${secs}s ($total backends, $rate HTTP" \
	"checks/s measured; target < 2%: $met)"

# the same agent with its checks idle (interval 1h): the cost of everything else
sed -i 's/interval: 1s/interval: 1h/' "$run/bgswitch.yaml"
kill -HUP "$agent"
for _ in $(seq 1 1200); do
	grep -q "reloaded: " "$run/agent.log" && break
	sleep 0.05
done
grep -q "reloaded: " "$run/agent.log" || { echo "agent_idle: no reload in 60 s" >&2; exit 1; }
sleep 2
base=$(measure)
echo "agent_idle: without checks (interval 1h) $base% of one core: the checks cost" \
	"$(awk -v a="$pct" -v b="$base" -v n="$rate" \
		'BEGIN {printf "%.2f%% (%.1f us of CPU per check)", a - b, n ? (a - b) * 1e4 / n : 0}')"
# the floor in the same run: a minimal keep-alive client doing the same checks a second
# (bench/http_floor.c): the kernel's loopback TCP work that no checker goes below
floor=
if [ -x "$build/bench/http_floor" ]; then
	fl=$(ip netns exec "$ns" "$build/bench/http_floor" "$total" $((2 * nbe)) "$secs") ||
		{ echo "agent_idle: http_floor failed: $fl" >&2; exit 1; }
	echo "agent_idle: $fl"
	floor=$(sed -n 's/.*: \([0-9.]*\)% of one core.*/\1/p' <<<"$fl")
	echo "agent_idle: bgagent's checks cost $(awk -v a="$pct" -v b="$base" -v f="$floor" \
		'BEGIN {printf "%.1fx", (f > 0) ? (a - b) / f : 0}') the floor's; the floor alone is" \
		"$(awk -v f="$floor" 'BEGIN {print (f < 2) ? "under" : "over"}') the 2% target"
fi
if [ -n "${AGENT_MD:-}" ]; then
	{
		echo "| case | bgagent CPU, % of one core | target |"
		echo "|---|---|---|"
		echo "| $nsvc services x 2 colors x $nbe backends, HTTP check every 1 s ($rate checks/s) | $pct | < 2%: $met |"
		echo "| the same, checks idle (interval 1h): loop, ticks, conntrack walks | $base | |"
		awk -v a="$pct" -v b="$base" -v n="$rate" 'BEGIN {printf "| difference: the checks | %.2f (%.1f us per check) | |\n", a - b, n ? (a - b) * 1e4 / n : 0}'
		[ -z "$floor" ] || echo "| floor: a minimal keep-alive HTTP client, same checks/s (bench/http_floor) | $floor | |"
	} >"$AGENT_MD"
fi
[ "$met" = met ] || [ -z "${AGENT_STRICT:-}" ] || exit 1
