#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# bgagent's tcp and exec checks and its drift report: a dsr service checked by tcp connect
# (backend server stopped -> down, restarted -> up); a nat service checked by a command that
# gets BACKEND_ADDR, BACKEND_PORT, BACKEND_COLOR and SERVICE, whose exit status decides, and
# which on timeout is killed with its whole process group (a background child included);
# a backend added by hand with bgctl is reported as drift (metric, log) and a SIGHUP does not
# overwrite it.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/agent_lib.sh"

agent_topo_up
probe=$BGS_RUN/probe.sh
cat >"$probe" <<EOF
#!/bin/sh
echo "\$SERVICE \$BACKEND_COLOR \$BACKEND_ADDR \$BACKEND_PORT" > $BGS_RUN/env.\$BACKEND_ADDR
[ -e $BGS_RUN/fail.\$BACKEND_ADDR ] && exit 1
if [ -e $BGS_RUN/hang.\$BACKEND_ADDR ]; then
	sleep 31 &
	sleep 31
fi
exit 0
EOF
chmod +x "$probe"
cat >"$AGENT_CFG" <<EOF
pin_dir: $BGSWITCH_PIN_DIR
history_file: $BGSWITCH_HISTORY
state_file: $BGS_RUN/bgagent.json
interfaces: [{name: c1}, {name: b1}, {name: b2}, {name: g1}, {name: g2}]
metrics: {listen: "$AGENT_METRICS"}
services:
  - name: tcpsvc
    vip: "$VIP_DSR:80/tcp"
    mode: dsr
    pools:
      blue: [{address: "${BE_ADDR[b1]}"}]
      green: [{address: "${BE_ADDR[g1]}"}]
    health_check: {type: tcp, interval: $(slow_d 100ms), timeout: $(slow_d 100ms), rise: 2, fall: 3}
    failover: {enabled: false}
  - name: execsvc
    vip: "$VIP_NAT:81/tcp"
    pools:
      blue: [{address: "${BE_ADDR[b2]}:80"}]
      green: [{address: "${BE_ADDR[g2]}:80"}]
    health_check: {type: exec, command: "$probe", interval: $(slow_d 500ms), timeout: $(slow_d 500ms), rise: 2,
                   fall: 2}
    failover: {enabled: false}
  - name: v6
    vip: "[$VIP6_NAT]:80/tcp"
    pools:
      blue: [{address: "[${BE_ADDR6[b1]}]:8080"}]
      green: [{address: "[${BE_ADDR6[g1]}]:8080"}]
    health_check: {type: http, path: /v6, interval: $(slow_d 100ms), timeout: $(slow_d 100ms)}
    failover: {enabled: false}
EOF
nsx "$NS_LB" "$BGAGENT" --check-config "$AGENT_CFG" >/dev/null || fail "test config is bad"
agent_start
agent_wait_log "ready: 3 services" || fail "agent did not start: $(tail -5 "$AGENT_LOG")"

# health of a backend by service, color and address:port as /metrics says (1/0)
hm() { metric "bgswitch_backend_healthy{service=\"$1\",color=\"$2\",backend=\"$3\"}"; }
wait_hm() { wait_eq "$4" hm "$1" "$2" "$3"; }
wait_hm tcpsvc blue "${BE_ADDR[b1]}:80" 1 && wait_hm tcpsvc green "${BE_ADDR[g1]}:80" 1 &&
	wait_hm execsvc blue "${BE_ADDR[b2]}:80" 1 && wait_hm execsvc green "${BE_ADDR[g2]}:80" 1
check "all four backends healthy (tcp and exec checks)" test $? -eq 0
wait_hm v6 blue "[${BE_ADDR6[b1]}]:8080" 1 && wait_hm v6 green "[${BE_ADDR6[g1]}]:8080" 1
check "IPv6 backends healthy (http checks to [address]:port through the nat reply path)" \
	test $? -eq 0
out=$(traffic "$NS_CL" http "$VIP6_NAT" 80 10)
check "IPv6 service served by b1" jqt '.ok == 10 and .backends["blue b1"] == 10' <<<"$out"
out=$(traffic "$NS_CL" http "$VIP_DSR" 80 10)
check "dsr service served by b1" jqt '.ok == 10 and .backends["blue b1"] == 10' <<<"$out"

# ---- tcp ----
responder_stop b1 || fail "cannot stop b1"
check "tcp: b1 down once its server is gone" wait_hm tcpsvc blue "${BE_ADDR[b1]}:80" 0
responder_start b1 || fail "cannot restart b1"
check "tcp: b1 up again" wait_hm tcpsvc blue "${BE_ADDR[b1]}:80" 1

# ---- exec ----
check "exec: the command got SERVICE, BACKEND_COLOR, BACKEND_ADDR, BACKEND_PORT" \
	grep -qx "execsvc blue ${BE_ADDR[b2]} 80" "$BGS_RUN/env.${BE_ADDR[b2]}"
touch "$BGS_RUN/fail.${BE_ADDR[b2]}"
check "exec: exit status 1 -> b2 down" wait_hm execsvc blue "${BE_ADDR[b2]}:80" 0
grep -q "execsvc blue backend ${BE_ADDR[b2]}:80: down (failed 2 checks: command exited with status 1)" \
	"$AGENT_LOG" || fail "no log line with the command's exit status"
rm -f "$BGS_RUN/fail.${BE_ADDR[b2]}"
check "exec: exit 0 again -> b2 up" wait_hm execsvc blue "${BE_ADDR[b2]}:80" 1

touch "$BGS_RUN/hang.${BE_ADDR[g2]}"
check "exec: a command past its timeout -> g2 down" wait_hm execsvc green "${BE_ADDR[g2]}:80" 0
check "exec: timeouts counted" test "$(metric "bgswitch_health_checks_total{service=\"execsvc\",color=\"green\",backend=\"${BE_ADDR[g2]}:80\",result=\"timeout\"}")" -ge 2
rm -f "$BGS_RUN/hang.${BE_ADDR[g2]}"
check "exec: g2 up again" wait_hm execsvc green "${BE_ADDR[g2]}:80" 1
sleep "$(slow_d 0.3)"
left=$(pgrep -c -f '^sleep 31$')
check "exec: every timed-out command's process group was killed (no 'sleep 31' left: $left)" \
	test "$left" -eq 0

# ---- drift ----
lbctl backend add execsvc blue "${BE_ADDR[b1]}:80" >/dev/null || fail "bgctl backend add"
check "a backend added by hand: execsvc drift = 1" wait_eq 1 drift_of execsvc
check "tcpsvc is not drifted" test "$(drift_of tcpsvc)" = 0
agent_wait_log "execsvc: drift: changed outside the agent" || fail "no drift log line"
kill -HUP "$AGENT_PID"
agent_wait_log "reloaded: 3 services" || fail "reload"
check "SIGHUP does not overwrite the hand-made change (2 blue backends)" \
	test "$(blue_backends execsvc)" = 2
check "still drifted after SIGHUP" \
	test "$(drift_of execsvc)" = 1
lbctl backend del execsvc "${BE_ADDR[b1]}:80" >/dev/null || fail "bgctl backend del"
check "undone by hand: no drift" wait_eq 0 drift_of execsvc

# ---- next hops follow neighbour changes (netlink) ----
be_dmac() {
	local id
	id=$(lbjq ".services[0].pools.blue.backends[] | select(.address == \"${BE_ADDR[b2]}:80\") | .id" \
		-j status execsvc)
	bpftool -j map lookup pinned "$BGSWITCH_PIN_DIR/bgs_backends" key "$id" 0 0 0 |
		jq -r '.formatted.value.dmac | map(tostring) | join(",")'
}
wait_dmac() { wait_eq "$1" be_dmac; }
mac=$(ip -n "$(ns_be b2)" -j link show eth0 | jq -r '.[0].address')
right=$(python3 -c "print(','.join(str(int(x, 16)) for x in '$mac'.split(':')))")
check "b2's record holds its MAC ($mac)" test "$(be_dmac)" = "$right"
b2_health() {
	lbjq ".services[0].pools.blue.backends[] | select(.address == \"${BE_ADDR[b2]}:80\") | .health" \
		-j status execsvc
}
wait_b2() { wait_eq "$1" b2_health; }
b2_id() {
	lbjq ".services[0].pools.blue.backends[] | select(.address == \"${BE_ADDR[b2]}:80\") | .id" \
		-j status execsvc
}
id_before=$(b2_id)
ip -n "$NS_LB" neigh replace "${BE_ADDR[b2]}" lladdr 02:00:00:00:00:99 dev b2 nud permanent
check "a changed neighbour entry reaches the backend record" wait_dmac "2,0,0,0,0,153"
# the library updates the record in place: same id, and the agent's health writes reach it
check "b2 keeps its record id ($id_before) across the next-hop change" \
	test "$(b2_id)" = "$id_before"
touch "$BGS_RUN/fail.${BE_ADDR[b2]}"
check "health reaches b2's record (down)" wait_b2 down
rm -f "$BGS_RUN/fail.${BE_ADDR[b2]}"
check "and up again" wait_b2 up
ip -n "$NS_LB" neigh replace "${BE_ADDR[b2]}" lladdr "$mac" dev b2 nud permanent
check "and back" wait_dmac "$right"
out=$(traffic "$NS_CL" http "$VIP_NAT" 81 10)
check "execsvc served by b2 through the re-resolved next hop" \
	jqt '.ok == 10 and .backends["blue b2"] == 10' <<<"$out"
