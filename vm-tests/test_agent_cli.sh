#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# bgagent's command line, touching nothing: --help, --version, bad usage (exit 2);
# --check-config on the shipped example (exit 0) and on a file with several errors (exit 1,
# every error as FILE:LINE: key: problem on stderr); a bad config at start (exit 1, nothing
# attached or created: the pin directory stays empty).
set -uo pipefail
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/agent_lib.sh"

agent_require
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

check "--help exits 0 with a usage" bash -c "'$BGAGENT' --help | grep -q '^Usage: bgagent'"
check "--version exits 0" bash -c "'$BGAGENT' --version | grep -q '^bgagent '"
"$BGAGENT" --bogus >/dev/null 2>&1
check "an unknown option exits 2" test $? -eq 2
"$BGAGENT" --config a b >/dev/null 2>&1
check "a stray argument exits 2" test $? -eq 2
check "the shipped example is good" \
	"$BGAGENT" --check-config "$BGS_ROOT/scripts/bgswitch.yaml.example"

bad=$tmp/bad.yaml
cat >"$bad" <<'EOF'
pin_dir: relative/dir
services:
  - name: web
    vip: "10.100.0.1:80/tcp"
    pools:
      blue: [{address: "10.1.1.2:8080", weight: 0}]
    health_check: {type: http, interval: 1x}
    colour: blue
timeouts: {tcp_syn: 0, udp: 1.5s}
EOF
out=$("$BGAGENT" --check-config "$bad" 2>&1)
rc=$?
check "a bad config exits 1" test $rc -eq 1
for want in "$bad:8: services\[0\].colour: unknown key" \
	"$bad:1: pin_dir: 'relative/dir' must be an absolute path" \
	"$bad:6: services\[0\].pools.blue\[0\].weight: 0 is out of range" \
	"$bad:7: services\[0\].health_check.interval: bad interval '1x': expected a duration" \
	"$bad:9: timeouts.tcp_syn: bad tcp_syn '0': at least 1s" \
	"$bad:9: timeouts.udp: bad udp '1.5s': expected whole seconds"; do
	grep -q "^$want" <<<"$out" || fail "missing error line '$want' in: $out"
done
ok "every error as FILE:LINE: key: problem"
"$BGAGENT" --check-config "$tmp/none.yaml" 2>"$tmp/err"
check "a missing file exits 1 and says so" grep -q "^$tmp/none.yaml:1: (document): cannot read" "$tmp/err"

mkdir -p "$tmp/pins"
sed -i "s|^pin_dir: .*|pin_dir: $tmp/pins/bgswitch|" "$bad"
"$BGAGENT" --config "$bad" >"$tmp/out" 2>&1
rc=$?
check "a bad config at start exits 1" test $rc -eq 1
check "and says nothing was changed" grep -q "not started: the config has errors" "$tmp/out"
check "nothing was created" test -z "$(ls -A "$tmp/pins")"
