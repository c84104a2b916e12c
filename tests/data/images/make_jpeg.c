/* Encodes a PPM (P6, maxval 255, as make_images.py writes it) as a JPEG with stb_image_write.
 *   cc -O2 -I/usr/include/stb tests/data/images/make_jpeg.c -o /tmp/make_jpeg -lm
 *   /tmp/make_jpeg tests/data/images/two-rgb-64x48.ppm tests/data/images/two-rgb-64x48.jpg 90 */
#define STB_IMAGE_IMPLEMENTATION
#define STB_IMAGE_WRITE_IMPLEMENTATION
#include <stb_image.h>
#include <stb_image_write.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char** argv) {
  int w, h, n;
  unsigned char* px;
  if (argc != 4) return fprintf(stderr, "usage: make_jpeg IN.ppm OUT.jpg QUALITY\n"), 2;
  px = stbi_load(argv[1], &w, &h, &n, 3);
  if (!px) return fprintf(stderr, "%s: %s\n", argv[1], stbi_failure_reason()), 1;
  if (!stbi_write_jpg(argv[2], w, h, 3, px, atoi(argv[3]))) return fprintf(stderr, "write failed\n"), 1;
  stbi_image_free(px);
  return 0;
}
