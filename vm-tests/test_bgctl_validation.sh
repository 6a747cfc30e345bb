#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# bgctl input validation against real pinned state: every bad-value class of every verb
# gets its documented exit code, one clear line naming the bad value (also as JSON under
# -j), no crash, and no change at all (status, service list, previews and history compared
# before and after). The state is created with two flow timeouts (init --timeout): init -j
# and status show them, and an init with other values is refused. Then a bounded batch of
# random argument vectors: none may crash, hang or change state when it fails.
set -uo pipefail
# bad input is where a crash would hide: drive the ASan/UBSan build when there is one
if [ -z "${BGCTL:-}" ] && [ -n "${BGS_BUILD_SAN:-}" ] && [ -x "$BGS_BUILD_SAN/bgctl" ]; then
	BGCTL=$BGS_BUILD_SAN/bgctl
	# a sanitizer report exits 134 (abort), which the checks below count as a crash
	export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1:abort_on_error=1
	export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
fi
. "$(dirname "$0")/lib.sh"

bgs_require
# the state is created with two flow timeouts set (bgctl init --timeout, checked below)
BGS_INIT_ARGS="--timeout health_grace=3s --timeout udp=20s"
bgs_state_up
lbctl service add web --vip 10.100.0.1:80/tcp >/dev/null || fail "service add web"
lbctl service add edge --vip 10.100.0.2:80/tcp --mode dsr >/dev/null || fail "service add edge"
lbctl backend add web blue 10.1.1.2:8080 >/dev/null || fail "backend add"
lbctl backend add web green 10.1.1.3:8080 >/dev/null || fail "backend add"
lbctl preview web add 10.0.2.0/24 >/dev/null || fail "preview add"

# The timeouts given at creation are the loaded ones (init -j adopting the state, status -j
# and its text); the others keep their defaults.
out=$(lbctl -j init --timeout health_grace=3s --timeout udp=20s) || fail "init again with the same timeouts"
check "init -j on the state: adopted, timeouts health_grace 3 s and udp 20 s, the rest default" \
	jqt '.created == false and .timeouts == {tcp_syn: 60, tcp_est: 900, tcp_close: 30,
		udp: 20, time_wait: 10, health_grace: 3}' <<<"$out"
check "status -j shows the loaded timeouts" \
	jqt '.timeouts.health_grace == 3 and .timeouts.udp == 20 and .timeouts.tcp_est == 900' \
	<<<"$(lbctl -j status)"
status_text_has() { lbctl status | grep -q -- "$1"; }
check "status shows them in its text" status_text_has "^flow timeouts: .*udp 20s, .*health_grace 3s$"

snap() {
	lbctl -j status
	lbctl -j service list
	lbctl -j preview web list
	# Refusals found under the library's lock leave an intent and a "failed" record (an
	# audit of the attempt); no change may leave a "done" one.
	grep -c '"phase":"done"' "$BGSWITCH_HISTORY"
}

before=$(snap)
n=0
# bad EXIT 'TEXT IN MESSAGE' ARGS...
bad() {
	local want=$1 text=$2 out rc
	shift 2
	out=$(lbctl "$@" 2>&1 >/dev/null)
	rc=$?
	n=$((n + 1))
	[ $rc -eq "$want" ] || fail "bgctl $*: exit $rc, want $want ($out)"
	[ "$(wc -l <<<"$out")" -eq 1 ] || fail "bgctl $*: want one line, got: $out"
	[[ "$out" == *"$text"* ]] || fail "bgctl $*: message '$out' does not mention '$text'"
	out=$(lbctl -j "$@" 2>/dev/null)
	rc=$?
	jqt ".error.exit == $want and (.error.message | contains(\"$text\"))" <<<"$out" ||
		fail "bgctl -j $*: want a JSON error with exit $want naming '$text', got: $out"
}

# usage and verbs
bad 2 "unknown verb 'frobnicate'" frobnicate
bad 2 "ambiguous" d web
bad 2 "unknown option '--bogus'" status --bogus
bad 2 "needs a value" flip web --to
bad 2 "bgctl service needs one of" service
# names
bad 2 "bad service name 'we/b'" service add we/b --vip 10.0.0.9:80
bad 2 "bad service name ''" service add "" --vip 10.0.0.9:80
bad 2 "bad service name" service add aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa --vip 10.0.0.9:80
bad 2 "bad service name 'web x'" flip "web x"
bad 3 "no service named 'nope'" flip nope
bad 3 "no service named 'nope'" status nope
bad 4 "already exists" service add web --vip 10.0.0.9:80
# VIPs and ports
bad 2 "bad VIP '10.0.0.9'" service add s1 --vip 10.0.0.9
bad 2 "bad VIP port '0'" service add s1 --vip 10.0.0.9:0
bad 2 "bad VIP port '65536'" service add s1 --vip 10.0.0.9:65536
bad 2 "bad address '10.0.0.256'" service add s1 --vip 10.0.0.256:80
bad 2 "bad protocol 'sctp'" service add s1 --vip 10.0.0.9:80/sctp
bad 2 "bad VIP" service add s1 --vip "[2001:db8::1]80"
bad 2 "bad --mode 'l3'" service add s1 --vip 10.0.0.9:80 --mode l3
bad 2 "nat services only" service add s1 --vip 10.0.0.9:80 --mode dsr --preview-port 8081
bad 2 "is the VIP port" service add s1 --vip 10.0.0.9:80 --preview-port 80
bad 2 "needs --vip" service add s1
# backends
bad 2 "bad color 'red'" backend add web red 10.1.1.4:8080
bad 2 "bad color 'BLUE'" backend add web BLUE 10.1.1.4:8080
bad 2 "bad address '10.1.1.999'" backend add web blue 10.1.1.999:8080
bad 2 "bad port '0'" backend add web blue 10.1.1.4:0
bad 2 "bad --weight '0'" backend add web blue 10.1.1.4:8080 --weight 0
bad 2 "bad --weight '65536'" backend add web blue 10.1.1.4:8080 --weight 65536
bad 2 "bad --weight 'ten'" backend add web blue 10.1.1.4:8080 --weight ten
bad 2 "is IPv6" backend add web blue 2001:db8::1
bad 2 "must equal the VIP port" backend add edge blue 10.1.1.4:8080
bad 4 "already has backend 10.1.1.2:8080" backend add web green 10.1.1.2:8080
bad 3 "no service named 'nope'" backend add nope blue 10.1.1.4:8080
bad 3 "has no backend 10.1.1.9:8080" backend del web 10.1.1.9:8080
bad 3 "in the blue pool, not green" backend del web green 10.1.1.2:8080
bad 2 "bad --state 'sleeping'" backend set web 10.1.1.2:8080 --state sleeping
bad 2 "needs --state" backend set web 10.1.1.2:8080
# flips
bad 2 "bad color 'purple'" flip web --to purple
bad 2 "bad --expect-generation 'abc'" flip web --expect-generation abc
bad 2 "bad --expect-generation '4294967296'" flip web --expect-generation 4294967296
bad 2 "bad --drain-timeout '5x'" flip web --drain-timeout 5x
bad 2 "bad --drain-timeout '1.5s'" flip web --drain-timeout 1.5s
bad 2 "bad --drain-timeout '8d'" flip web --drain-timeout 8d
bad 2 "bad --drain-timeout 's'" flip web --drain-timeout s
bad 2 "control characters" flip web --reason "$(printf 'a\tb')"
bad 2 "reason too long" flip web --reason "$(printf 'x%.0s' $(seq 1 300))"
bad 4 "not 999" flip web --expect-generation 999
bad 4 "never been flipped" rollback web
bad 4 "no usable backend" flip edge
# canary
bad 2 "negative numbers are not allowed" canary web -5
for p in 101 100.01 10.123 abc 1e2 10. .5 "" 10%% 1,5; do
	bad 2 "bad percentage" canary web "$p"
done
bad 4 "not 999" canary web 10 --expect-generation 999
# previews
bad 2 "bits set past /24" preview web add 10.0.3.1/24
bad 2 "bad prefix length" preview web add 10.0.3.0/33
bad 2 "bad prefix '10.0.3.0'" preview web add 10.0.3.0
bad 2 "bad address 'x'" preview web add x/8
bad 2 "bad preview action 'put'" preview web put 10.0.3.0/24
bad 2 "is IPv6" preview web add 2001:db8::/64
bad 3 "has no preview prefix 10.0.9.0/24" preview web del 10.0.9.0/24
bad 4 "already has preview prefix" preview web add 10.0.2.0/24
# drain, status, conntrack, history
bad 4 "is the live color" drain web --kill --color blue
bad 2 "bad color 'x'" drain web --color x
bad 2 "bad --interval '10ms'" status --watch --interval 10ms
bad 2 "bad --limit 'many'" conntrack --limit many
bad 2 "bad --limit '-1'" history --limit -1
bad 3 "no interface named 'nosuch0'" attach nosuch0
bad 2 "bad --xdp-mode 'hw'" attach c1 --xdp-mode hw
bad 2 "takes no arguments" init extra
bad 2 "bad --maglev-size 100: expected a prime" init --maglev-size 100
bad 2 "bad --max-services '0'" init --max-services 0
bad 2 "bad --ct-entries 8" init --ct-entries 8
# flow timeouts: a bad name or value changes nothing (exit 2); other values than the state
# was created with are refused by the library (exit 4), saying which
bad 2 "bad --timeout 'bogus=1s': 'bogus' is not a timeout (NAME is tcp_syn" init --timeout bogus=1s
bad 2 "bad --timeout 'udp': expected NAME=DURATION" init --timeout udp
bad 2 "bad --timeout '=5s': expected NAME=DURATION" init --timeout =5s
bad 2 "bad --timeout udp '1.5s': expected whole seconds" init --timeout udp=1.5s
bad 2 "bad --timeout udp '500ms': expected whole seconds" init --timeout udp=500ms
bad 2 "bad --timeout tcp_est '8d'" init --timeout tcp_est=8d
bad 2 "bad --timeout udp '20': expected whole seconds" init --timeout udp=20
bad 2 "bad --timeout tcp_syn '0': at least 1s (0 only for time_wait and health_grace)" \
	init --timeout tcp_syn=0
bad 2 "bad --timeout 'udp=30s': udp is given twice" init --timeout udp=20s --timeout udp=30s
bad 4 "were created with timeouts.udp 20 s, not 30 s: remove them with 'bgctl destroy'" \
	init --timeout udp=30s
bad 4 "were created with timeouts.health_grace 3 s, not 0 s" init --timeout health_grace=0
bad 4 "were created with timeouts.tcp_est 900 s, not 3600 s" init --timeout tcp_est=1h
ok "$n bad inputs: documented exit code, one clear line naming the value, JSON error under -j"

after=$(snap)
[ "$before" = "$after" ] || fail "state changed by refused commands: $(diff <(echo "$before") <(echo "$after"))"
ok "state unchanged after every refused command"

# Random argument vectors: never a crash (exit >= 128), never a hang, never a change on failure.
nsx "$NS_LB" python3 - "$BGCTL" "$BGSWITCH_HISTORY" <<'EOF' || fail "random argument vectors"
import json, random, subprocess, sys
bgctl, hist = sys.argv[1], sys.argv[2]
rng = random.Random(20261126)
tokens = ["init", "service", "backend", "flip", "rollback", "canary", "preview", "drain",
          "status", "conntrack", "history", "add", "del", "set", "list", "web", "edge", "nope",
          "blue", "green", "red", "10.1.1.2", "10.1.1.2:8080", "10.1.1.5:80", "[::1]:0", "::",
          "10.0.2.0/24", "10.0.3.0/24", "10.100.0.9:80/udp", "--to", "--expect-generation",
          "--drain-timeout", "--reason", "--force", "--sticky", "--kill", "--color", "--state",
          "--weight", "--vip", "--mode", "--preview-port", "--limit", "--flows", "-j", "-p",
          "nat", "dsr", "up", "down", "drain", "0", "1", "-1", "10", "10.5", "100", "101",
          "65535", "65536", "4294967296", "99999999999999999999999", "30s", "5m", "1h", "",
          "-", "--", "%s%n%x", "\u00e9\u00e8", "x" * 5000, "1e9", "0x10", " web", "web\n"]
def timeless(o):
    # A drain's time left moves by itself; everything else must stay put.
    if isinstance(o, dict):
        return {k: timeless(v) for k, v in o.items() if k not in ("time_left_s", "ended")}
    if isinstance(o, list):
        return [timeless(v) for v in o]
    return o
def snap():
    out = []
    for a in (["-j", "status"], ["-j", "service", "list"], ["-j", "preview", "web", "list"]):
        r = subprocess.run([bgctl] + a, capture_output=True, timeout=10).stdout
        try:
            out.append(timeless(json.loads(r)))
        except ValueError:
            out.append(r)
    out.append(open(hist, "rb").read().count(b'"phase":"done"'))
    return out
state = snap()
runs = fails = 0
for i in range(300):
    argv = [rng.choice(tokens) for _ in range(rng.randint(1, 6))]
    if rng.random() < 0.8:  # mostly a real verb, often a real service: reach deeper checks
        argv[0] = rng.choice(tokens[:11])
        if len(argv) > 1 and rng.random() < 0.5:
            argv[1] = rng.choice(["web", "edge", "add", "del", "set", "list"])
    try:
        p = subprocess.run([bgctl] + argv, capture_output=True, timeout=10)
    except subprocess.TimeoutExpired:
        print("hang:", argv); sys.exit(1)
    runs += 1
    if p.returncode >= 128 or p.returncode < 0:
        print("crash:", p.returncode, argv, p.stderr[-500:]); sys.exit(1)
    if p.returncode in (0,):
        state = snap()
        continue
    fails += 1
    if not p.stderr.strip() and not p.stdout.strip():
        print("silent failure:", p.returncode, argv); sys.exit(1)
    now = snap()
    if now != state:
        print("state changed by a failed command:", p.returncode, argv, p.stderr[:300]); sys.exit(1)
print(f"ok - {runs} random argument vectors: {fails} refused without a crash or a change, "
      f"{runs - fails} accepted")
EOF
echo "validation checks passed"
