#!/bin/sh
# Reproduces the gateway table of BENCHMARKS.md (## gateway) in one run: the Go demo's
# /counter through nginx → scgi-gateway against the real Quixote 3.8 + session3 /counter
# through nginx → Quixote's SCGI server, session directory on ext4 and on tmpfs, 1 and
# 200 logged-in sessions, wrk -t1 -c16; then the gateway's resident memory across 10
# consecutive runs of the 200-session ext4 load. Needs nginx, wrk and the Python peers
# of testdata/py/requirements.txt (QXBRIDGE_PYTHON or .venv). Settings of the benchmark
# (WRK_DURATION, WRK_ROUNDS, BENCH_EXT4_DIR, BENCH_TMPFS_DIR, ...) pass through; see
# BenchmarkGatewayCounter in gateway/bench_counter_test.go.
set -eu
cd "$(dirname "$0")/.."
echo "uptime: $(uptime)"
go test -v -count=1 -run '^$' -bench '^BenchmarkGatewayCounter$' -benchtime=1x -timeout 30m ./gateway |
	grep -v -e '^        \[' -e '\[notice\]' -e '\[info\]'
echo "uptime: $(uptime)"
