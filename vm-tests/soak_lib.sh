# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# Helpers for the soak scenarios (vm-tests/test_soak_*.sh, test_hostile_*.sh), on top of
# lib.sh: vm-tests/loadgen (built by make into BUILD/tools) serves in every backend's
# namespace and loads the switch from the client's namespace.
#
# Services (nat): load VIP_NAT:7000/tcp -> backends :7000, loadu VIP_NAT:7001/udp -> :7001;
# (dsr, with soak_dsr_service) loadd VIP_DSR:7002/tcp -> :7002; (IPv6, with soak_v6_services)
# load6 and loadu6 on VIP6_NAT, the same ports. The servers also listen on TCP
# 7001 so that a tcp health check of the udp service's backends has something to connect to.
#
# SOAK_SCALE=short (default: what `make test` runs, a few seconds per scenario) or full
# (`make soak`: the issue's figures). SOAK_RATE, SOAK_LONG override the new-connection rate
# and the number of long-lived connections.

LOADGEN=${LOADGEN:-$BGS_BUILD/tools/loadgen}
SOAK_SCALE=${SOAK_SCALE:-short}
case $SOAK_SCALE in
full)
	SOAK_LONG=${SOAK_LONG:-200}
	SOAK_RATE=${SOAK_RATE:-500}
	SOAK_BASE_S=${SOAK_BASE_S:-10}
	SOAK_MAX_S=${SOAK_MAX_S:-500}	# a load client's bound
	;;
short)
	SOAK_LONG=${SOAK_LONG:-100}
	SOAK_RATE=${SOAK_RATE:-150}
	SOAK_BASE_S=${SOAK_BASE_S:-3}
	SOAK_MAX_S=${SOAK_MAX_S:-300}
	;;
*)
	echo "SOAK_SCALE must be short or full" >&2
	exit 2
	;;
esac
SOAK_UDP_FLOWS=${SOAK_UDP_FLOWS:-4}
SOAK_UDP_RATE=${SOAK_UDP_RATE:-200}
LOAD_TCP=7000
LOAD_UDP=7001
LOAD_DSR=7002

soak_require() {
	bgs_require
	[ -x "$LOADGEN" ] || skip "no loadgen at $LOADGEN (build first: make)"
}

# Start one backend's load server (every backend: soak_servers_start).
soak_server_start() {
	local b=$1
	rm -f "$BGS_RUN/lg-ready.$b"
	nsx "$(ns_be "$b")" "$LOADGEN" server --name "${BE_COLOR[$b]}:$b" --tcp $LOAD_TCP \
		--tcp $LOAD_UDP --tcp $LOAD_DSR --udp $LOAD_UDP --ready "$BGS_RUN/lg-ready.$b" \
		>>"$BGS_RUN/lg-server.$b.log" 2>&1 &
	BGS_PIDS+=($!)
	for _ in $(seq 1 "$(slow 100)"); do
		[ -e "$BGS_RUN/lg-ready.$b" ] && return 0
		sleep 0.05
	done
	return 1
}

# Stop it (SIGKILL: a backend dying, its sockets closed by the kernel).
soak_server_kill() {
	local b=$1 pid n=0
	for pid in $(ip netns pids "$(ns_be "$b")"); do
		# the same file (device and inode): the link's text names the path as the kernel
		# sees it, which differs from ours in a chroot
		[ "/proc/$pid/exe" -ef "$LOADGEN" ] || continue
		kill -9 "$pid" && n=$((n + 1))
	done
	[ "$n" -gt 0 ] || fail "no load server to kill in $b (pids: $(ip netns pids "$(ns_be "$b")" |
		while read -r p; do printf '%s=%s ' "$p" "$(readlink "/proc/$p/exe")"; done))"
}

soak_servers_start() {
	local b
	for b in "${BACKENDS[@]}"; do
		soak_server_start "$b" || fail "loadgen server in $b did not start"
	done
	# room for a minute of new connections at 500/s in the client's port range
	sysctl_ns "$NS_CL" net.ipv4.ip_local_port_range="20000 65000"
}

# soak_nat_pair TCPNAME UDPNAME VIP FAMILY(4|6): a nat tcp service on VIP:7000 and a udp one
# on VIP:7001 (VIP bracketed for IPv6), every backend in its color on that family's address.
soak_nat_pair() {
	local t=$1 u=$2 vip=$3 fam=$4 b a
	lbctl service add "$t" --vip "$vip:$LOAD_TCP/tcp" --mode nat >/dev/null ||
		fail "service add $t"
	lbctl service add "$u" --vip "$vip:$LOAD_UDP/udp" --mode nat >/dev/null ||
		fail "service add $u"
	for b in "${BACKENDS[@]}"; do
		[ "$fam" = 6 ] && a="[${BE_ADDR6[$b]}]" || a=${BE_ADDR[$b]}
		lbctl backend add "$t" "${BE_COLOR[$b]}" "$a:$LOAD_TCP" >/dev/null ||
			fail "backend add $t $b"
		lbctl backend add "$u" "${BE_COLOR[$b]}" "$a:$LOAD_UDP" >/dev/null ||
			fail "backend add $u $b"
	done
}

# The load services by bgctl (the agent scenarios make them from the agent's config).
soak_services() { soak_nat_pair load loadu "$VIP_NAT" 4; }

# The IPv6 services: load6 and loadu6 on VIP6_NAT (the load servers are dual-stack).
soak_v6_services() { soak_nat_pair load6 loadu6 "[$VIP6_NAT]" 6; }

soak_dsr_service() {
	local b
	lbctl service add loadd --vip "$VIP_DSR:$LOAD_DSR/tcp" --mode dsr >/dev/null ||
		fail "service add loadd"
	for b in "${BACKENDS[@]}"; do
		lbctl backend add loadd "${BE_COLOR[$b]}" "${BE_ADDR[$b]}:$LOAD_DSR" >/dev/null ||
			fail "backend add loadd $b"
	done
}

# Topology, load servers and the bgctl-made services.
soak_up() {
	soak_require
	bgs_topo_up
	soak_servers_start
	soak_services
}

# Packets the kernel dropped outside the switch on the test's paths: veth queue drops, XDP
# transmit and redirect errors (ethtool -S; not xdp_drops, the switch's own), interface
# drops (ip -s link) and UDP socket errors (/proc/net/snmp), summed over the LB's interfaces
# and the client's and backends' eth0. Under CPU starvation (a shared machine) veth rings
# and socket buffers overflow: a UDP loss is the switch's only if these do not account for it.
kdrops() {
	local ns ifs i sum=0 v
	for ns in "$NS_LB" "$NS_CL" $(for b in "${BACKENDS[@]}"; do ns_be "$b"; done); do
		[ "$ns" = "$NS_LB" ] && ifs="c1 c2 ${BACKENDS[*]}" || ifs=eth0
		for i in $ifs; do
			v=$(nsx "$ns" ethtool -S "$i" 2>/dev/null |
				awk '$1 ~ /(drops|errors):$/ && $1 !~ /xdp_drops/ { s += $2 } END { print s + 0 }')
			sum=$((sum + v))
			v=$(ip -n "$ns" -s -j link show "$i" 2>/dev/null |
				jq '.[0].stats64 | .rx.dropped + .tx.dropped' 2>/dev/null)
			sum=$((sum + ${v:-0}))
		done
		[ "$ns" = "$NS_LB" ] && continue
		v=$(nsx "$ns" awk '/^Udp:/ { if (!h) { for (i = 2; i <= NF; i++) k[i] = $i; h = 1 }
			else for (i = 2; i <= NF; i++) if (k[i] ~ /^(InErrors|RcvbufErrors|SndbufErrors)$/) s += $i }
			END { print s + 0 }' /proc/net/snmp)
		sum=$((sum + v))
	done
	echo "$sum"
}

# load_start NAME [loadgen client options]: a load client in the client's namespace, for at
# most SOAK_MAX_S seconds (the scenario ends it earlier with load_stop). Its files are
# $BGS_RUN/NAME.{json,log,out}; waits (bounded) until every long-lived connection answered.
load_start() {
	local name=$1
	shift
	rm -f "$BGS_RUN/$name".{json,log,out,ready,stop}
	kdrops >"$BGS_RUN/$name.kd0"
	nsx "$NS_CL" timeout $((SOAK_MAX_S + 30)) "$LOADGEN" client \
		--tcp "$VIP_NAT:$LOAD_TCP" --udp "$VIP_NAT:$LOAD_UDP" --long "$SOAK_LONG" \
		--rate "$SOAK_RATE" --udp-flows "$SOAK_UDP_FLOWS" --udp-rate "$SOAK_UDP_RATE" \
		--duration "$SOAK_MAX_S" --log "$BGS_RUN/$name.log" --json "$BGS_RUN/$name.json" \
		--ready "$BGS_RUN/$name.ready" --stop "$BGS_RUN/$name.stop" "$@" \
		>"$BGS_RUN/$name.out" 2>&1 &
	BGS_PIDS+=($!)
	eval "LOAD_PID_$name=$!"
	for _ in $(seq 1 "$(slow 300)"); do
		[ -e "$BGS_RUN/$name.ready" ] && return 0
		kill -0 $! 2>/dev/null || break
		sleep 0.05
	done
	fail "load client $name not ready in $(slow 15) s: $(cat "$BGS_RUN/$name.out")"
}

# load_stop NAME: end it, wait for its figures (bounded), print its line.
load_stop() {
	local name=$1 pid
	pid=$(eval "echo \$LOAD_PID_$name")
	touch "$BGS_RUN/$name.stop"
	for _ in $(seq 1 "$(slow 200)"); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.05
	done
	kill -0 "$pid" 2>/dev/null && fail "load client $name did not stop"
	[ -s "$BGS_RUN/$name.json" ] || fail "load client $name left no figures: $(cat "$BGS_RUN/$name.out")"
	echo $(($(kdrops) - $(cat "$BGS_RUN/$name.kd0"))) >"$BGS_RUN/$name.kdrops"
	echo "# $name: $(cat "$BGS_RUN/$name.out")"
}

# load_run NAME SECONDS [options]: an undisturbed run.
load_run() {
	local name=$1 s=$2
	shift 2
	load_start "$name" "$@"
	sleep "$s"
	load_stop "$name"
}

# lg NAME FIELD: one figure of a finished run.
lg() { jq -r ".$2" "$BGS_RUN/$1.json"; }

# udp_ok NAME [BASELINE]: no more UDP datagrams lost than the baseline run lost, unless the
# kernel counted at least as many drops outside the switch during the run (kdrops).
udp_ok() {
	local name=$1 base=${2:-} lost blost kd
	lost=$(lg "$name" udp_lost)
	kd=$(cat "$BGS_RUN/$name.kdrops")
	[ -n "$base" ] && blost=$(lg "$base" udp_lost) || blost=0
	[ "$lost" -le "$blost" ] && return 0
	[ "$lost" -le "$kd" ] ||
		fail "$name: $lost UDP datagrams lost (longest gap $(lg "$name" udp_max_gap)), baseline $blost, and the kernel dropped only $kd packets outside the switch"
	echo "# $name: $lost UDP datagrams lost (longest gap $(lg "$name" udp_max_gap)), more than the baseline's $blost, but the kernel counted $kd drops outside the switch (veth rings, socket buffers: a starved CPU)"
}

# expect_no_loss NAME [BASELINE]: every loss figure of the run is 0 (UDP: no more lost than
# the baseline run), and the run did real work. Prints the figures it checked.
expect_no_loss() {
	local name=$1 base=${2:-} f v
	for f in long_failed_connects long_resets long_timeouts long_wrong_backend new_refused \
		new_reset new_timeout new_error udp_wrong_backend; do
		v=$(lg "$name" $f)
		[ "$v" = 0 ] || fail "$name: $f = $v (want 0): $(cat "$BGS_RUN/$name.out")"
	done
	[ "$(lg "$name" long_exchanges)" -gt 0 ] && [ "$(lg "$name" new_ok)" -gt 0 ] ||
		fail "$name: no traffic went through: $(cat "$BGS_RUN/$name.out")"
	udp_ok "$name" "$base"
	[ "$(lg "$name" udp_recv)" -gt 0 ] || [ "$(lg "$name" udp_sent)" = 0 ] ||
		fail "$name: no UDP answer"
	ok "$name: no failed or reset connection, no wrong backend, UDP lost $(lg "$name" udp_lost) (late $(lg "$name" udp_late)), kernel drops outside the switch $(cat "$BGS_RUN/$name.kdrops"); $(lg "$name" long_exchanges) exchanges on $(lg "$name" n_long) long-lived connections, $(lg "$name" new_ok) new connections ($(lg "$name" new_per_s | cut -c1-6)/s)"
}

# changes log: one line per change, "START_US END_US COLOR" (CLOCK_REALTIME microseconds).
us_now() { echo "${EPOCHREALTIME/./}"; }

# misrouted NAME CHANGES [REUSE_S]: of the run's new connections whose whole life (connect
# called .. answered) lies between one change's return and the next change's start, how
# many were answered by another color than that change's. With REUSE_S (dsr), a connection
# whose source port an earlier one used less than REUSE_S before is not checked but counted
# apart: in dsr a SYN on a tuple quiet for less than time_wait keeps the old flow's backend
# (docs/datapath.md, "TCP close and tuple reuse"); the client's kernel reuses a port at once
# when the server closed first. Prints "MISROUTED CHECKED REUSED".
misrouted() {
	sort -n "$BGS_RUN/$1.log" | awk -v reuse="${3:-0}" '
	BEGIN { n = 0 }
	NR == FNR { s[n] = $1; e[n] = $2; c[n] = $3; n++; next }
	$3 == "ok" {
		prev = last[$5]; last[$5] = $2
		if (reuse > 0 && prev != "" && $1 - prev < reuse * 1000000) { reused++; next }
		# the last change that returned before this connection started
		lo = 0; hi = n - 1; k = -1
		while (lo <= hi) { m = int((lo + hi) / 2); if (e[m] <= $1) { k = m; lo = m + 1 } else hi = m - 1 }
		if (k < 0) next
		if (k + 1 < n && s[k + 1] <= $2) next
		checked++
		split($4, t, ":")
		if (t[1] != c[k]) bad++
	}
	END { printf "%d %d %d\n", bad, checked, reused }' "$2" -
}

# ---- with bgagent (source agent_lib.sh first)

# soak_agent_config DRAIN FAILOVER(true|false): the agent's config for load and loadu (nat),
# tcp checks every 100 ms (timeout 100 ms, rise 2, fall 3; scaled by the slowdown, lib.sh) on
# each backend's service port; SOAK_TIMEOUTS: its timeouts mapping ("{health_grace: 10s}").
soak_agent_config() {
	local drain=$1 fo=$2 svc port proto b
	cat >"$AGENT_CFG" <<EOC
pin_dir: $BGSWITCH_PIN_DIR
history_file: $BGSWITCH_HISTORY
state_file: $BGS_RUN/bgagent.json
EOC
	[ -z "${SOAK_TIMEOUTS:-}" ] || echo "timeouts: $SOAK_TIMEOUTS" >>"$AGENT_CFG"
	echo "interfaces:" >>"$AGENT_CFG"
	for b in c1 c2 "${BACKENDS[@]}"; do
		echo "  - {name: $b, xdp_mode: native}" >>"$AGENT_CFG"
	done
	cat >>"$AGENT_CFG" <<EOC
metrics: {listen: "$AGENT_METRICS"}
services:
EOC
	for svc in load loadu; do
		[ $svc = load ] && port=$LOAD_TCP proto=tcp || port=$LOAD_UDP proto=udp
		cat >>"$AGENT_CFG" <<EOC
  - name: $svc
    vip: "$VIP_NAT:$port/$proto"
    mode: nat
    drain_timeout: $drain
    pools:
      blue:  [{address: "${BE_ADDR[b1]}:$port"}, {address: "${BE_ADDR[b2]}:$port"}]
      green: [{address: "${BE_ADDR[g1]}:$port"}, {address: "${BE_ADDR[g2]}:$port"}]
    health_check: {type: tcp, port: $port, interval: $(slow_d 100ms), timeout: $(slow_d 100ms), rise: 2, fall: 3}
    failover: {enabled: $fo, min_healthy: 50%, hold_down: 60s}
EOC
		# SOAK_ROLLOUT_PAUSE: the tcp service's rollout, two canary steps and the flip
		[ $svc = load ] && [ -n "${SOAK_ROLLOUT_PAUSE:-}" ] && cat >>"$AGENT_CFG" <<EOC
    rollout:
      steps: [{canary: 10, pause: $SOAK_ROLLOUT_PAUSE}, {canary: 50, pause: $SOAK_ROLLOUT_PAUSE}, {promote: true}]
EOC
	done
	return 0
}

# The agent's topology, the load servers and the agent itself, every backend up.
soak_agent_up() {
	soak_require
	agent_topo_up
	soak_servers_start
	soak_agent_config "$@"
	agent_start
	agent_wait_log "ready: 2 services" || fail "agent did not start: $(tail -5 "$AGENT_LOG")"
	for _ in $(seq 1 "$(slow 100)"); do
		[ "$(backends_up)" -eq 8 ] && break
		sleep 0.05
	done
	check "agent started, all eight backends up" test "$(backends_up)" -eq 8
}
