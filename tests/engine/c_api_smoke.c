/* The C API from C: fq_c.h must compile as C99 and work end to end (digits-int8 on one image). */
#include <stdio.h>
#include <string.h>

#include "fq/fq_c.h"

int main(int argc, char** argv) {
  if (argc != 2) return 2;
  fq_model* m = NULL;
  fq_session* s = NULL;
  if (fq_model_load("/nonexistent.yaml", &m) == 0 || strstr(fq_last_error(), "nonexistent") == NULL) {
    fprintf(stderr, "expected an error naming the file, got '%s'\n", fq_last_error());
    return 1;
  }
  if (fq_model_load(argv[1], &m) != 0 || fq_session_create(m, 2, &s) != 0) {
    fprintf(stderr, "%s\n", fq_last_error());
    return 1;
  }
  unsigned char image[28 * 28];
  for (int y = 0; y < 28; ++y) /* a vertical bar: a "1" */
    for (int x = 0; x < 28; ++x) image[y * 28 + x] = (x >= 12 && x <= 15 && y >= 4 && y <= 23) ? 255 : 0;
  const void* out = NULL;
  size_t bytes = 0;
  if (fq_set_input(s, 0, image, sizeof image) != 0 || fq_run(s) != 0 ||
      fq_get_output(s, 0, &out, &bytes) != 0 || bytes != 10 * sizeof(unsigned short)) {
    fprintf(stderr, "%s\n", fq_last_error());
    return 1;
  }
  const unsigned short* p = (const unsigned short*)out;
  int best = 0;
  for (int i = 1; i < 10; ++i)
    if (p[i] > p[best]) best = i;
  printf("class %d, probability %u/65536\n", best, p[best]);
  fq_session_free(s);
  fq_model_free(m);
  return best == 1 ? 0 : 1;
}
