// The neondot variant of the conv family: neon.cc with sdot (compiled with +dotprod).
#define FQ_NEON_DOT 1
#include "neon.cc"
