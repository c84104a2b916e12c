// Deliberately floating-point: the integer-only check must flag this object (see CMakeLists.txt).
float fq_canary_scale(float a, float b) { return a * b + 0.5f; }
double fq_canary_convert(int x) { return x * 0.25; }
