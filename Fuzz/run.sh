#!/bin/sh
# Fuzz the configuration front end for SECONDS (default 60) with libFuzzer.
# Usage: Fuzz/run.sh [SECONDS]     (from anywhere; findings land in .build/fuzz-config-findings/)
# FerryCore is compiled whole with the fuzz entry (the C shim as a module from its header):
# the configuration checks use the log template and the access-log limits, so Config/ does
# not build alone, and a list of files picked by hand broke each time one moved.
set -eu
seconds="${1:-60}"
cd "$(dirname "$0")/.."
mkdir -p .build/fuzz-shim .build/fuzz-config-corpus .build/fuzz-config-findings
cat > .build/fuzz-shim/module.modulemap <<MAP
module CLinux {
    header "$(pwd)/Sources/CLinux/include/CLinux.h"
    export *
}
MAP
clang -O2 -D_GNU_SOURCE -c Sources/CLinux/shim.c -I Sources/CLinux/include -o .build/fuzz-shim/shim.o
swiftc -sanitize=fuzzer -parse-as-library -O -module-name FerryFuzz -I .build/fuzz-shim \
    $(find Sources/FerryCore -name '*.swift') Fuzz/ConfigFuzz.swift .build/fuzz-shim/shim.o -o .build/fuzz-config
# Seed from the shipped examples and the nginx fixture, so mutations start from real shapes.
cp examples/*.conf Tests/Fixtures/*.conf .build/fuzz-config-corpus/
exec .build/fuzz-config -max_total_time="$seconds" -max_len=8192 -timeout=10 -rss_limit_mb=2048 \
    -artifact_prefix=.build/fuzz-config-findings/ -print_final_stats=1 \
    .build/fuzz-config-corpus
