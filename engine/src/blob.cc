// The .fqw weight blob (docs/format.md section 2): FNV-1a, the validating reader and the writer.
#include "blob.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>

namespace fq::detail {
namespace {

constexpr uint64_t kHeaderSize = 64;
constexpr uint64_t kEntryFixed = 32;  // entry bytes before dims and name
constexpr uint64_t kMinEntry = 40;    // fixed part + a 1-byte name, padded to 8
constexpr uint64_t kChecksumAt = 40;  // the file checksum field in the header
constexpr uint32_t kVersion = 1;
constexpr uint32_t kByteOrderMark = 0x01020304;

// Little-endian loads and stores, byte-order independent (compilers emit plain moves).
uint64_t le(const uint8_t* p, int bytes) {
  uint64_t v = 0;
  for (int i = bytes - 1; i >= 0; --i) v = v << 8 | p[i];
  return v;
}
void put_le(uint8_t* p, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) p[i] = uint8_t(v >> (8 * i));
}
uint64_t align_up(uint64_t n, uint64_t a) { return (n + a - 1) / a * a; }

// Eight FNV-1a steps, one per byte of the little-endian word w.
inline uint64_t fnv_word(uint64_t h, uint64_t w) {
  for (int i = 0; i < 64; i += 8) h = (h ^ ((w >> i) & 0xff)) * kFnvPrime;
  return h;
}

// Two hashes over the same bytes in one pass (the file's and an entry's). FNV-1a is one serial
// multiply chain; two independent chains overlap in the CPU, so both cost about as much as one.
void fnv1a64_pair(const uint8_t* p, size_t n, uint64_t* h1, uint64_t* h2) {
  uint64_t a = *h1, b = *h2;
  for (; n >= 8; p += 8, n -= 8) {
    uint64_t w = le(p, 8);
    a = fnv_word(a, w);
    b = fnv_word(b, w);
  }
  for (; n; --n, ++p) {
    a = (a ^ *p) * kFnvPrime;
    b = (b ^ *p) * kFnvPrime;
  }
  *h1 = a, *h2 = b;
}

size_t first_nonzero(const uint8_t* p, size_t n) {
  for (size_t i = 0; i < n; ++i)
    if (p[i]) return i;
  return n;
}

std::string hex(uint64_t v, int digits = 16) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "0x%0*llx", digits, static_cast<unsigned long long>(v));
  return buf;
}

uint64_t entry_bytes(size_t ndim, size_t name_len) {
  return align_up(kEntryFixed + 8 * ndim + name_len, 8);
}

}  // namespace

uint64_t fnv1a64(const void* data, size_t n, uint64_t h) {
  auto* p = static_cast<const uint8_t*>(data);
  for (; n >= 8; p += 8, n -= 8) h = fnv_word(h, le(p, 8));
  for (; n; --n, ++p) h = (h ^ *p) * kFnvPrime;
  return h;
}

// ---- reader -------------------------------------------------------------------------------------

Blob Blob::open(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail_at(path, 0, std::string("cannot open: ") + std::strerror(errno));
  struct stat st;
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    fail_at(path, 0, "not a regular file");
  }
  size_t size = size_t(st.st_size);
  if (size < kHeaderSize) {  // nothing to map for an empty file; parse() reports it
    ::close(fd);
    static const uint8_t none[kHeaderSize] = {};
    return parse(nullptr, none, size, path);
  }
#ifdef MAP_POPULATE
  const int flags = MAP_PRIVATE | MAP_POPULATE;  // the checksums read every page anyway
#else
  const int flags = MAP_PRIVATE;
#endif
  void* m = ::mmap(nullptr, size, PROT_READ, flags, fd, 0);
  int err = errno;
  ::close(fd);  // the mapping keeps the file open
  if (m == MAP_FAILED) fail_at(path, 0, std::string("cannot map: ") + std::strerror(err));
  std::shared_ptr<const void> owner(
      m, [size](const void* p) { ::munmap(const_cast<void*>(p), size); });
  return parse(std::move(owner), static_cast<const uint8_t*>(m), size, path);
}

Blob Blob::parse(std::shared_ptr<const void> owner, const uint8_t* b, size_t size,
                 const std::string& path) {
  auto fail = [&](const std::string& msg) { fail_at(path, 0, msg); };
  // ---- header
  if (size < kHeaderSize)
    fail("truncated: " + std::to_string(size) + " bytes, shorter than the 64-byte header");
  if (std::memcmp(b, "FQWB", 4) != 0) fail("bad magic: not an FQ weight blob");
  if (uint32_t v = uint32_t(le(b + 4, 4)); v != kVersion)
    fail("unsupported blob version " + std::to_string(v) + " (this build reads version 1)");
  if (uint32_t bom = uint32_t(le(b + 8, 4)); bom != kByteOrderMark)
    fail("byte-order mark " + hex(bom, 8) + ", expected 0x01020304 (little-endian)");
  const uint64_t count = le(b + 12, 4), table_offset = le(b + 16, 8), table_size = le(b + 24, 8);
  const uint64_t file_size = le(b + 32, 8), file_checksum = le(b + kChecksumAt, 8);
  if (file_size != size)
    fail("header says " + std::to_string(file_size) + " bytes but the file has " +
         std::to_string(size) + " (truncated or appended to)");
  if (first_nonzero(b + 48, 16) != 16) fail("reserved header bytes 48..63 are not zero");
  if (count > kMaxBlobEntries)
    fail("tensor_count " + std::to_string(count) + " exceeds " + std::to_string(kMaxBlobEntries));
  if (table_offset != kHeaderSize)
    fail("table_offset " + std::to_string(table_offset) + ", must be 64");
  if (table_size > size - kHeaderSize)
    fail("table_size " + std::to_string(table_size) + " runs past the end of the file");
  // Every entry takes at least kMinEntry bytes: this bounds the entry vector by the file size.
  if (count * kMinEntry > table_size)
    fail("table_size " + std::to_string(table_size) + " is too small for " + std::to_string(count) +
         " entries");
  const uint64_t table_end = kHeaderSize + table_size;

  // ---- table: entries back to back; each length is a multiple of 8, so every entry starts
  // 8-byte aligned by construction.
  std::vector<BlobEntry> entries;
  entries.reserve(size_t(count));
  uint64_t pos = kHeaderSize;
  for (uint64_t i = 0; i < count; ++i) {
    BlobEntry ent;
    auto efail = [&](const std::string& msg) {
      fail("entry " + std::to_string(i) + (ent.name.empty() ? "" : " " + quote(ent.name)) + ": " +
           msg);
    };
    if (table_end - pos < kEntryFixed) efail("runs past the end of the table");
    const uint8_t* e = b + pos;
    const uint64_t name_len = le(e, 4), offset = le(e + 8, 8), data_size = le(e + 16, 8);
    const unsigned code = e[4], layout = e[5], ndim = e[6], reserved = e[7];
    if (name_len < 1 || name_len > kMaxName)
      efail("name_len " + std::to_string(name_len) + ", must be 1..255");
    if (ndim > kMaxRank) efail("ndim " + std::to_string(ndim) + ", at most 8");
    const uint64_t len = entry_bytes(ndim, name_len);
    if (len > table_end - pos) efail("runs past the end of the table");
    const uint8_t* name_at = e + kEntryFixed + 8 * ndim;
    ent.name.assign(reinterpret_cast<const char*>(name_at), name_len);
    if (std::string p = name_problem(ent.name); !p.empty()) efail("name " + p);
    const uint64_t padding = len - (kEntryFixed + 8 * ndim + name_len);
    if (first_nonzero(name_at + name_len, padding) != padding) efail("name padding is not zero");
    if (code < 1 || code > 7) efail("dtype code " + std::to_string(code) + ", must be 1..7");
    if (layout != 0) efail("layout " + std::to_string(layout) + ", v1 has only 0 (dense)");
    if (reserved != 0) efail("reserved byte 7 is not zero");
    ent.dtype = DType(code);
    for (unsigned d = 0; d < ndim; ++d) ent.dims.push_back(int64_t(le(e + kEntryFixed + 8 * d, 8)));
    if (std::string p = shape_problem(ent.dtype, ent.dims); !p.empty())
      efail("shape " + shape_str(ent.dims) + ": " + p);
    int64_t numel = 1;
    for (int64_t d : ent.dims) numel *= d;  // bounded by shape_problem
    const uint64_t want = dtype_bytes(ent.dtype, numel);
    if (data_size != want)
      efail("data_size " + std::to_string(data_size) + ", expected " + std::to_string(want) +
            " for " + dtype_name(ent.dtype) + " " + shape_str(ent.dims));
    if (offset % 64) efail("data_offset " + std::to_string(offset) + " is not a multiple of 64");
    if (offset < table_end)
      efail("data_offset " + std::to_string(offset) +
            " is inside the header or table (which end at " + std::to_string(table_end) + ")");
    if (offset > size || data_size > size - offset)
      efail("data [" + std::to_string(offset) + ", +" + std::to_string(data_size) +
            ") runs past the end of the file (" + std::to_string(size) + " bytes)");
    ent.offset = offset;
    ent.size = data_size;
    ent.checksum = le(e + 24, 8);
    entries.push_back(std::move(ent));
    pos += len;
  }
  if (pos != table_end)
    fail("table_size " + std::to_string(table_size) + " but the entries end at byte " +
         std::to_string(pos));

  // ---- names unique
  std::sort(entries.begin(), entries.end(),
            [](const BlobEntry& x, const BlobEntry& y) { return x.name < y.name; });
  for (size_t i = 1; i < entries.size(); ++i)
    if (entries[i].name == entries[i - 1].name)
      fail("entry " + quote(entries[i].name) + " appears twice");

  // ---- regions: in file order, disjoint, gaps zero
  std::vector<const BlobEntry*> by_offset;
  for (const auto& e : entries) by_offset.push_back(&e);
  std::sort(by_offset.begin(), by_offset.end(),
            [](const BlobEntry* x, const BlobEntry* y) { return x->offset < y->offset; });
  auto check_gap = [&](uint64_t from, uint64_t to) {
    if (size_t z = first_nonzero(b + from, to - from); z != to - from)
      fail("nonzero byte at offset " + std::to_string(from + z) +
           " outside the header, table and data (gaps must be zero)");
  };
  uint64_t end = table_end;
  const BlobEntry* prev = nullptr;
  for (const BlobEntry* e : by_offset) {
    if (e->offset < end)
      fail("entry " + quote(e->name) + ": data overlaps entry " + quote(prev->name));
    check_gap(end, e->offset);
    end = e->offset + e->size;
    prev = e;
  }
  check_gap(end, size);

  // ---- checksums: one pass over the file; each entry's data hashed alongside.
  static const uint8_t zero8[8] = {};
  uint64_t hf = fnv1a64(zero8, 8, fnv1a64(b, kChecksumAt));
  pos = kChecksumAt + 8;
  for (const BlobEntry* e : by_offset) {
    hf = fnv1a64(b + pos, e->offset - pos, hf);
    uint64_t he = kFnvBasis;
    fnv1a64_pair(b + e->offset, e->size, &hf, &he);
    if (he != e->checksum)
      fail("entry " + quote(e->name) + ": data checksum mismatch (stored " + hex(e->checksum) +
           ", computed " + hex(he) + ")");
    pos = e->offset + e->size;
  }
  hf = fnv1a64(b + pos, size - pos, hf);
  if (hf != file_checksum)
    fail("file checksum mismatch (stored " + hex(file_checksum) + ", computed " + hex(hf) + ")");

  Blob blob;
  blob.path_ = path;
  blob.owner_ = std::move(owner);
  blob.bytes_ = b;
  blob.size_ = size;
  blob.entries_ = std::move(entries);
  return blob;
}

const BlobEntry* Blob::find(const std::string& name) const {
  auto it = std::lower_bound(entries_.begin(), entries_.end(), name,
                             [](const BlobEntry& e, const std::string& n) { return e.name < n; });
  return it != entries_.end() && it->name == name ? &*it : nullptr;
}

// ---- writer -------------------------------------------------------------------------------------

void write_blob(const std::string& path, const std::vector<BlobItem>& items) {
  // Layout: header, table, then each entry's data at the next 64-byte boundary.
  uint64_t table_size = 0;
  for (const auto& it : items) {
    if (std::string p = name_problem(it.name); !p.empty()) fail_at(path, 0, "entry name " + p);
    if (std::string p = shape_problem(it.dtype, it.dims); !p.empty())
      fail_at(path, 0, "entry " + quote(it.name) + ": shape " + shape_str(it.dims) + ": " + p);
    table_size += entry_bytes(it.dims.size(), it.name.size());
  }
  std::vector<uint64_t> offsets, sizes;
  uint64_t end = kHeaderSize + table_size;
  for (const auto& it : items) {
    int64_t numel = 1;
    for (int64_t d : it.dims) numel *= d;
    offsets.push_back(align_up(end, 64));
    sizes.push_back(dtype_bytes(it.dtype, numel));
    end = offsets.back() + sizes.back();
  }

  std::vector<uint8_t> head(kHeaderSize + table_size, 0);
  std::memcpy(head.data(), "FQWB", 4);
  put_le(&head[4], kVersion, 4);
  put_le(&head[8], kByteOrderMark, 4);
  put_le(&head[12], items.size(), 4);
  put_le(&head[16], kHeaderSize, 8);
  put_le(&head[24], table_size, 8);
  put_le(&head[32], end, 8);  // file_size; the checksum at 40 stays zero while hashing
  uint8_t* e = &head[kHeaderSize];
  for (size_t i = 0; i < items.size(); ++i) {
    const BlobItem& it = items[i];
    put_le(e, it.name.size(), 4);
    e[4] = uint8_t(it.dtype);
    e[6] = uint8_t(it.dims.size());
    put_le(e + 8, offsets[i], 8);
    put_le(e + 16, sizes[i], 8);
    put_le(e + 24, fnv1a64(it.data, sizes[i]), 8);
    for (size_t d = 0; d < it.dims.size(); ++d)
      put_le(e + kEntryFixed + 8 * d, uint64_t(it.dims[d]), 8);
    std::memcpy(e + kEntryFixed + 8 * it.dims.size(), it.name.data(), it.name.size());
    e += entry_bytes(it.dims.size(), it.name.size());
  }

  AtomicFile f(path);
  f.write(head.data(), head.size());
  uint64_t h = fnv1a64(head.data(), head.size());
  uint64_t pos = head.size();
  static const uint8_t zeros[64] = {};
  for (size_t i = 0; i < items.size(); ++i) {
    f.write(zeros, offsets[i] - pos);
    h = fnv1a64(zeros, offsets[i] - pos, h);
    f.write(items[i].data, sizes[i]);
    h = fnv1a64(items[i].data, sizes[i], h);
    pos = offsets[i] + sizes[i];
  }
  uint8_t sum[8];
  put_le(sum, h, 8);
  f.write_at(kChecksumAt, sum, 8);
  f.commit();
}

// ---- atomic file --------------------------------------------------------------------------------

AtomicFile::AtomicFile(std::string path) : path_(std::move(path)) {
  // Unique per process and call, so concurrent saves never share a temporary.
  static std::atomic<unsigned> counter{0};
  tmp_ = path_ + ".tmp" + std::to_string(::getpid()) + "." + std::to_string(counter++);
  fd_ = ::open(tmp_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd_ < 0) fail_at(path_, 0, std::string("cannot create: ") + std::strerror(errno));
}

AtomicFile::~AtomicFile() {
  if (fd_ >= 0) {
    ::close(fd_);
    ::unlink(tmp_.c_str());
  }
}

void AtomicFile::fail(const char* what) {
  int err = errno;
  fail_at(path_, 0, std::string(what) + ": " + std::strerror(err));
}

void AtomicFile::write(const void* data, size_t n) {
  auto* p = static_cast<const char*>(data);
  while (n) {
    ssize_t w = ::write(fd_, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) fail("cannot write");
    p += w, n -= size_t(w);
  }
}

void AtomicFile::write_at(uint64_t offset, const void* data, size_t n) {
  if (::pwrite(fd_, data, n, off_t(offset)) != ssize_t(n)) fail("cannot write");
}

void AtomicFile::commit() {
  int fd = fd_;
  fd_ = -1;
  if (::close(fd) != 0) {
    int err = errno;
    ::unlink(tmp_.c_str());
    errno = err;
    fail("cannot write");
  }
  if (::rename(tmp_.c_str(), path_.c_str()) != 0) {
    int err = errno;
    ::unlink(tmp_.c_str());
    errno = err;
    fail("cannot rename the temporary file into place");
  }
}

}  // namespace fq::detail
