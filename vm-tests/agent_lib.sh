# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# Helpers for the bgagent scenarios (vm-tests/test_agent_*.sh), on top of lib.sh: the agent
# runs inside the LB namespace from a config written here, with its state and history files
# and its metrics port in this run's directory and namespace.

BGAGENT=${BGAGENT:-$BGS_BUILD/bgagent}
AGENT_CFG=$BGS_RUN/bgswitch.yaml
AGENT_LOG=$BGS_RUN/agent.log
AGENT_METRICS=127.0.0.1:9469
AGENT_PID=

agent_require() {
	[ -x "$BGAGENT" ] || skip "no bgagent at $BGAGENT (build first: make)"
	command -v curl >/dev/null || skip "missing tool 'curl' (run make deps)"
}

# The topology of lib.sh with nothing attached: the agent attaches from its config.
agent_topo_up() {
	local i
	bgs_require
	agent_require
	bgs_topo_up
	for i in c1 c2 "${BACKENDS[@]}"; do
		lbctl detach "$i" >/dev/null || fail "detach $i"
	done
}

# agent_config [INTERVAL] [DRAIN] [PREVIEW_PREFIX]: service web (nat, VIP_NAT:80, backends on
# 8080), http checks every INTERVAL (timeout = interval, rise 2, fall 3), failover at 50%;
# with PREVIEW_PREFIX, that preview prefix (so that a web made by bgctl with it is adopted).
# INTERVAL and DRAIN are host figures: both are scaled by the slowdown (lib.sh).
agent_config() {
	local iv drain preview=
	iv=$(slow_d "${1:-100ms}")
	drain=$(slow_d "${2:-5s}")
	[ -z "${3:-}" ] || preview="
    preview: {prefixes: [\"$3\"]}"
	cat >"$AGENT_CFG" <<EOF
pin_dir: $BGSWITCH_PIN_DIR
history_file: $BGSWITCH_HISTORY
state_file: $BGS_RUN/bgagent.json
interfaces:
  - {name: c1, xdp_mode: native}
  - {name: c2, xdp_mode: native}
  - {name: b1, xdp_mode: native}
  - {name: b2, xdp_mode: native}
  - {name: g1, xdp_mode: native}
  - {name: g2, xdp_mode: native}
metrics: {listen: "$AGENT_METRICS"}
services:
  - name: web
    vip: "$VIP_NAT:80/tcp"
    mode: nat
    drain_timeout: $drain$preview
    pools:
      blue:  [{address: "${BE_ADDR[b1]}:8080"}, {address: "${BE_ADDR[b2]}:8080"}]
      green: [{address: "${BE_ADDR[g1]}:8080"}, {address: "${BE_ADDR[g2]}:8080"}]
    health_check: {type: http, path: /healthz, interval: $iv, timeout: $iv, rise: 2, fall: 3}
    failover: {enabled: true, min_healthy: 50%, hold_down: 60s}
EOF
}

agent_start() {
	# ip netns exec execs the agent: $! is the agent itself, for the signals
	ip netns exec "$NS_LB" "$BGAGENT" --config "$AGENT_CFG" >>"$AGENT_LOG" 2>&1 &
	AGENT_PID=$!
	BGS_PIDS+=($AGENT_PID)
}

# Wait (bounded, 10 s at slowdown 1) until the agent's log has a line matching a pattern.
agent_wait_log() {
	local pat=$1 i
	for i in $(seq 1 "$(slow 200)"); do
		grep -q -- "$pat" "$AGENT_LOG" 2>/dev/null && return 0
		kill -0 "$AGENT_PID" 2>/dev/null || return 1
		sleep 0.05
	done
	return 1
}

backends_up() { metrics | grep -c '^bgswitch_backend_up{.*} 1$'; }

# Start the agent on the one-service config and wait (bounded) for its four backends.
agent_start_healthy() {
	agent_start
	agent_wait_log "ready: 1 service" || fail "agent did not start: $(tail -5 "$AGENT_LOG")"
	for _ in $(seq 1 "$(slow 100)"); do
		[ "$(backends_up)" -eq 4 ] && break
		sleep 0.05
	done
	check "agent started, all four backends up" test "$(backends_up)" -eq 4
}

# The one-service scenario: topology, config (agent_config's arguments), agent up and healthy.
agent_up_healthy() {
	agent_topo_up
	agent_config "$@"
	agent_start_healthy
}

metrics() { nsx "$NS_LB" curl -sf --max-time "$(slow 5)" "http://$AGENT_METRICS/metrics"; }

# Value of one metric line (exact name and labels as printed), or empty.
metric() {
	local sel=$1
	metrics | awk -v s="$sel" 'index($0, s " ") == 1 { print $2 }'
}

blue_backends() { lbjq '.services[0].pools.blue.backends | length' -j status "$1"; }
drift_of() { metric "bgswitch_service_drift{service=\"$1\"}"; }

backend_health() {
	lbjq ".services[0].pools.$2.backends[] | select(.address == \"$1\") | .health" -j status web
}

# Stop / start one backend's responder (every process in its namespace).
responder_stop() {
	local pid
	for pid in $(ip netns pids "$(ns_be "$1")"); do
		kill "$pid" 2>/dev/null
	done
	for _ in $(seq 1 "$(slow 50)"); do
		[ -z "$(ip netns pids "$(ns_be "$1")")" ] && return 0
		sleep 0.02
	done
	return 1
}

# responder_start B [OPTION...]: options go to responder.py (--reset: a bad release).
responder_start() {
	local b=$1
	shift
	rm -f "$BGS_RUN/ready.$b"
	nsx "$(ns_be "$b")" python3 "$BGS_ROOT/vm-tests/responder.py" "${BE_COLOR[$b]}" "$b" \
		--http 80 --http 8080 --ready "$BGS_RUN/ready.$b" "$@" >/dev/null 2>&1 &
	BGS_PIDS+=($!)
	for _ in $(seq 1 "$(slow 100)"); do
		[ -e "$BGS_RUN/ready.$b" ] && return 0
		sleep 0.05
	done
	return 1
}

# wait_eq WANT CMD...: until CMD prints WANT (bounded: 3 s at slowdown 1).
wait_eq() {
	local want=$1
	shift
	for _ in $(seq 1 "$(slow 100)"); do
		[ "$("$@")" = "$want" ] && return 0
		sleep 0.03
	done
	return 1
}

now_ms() { echo $(($(date +%s%N) / 1000000)); }

# probe_until COLOR NS VIP PORT GO: starts at once, waits (up to 20 s) for the file GO, then
# from that moment makes a new connection (one GET, 100 ms timeout) every 10 ms until one is
# answered by COLOR; prints the ms from GO's appearance to that answer and how many attempts
# failed. Started before the event it measures, so its own start-up is not in the figure.
# Bounded: gives up (exit 1) 10 s after GO. Those bounds and the timeout are scaled by the
# slowdown (lib.sh).
probe_until() {
	nsx "$2" timeout "$(slow 40)" python3 - "$1" "$3" "$4" "$5" "$BGS_SLOW" <<'PY'
import os, socket, sys, time
color, host, port, go = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
k = int(sys.argv[5])
end = time.monotonic() + 20 * k
while not os.path.exists(go):
    if time.monotonic() > end:
        sys.exit(1)
    time.sleep(0.001)
t0 = time.monotonic()
failed = 0
while time.monotonic() < t0 + 10 * k:
    try:
        with socket.create_connection((host, port), timeout=0.1 * k) as s:
            s.sendall(b"GET / HTTP/1.0\r\nHost: vip\r\n\r\n")
            data = s.recv(4096).decode(errors="replace")
        if ("\n" + color + " ") in data:
            print(int((time.monotonic() - t0) * 1000), failed)
            sys.exit(0)
    except OSError:
        pass
    failed += 1
    time.sleep(0.01)
sys.exit(1)
PY
}
