// Protobuf wire-format reader for ONNX models and tensors (see onnx_reader.h).
//
// Wire format recap: a message is a sequence of (key, value); key = varint (field << 3 | wire
// type); wire types 0 varint, 1 fixed64, 2 length-delimited (varint length + bytes: strings,
// bytes, sub-messages, packed repeated scalars), 5 fixed32; 3/4 (groups) are not used by ONNX and
// rejected. Repeated scalars may come packed (one length-delimited field) or one per key.
#include "onnx_reader.h"

#include <sys/stat.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <sstream>

namespace fq::onnx {

namespace {

std::string hex_offset(uint64_t off) { return std::to_string(off); }

}  // namespace

ParseError::ParseError(const std::string& f, uint64_t off, const std::string& what)
    : std::runtime_error(f + ": malformed protobuf at byte " + hex_offset(off) + ": " + what),
      file(f),
      offset(off) {}

std::string dtype_name(int t) {
  switch (t) {
    case kFloat: return "f32";
    case kUint8: return "u8";
    case kInt8: return "i8";
    case kUint16: return "u16";
    case kInt16: return "i16";
    case kInt32: return "i32";
    case kInt64: return "i64";
    case kString: return "string";
    case kBool: return "bool";
    case kFloat16: return "f16";
    case kDouble: return "f64";
    case kUint32: return "u32";
    case kUint64: return "u64";
    case kComplex64: return "complex64";
    case kComplex128: return "complex128";
    case kBfloat16: return "bf16";
    case kFloat8e4m3fn: return "f8e4m3fn";
    case kFloat8e4m3fnuz: return "f8e4m3fnuz";
    case kFloat8e5m2: return "f8e5m2";
    case kFloat8e5m2fnuz: return "f8e5m2fnuz";
    case kUint4: return "u4";
    case kInt4: return "i4";
    case kFloat4e2m1: return "f4e2m1";
    case kFloat8e8m0: return "f8e8m0";
    case kUint2: return "u2";
    case kInt2: return "i2";
    default: return "type" + std::to_string(t);
  }
}

bool is_float_type(int t) {
  return t == kFloat || t == kDouble || t == kFloat16 || t == kBfloat16;
}

bool int_range(int t, int64_t* lo, int64_t* hi) {
  switch (t) {
    case kBool: *lo = 0, *hi = 1; return true;
    case kUint8: *lo = 0, *hi = 255; return true;
    case kInt8: *lo = -128, *hi = 127; return true;
    case kUint16: *lo = 0, *hi = 65535; return true;
    case kInt16: *lo = -32768, *hi = 32767; return true;
    case kInt32: *lo = INT32_MIN, *hi = INT32_MAX; return true;
    case kUint32: *lo = 0, *hi = UINT32_MAX; return true;
    case kInt64: *lo = INT64_MIN, *hi = INT64_MAX; return true;
    case kUint64: *lo = 0, *hi = INT64_MAX; return true;  // stored as int64 bit patterns
    case kUint4: *lo = 0, *hi = 15; return true;
    case kInt4: *lo = -8, *hi = 7; return true;
    case kUint2: *lo = 0, *hi = 3; return true;
    case kInt2: *lo = -2, *hi = 1; return true;
    default: return false;
  }
}

bool is_int_type(int t) {
  int64_t lo, hi;
  return int_range(t, &lo, &hi);
}

int64_t Tensor::numel() const {
  int64_t n = 1;
  for (int64_t d : dims) n *= d;  // dims are validated at parse time (no overflow)
  return n;
}

const Attribute* Node::attr(const std::string& n) const {
  for (const Attribute& a : attributes)
    if (a.name == n) return &a;
  return nullptr;
}

namespace {

enum Wire : int { kVarint = 0, kFixed64 = 1, kLen = 2, kFixed32 = 5 };

// A cursor over one message: [pos, end) of the file's bytes. Offsets are absolute.
class Reader {
 public:
  Reader(const std::string& file, const uint8_t* data, uint64_t pos, uint64_t end, int depth)
      : file_(file), d_(data), pos_(pos), end_(end), depth_(depth) {
    if (depth_ > kMaxDepth) fail("messages nested deeper than " + std::to_string(kMaxDepth));
  }

  bool done() const { return pos_ >= end_; }
  uint64_t pos() const { return pos_; }
  int depth() const { return depth_; }
  [[noreturn]] void fail(const std::string& what) const { throw ParseError(file_, pos_, what); }
  [[noreturn]] void fail_at(uint64_t at, const std::string& what) const {
    throw ParseError(file_, at, what);
  }

  uint64_t varint() {
    const uint64_t start = pos_;
    uint64_t v = 0;
    for (int i = 0; i < 10; ++i) {
      if (pos_ >= end_) fail_at(start, "truncated varint");
      const uint8_t b = d_[pos_++];
      if (i == 9 && b > 1) fail_at(start, "varint longer than 64 bits");
      v |= uint64_t(b & 0x7f) << (7 * i);
      if (!(b & 0x80)) return v;
    }
    fail_at(start, "varint longer than 10 bytes");
  }

  // Next key; false at the end of the message.
  bool next(int* field, int* wire) {
    if (done()) return false;
    key_at_ = pos_;
    const uint64_t k = varint();
    *wire = int(k & 7);
    const uint64_t f = k >> 3;
    if (f == 0 || f > 536870911u) fail_at(key_at_, "invalid field number " + std::to_string(f));
    if (*wire == 3 || *wire == 4) fail_at(key_at_, "group wire type (not used by ONNX)");
    if (*wire != kVarint && *wire != kFixed64 && *wire != kLen && *wire != kFixed32)
      fail_at(key_at_, "invalid wire type " + std::to_string(*wire));
    *field = int(f);
    return true;
  }
  uint64_t key_at() const { return key_at_; }

  // Length of a length-delimited value, checked against the message end.
  uint64_t length() {
    const uint64_t at = pos_;
    const uint64_t n = varint();
    if (n > end_ - pos_)
      fail_at(at, "length " + std::to_string(n) + " runs past the end of the message (" +
                      std::to_string(end_ - pos_) + " bytes left)");
    return n;
  }
  Reader sub() {
    const uint64_t n = length();
    Reader r(file_, d_, pos_, pos_ + n, depth_ + 1);
    pos_ += n;
    return r;
  }
  std::string bytes() {
    const uint64_t n = length();
    std::string s(reinterpret_cast<const char*>(d_ + pos_), size_t(n));
    pos_ += n;
    return s;
  }
  // Raw view of a length-delimited value.
  void view(uint64_t* begin, uint64_t* n) {
    *n = length();
    *begin = pos_;
    pos_ += *n;
  }
  uint32_t fixed32() {
    if (end_ - pos_ < 4) fail("truncated fixed32");
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) v |= uint32_t(d_[pos_ + i]) << (8 * i);
    pos_ += 4;
    return v;
  }
  uint64_t fixed64() {
    if (end_ - pos_ < 8) fail("truncated fixed64");
    uint64_t v = 0;
    for (int i = 0; i < 8; ++i) v |= uint64_t(d_[pos_ + i]) << (8 * i);
    pos_ += 8;
    return v;
  }
  void skip(int wire) {
    switch (wire) {
      case kVarint: varint(); break;
      case kFixed64: fixed64(); break;
      case kFixed32: fixed32(); break;
      case kLen: { uint64_t b, n; view(&b, &n); break; }
      default: fail_at(key_at_, "invalid wire type " + std::to_string(wire));
    }
  }
  void expect(int wire, int want, const char* what) {
    if (wire != want)
      fail_at(key_at_, std::string("field '") + what + "' has wire type " + std::to_string(wire) +
                           ", expected " + std::to_string(want));
  }
  const uint8_t* data() const { return d_; }
  const std::string& file() const { return file_; }

  // Repeated varint field (packed or not) appended to out. `max_count` bounds the total.
  void repeated_varint(int wire, std::vector<int64_t>* out, const char* what, int64_t max_count) {
    if (wire == kVarint) {
      out->push_back(int64_t(varint()));
    } else if (wire == kLen) {
      Reader p = sub();
      while (!p.done()) {
        if (int64_t(out->size()) >= max_count) p.fail(std::string("too many values in '") + what + "'");
        out->push_back(int64_t(p.varint()));
      }
    } else {
      expect(wire, kVarint, what);
    }
    if (int64_t(out->size()) > max_count) fail(std::string("too many values in '") + what + "'");
  }
  void repeated_fixed32(int wire, std::vector<uint32_t>* out, const char* what, int64_t max_count) {
    if (wire == kFixed32) {
      out->push_back(fixed32());
    } else if (wire == kLen) {
      uint64_t b, n;
      const uint64_t at = pos_;
      view(&b, &n);
      if (n % 4) fail_at(at, std::string("packed '") + what + "' length not a multiple of 4");
      if (int64_t(out->size() + n / 4) > max_count) fail_at(at, std::string("too many values in '") + what + "'");
      for (uint64_t i = 0; i < n; i += 4) {
        uint32_t v = 0;
        for (int j = 0; j < 4; ++j) v |= uint32_t(d_[b + i + j]) << (8 * j);
        out->push_back(v);
      }
    } else {
      expect(wire, kFixed32, what);
    }
  }
  void repeated_fixed64(int wire, std::vector<uint64_t>* out, const char* what, int64_t max_count) {
    if (wire == kFixed64) {
      out->push_back(fixed64());
    } else if (wire == kLen) {
      uint64_t b, n;
      const uint64_t at = pos_;
      view(&b, &n);
      if (n % 8) fail_at(at, std::string("packed '") + what + "' length not a multiple of 8");
      if (int64_t(out->size() + n / 8) > max_count) fail_at(at, std::string("too many values in '") + what + "'");
      for (uint64_t i = 0; i < n; i += 8) {
        uint64_t v = 0;
        for (int j = 0; j < 8; ++j) v |= uint64_t(d_[b + i + j]) << (8 * j);
        out->push_back(v);
      }
    } else {
      expect(wire, kFixed64, what);
    }
  }

 private:
  const std::string& file_;
  const uint8_t* d_;
  uint64_t pos_, end_;
  int depth_;
  uint64_t key_at_ = 0;
};

double f32_of(uint32_t bits) {
  float f;
  std::memcpy(&f, &bits, 4);
  return double(f);
}
double f64_of(uint64_t bits) {
  double d;
  std::memcpy(&d, &bits, 8);
  return d;
}
double f16_of(uint32_t h) {
  const int sign = (h >> 15) & 1, e = (h >> 10) & 31, m = h & 1023;
  double v;
  if (e == 0) v = std::ldexp(double(m), -24);
  else if (e == 31) v = m ? NAN : INFINITY;
  else v = std::ldexp(double(m | 1024), e - 25);
  return sign ? -v : v;
}
double bf16_of(uint32_t h) { return f32_of(h << 16); }

// Bytes per element of raw_data (0: sub-byte or unsupported).
int elem_bytes(int t) {
  switch (t) {
    case kUint8: case kInt8: case kBool: return 1;
    case kUint16: case kInt16: case kFloat16: case kBfloat16: return 2;
    case kFloat: case kInt32: case kUint32: return 4;
    case kInt64: case kUint64: case kDouble: return 8;
    default: return 0;
  }
}
int sub_byte_bits(int t) {
  return t == kUint4 || t == kInt4 ? 4 : t == kUint2 || t == kInt2 ? 2 : 0;
}

int64_t sign_extend(uint64_t v, int bits) {
  const uint64_t m = uint64_t{1} << (bits - 1);
  v &= (uint64_t{1} << bits) - 1;
  return int64_t((v ^ m) - m);
}

// Decodes one element from integer storage (int32_data / int64_data / uint64_data / raw bytes).
void push_int(Tensor* t, uint64_t raw) {
  switch (t->data_type) {
    case kUint8: t->ints.push_back(int64_t(raw & 0xff)); break;
    case kInt8: t->ints.push_back(sign_extend(raw, 8)); break;
    case kUint16: t->ints.push_back(int64_t(raw & 0xffff)); break;
    case kInt16: t->ints.push_back(sign_extend(raw, 16)); break;
    case kInt32: t->ints.push_back(sign_extend(raw, 32)); break;
    case kUint32: t->ints.push_back(int64_t(raw & 0xffffffffu)); break;
    case kBool: t->ints.push_back(raw & 0xff ? 1 : 0); break;
    default: t->ints.push_back(int64_t(raw)); break;  // i64, u64
  }
}

struct TensorParts {
  bool has_raw = false;
  uint64_t raw_begin = 0, raw_n = 0, raw_at = 0;
  std::vector<uint32_t> float_data;
  std::vector<int64_t> int32_data, int64_data;
  std::vector<uint64_t> uint64_data, double_data;
  bool has_strings = false, external = false;
};

Tensor parse_tensor_msg(Reader r) {
  Tensor t;
  TensorParts p;
  const uint64_t start = r.pos();
  int field, wire;
  // The data size is bounded by the message, so element counts are bounded by bytes.
  const int64_t cap = kMaxElements;
  while (r.next(&field, &wire)) {
    switch (field) {
      case 1: r.repeated_varint(wire, &t.dims, "dims", kMaxDims); break;
      case 2: r.expect(wire, kVarint, "data_type"); t.data_type = int(int64_t(r.varint())); break;
      case 4: r.repeated_fixed32(wire, &p.float_data, "float_data", cap); break;
      case 5: r.repeated_varint(wire, &p.int32_data, "int32_data", cap); break;
      case 6: r.expect(wire, kLen, "string_data"); r.skip(wire); p.has_strings = true; break;
      case 7: r.repeated_varint(wire, &p.int64_data, "int64_data", cap); break;
      case 8: r.expect(wire, kLen, "name"); t.name = r.bytes(); break;
      case 9:
        r.expect(wire, kLen, "raw_data");
        p.raw_at = r.pos();
        r.view(&p.raw_begin, &p.raw_n);
        p.has_raw = true;
        break;
      case 10: r.repeated_fixed64(wire, &p.double_data, "double_data", cap); break;
      case 11: {
        std::vector<int64_t> v;
        r.repeated_varint(wire, &v, "uint64_data", cap);
        for (int64_t x : v) p.uint64_data.push_back(uint64_t(x));
        break;
      }
      case 13: r.expect(wire, kLen, "external_data"); r.skip(wire); p.external = true; break;
      case 14: {
        r.expect(wire, kVarint, "data_location");
        if (r.varint() == 1) p.external = true;
        break;
      }
      default: r.skip(wire); break;  // segment, doc_string, metadata_props, ...
    }
  }
  const std::string who = r.file() + ": tensor '" + t.name + "'";
  // Dims: non-negative, product bounded.
  int64_t n = 1;
  for (int64_t d : t.dims) {
    if (d < 0) r.fail_at(start, "tensor '" + t.name + "' has a negative dimension " + std::to_string(d));
    if (d != 0 && n > kMaxElements / d)
      r.fail_at(start, "tensor '" + t.name + "' has more than 2^28 elements");
    n *= d;
  }
  if (t.data_type == kUndefined) r.fail_at(start, "tensor '" + t.name + "' has no data_type");
  if (p.external) throw UnsupportedType(who + ": external data is not supported");
  if (p.has_strings || t.data_type == kString) throw UnsupportedType(who + ": string tensors are not supported");
  if (!is_float_type(t.data_type) && !is_int_type(t.data_type))
    throw UnsupportedType(who + ": data type " + dtype_name(t.data_type) + " is not supported");

  const uint8_t* d = r.data();
  auto count_error = [&](uint64_t at, int64_t have) {
    r.fail_at(at, "tensor '" + t.name + "' (" + dtype_name(t.data_type) + ") holds " +
                      std::to_string(have) + " elements, its dims say " + std::to_string(n));
  };
  if (p.has_raw) {
    const int eb = elem_bytes(t.data_type), sb = sub_byte_bits(t.data_type);
    const uint64_t want = eb ? uint64_t(n) * eb : (uint64_t(n) * sb + 7) / 8;
    if (p.raw_n != want)
      r.fail_at(p.raw_at, "tensor '" + t.name + "' (" + dtype_name(t.data_type) + ", " +
                              std::to_string(n) + " elements) needs " + std::to_string(want) +
                              " bytes of raw_data, has " + std::to_string(p.raw_n));
    const uint8_t* b = d + p.raw_begin;
    if (sb) {
      const int per = 8 / sb;
      const bool sgn = t.data_type == kInt4 || t.data_type == kInt2;
      for (int64_t i = 0; i < n; ++i) {
        const uint64_t v = (b[i / per] >> (sb * (i % per))) & ((1u << sb) - 1);
        t.ints.push_back(sgn ? sign_extend(v, sb) : int64_t(v));
      }
    } else {
      for (int64_t i = 0; i < n; ++i) {
        uint64_t v = 0;
        for (int j = 0; j < eb; ++j) v |= uint64_t(b[i * eb + j]) << (8 * j);
        switch (t.data_type) {
          case kFloat: t.floats.push_back(f32_of(uint32_t(v))); break;
          case kDouble: t.floats.push_back(f64_of(v)); break;
          case kFloat16: t.floats.push_back(f16_of(uint32_t(v))); break;
          case kBfloat16: t.floats.push_back(bf16_of(uint32_t(v))); break;
          default: push_int(&t, v); break;
        }
      }
    }
    return t;
  }
  // Typed fields.
  switch (t.data_type) {
    case kFloat:
      if (int64_t(p.float_data.size()) != n) count_error(start, int64_t(p.float_data.size()));
      for (uint32_t v : p.float_data) t.floats.push_back(f32_of(v));
      break;
    case kDouble:
      if (int64_t(p.double_data.size()) != n) count_error(start, int64_t(p.double_data.size()));
      for (uint64_t v : p.double_data) t.floats.push_back(f64_of(v));
      break;
    case kFloat16: case kBfloat16:
      if (int64_t(p.int32_data.size()) != n) count_error(start, int64_t(p.int32_data.size()));
      for (int64_t v : p.int32_data)
        t.floats.push_back(t.data_type == kFloat16 ? f16_of(uint32_t(v) & 0xffff) : bf16_of(uint32_t(v) & 0xffff));
      break;
    case kInt64:
      if (int64_t(p.int64_data.size()) != n) count_error(start, int64_t(p.int64_data.size()));
      t.ints = p.int64_data;
      break;
    case kUint32: case kUint64:
      if (int64_t(p.uint64_data.size()) != n) count_error(start, int64_t(p.uint64_data.size()));
      for (uint64_t v : p.uint64_data) push_int(&t, v);
      break;
    case kUint4: case kInt4: case kUint2: case kInt2: {
      // Packed like raw_data, one byte per int32_data element.
      const int sb = sub_byte_bits(t.data_type), per = 8 / sb;
      const int64_t need = (n + per - 1) / per;
      if (int64_t(p.int32_data.size()) != need) count_error(start, int64_t(p.int32_data.size()) * per);
      const bool sgn = t.data_type == kInt4 || t.data_type == kInt2;
      for (int64_t i = 0; i < n; ++i) {
        const uint64_t v = (uint64_t(p.int32_data[size_t(i / per)]) >> (sb * (i % per))) & ((1u << sb) - 1);
        t.ints.push_back(sgn ? sign_extend(v, sb) : int64_t(v));
      }
      break;
    }
    default:  // u8 i8 u16 i16 i32 bool
      if (int64_t(p.int32_data.size()) != n) count_error(start, int64_t(p.int32_data.size()));
      for (int64_t v : p.int32_data) push_int(&t, uint64_t(v));
      break;
  }
  return t;
}

void parse_dim_shape(Reader r, ValueInfo* vi) {
  int field, wire;
  vi->has_shape = true;
  while (r.next(&field, &wire)) {
    if (field != 1) { r.skip(wire); continue; }
    r.expect(wire, kLen, "dim");
    Reader dr = r.sub();
    int64_t v = -1;
    int f2, w2;
    while (dr.next(&f2, &w2)) {
      if (f2 == 1) { dr.expect(w2, kVarint, "dim_value"); v = int64_t(dr.varint()); }
      else dr.skip(w2);
    }
    if (vi->dims.size() >= size_t(kMaxDims)) r.fail("more than 32 dimensions");
    vi->dims.push_back(v < 0 ? -1 : v);
  }
}

ValueInfo parse_value_info(Reader r) {
  ValueInfo vi;
  int field, wire;
  while (r.next(&field, &wire)) {
    if (field == 1) { r.expect(wire, kLen, "name"); vi.name = r.bytes(); continue; }
    if (field != 2) { r.skip(wire); continue; }
    r.expect(wire, kLen, "type");
    Reader tr = r.sub();  // TypeProto
    int f2, w2;
    while (tr.next(&f2, &w2)) {
      if (f2 != 1) { tr.skip(w2); continue; }  // sequence/map/optional types: not a tensor
      tr.expect(w2, kLen, "tensor_type");
      Reader tt = tr.sub();
      int f3, w3;
      while (tt.next(&f3, &w3)) {
        if (f3 == 1) { tt.expect(w3, kVarint, "elem_type"); vi.elem_type = int(int64_t(tt.varint())); }
        else if (f3 == 2) { tt.expect(w3, kLen, "shape"); parse_dim_shape(tt.sub(), &vi); }
        else tt.skip(w3);
      }
    }
  }
  return vi;
}

Attribute parse_attribute(Reader r) {
  Attribute a;
  int field, wire;
  bool declared = false;
  while (r.next(&field, &wire)) {
    switch (field) {
      case 1: r.expect(wire, kLen, "name"); a.name = r.bytes(); break;
      case 20: r.expect(wire, kVarint, "type"); a.type = AttrType(int(int64_t(r.varint()))); declared = true; break;
      case 2: {
        r.expect(wire, kFixed32, "f");
        a.f = f32_of(r.fixed32());
        if (!declared) a.type = AttrType::f;
        break;
      }
      case 3: r.expect(wire, kVarint, "i"); a.i = int64_t(r.varint()); if (!declared) a.type = AttrType::i; break;
      case 4: r.expect(wire, kLen, "s"); a.s = r.bytes(); if (!declared) a.type = AttrType::s; break;
      case 5: r.expect(wire, kLen, "t"); a.tensors.push_back(parse_tensor_msg(r.sub())); if (!declared) a.type = AttrType::tensor; break;
      case 6: r.expect(wire, kLen, "g"); r.skip(wire); a.has_graph = true; if (!declared) a.type = AttrType::graph; break;
      case 7: {
        std::vector<uint32_t> v;
        r.repeated_fixed32(wire, &v, "floats", kMaxElements);
        for (uint32_t b : v) a.floats.push_back(f32_of(b));
        if (!declared) a.type = AttrType::floats;
        break;
      }
      case 8: r.repeated_varint(wire, &a.ints, "ints", kMaxElements); if (!declared) a.type = AttrType::ints; break;
      case 9: r.expect(wire, kLen, "strings"); a.strings.push_back(r.bytes()); if (!declared) a.type = AttrType::strings; break;
      case 10: r.expect(wire, kLen, "tensors"); a.tensors.push_back(parse_tensor_msg(r.sub())); if (!declared) a.type = AttrType::tensors; break;
      case 11: r.expect(wire, kLen, "graphs"); r.skip(wire); a.has_graph = true; if (!declared) a.type = AttrType::graphs; break;
      default: r.skip(wire); break;
    }
  }
  return a;
}

Node parse_node(Reader r) {
  Node n;
  int field, wire;
  while (r.next(&field, &wire)) {
    switch (field) {
      case 1: r.expect(wire, kLen, "input"); n.inputs.push_back(r.bytes()); break;
      case 2: r.expect(wire, kLen, "output"); n.outputs.push_back(r.bytes()); break;
      case 3: r.expect(wire, kLen, "name"); n.name = r.bytes(); break;
      case 4: r.expect(wire, kLen, "op_type"); n.op_type = r.bytes(); break;
      case 7: r.expect(wire, kLen, "domain"); n.domain = r.bytes(); break;
      case 5: r.expect(wire, kLen, "attribute"); n.attributes.push_back(parse_attribute(r.sub())); break;
      default: r.skip(wire); break;
    }
  }
  return n;
}

Graph parse_graph(Reader r) {
  Graph g;
  int field, wire;
  while (r.next(&field, &wire)) {
    switch (field) {
      case 1: r.expect(wire, kLen, "node"); g.nodes.push_back(parse_node(r.sub())); break;
      case 2: r.expect(wire, kLen, "name"); g.name = r.bytes(); break;
      case 5: r.expect(wire, kLen, "initializer"); g.initializers.push_back(parse_tensor_msg(r.sub())); break;
      case 11: r.expect(wire, kLen, "input"); g.inputs.push_back(parse_value_info(r.sub())); break;
      case 12: r.expect(wire, kLen, "output"); g.outputs.push_back(parse_value_info(r.sub())); break;
      default: r.skip(wire); break;  // value_info, doc_string, sparse initializers, annotations
    }
  }
  return g;
}

}  // namespace

Model parse_model(const std::string& bytes, const std::string& file) {
  const auto* d = reinterpret_cast<const uint8_t*>(bytes.data());
  Reader r(file, d, 0, bytes.size(), 0);
  if (bytes.empty()) r.fail("empty file");
  Model m;
  int field, wire;
  while (r.next(&field, &wire)) {
    switch (field) {
      case 1: r.expect(wire, kVarint, "ir_version"); m.ir_version = int64_t(r.varint()); break;
      case 7: r.expect(wire, kLen, "graph"); m.graph = parse_graph(r.sub()); m.has_graph = true; break;
      case 8: {
        r.expect(wire, kLen, "opset_import");
        Reader o = r.sub();
        OpsetId id;
        int f2, w2;
        while (o.next(&f2, &w2)) {
          if (f2 == 1) { o.expect(w2, kLen, "domain"); id.domain = o.bytes(); }
          else if (f2 == 2) { o.expect(w2, kVarint, "version"); id.version = int64_t(o.varint()); }
          else o.skip(w2);
        }
        m.opsets.push_back(id);
        break;
      }
      default: r.skip(wire); break;
    }
  }
  if (!m.has_graph) r.fail_at(0, "no graph in the model");
  return m;
}

Tensor parse_tensor(const std::string& bytes, const std::string& file) {
  const auto* d = reinterpret_cast<const uint8_t*>(bytes.data());
  Reader r(file, d, 0, bytes.size(), 0);
  if (bytes.empty()) r.fail("empty file");
  return parse_tensor_msg(r);
}

std::string read_file(const std::string& path) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0)
    throw std::runtime_error(path + ": cannot open: " + std::strerror(errno));
  if (S_ISDIR(st.st_mode)) throw std::runtime_error(path + ": is a directory");
  if (uint64_t(st.st_size) > kMaxFileBytes) throw std::runtime_error(path + ": file larger than 1 GiB");
  std::ifstream f(path, std::ios::binary);
  if (!f) throw std::runtime_error(path + ": cannot open: " + std::strerror(errno));
  std::ostringstream ss;
  ss << f.rdbuf();
  if (f.bad()) throw std::runtime_error(path + ": read error");
  return ss.str();
}

Model read_model(const std::string& path) { return parse_model(read_file(path), path); }
Tensor read_tensor(const std::string& path) { return parse_tensor(read_file(path), path); }

}  // namespace fq::onnx
