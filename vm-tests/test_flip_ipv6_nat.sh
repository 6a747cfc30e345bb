#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# nat mode over IPv6 end to end: TCP and UDP reach blue; a flip sends new flows to green while
# open flows keep their blue backend; rollback sends new flows back to blue.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/flip_scenario.sh"
run_flip_scenario nat 6
