#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# bench/run.sh BUILD_DIR [xdp_bench options]: the benchmarks behind `make bench`.
#
# Makes a private network namespace (one veth, permanent neighbours for the backends) and a
# bpffs under /run, runs build/.../bench/xdp_bench in it, then bench/bgctl_time.sh, prints
# the results and writes them to docs/bench.md (set BENCH_MD to write elsewhere, or
# BENCH_MD=- for nowhere; BENCH_BGCTL=0 skips bgctl_time.sh), then bench/agent_idle.sh
# (bgagent's idle CPU; BENCH_AGENT=0 skips it). Everything it made is removed on exit, even
# on failure.
set -euo pipefail

build=${1:-build/rel}
[ $# -gt 0 ] && shift
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)
md_out=${BENCH_MD:-$top/docs/bench.md}

if [ "$(id -u)" -ne 0 ]; then
	echo "bench: needs root (BPF_PROG_TEST_RUN, network namespaces, bpffs)" >&2
	exit 1
fi
if [ ! -x "$build/bench/xdp_bench" ]; then
	echo "bench: $build/bench/xdp_bench not built (run: make bench)" >&2
	exit 1
fi

ns=bgs-bench-$$
mnt=/run/bgs-bench.$$
tmp=$(mktemp -d /tmp/bgs-bench.XXXXXX)

child=
# Runs a command in the background and waits for it, so that a signal to this script is
# handled at once: the trap stops the command (it cleans up after itself) before the
# namespace and the bpffs go.
run_child() {
	"$@" &
	child=$!
	wait "$child"
}

cleanup() {
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
for i in $(seq 10 13); do
	ip -n "$ns" neigh replace "10.0.0.$i" lladdr "02:be:00:00:00:$i" dev lb0 nud permanent
done
mkdir -p "$mnt"
mount -t bpf bpffs "$mnt"
export LIBXDP_BPFFS=$mnt

cmd="make bench"
[ $# -gt 0 ] && cmd="bench/run.sh $build $*"
rc=0
echo "== XDP data path: $build/bench/xdp_bench $*"
run_child ip netns exec "$ns" "$build/bench/xdp_bench" --pin-dir "$mnt/bgswitch" \
	--md "$tmp/xdp.md" "$@" || rc=$?
child=
if [ "$rc" -ne 0 ]; then
	echo "bench: xdp_bench failed (exit $rc)" >&2
	exit "$rc"
fi

echo
echo "== Conntrack layouts under churn: $build/bench/ct_churn"
if [ "$(nproc)" -ge 2 ] && [ -x "$build/bench/ct_churn" ]; then
	run_child "$build/bench/ct_churn" --md "$tmp/churn.md" || rc=$?
	child=
	if [ "$rc" -ne 0 ]; then
		echo "bench: ct_churn failed (exit $rc)" >&2
		exit "$rc"
	fi
else
	echo "skipped (needs two CPUs)" | tee "$tmp/churn.md"
fi

echo
echo "== bgctl wall time"
ip netns del "$ns"
if [ "${BENCH_BGCTL:-1}" = 0 ]; then
	echo "skipped (BENCH_BGCTL=0)" | tee "$tmp/bgctl.md"
else
	run_child "$here/bgctl_time.sh" "$build" "$tmp/bgctl.md" || rc=$?
	child=
fi
if [ "$rc" -ne 0 ]; then
	echo "bench: bgctl_time.sh failed (exit $rc)" >&2
	exit "$rc"
fi

echo
echo "== bgagent idle CPU"
if [ "${BENCH_AGENT:-1}" = 0 ]; then
	echo "skipped (BENCH_AGENT=0)" | tee "$tmp/agent.md"
else
	AGENT_MD=$tmp/agent.md run_child "$here/agent_idle.sh" "$build" 100 8 20 || rc=$?
	child=
fi
if [ "$rc" -ne 0 ]; then
	echo "bench: agent_idle.sh failed (exit $rc)" >&2
	exit "$rc"
fi

[ "$md_out" = "-" ] && exit 0

cpu=$(lscpu | sed -n 's/^Model name: *//p' | head -n1)
load=$(cut -d' ' -f1-3 /proc/loadavg)
mem=$(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo)
{
	cat <<EOF
# bgswitch benchmarks

Produced by \`$cmd\` (bench/run.sh) on $(date -u '+%Y-%m-%d %H:%M UTC'): $(nproc) cores
(${cpu:-unknown CPU}), Linux $(uname -r), $mem RAM,
a VM shared with other work (load average $load at the end). Figures are only meaningful
as the ratios against baselines measured in the same run; absolute ns move by 20-30% from
run to run here, the net ratios by about 10%.
\`make bench\` rewrites this page; bench never runs under \`make test\`.

## XDP data path: cost per packet

$(cat "$tmp/xdp.md")

How it is measured (bench/xdp_bench.c, bench/xdp_bench.bpf.c):

- Every round is one \`BPF_PROG_TEST_RUN\` of a wrapper XDP program, \`bench_wrap\`, with the
  repeat count above. With repeat > 1 the kernel runs the program again on its own output,
  so before every run the wrapper restores the packet's first 54 bytes from a template, then
  for new flows gives the packet a source address and port never used before, and for known
  flows cycles the client port through 256 tracked flows (keeping the IP and TCP/UDP
  checksums valid), and tail-calls the program under test through a \`PROG_ARRAY\`: the
  switch (\`bgs_switch\`, loaded and set up by libbgswitch), the entry as libxdp attaches it
  (\`bgs_entry\`, which tail-calls the switch), a baseline, or \`bl_tx\` (just \`XDP_TX\`),
  which measures the wrapper itself.
- Baselines: *minimal* parses Ethernet/IPv4/TCP|UDP, looks the 5-tuple up in a hash map,
  rewrites both MACs and returns \`XDP_TX\`; *minimal + LRU insert* looks the 5-tuple up in
  an LRU hash with the switch's conntrack key, value and size (a miss), inserts it, rewrites
  the MACs and returns \`XDP_TX\`; it is measured on three layouts of that LRU, the same
  total size, full: *common LRU* (one LRU list for all CPUs), *no common LRU*
  (\`BPF_F_NO_COMMON_LRU\`: a list per CPU, filled from the bench's CPU, which thus evicts
  from its own share) and *LRU per CPU* (an array of maps, one LRU per CPU of 1/ncpus the
  size, the bench CPU's filled). The new-flow target is judged against the cheapest of the
  three, measured in the same rounds. For the breakdown only, *two lookups* is the floor of the
  switch's design for a known flow: parse, a service lookup (the switch's VIP key and map
  kind), a conntrack lookup (that LRU), MAC rewrite, \`XDP_TX\`.
- State: a nat TCP service and a nat UDP service on one VIP, two blue and two green
  backends each (permanent neighbours on the LB's veth, so the switch forwards with
  \`XDP_TX\`), set up with libbgswitch in a private network namespace on a bpffs under
  /run, and removed on exit. Before any timed run the switch's conntrack, the baselines' LRU
  and the minimal program's hash are filled to the configured conntrack size (default
  1,048,576) with \`bpf_map_update_batch\` (flows no bench packet matches), so every lookup
  walks the bucket chains of a full table. The SYN-flood guard's rate is set out of reach,
  so every new flow is inserted (the guard's check still runs).
- Cases: *established TCP* are ACKs of 256 flows whose SYNs went through the switch first
  (all on one backend); *UDP flow* datagrams of 256 tracked flows; *nat reply* the backend's
  ACKs back to those TCP clients (rewritten to come from the VIP); *new flow* a distinct SYN
  each run.
- Proof that every timed run took the intended path: per round, the baseline's own hit
  counter, or the switch's \`bgs_reasons\` counter of that verdict (\`fwd_tx\` or
  \`reply_tx\`) and \`bgs_svc_stats\` / \`bgs_be_stats\` packets (and new flows: all of them for
  new flows, none otherwise; for known flows all on the flows' backend), grew by exactly the
  repeat count, every other reason counter by nothing, the wrapper counted no failure; the
  last run's verdict is \`XDP_TX\` and its output packet is checked (backend address, port
  and MACs, TTL - 1, checksums recomputed from scratch; for replies the VIP as source and the
  client's MAC; for new flows the last flow is found in conntrack). Any mismatch aborts the
  benchmark. (Checked: with the wrapper's restore removed, the run aborts with "switch
  counter fwd_tx grew by 1" over 100,000 runs.)
- Rounds of the wrapper alone, the baseline and the switch are interleaved, one warm-up
  round first; medians are reported. *ratio* compares the figures as measured (wrapper
  included in both); *net ratio* subtracts the wrapper alone from both, the stricter figure,
  and the one the targets are judged on.

To try a change to the switch before committing it, build its object and measure it in
place of the library's: \`bench/run.sh build/rel --only est,udp --switch-obj FILE.bpf.o\`
(cases: est, udp, reply, new; \`BENCH_BGCTL=0\` skips bgctl, \`BENCH_MD=-\` keeps this
page).

## Conntrack layouts

Three layouts of the same conntrack (key, value, total size), measured by
\`bench/ct_churn\` (bench/ct_churn.c, bench/ct_churn.bpf.c): inserts run as an XDP program
(\`BPF_PROG_TEST_RUN\`, \`bpf_loop\` over distinct flows) pinned to a CPU; *established left*
counts the established flows still in the table after an attacker inserted one full
turnover of distinct flows. The per-packet cost of an insert into each layout, full, is
the *new flow* rows above. The decision is recorded in docs/datapath.md ("Conntrack under
pressure").

$(cat "$tmp/churn.md")

## bgctl wall time

$(cat "$tmp/bgctl.md")

## bgagent idle CPU

\`bench/agent_idle.sh\` (also \`make bench-agent\`): in a private namespace, one responder
(vm-tests/responder.py, HTTP/1.1 keep-alive) serves 16 addresses on loopback; 100 dsr
services with 8 blue and 8 green backends each (1,600 backends, every one checked by HTTP
GET every second through libcurl, connections kept alive). Once every backend is up, the
agent's own CPU time (utime + stime of all its threads, from /proc) over 20 s is its
cost, as a share of one core. The agent is then reloaded with the check interval at 1 h and
measured again: what is left is the loop without checks.

$(cat "$tmp/agent.md")

On this VM the target (< 2% of a core, 12.5 us per check) is out of reach for HTTP checks
made one TCP request each: a loopback request and its answer cost the sender the TCP send
path with the receiver's wake-up, epoll, and the receive (about half of the agent's time in
a perf profile), libcurl's transfer set-up and bookkeeping about a quarter, malloc/free and
sd-event the rest. CPU time per check grows with the machine's load (caches and scheduler
shared with the other work): on this VM the same build measured 12% of a core at load 9 and
22-24% at load 15-17. The pools are not what costs: they are re-read only when the pins'
change stamp moves (bgs_change_stamp), which it does not while idle.
EOF
} >"$md_out"
echo
echo "bench: results written to $md_out"
