#!/bin/sh
# Fuzz the configuration front end for SECONDS (default 60) with libFuzzer.
# Usage: Fuzz/run.sh [SECONDS]     (from anywhere; findings land in .build/fuzz-config-findings/)
set -eu
seconds="${1:-60}"
cd "$(dirname "$0")/.."
mkdir -p .build .build/fuzz-config-corpus .build/fuzz-config-findings
swiftc -sanitize=fuzzer -parse-as-library -O \
    Sources/FerryCore/Config/*.swift Fuzz/ConfigFuzz.swift -o .build/fuzz-config
# Seed from the shipped examples and the nginx fixture, so mutations start from real shapes.
cp examples/*.conf Tests/Fixtures/*.conf .build/fuzz-config-corpus/
exec .build/fuzz-config -max_total_time="$seconds" -max_len=8192 -timeout=10 -rss_limit_mb=2048 \
    -artifact_prefix=.build/fuzz-config-findings/ -print_final_stats=1 \
    .build/fuzz-config-corpus
