// Strict JSON reader (json.h).
#include "json.h"

#include <cmath>
#include <cstdlib>

#include "fq/fq.h"

namespace fq::mamba {

const char* Json::kind_name() const {
  switch (kind) {
    case Kind::null: return "null";
    case Kind::boolean: return "a boolean";
    case Kind::number: return "a number";
    case Kind::string: return "a string";
    case Kind::array: return "an array";
    case Kind::object: return "an object";
  }
  return "?";
}

namespace {

struct Parser {
  const std::string& s;
  const std::string& what;
  size_t at = 0;
  int depth = 0;

  [[noreturn]] void fail(const std::string& msg) const {
    throw Error(what + ": JSON: " + msg + " at byte " + std::to_string(at));
  }
  void ws() {
    while (at < s.size() && (s[at] == ' ' || s[at] == '\t' || s[at] == '\n' || s[at] == '\r')) ++at;
  }
  bool lit(const char* w) {
    size_t n = 0;
    while (w[n]) ++n;
    if (s.compare(at, n, w) != 0) return false;
    at += n;
    return true;
  }
  static void utf8(std::string& out, uint32_t cp) {
    if (cp < 0x80) {
      out += char(cp);
    } else if (cp < 0x800) {
      out += char(0xc0 | (cp >> 6));
      out += char(0x80 | (cp & 0x3f));
    } else if (cp < 0x10000) {
      out += char(0xe0 | (cp >> 12));
      out += char(0x80 | ((cp >> 6) & 0x3f));
      out += char(0x80 | (cp & 0x3f));
    } else {
      out += char(0xf0 | (cp >> 18));
      out += char(0x80 | ((cp >> 12) & 0x3f));
      out += char(0x80 | ((cp >> 6) & 0x3f));
      out += char(0x80 | (cp & 0x3f));
    }
  }
  uint32_t hex4() {
    if (s.size() - at < 4) fail("truncated \\u escape");
    uint32_t v = 0;
    for (int k = 0; k < 4; ++k) {
      const char c = s[at++];
      v <<= 4;
      if (c >= '0' && c <= '9') v |= uint32_t(c - '0');
      else if (c >= 'a' && c <= 'f') v |= uint32_t(c - 'a' + 10);
      else if (c >= 'A' && c <= 'F') v |= uint32_t(c - 'A' + 10);
      else fail("bad \\u escape");
    }
    return v;
  }
  std::string string() {
    ++at;  // opening quote
    std::string out;
    while (true) {
      if (at >= s.size()) fail("unterminated string");
      const unsigned char c = static_cast<unsigned char>(s[at]);
      if (c == '"') {
        ++at;
        return out;
      }
      if (c < 0x20) fail("control character in a string");
      if (c != '\\') {
        out += char(c);
        ++at;
        continue;
      }
      ++at;
      if (at >= s.size()) fail("unterminated string");
      const char e = s[at++];
      switch (e) {
        case '"': out += '"'; break;
        case '\\': out += '\\'; break;
        case '/': out += '/'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'u': {
          uint32_t cp = hex4();
          if (cp >= 0xd800 && cp < 0xdc00) {
            if (!lit("\\u")) fail("unpaired surrogate");
            const uint32_t lo = hex4();
            if (lo < 0xdc00 || lo >= 0xe000) fail("unpaired surrogate");
            cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
          } else if (cp >= 0xdc00 && cp < 0xe000) {
            fail("unpaired surrogate");
          }
          utf8(out, cp);
          break;
        }
        default: fail(std::string("bad escape '\\") + e + "'");
      }
    }
  }
  Json number() {
    const size_t start = at;
    bool integer = true;
    if (s[at] == '-') ++at;
    if (at >= s.size() || !(s[at] >= '0' && s[at] <= '9')) fail("bad number");
    if (s[at] == '0') {
      ++at;
    } else {
      while (at < s.size() && s[at] >= '0' && s[at] <= '9') ++at;
    }
    if (at < s.size() && s[at] == '.') {
      integer = false;
      ++at;
      if (at >= s.size() || !(s[at] >= '0' && s[at] <= '9')) fail("bad number");
      while (at < s.size() && s[at] >= '0' && s[at] <= '9') ++at;
    }
    if (at < s.size() && (s[at] == 'e' || s[at] == 'E')) {
      integer = false;
      ++at;
      if (at < s.size() && (s[at] == '+' || s[at] == '-')) ++at;
      if (at >= s.size() || !(s[at] >= '0' && s[at] <= '9')) fail("bad number");
      while (at < s.size() && s[at] >= '0' && s[at] <= '9') ++at;
    }
    const std::string text = s.substr(start, at - start);
    Json j;
    j.kind = Json::Kind::number;
    j.num = std::strtod(text.c_str(), nullptr);
    if (!std::isfinite(j.num)) fail("number out of range");
    if (integer && text.size() <= 19) {
      j.is_int = true;
      j.i = std::strtoll(text.c_str(), nullptr, 10);
    }
    return j;
  }
  Json value() {
    ws();
    if (at >= s.size()) fail("unexpected end");
    if (++depth > 64) fail("nesting deeper than 64");
    Json j;
    const char c = s[at];
    if (c == '{') {
      j.kind = Json::Kind::object;
      ++at;
      ws();
      if (at < s.size() && s[at] == '}') {
        ++at;
      } else {
        while (true) {
          ws();
          if (at >= s.size() || s[at] != '"') fail("expected a key string");
          std::string key = string();
          if (j.find(key)) fail("duplicate key '" + key.substr(0, 80) + "'");
          ws();
          if (at >= s.size() || s[at] != ':') fail("expected ':'");
          ++at;
          Json v = value();
          j.fields.push_back({std::move(key), std::move(v)});
          ws();
          if (at < s.size() && s[at] == ',') { ++at; continue; }
          if (at < s.size() && s[at] == '}') { ++at; break; }
          fail("expected ',' or '}'");
        }
      }
    } else if (c == '[') {
      j.kind = Json::Kind::array;
      ++at;
      ws();
      if (at < s.size() && s[at] == ']') {
        ++at;
      } else {
        while (true) {
          j.items.push_back(value());
          ws();
          if (at < s.size() && s[at] == ',') { ++at; continue; }
          if (at < s.size() && s[at] == ']') { ++at; break; }
          fail("expected ',' or ']'");
        }
      }
    } else if (c == '"') {
      j.kind = Json::Kind::string;
      j.str = string();
    } else if (c == '-' || (c >= '0' && c <= '9')) {
      j = number();
    } else if (lit("true")) {
      j.kind = Json::Kind::boolean, j.b = true;
    } else if (lit("false")) {
      j.kind = Json::Kind::boolean, j.b = false;
    } else if (lit("null")) {
      j.kind = Json::Kind::null;
    } else {
      fail("unexpected character");
    }
    --depth;
    return j;
  }
};

}  // namespace

Json parse_json(const std::string& text, const std::string& what) {
  Parser p{text, what};
  Json j = p.value();
  p.ws();
  if (p.at != text.size()) p.fail("trailing characters after the value");
  return j;
}

std::string json_quote(const std::string& s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    if (c == '"') out += "\\\"";
    else if (c == '\\') out += "\\\\";
    else if (c < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else out += char(c);
  }
  return out + "\"";
}

}  // namespace fq::mamba
