#!/usr/bin/env bash
# Runs go test verbosely, shows failures with their output (not the long list of passes), and
# ends with one "N passed, N failed, N skipped" line counting tests and subtests.
set -uo pipefail
log=$(mktemp)
trap 'rm -f "$log"' EXIT
go test -v "$@" 2>&1 | tee "$log" | grep -vE '^\s*(=== (RUN|PAUSE|CONT|NAME)|--- PASS|PASS$)'
status=${PIPESTATUS[0]}
passed=$(grep -cE '^\s*--- PASS' "$log")
failed=$(grep -cE '^\s*--- FAIL' "$log")
skipped=$(grep -cE '^\s*--- SKIP' "$log")
echo
echo "tests: $passed passed, $failed failed, $skipped skipped"
exit "$status"
