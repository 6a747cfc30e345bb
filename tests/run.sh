#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# tests/run.sh BUILD_SAN BUILD_REL
#
# Runs every test binary of BUILD_SAN/tests (each prints `ok NAME`, `FAIL NAME` or
# `skip NAME: REASON` per sub-test and exits 0, 1 or 249), then every vm-tests/test_*.sh
# scenario (exit 0 pass, 249 skip, anything else fail; BGS_BUILD and BGS_BUILD_SAN point
# at the builds). Ends with one line: `N passed, N failed` (`, N skipped` when some were).
# Exit status: non-zero if anything failed. BGS_ONLY (an extended regexp on the binary or
# scenario file name, e.g. '^test_routing$|^test_flip_nat\.sh$') runs a subset. BGS_EXCLUDE
# (lines "NAME: REASON") leaves those tests out, each counted as skipped with its reason.
set -u

san=${1:-build/san}
rel=${2:-build/rel}
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here" || exit 1

# Bounds: a hung binary or scenario fails instead of stalling `make test`.
BIN_TIMEOUT=${BGS_TEST_TIMEOUT:-300}
VM_TIMEOUT=${BGS_VM_TEST_TIMEOUT:-600}

passed=0
failed=0
skipped=0
failures=()
skips=()

# Sanitizer settings: fail on the first UBSan report, report leaks.
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}

run_binary() {
	local bin=$1 name out rc p f s line
	name=$(basename "$bin")
	out=$(mktemp)
	echo "== $name"
	timeout --kill-after=10 "$BIN_TIMEOUT" "$bin" 2>&1 | tee "$out"
	rc=${PIPESTATUS[0]}
	p=$(grep -c '^ok ' "$out")
	f=$(grep -c '^FAIL ' "$out")
	s=$(grep -c '^skip ' "$out")
	passed=$((passed + p))
	failed=$((failed + f))
	skipped=$((skipped + s))
	while IFS= read -r line; do failures+=("$line"); done < <(grep '^FAIL ' "$out")
	while IFS= read -r line; do skips+=("$line"); done < <(grep '^skip ' "$out")
	case $rc in
	0)
		if [ "$f" -ne 0 ]; then
			: # counted above
		elif [ "$p" -eq 0 ] && [ "$s" -eq 0 ]; then
			failed=$((failed + 1))
			failures+=("FAIL $name: exited 0 without reporting any test")
		fi
		;;
	249)
		if [ "$s" -eq 0 ]; then
			skipped=$((skipped + 1))
			skips+=("skip $name: $(tail -n 1 "$out")")
		fi
		;;
	124 | 137)
		failed=$((failed + 1))
		failures+=("FAIL $name: timed out after ${BIN_TIMEOUT}s")
		;;
	*)
		# a crash or sanitizer report after its last line still fails the binary
		if [ "$f" -eq 0 ]; then
			failed=$((failed + 1))
			failures+=("FAIL $name: exit status $rc")
		fi
		;;
	esac
	rm -f "$out"
}

run_scenario() {
	local sc=$1 name out rc
	name=vm-tests/$(basename "$sc")
	out=$(mktemp)
	echo "== $name"
	BGS_BUILD=$rel BGS_BUILD_SAN=$san timeout --kill-after=10 "$VM_TIMEOUT" bash "$sc" 2>&1 |
		tee "$out"
	rc=${PIPESTATUS[0]}
	case $rc in
	0)
		passed=$((passed + 1))
		echo "ok $name"
		;;
	249)
		skipped=$((skipped + 1))
		skips+=("skip $name: $(grep -v '^[[:space:]]*$' "$out" | tail -n 1)")
		echo "skip $name"
		;;
	124 | 137)
		failed=$((failed + 1))
		failures+=("FAIL $name: timed out after ${VM_TIMEOUT}s")
		echo "FAIL $name"
		;;
	*)
		failed=$((failed + 1))
		failures+=("FAIL $name: exit status $rc")
		echo "FAIL $name"
		;;
	esac
	rm -f "$out"
}

only() { [ -z "${BGS_ONLY:-}" ] || [[ $(basename "$1") =~ $BGS_ONLY ]]; }

# excluded NAME: its line of BGS_EXCLUDE (and it is counted as skipped), or false.
excluded() {
	local line
	line=$(grep -m 1 -F -- "$1: " <<<"${BGS_EXCLUDE:-}") || return 1
	[ "${line%%: *}" = "$1" ] || return 1
	echo "== $1"
	echo "skip $1: excluded: ${line#*: }"
	skipped=$((skipped + 1))
	skips+=("skip $1: excluded: ${line#*: }")
}

shopt -s nullglob
bins=()
nbins=0
for b in "$san"/tests/test_*; do
	[ -f "$b" ] && [ -x "$b" ] || continue
	nbins=$((nbins + 1))
	only "$b" && bins+=("$b")
done
# (none built is a failure; none picked by BGS_ONLY is not)
if [ "$nbins" -eq 0 ]; then
	echo "no test binaries in $san/tests (run: make SAN=1 test-build)"
	failed=$((failed + 1))
	failures+=("FAIL tests: no test binaries in $san/tests")
fi
for b in "${bins[@]}"; do
	excluded "$(basename "$b")" || run_binary "$b"
done

# Scenarios are vm-tests/test_*.sh; the other *.sh there are helpers they source.
for sc in vm-tests/test_*.sh; do
	only "$sc" || continue
	excluded "$(basename "$sc")" || run_scenario "$sc"
done

echo
if [ ${#skips[@]} -gt 0 ]; then
	echo "skipped:"
	printf '  %s\n' "${skips[@]}"
fi
if [ ${#failures[@]} -gt 0 ]; then
	echo "failed:"
	printf '  %s\n' "${failures[@]}"
fi
summary="$passed passed, $failed failed"
[ "$skipped" -gt 0 ] && summary+=", $skipped skipped"
echo "$summary"
[ "$failed" -eq 0 ]
