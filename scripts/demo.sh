#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# bgswitch demo: a blue-green release in network namespaces, driven by bgctl, then bgagent.
#
#   scripts/demo.sh BUILD_DIR [--slow]      (make demo runs: scripts/demo.sh build/rel)
#
# A client, a preview (QA) client, the LB host with the switch attached natively and two
# blue and two green HTTP backends. Traffic on blue; the QA client previews green; a 10%
# canary; the flip, with an open keep-alive connection still answered by its blue backend
# while new connections land on green and the blue drain counts down; a rollback. Then
# bgagent takes over from a generated config (it adopts web as bgctl left it) and, when every
# server of the live pool is killed, fails over on its own: the demo measures how long new
# connections failed. Every namespace, process, pin and attachment is removed on exit or
# Ctrl-C. Then a release with `bgctl rollout start` (10% canary for a few seconds, then the
# flip, carried out by the agent), and a bad release whose servers reset every request: the
# agent's post-flip check rolls it back on its own. --slow pauses between steps
# for a live audience. Exits 0 when every step behaved as narrated.
set -uo pipefail

usage() {
	echo "usage: $0 BUILD_DIR [--slow]" >&2
	exit 2
}

[ $# -ge 1 ] || usage
BUILD_DIR=$1
shift
PAUSE=0
for a in "$@"; do
	case "$a" in
	--slow) PAUSE=4 ;;
	*) usage ;;
	esac
done
[ -x "$BUILD_DIR/bgctl" ] || {
	echo "demo: no bgctl in $BUILD_DIR: build first (make)" >&2
	exit 1
}
[ "$(id -u)" -eq 0 ] || {
	echo "demo: needs root (network namespaces, XDP, bpffs): run as root or with sudo" >&2
	exit 1
}

BGS_BUILD=$(cd "$BUILD_DIR" && pwd)
BGS_QUIET=1
. "$(dirname "$0")/../vm-tests/lib.sh"
. "$(dirname "$0")/../vm-tests/agent_lib.sh"
[ -x "$BGAGENT" ] || {
	echo "demo: no bgagent in $BUILD_DIR: build first (make)" >&2
	exit 1
}

if [ -t 1 ]; then
	B=$'\e[1m' DIM=$'\e[2m' BLUE=$'\e[1;34m' GREEN=$'\e[1;32m' RED=$'\e[1;31m' N=$'\e[0m'
else
	B='' DIM='' BLUE='' GREEN='' RED='' N=''
fi
STEP=0
STEPS=14
T0=$(date +%s.%N)

# One narrated line per step.
say() {
	STEP=$((STEP + 1))
	printf '\n%s[%2d/%d] %s%s\n' "$B" "$STEP" "$STEPS" "$*" "$N"
	[ "$PAUSE" = 0 ] || sleep "$PAUSE"
}
note() { printf '        %s\n' "$*"; }
pause() { [ "$PAUSE" = 0 ] || sleep "$1"; }
die() {
	printf '%sdemo: %s%s\n' "$RED" "$*" "$N" >&2
	exit 1
}

# Show and run a bgctl command on the LB host.
run() {
	local shown=() a
	for a in "$@"; do
		[[ "$a" == *" "* ]] && shown+=("\"$a\"") || shown+=("$a")
	done
	printf '  %s$ bgctl %s%s\n' "$DIM" "${shown[*]}" "$N"
	if [ -n "${BGS_TIME_FILE:-}" ]; then
		# Timed inside the LB's namespace: bgctl's own wall time, not ip netns exec's.
		nsx "$NS_LB" bash -c 't0=$EPOCHREALTIME; "$@"; rc=$?; t1=$EPOCHREALTIME
			awk -v a="$t0" -v b="$t1" "BEGIN { printf \"%.1f\", (b - a) * 1000 }" >"$BGS_TIME_FILE"
			exit $rc' bgctl "$BGCTL" "$@" 2>&1 | sed 's/^/    /'
	else
		lbctl "$@" 2>&1 | sed 's/^/    /'
	fi
	return "${PIPESTATUS[0]}"
}

# Status table between steps.
status() {
	printf '  %s$ bgctl status web --flows%s\n' "$DIM" "$N"
	lbctl status web --flows | sed 's/^/    /'
}

colorize() { sed -e "s/blue/${BLUE}blue${N}/g" -e "s/green/${GREEN}green${N}/g"; }

# N requests from a client: prints "client: N requests -> blue b1 51, ..."; JSON in $j.
requests() {
	local ns=$1 n=$2 label=$3
	j=$(traffic "$ns" http "$VIP_NAT" 80 "$n")
	printf '  %s: %s requests -> %s\n' "$label" "$(jq -r .ok <<<"$j")" \
		"$(jq -r '.backends | to_entries | sort_by(.key) | map("\(.key) \(.value)") | join(", ")' <<<"$j")" |
		colorize
}

hold_last() { grep '^[0-9]' "$HOLD" | awk '$2 != "error" {print $2, $3}' | tail -1; }

say "Building the lab: client 10.0.1.2, QA client 10.0.2.2, LB host with bgswitch attached" \
	"natively (XDP) on every interface, blue backends b1 b2, green backends g1 g2"
bgs_require
bgs_topo_up
note "namespaces $NS_LB, $NS_CL, ... ; pins on a bpffs at $BGS_RUN/bpf"

say "Declaring service web (VIP $VIP_NAT:80, nat) and its pools, with bgctl only"
run service add web --vip "$VIP_NAT:80/tcp" --mode nat || die "service add failed"
for b in "${BACKENDS[@]}"; do
	run backend add web "${BE_COLOR[$b]}" "${BE_ADDR[$b]}:8080" || die "backend add failed"
done

say "Production traffic: version 1 runs on blue"
requests "$NS_CL" 200 "client"
jqt '.colors.blue == 200' <<<"$j" || die "expected every request on blue: $j"
status

say "A long-lived connection opens (HTTP keep-alive, one request every 0.2s)"
HOLD=$BGS_RUN/hold.demo
hold_start "$NS_CL" tcp "$VIP_NAT" 80 "$HOLD" 100
HOLD_PID_DEMO=$HOLD_PID
wait_lines "$HOLD" 3 || die "the long-lived connection got no answer"
HOLD_BE=$(hold_last)
note "$(printf 'long-lived connection %s is answered by %s' "$(awk '/^local/ {print $2}' "$HOLD")" "$HOLD_BE" | colorize)"

say "Preview: the QA client 10.0.2.2 tries version 2 on green before anyone else"
run preview web add 10.0.2.0/24 || die "preview add failed"
requests "$NS_CL2" 50 "QA client"
jqt '.colors.green == 50' <<<"$j" || die "expected the QA client on green: $j"
requests "$NS_CL" 50 "client   "
jqt '.colors.blue == 50' <<<"$j" || die "expected the client on blue: $j"
pause 2

say "Canary: 10% of new connections go to green"
run canary web 10 || die "canary failed"
requests "$NS_CL" 1000 "client"
g=$(jq -r '.colors.green // 0' <<<"$j")
note "$(printf 'green share: %s%%' "$(awk -v g="$g" 'BEGIN { printf "%.1f", g / 10 }')" | colorize)"
[ "$g" -ge 50 ] && [ "$g" -le 150 ] || die "canary share off: $g of 1000"
status

say "The flip: green goes live in one atomic write; blue drains for 20s"
FLIP_TIME=$BGS_RUN/flip.time
BGS_TIME_FILE=$FLIP_TIME run flip web --to green --drain-timeout 20s --reason "release v2" ||
	die "flip failed"
note "bgctl flip ran in $(cat "$FLIP_TIME") ms, process start and history fsyncs included"
k=$(grep -c '^[0-9]' "$HOLD")
requests "$NS_CL" 200 "client (new connections)"
jqt '.colors.green == 200' <<<"$j" || die "expected new connections on green: $j"
wait_lines "$HOLD" $((k + 5)) || die "the long-lived connection stalled"
now_be=$(hold_backends_after "$HOLD" 0)
[ "$now_be" = "$HOLD_BE" ] || die "the long-lived connection moved: $now_be"
note "$(printf 'the open connection is still answered by %s (%d answers so far, none lost)' \
	"$HOLD_BE" "$(grep -c '^[0-9]' "$HOLD")" | colorize)"
status

say "The blue drain counts down while its last connection lives, then it closes"
for i in 1 2 3; do
	j=$(lbctl -j drain web)
	note "$(jq -r '"blue: \(.pools.blue.flows) flow(s) left, \(.drain.time_left_s | floor)s left in the drain"' <<<"$j" | colorize)"
	sleep 1
done
hold_stop "$HOLD" "$HOLD_PID_DEMO"
! grep -q error "$HOLD" || die "the long-lived connection saw an error: $(grep error "$HOLD")"
for i in $(seq 1 20); do
	j=$(lbctl -j drain web)
	[ "$(jq -r .pools.blue.flows <<<"$j")" -eq 0 ] && break
	sleep 0.25
done
note "$(jq -r '"connection closed: blue: \(.pools.blue.flows) flows left, drained \(.drain.time_left_s | floor)s before its deadline"' <<<"$j" | colorize)"

say "Something is wrong with v2: rollback, instantly"
run rollback web --reason "v2 error rate" || die "rollback failed"
requests "$NS_CL" 200 "client"
jqt '.colors.blue == 200' <<<"$j" || die "expected every request back on blue: $j"
status

say "Every change is in the audit history"
printf '  %s$ bgctl history web%s\n' "$DIM" "$N"
lbctl history web | sed 's/^/    /'

# The agent starts only now, not before the bgctl steps: it owns the services of its config,
# so bgctl's backend adds, preview, canary and flips on a service it had made would be
# reported as drift (by design, not overwritten). Started here it adopts web as bgctl left
# it: the pins match the config, nothing is changed, no flow is touched.
say "bgagent takes over: from a generated config it adopts web as bgctl left it and checks" \
	"every backend (http every 100ms, timeout 100ms, fall 3, rise 2; failover below 50%)"
agent_config 100ms 20s 10.0.2.0/24
# the rollouts of the last steps, and a post-flip check; a short hold_down so that the
# check may roll back soon after the failover flip
sed -i 's/hold_down: 60s/hold_down: 5s/' "$AGENT_CFG"
cat >>"$AGENT_CFG" <<EOF
    post_flip_check: {bake_time: 10s, max_reset_rate: 5, max_unhealthy: 0}
    rollout:
      steps: [{canary: 10, pause: 3s}, {promote: true}]
EOF
printf '  %s$ bgagent --config %s%s\n' "$DIM" "$AGENT_CFG" "$N"
agent_start
agent_wait_log "ready: 1 service" || die "bgagent did not start: $(tail -5 "$AGENT_LOG")"
grep -q "web: adopted" "$AGENT_LOG" || die "bgagent did not adopt web: $(tail -5 "$AGENT_LOG")"
for i in $(seq 1 100); do
	[ "$(backends_up)" = 4 ] && break
	sleep 0.05
done
[ "$(backends_up)" = 4 ] ||
	die "bgagent does not see four healthy backends: $(tail -5 "$AGENT_LOG")"
LIVE=$(lbjq '.services[0].live' -j status web)
[ "$LIVE" = blue ] && IDLE=green || IDLE=blue
note "$(printf 'bgagent: web adopted, 4 of 4 backends healthy, %s live' "$LIVE" | colorize)"

say "Disaster: every $LIVE server dies; bgagent fails over to $IDLE on its own"
GO=$BGS_RUN/go
probe_until "$IDLE" "$NS_CL" "$VIP_NAT" 80 "$GO" >"$BGS_RUN/probe.out" &
PROBE=$!
BGS_PIDS+=($PROBE)
sleep 0.5 # the prober's own start-up is not part of the gap
for b in "${BACKENDS[@]}"; do
	[ "${BE_COLOR[$b]}" = "$LIVE" ] || continue
	responder_stop "$b" || die "cannot stop $b"
	note "$(printf 'killed the server of %s backend %s' "$LIVE" "$b" | colorize)"
done
touch "$GO"
wait "$PROBE" || die "no new connection answered by $IDLE within 10 s: $(tail -5 "$AGENT_LOG")"
read -r GAP FAILED <"$BGS_RUN/probe.out"
note "$(printf 'new connections failed for %s ms (%s attempts, one every 10 ms), then %s %s' \
	"$GAP" "$FAILED" "$IDLE" answered | colorize)"
[ "$GAP" -lt 3000 ] || die "failover took $GAP ms (bound: 3000 ms)"
# new flows reach the other pool as soon as the dead one is marked down; the agent's flip
# follows on its next look at the service (wait_eq: bounded, about 3 s)
live_of_web() { lbjq '.services[0].live' -j status web; }
wait_eq "$IDLE" live_of_web || die "web is not live on $IDLE"
REC=$(lbctl -j history web | jq -c --arg to "$IDLE" '[.records[] | select(.verb == "flip" and
	.actor == "bgagent" and .status == "done" and .to == $to)] | last // empty')
[ -n "$REC" ] && jqt '.reason | startswith("failover: ")' <<<"$REC" ||
	die "no failover flip by bgagent in the history: $REC"
printf '  %s$ bgctl history web (the agent'"'"'s record)%s\n' "$DIM" "$N"
jq -r '"    \(.time) \(.actor) \(.verb) \(.from) -> \(.to): \(.reason)"' <<<"$REC" | colorize
status

# wait_for SECONDS CMD WANT: until CMD prints WANT (bounded).
wait_for() {
	local n=$(($1 * 10)) i
	for ((i = 0; i < n; i++)); do
		[ "$($2)" = "$3" ] && return 0
		sleep 0.1
	done
	return 1
}
rollout_state() { lbjq '.services[0].rollout.state' -j rollout status web; }
# servers_restart COLOR [--reset]: that pool's servers again (--reset: a bad release)
servers_restart() {
	local b
	for b in "${BACKENDS[@]}"; do
		[ "${BE_COLOR[$b]}" = "$1" ] || continue
		responder_stop "$b"
	done
	# seen down first, so that they are seen up after (not flapping during the rollout)
	for i in $(seq 1 100); do
		[ "$(backends_up)" = 2 ] && break
		sleep 0.05
	done
	for b in "${BACKENDS[@]}"; do
		[ "${BE_COLOR[$b]}" = "$1" ] || continue
		responder_start "$b" ${2:+"$2"} || die "cannot start $b"
	done
	for i in $(seq 1 100); do
		[ "$(backends_up)" = 4 ] && break
		sleep 0.05
	done
	[ "$(backends_up)" = 4 ] || die "bgagent does not see four healthy backends"
}
all_on() { jq -e --arg c "$1" '.colors[$c] == .total' <<<"$j" >/dev/null; }

say "Release v3 on $LIVE (its servers are back): bgctl rollout start; bgagent runs the" \
	"service's steps, a 10% canary for 3s, then the flip"
servers_restart "$LIVE"
run rollout start web --reason "release v3" || die "rollout start failed"
wait_for 3 rollout_state running || die "bgagent did not take the rollout"
run rollout status web
requests "$NS_CL" 150 "client"
g=$(jq -r --arg c "$LIVE" '.colors[$c] // 0' <<<"$j")
[ "$g" -gt 0 ] && [ "$g" -lt 150 ] || die "no canary split: $g of 150 on $LIVE"
wait_for 10 rollout_state done || die "the rollout did not finish: $(rollout_state)"
run rollout status web
requests "$NS_CL" 100 "client"
all_on "$LIVE" || die "expected every new connection on $LIVE: $j"
printf '  %s$ bgctl history web (the agent'"'"'s steps)%s\n' "$DIM" "$N"
lbctl -j history web | jq -r '.records[] | select(.actor == "bgagent" and .status == "done" and
	(.reason // "" | startswith("rollout "))) | "    \(.time) \(.actor) \(.verb): \(.reason)"' |
	tail -2 | colorize

say "Release v4 on $IDLE is bad: its servers reset every request (their health checks pass)." \
	"It rolls out; after the flip, bgagent's post-flip check rolls it back on its own"
servers_restart "$IDLE" --reset
run rollout start web --reason "release v4" || die "rollout start failed"
wait_for 10 live_of_web "$IDLE" || die "the rollout did not flip to $IDLE"
t0=$(now_ms)
GEN=$(lbjq '.services[0].generation' -j status web)
agent_wait_log "post-flip check: watching $IDLE for 10s (flip generation $GEN)" ||
	die "the agent does not watch the flip: $(tail -3 "$AGENT_LOG")"
note "$(printf 'flipped to %s by the rollout; the post-flip check watches it' "$IDLE" | colorize)"
# real traffic to the bad release (bounded: 3000 connections or 25 s)
nsx "$NS_CL" timeout 30 python3 "$BGS_ROOT/vm-tests/client.py" http "$VIP_NAT" 80 3000 \
	--timeout 1 --deadline 25 >/dev/null 2>&1 &
TRAFFIC=$!
BGS_PIDS+=($TRAFFIC)
wait_for 12 live_of_web "$LIVE" || die "no rollback: $(tail -3 "$AGENT_LOG")"
note "$(printf 'rolled back to %s %s ms after the flip' "$LIVE" $(($(now_ms) - t0)) | colorize)"
kill "$TRAFFIC" 2>/dev/null
REC=$(lbctl -j history web | jq -c '[.records[] | select(.verb == "rollback" and
	.actor == "bgagent" and .status == "done")] | last // empty')
[ -n "$REC" ] && jqt '.reason | test("^post-flip check: .* resets [0-9]+/s > 5/s$")' <<<"$REC" ||
	die "no rollback by the post-flip check in the history: $REC"
printf '  %s$ bgctl history web (the agent'"'"'s record)%s\n' "$DIM" "$N"
jq -r '"    \(.time) \(.actor) \(.verb) \(.from) -> \(.to): \(.reason)"' <<<"$REC" | colorize
run rollout status web
requests "$NS_CL" 100 "client"
all_on "$LIVE" || die "expected every new connection back on $LIVE: $j"

printf '\n%sDemo done in %.0fs: removing namespaces, pins and attachments.%s\n' "$B" \
	"$(awk -v a="$(date +%s.%N)" -v b="$T0" 'BEGIN { print a - b }')" "$N"
exit 0
