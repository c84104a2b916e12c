#!/bin/sh
# llama_generate.sh FQRUN MODELS_DIR EXPECTED: `fqrun generate` greedy from BOS prints llama2.c's
# output byte for byte. run.c ends its stdout with a newline that the captured EXPECTED file lacks,
# so one is appended to it when missing before comparing.
set -eu
fqrun=$1; models=$2; expected=$3
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
cp "$expected" "$tmp/expected"
[ "$(tail -c 1 "$tmp/expected" | od -An -c | tr -d ' ')" = '\n' ] || printf '\n' >> "$tmp/expected"
"$fqrun" generate "$models/stories260K-f32.yaml" --temp 0 -n 200 > "$tmp/out" 2> "$tmp/err"
cat "$tmp/err"
cmp "$tmp/out" "$tmp/expected"
echo "fqrun generate output matches $expected"
