#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# bgagent built with ASan/UBSan (BGS_BUILD_SAN) through a realistic run: attach to six
# interfaces, http checks every 100 ms, traffic, a backend going down and up, a failover of
# web to green, a SIGHUP with a bad config (refused) and one adding a backend and a second
# service, metrics scrapes, and SIGTERM. It fails on any sanitizer report, on a leak at exit
# (LeakSanitizer), or if the agent does not exit 0 on SIGTERM.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
BGS_BUILD_SAN=${BGS_BUILD_SAN:-$BGS_ROOT/build/san}
BGAGENT=$BGS_BUILD_SAN/bgagent
. "$(dirname "$0")/agent_lib.sh"

[ -x "$BGAGENT" ] || skip "no sanitizer bgagent at $BGAGENT (build first: make SAN=1 test-build)"
# Every report goes to its own file under the run directory (the agent's children too).
SAN_LOG=$BGS_RUN/san
export ASAN_OPTIONS="detect_leaks=1:halt_on_error=1:abort_on_error=0:exitcode=86:log_path=$SAN_LOG"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:exitcode=87:log_path=$SAN_LOG"
export LSAN_OPTIONS="exitcode=88:log_path=$SAN_LOG"

san_reports() { cat "$SAN_LOG".* 2>/dev/null; grep -h -A30 -E "Sanitizer|runtime error" "$AGENT_LOG"; }

agent_up_healthy 100ms
out=$(traffic "$NS_CL" http "$VIP_NAT" 80 20)
check "served by blue" jqt '.ok == 20 and .colors.blue == 20' <<<"$out"
scrape_has() { metrics | grep -- "$1" >/dev/null; } # (grep -q: curl's SIGPIPE fails it)
check "metrics scrape" scrape_has '^bgswitch_backend_up'

# one backend down, then up again (its checks fail, then rise)
responder_stop b1 || fail "cannot stop b1"
check "b1 marked down" wait_eq down backend_health "${BE_ADDR[b1]}:8080" blue
responder_start b1 || fail "cannot restart b1"
check "b1 up again" wait_eq up backend_health "${BE_ADDR[b1]}:8080" blue

# failover: every blue server stops
responder_stop b1 || fail "cannot stop b1"
responder_stop b2 || fail "cannot stop b2"
live_of_web() { lbjq '.services[0].live' -j status web; }
for _ in $(seq 1 5); do wait_eq green live_of_web && break; done
check "failover: web live on green" test "$(live_of_web)" = green
out=$(traffic "$NS_CL" http "$VIP_NAT" 80 20)
check "served by green after the failover" jqt '.ok == 20 and .colors.green == 20' <<<"$out"
responder_start b1 || fail "cannot restart b1"
responder_start b2 || fail "cannot restart b2"

# SIGHUP: a bad config (refused, old one kept), then a good one with more in it
cp "$AGENT_CFG" "$BGS_RUN/good.yaml"
sed -i 's/rise: 2/rise: many/' "$AGENT_CFG"
kill -HUP "$AGENT_PID"
agent_wait_log "reload failed" || fail "bad config on SIGHUP: no 'reload failed'"
cp "$BGS_RUN/good.yaml" "$AGENT_CFG"
sed -i "s|blue:  \[{address: \"${BE_ADDR[b1]}:8080\"}|blue:  [{address: \"${BE_ADDR[b1]}:8080\"}, {address: \"${BE_ADDR[b1]}:80\"}|" \
	"$AGENT_CFG"
cat >>"$AGENT_CFG" <<EOF2
  - name: api
    vip: "$VIP_NAT:8000/tcp"
    mode: nat
    pools:
      blue:  [{address: "${BE_ADDR[b2]}:80"}]
      green: [{address: "${BE_ADDR[g2]}:80"}]
    health_check: {type: tcp, interval: $(slow_d 100ms), timeout: $(slow_d 100ms), rise: 2, fall: 3}
EOF2
kill -HUP "$AGENT_PID"
agent_wait_log "reloaded: 2 services" || fail "good config on SIGHUP not reloaded: $(tail -3 "$AGENT_LOG")"
check "api added by the reload" test "$(lbjq '.services | length' -j status)" = 2
check "metrics scrape after the reload" scrape_has 'service="api"'
sleep "$(slow_d 1)" # a few more rounds of checks on both services

# SIGTERM: a clean exit, leak-checked
kill -TERM "$AGENT_PID"
for _ in $(seq 1 "$(slow 300)"); do
	kill -0 "$AGENT_PID" 2>/dev/null || break
	sleep 0.05
done
kill -0 "$AGENT_PID" 2>/dev/null && fail "agent still running $(slow 15) s after SIGTERM"
wait "$AGENT_PID"
rc=$?
reports=$(san_reports)
[ -z "$reports" ] || echo "$reports" | head -n 80 >&2
check "no sanitizer report, no leak" test -z "$reports"
check "agent exited 0 on SIGTERM (exit $rc; 86 ASan, 87 UBSan, 88 leak)" test "$rc" -eq 0
echo "all agent sanitizer checks passed"
