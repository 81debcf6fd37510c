#!/usr/bin/env bash
# Runs every cargo-fuzz target of the project for a bounded time each and
# fails if any of them finds a crash. Not run in CI: it needs a nightly
# toolchain and cargo-fuzz (`cargo install cargo-fuzz`), and takes minutes.
#
# Usage: scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]
#   SECONDS_PER_TARGET  default 60 (also FUZZ_SECONDS)
#   TARGET              e.g. `token` or `router/api:token`; default: all
#
# Targets (crate directory: target):
#   router:        rewrite   (playlist scanner and renderer)
#   router/api:    token     (segment token parser/verifier, split_token, keys)
#                  session   (viewer session decoder)
#                  ad        (ad decoder, validation, ordering)
#   origin-client: path      (request path normalizer)
#
# Each target starts from its committed seeds (`<crate>/fuzz/seeds/<target>/`,
# for `rewrite` the playlist corpus) and keeps what it learns in
# `<crate>/fuzz/corpus/<target>/`; a crash is saved under
# `<crate>/fuzz/artifacts/<target>/` (none of these three are committed).
# Replay one with `cargo +nightly fuzz run TARGET ARTIFACT` in the crate
# directory, then turn it into a unit test before fixing it.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

seconds=${1:-${FUZZ_SECONDS:-60}}
if [[ $# -gt 0 ]]; then shift; fi
if ! [[ $seconds =~ ^[0-9]+$ ]] || [[ $seconds -eq 0 ]]; then
    echo "usage: $0 [SECONDS_PER_TARGET] [TARGET...]" >&2
    exit 2
fi
toolchain=${FUZZ_TOOLCHAIN:-nightly}
if ! cargo "+$toolchain" fuzz --version >/dev/null 2>&1; then
    echo "needs a $toolchain toolchain and cargo-fuzz: rustup toolchain install $toolchain && cargo install cargo-fuzz" >&2
    exit 2
fi

all=(router:rewrite router/api:token router/api:session router/api:ad origin-client:path)
selected=()
if [[ $# -eq 0 ]]; then
    selected=("${all[@]}")
else
    for want in "$@"; do
        found=
        for entry in "${all[@]}"; do
            if [[ $entry == "$want" || ${entry#*:} == "$want" ]]; then
                selected+=("$entry")
                found=1
            fi
        done
        if [[ -z $found ]]; then
            echo "unknown target $want (known: ${all[*]})" >&2
            exit 2
        fi
    done
fi

summary=()
failed=0
for entry in "${selected[@]}"; do
    crate=${entry%%:*}
    target=${entry#*:}
    dir="$root/$crate"
    corpus="fuzz/corpus/$target"
    seeds="fuzz/seeds/$target"
    mkdir -p "$dir/$corpus" "$dir/fuzz/artifacts/$target"
    if [[ $target == rewrite ]]; then
        seeds="tests/playlists"
    fi
    args=(-max_total_time="$seconds" -print_final_stats=1)
    dict="$dir/fuzz/$target.dict"
    if [[ $target == session ]]; then
        dict="$dir/fuzz/token.dict"
    fi
    if [[ -f $dict ]]; then
        args+=(-dict="$dict")
    fi
    echo "== $crate: $target: building"
    (cd "$dir" && cargo "+$toolchain" fuzz build "$target")
    log=$(mktemp)
    marker=$(mktemp)
    echo "== $crate: $target for ${seconds}s"
    started=$(date +%s)
    set +e
    (cd "$dir" && cargo "+$toolchain" fuzz run "$target" "$corpus" "$seeds" -- "${args[@]}") 2>&1 |
        tee "$log" | grep -E "^(Done|==[0-9]+==|SUMMARY|artifact_prefix|Test unit written)"
    statuses=("${PIPESTATUS[@]}")
    set -e
    status=${statuses[0]}
    elapsed=$(( $(date +%s) - started ))
    execs=$(grep -Eo 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -Eo '[0-9]+$' | tail -1)
    crashes=$(find "$dir/fuzz/artifacts/$target" -type f -newer "$marker" | wc -l)
    rm -f "$marker"
    if [[ $status -ne 0 ]]; then
        failed=1
        summary+=("$crate:$target  FAILED (exit $status) after ${elapsed}s, ${execs:-?} execs, new artifacts: $crashes; log: $log")
    else
        summary+=("$crate:$target  ok  ${elapsed}s  ${execs:-?} execs  corpus $(find "$dir/$corpus" -type f | wc -l)  new artifacts $crashes")
        rm -f "$log"
    fi
done

echo
printf '%s\n' "${summary[@]}"
exit $failed
