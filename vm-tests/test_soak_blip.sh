#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# Soak 6, a health blip under load: backend b1's health checks fail (its namespace drops the
# checker's packets, the client's traffic still passes) for about 2 s, less than the health
# grace period (10 s, scaled by the slowdown like the checks: lib.sh): bgagent marks b1 down
# (no new flow goes there) and up again -> no established connection reset or moved, no
# failed new connection, no UDP loss beyond the undisturbed baseline's.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/agent_lib.sh"
. "$(dirname "$0")/soak_lib.sh"

command -v nft >/dev/null || skip "missing tool 'nft' (the blip drops the checker's packets)"
# the data plane's grace period, in whole seconds, set when the state is created (bgctl
# init); the agent's config says the same, so the agent adopts that state
GRACE_S=$(slow 10)
BGS_INIT_ARGS="--timeout health_grace=${GRACE_S}s"
SOAK_TIMEOUTS="{health_grace: ${GRACE_S}s}"
soak_agent_up 60s false
check "the state's health grace period is ${GRACE_S} s" \
	test "$(lbjq .timeouts.health_grace status)" = "$GRACE_S"
health_b1() {
	lbjq ".services[0].pools.blue.backends[] | select(.address == \"${BE_ADDR[b1]}:$LOAD_TCP\") | .health" \
		-j status load
}
load_run base "$SOAK_BASE_S"
expect_no_loss base

load_start blip
sleep 1
# b1 ignores the checker (the LB's address on its link), TCP to the service ports only
t0=$(us_now)
nsx "$(ns_be b1)" nft -f - <<NFT || fail "nft in b1"
table inet blip {
	chain in {
		type filter hook input priority 0;
		ip saddr ${BE_LB[b1]} tcp dport { $LOAD_TCP, $LOAD_UDP } drop
	}
}
NFT
for _ in $(seq 1 "$(slow 100)"); do
	[ "$(health_b1)" = down ] && break
	sleep 0.05
done
t_down=$(us_now)
check "b1 marked down by its checks ($(((t_down - t0) / 1000)) ms)" test "$(health_b1)" = down
sleep 2
nsx "$(ns_be b1)" nft delete table inet blip || fail "nft delete in b1"
for _ in $(seq 1 "$(slow 100)"); do
	[ "$(health_b1)" = up ] && break
	sleep 0.05
done
t_up=$(us_now)
check "b1 up again ($(((t_up - t0) / 1000)) ms after the blip began, grace ${GRACE_S} s)" \
	test "$(health_b1)" = up
[ $(((t_up - t0) / 1000000)) -lt $((GRACE_S - 1)) ] ||
	fail "the blip lasted longer than the grace period (${GRACE_S} s): nothing proven"
sleep 1
load_stop blip
expect_no_loss blip base
