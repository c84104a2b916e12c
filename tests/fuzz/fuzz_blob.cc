// libFuzzer: the .fqw reader on arbitrary bytes. Properties: no crash, hang, leak or UB; every
// error is a one-line fq::Error; an accepted blob's entries lie inside the input, and writing them
// again gives a blob that reads back with the same entries.
//
// Each input is read twice: as is, and with its file checksum made right, so the fuzzer gets past
// the whole-file check. FQ_FUZZ_MAKE_SEEDS=DIR writes seed blobs into DIR and exits.
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "blob.h"
#include "fq/graph.h"

namespace {

void check(bool ok) {
  if (!ok) std::abort();
}

// Where accepted blobs are written again; a plain array, so it outlives the atexit cleanup.
char scratch_path[64];

void read_blob(const uint8_t* data, size_t size) {
  try {
    auto blob = fq::detail::Blob::parse(nullptr, data, size, "fuzz.fqw");
    std::vector<fq::detail::BlobItem> items;
    for (const auto& e : blob.entries()) {
      fq::ConstData d = blob.data(e);
      check(d.ptr >= data && d.size == e.size && d.size <= size &&
            size_t(d.ptr - data) <= size - d.size && size_t(d.ptr - data) % 64 == 0);
      items.push_back({e.name, e.dtype, e.dims, d.ptr});
    }
    fq::detail::write_blob(scratch_path, items);
    auto again = fq::detail::Blob::open(scratch_path);
    check(again.entries().size() == items.size());
    for (size_t i = 0; i < items.size(); ++i) {
      const auto& e = again.entries()[i];
      check(e.name == items[i].name && e.dtype == items[i].dtype && e.dims == items[i].dims &&
            std::memcmp(again.data(e).ptr, items[i].data, e.size) == 0);
    }
  } catch (const fq::Error& e) {
    check(std::strchr(e.what(), '\n') == nullptr);
  }
}

void make_seeds(const std::string& dir) {
  using fq::DType;
  std::vector<uint8_t> bytes(4096);
  for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = uint8_t(i * 31 + 7);
  const std::vector<std::vector<fq::detail::BlobItem>> seeds = {
      {},
      {{"w", DType::i8, {3, 4}, bytes.data()}},
      {{"conv0.w", DType::i8, {4, 3, 3, 1}, bytes.data()},
       {"conv0.b", DType::i32, {4}, bytes.data()},
       {"conv0.mult", DType::i32, {4}, bytes.data()},
       {"conv0.shift", DType::i8, {4}, bytes.data()}},
      {{"a", DType::u8, {5}, bytes.data()},
       {"b", DType::u16, {2, 3}, bytes.data()},
       {"c", DType::i16, {1, 1, 2}, bytes.data()},
       {"d", DType::f32, {}, bytes.data()},
       {"e", DType::i4, {3, 3}, bytes.data()}}};
  for (size_t i = 0; i < seeds.size(); ++i)
    fq::detail::write_blob(dir + "/seed" + std::to_string(i) + ".fqw", seeds[i]);
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  if (const char* dir = std::getenv("FQ_FUZZ_MAKE_SEEDS")) {
    make_seeds(dir);
    std::exit(0);
  }
  std::snprintf(scratch_path, sizeof scratch_path, "/tmp/fq-fuzz-blob-%d.fqw", int(::getpid()));
  std::atexit([] { ::unlink(scratch_path); });
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  read_blob(data, size);
  if (size >= 64) {
    std::vector<uint8_t> fixed(data, data + size);
    std::memset(&fixed[40], 0, 8);
    uint64_t h = fq::detail::fnv1a64(fixed.data(), fixed.size());
    for (int i = 0; i < 8; ++i) fixed[40 + size_t(i)] = uint8_t(h >> (8 * i));
    read_blob(fixed.data(), fixed.size());
  }
  return 0;
}
