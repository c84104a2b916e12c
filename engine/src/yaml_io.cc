// The YAML graph (docs/format.md section 1): a strict reader on top of yaml-cpp, and the writer
// save_graph uses.
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <limits>
#include <map>
#include <set>
#include <sstream>

#include "blob.h"
#include "fq/graph.h"

namespace fq::detail {
namespace {

// ---- scalars: YAML 1.2 core-schema numbers, decimal only ----------------------------------------

enum class Num { none, ok, out_of_range };

// Where the digits of `s` start (after one optional sign), and in *text what from_chars is given
// (it takes '-' but not '+').
const char* digits(const std::string& s, const char** text) {
  const char* b = s.data();
  *text = b != s.data() + s.size() && *b == '+' ? b + 1 : b;
  return b != s.data() + s.size() && (*b == '+' || *b == '-') ? b + 1 : b;
}

// A decimal integer ([-+]?[0-9]+).
Num parse_int(const std::string& s, int64_t* v) {
  const char* text;
  const char* d = digits(s, &text);
  const char* e = s.data() + s.size();
  if (d == e) return Num::none;
  for (const char* p = d; p != e; ++p)
    if (*p < '0' || *p > '9') return Num::none;
  auto r = std::from_chars(text, e, *v);
  return r.ec == std::errc() ? Num::ok : Num::out_of_range;
}

// A decimal float (a sign, then a digit or '.', then what from_chars reads) or .inf/.nan.
Num parse_real(const std::string& s, double* v) {
  static const std::map<std::string, double> special = {
      {".inf", HUGE_VAL},   {".Inf", HUGE_VAL},  {".INF", HUGE_VAL},   {"+.inf", HUGE_VAL},
      {"+.Inf", HUGE_VAL},  {"+.INF", HUGE_VAL}, {"-.inf", -HUGE_VAL}, {"-.Inf", -HUGE_VAL},
      {"-.INF", -HUGE_VAL}, {".nan", NAN},       {".NaN", NAN},        {".NAN", NAN}};
  if (auto it = special.find(s); it != special.end()) return *v = it->second, Num::ok;
  const char* text;
  const char* d = digits(s, &text);
  const char* e = s.data() + s.size();
  // The first-character test keeps "inf" and "nan" strings, as YAML reads them.
  if (d == e || !((*d >= '0' && *d <= '9') || *d == '.')) return Num::none;
  auto r = std::from_chars(text, e, *v);
  if (r.ptr != e) return Num::none;
  return r.ec == std::errc() ? Num::ok : Num::out_of_range;
}

// ---- the reader ---------------------------------------------------------------------------------

// Reads one graph document strictly: every key known and given once, every value of the type the
// spec gives it. Errors name the file, the line of the offending item, and the tensor or node.
class Reader {
 public:
  Reader(const std::string& path, size_t text_size) : path_(path), budget_(2 * text_size + 64) {}

  void graph(const YAML::Node& doc, ParsedYaml* out);

 private:
  struct Field {
    std::string key;
    YAML::Node value;
  };
  // The fields of a map, in order; keys are scalars and unique.
  struct Map {
    YAML::Node node;
    std::string what;  // names the map in messages: "tensor 'x'", "node #3"
    std::vector<Field> fields;
    std::map<std::string, size_t> index;  // key -> position in fields
    const YAML::Node* get(const std::string& key) const {
      auto it = index.find(key);
      return it == index.end() ? nullptr : &fields[it->second].value;
    }
  };

  static int line(const YAML::Node& n) {
    YAML::Mark m = n.Mark();
    return m.is_null() ? 0 : m.line + 1;
  }
  [[noreturn]] void fail(const YAML::Node& n, const std::string& msg) const {
    fail_at(path_, line(n), msg);
  }
  // Counts the nodes read. A document without aliases has fewer nodes than twice its bytes, so
  // this bounds the work (and the graph's size) on alias-expanded documents by the text size.
  void visit(const YAML::Node& n) {
    if (budget_ == 0) fail(n, "the document expands (through aliases) far beyond its size");
    --budget_;
  }

  Map map(const YAML::Node& n, const std::string& what);
  const YAML::Node& need(const Map& m, const std::string& key) const;
  void only(const Map& m, std::initializer_list<const char*> known) const;

  std::string str(const YAML::Node& n, const std::string& what);
  int64_t integer(const YAML::Node& n, const std::string& what, int64_t lo, int64_t hi);
  double real(const YAML::Node& n, const std::string& what);
  bool boolean(const YAML::Node& n, const std::string& what);
  std::vector<std::string> strings(const YAML::Node& n, const std::string& what);
  const YAML::Node& seq(const YAML::Node& n, const std::string& what, size_t max_size);
  Attr attr(const YAML::Node& n, const std::string& what);

  TensorDef tensor(const YAML::Node& n, size_t i);
  Quant quant(const YAML::Node& n, const std::string& what);
  NodeDef node(const YAML::Node& n, size_t i);

  const std::string& path_;
  size_t budget_;
};

Reader::Map Reader::map(const YAML::Node& n, const std::string& what) {
  visit(n);
  if (!n.IsMap()) fail(n, what + ": expected a map");
  Map m{n, what, {}, {}};
  for (auto it = n.begin(); it != n.end(); ++it) {
    visit(it->first);
    if (!it->first.IsScalar()) fail(it->first, what + ": keys must be strings");
    std::string key = it->first.Scalar();
    if (!m.index.emplace(key, m.fields.size()).second)
      fail(it->first, what + ": key " + quote(key) + " is given twice");
    m.fields.push_back({key, it->second});
  }
  return m;
}

const YAML::Node& Reader::need(const Map& m, const std::string& key) const {
  const YAML::Node* v = m.get(key);
  if (!v) fail(m.node, m.what + ": missing key " + quote(key));
  return *v;
}

void Reader::only(const Map& m, std::initializer_list<const char*> known) const {
  for (const auto& f : m.fields) {
    bool ok = false;
    std::string list;
    for (const char* k : known) {
      ok |= f.key == k;
      list += std::string(list.empty() ? "" : ", ") + k;
    }
    if (!ok) fail(f.value, m.what + ": unknown key " + quote(f.key) + " (known: " + list + ")");
  }
}

std::string Reader::str(const YAML::Node& n, const std::string& what) {
  visit(n);
  if (!n.IsScalar()) fail(n, what + ": expected a string");
  return n.Scalar();
}

// Numbers are plain scalars: a quoted "1" is a string, as in YAML.
int64_t Reader::integer(const YAML::Node& n, const std::string& what, int64_t lo, int64_t hi) {
  visit(n);
  int64_t v = 0;
  Num r = n.IsScalar() && n.Tag() == "?" ? parse_int(n.Scalar(), &v) : Num::none;
  if (r == Num::none)
    fail(n, what + ": expected an integer" + (n.IsScalar() ? ", got " + quote(n.Scalar()) : ""));
  if (r == Num::out_of_range || v < lo || v > hi)
    fail(n, what + ": " + n.Scalar() + " is out of range " + std::to_string(lo) + ".." +
                std::to_string(hi));
  return v;
}

double Reader::real(const YAML::Node& n, const std::string& what) {
  visit(n);
  double v = 0;
  Num r = n.IsScalar() && n.Tag() == "?" ? parse_real(n.Scalar(), &v) : Num::none;
  if (r == Num::none)
    fail(n, what + ": expected a number" + (n.IsScalar() ? ", got " + quote(n.Scalar()) : ""));
  if (r == Num::out_of_range) fail(n, what + ": " + n.Scalar() + " is out of range for a double");
  return v;
}

bool Reader::boolean(const YAML::Node& n, const std::string& what) {
  visit(n);
  std::string s = n.IsScalar() && n.Tag() == "?" ? n.Scalar() : "";
  if (s == "true" || s == "True" || s == "TRUE") return true;
  if (s == "false" || s == "False" || s == "FALSE") return false;
  fail(n, what + ": expected true or false");
}

const YAML::Node& Reader::seq(const YAML::Node& n, const std::string& what, size_t max_size) {
  visit(n);
  if (!n.IsSequence()) fail(n, what + ": expected a list");
  if (n.size() > max_size)
    fail(n, what + ": " + std::to_string(n.size()) + " items, at most " + std::to_string(max_size));
  return n;
}

std::vector<std::string> Reader::strings(const YAML::Node& n, const std::string& what) {
  std::vector<std::string> out;
  for (const auto& item : seq(n, what, SIZE_MAX)) out.push_back(str(item, what));
  return out;
}

// A plain number is an integer or a float; any other scalar is a string; a list of numbers is a
// list of integers unless one of them is a float.
Attr Reader::attr(const YAML::Node& n, const std::string& what) {
  auto number = [&](const YAML::Node& s, int64_t* i, double* d) -> int {  // 0 none, 1 int, 2 real
    if (!s.IsScalar() || s.Tag() != "?") return 0;
    Num r = parse_int(s.Scalar(), i);
    if (r == Num::ok) return 1;
    if (r == Num::none) r = parse_real(s.Scalar(), d);
    if (r == Num::out_of_range) fail(s, what + ": " + s.Scalar() + " is out of range");
    return r == Num::ok ? 2 : 0;
  };
  visit(n);
  int64_t i = 0;
  double d = 0;
  if (n.IsScalar()) {
    int kind = number(n, &i, &d);
    if (kind == 1) return i;
    if (kind == 2) return d;
    return n.Scalar();
  }
  if (n.IsSequence()) {
    std::vector<int64_t> ints;
    std::vector<double> reals;
    bool any_real = false;
    for (const auto& item : n) {
      visit(item);
      int kind = number(item, &i, &d);
      if (kind == 0) fail(item, what + ": list items must be numbers");
      any_real |= kind == 2;
      ints.push_back(i);
      reals.push_back(kind == 1 ? double(i) : d);
    }
    if (any_real) return reals;
    return ints;
  }
  fail(n, what + ": expected a number, a string or a list of numbers");
}

void Reader::graph(const YAML::Node& doc, ParsedYaml* out) {
  Graph& g = out->graph;
  Map top = map(doc, "the graph");
  std::string format = str(need(top, "format"), "format");
  if (format != "fq-graph")
    fail(need(top, "format"), "format: " + quote(format) + ", expected 'fq-graph'");
  // The version comes before the key check: a newer file must say "version", not "unknown key".
  int64_t version = integer(need(top, "version"), "version", 0, INT64_MAX);
  if (version != 1)
    fail(need(top, "version"),
         "unsupported format version " + std::to_string(version) + " (this build reads version 1)");
  only(top,
       {"format", "version", "name", "weights", "meta", "inputs", "outputs", "tensors", "nodes"});

  if (auto* n = top.get("name")) g.name = str(*n, "name");
  if (auto* n = top.get("weights")) {
    out->weights = str(*n, "weights");
    out->weights_line = line(*n);
    if (out->weights.empty() || out->weights[0] == '/')
      fail(*n, "weights: " + quote(out->weights) + " must be a path relative to the graph file");
  }
  if (auto* n = top.get("meta")) {
    Map meta = map(*n, "meta");
    for (const auto& f : meta.fields) g.meta[f.key] = str(f.value, "meta: " + quote(f.key));
  }
  g.inputs = strings(need(top, "inputs"), "inputs");
  g.outputs = strings(need(top, "outputs"), "outputs");

  std::map<std::string, int> first_line;  // tensor, then node, names -> line of the first one
  size_t i = 0;
  for (const auto& item : seq(need(top, "tensors"), "tensors", SIZE_MAX)) {
    TensorDef t = tensor(item, i++);
    auto [it, added] = first_line.emplace(t.name, t.line);
    if (!added)
      fail(item, "tensor " + quote(t.name) + " is declared twice (first at line " +
                     std::to_string(it->second) + ")");
    // Absurd shapes and bad quant stop here, before the loader binds or allocates anything.
    check_tensor(g, t);
    g.tensors.push_back(std::move(t));
  }
  first_line.clear();
  i = 0;
  for (const auto& item : seq(need(top, "nodes"), "nodes", SIZE_MAX)) {
    NodeDef n = node(item, i++);
    auto [it, added] = first_line.emplace(n.name, n.line);
    if (!added)
      fail(item, "node " + quote(n.name) + " is declared twice (first at line " +
                     std::to_string(it->second) + ")");
    g.nodes.push_back(std::move(n));
  }
}

TensorDef Reader::tensor(const YAML::Node& n, size_t i) {
  Map m = map(n, "tensors: item " + std::to_string(i));
  TensorDef t;
  t.line = line(n);
  t.name = str(need(m, "name"), m.what + ": name");
  m.what = "tensor " + quote(t.name);
  only(m, {"name", "dtype", "shape", "quant", "const", "state", "data"});
  const YAML::Node& dt = need(m, "dtype");
  if (!parse_dtype(str(dt, m.what + ": dtype"), &t.dtype))
    fail(dt, m.what + ": unknown dtype " + quote(dt.Scalar()) +
                 " (expected u8, i8, u16, i16, i32, f32 or i4)");
  // seq() checks the length first: a huge list fails without being walked.
  for (const auto& d : seq(need(m, "shape"), m.what + ": shape", kMaxRank))
    t.shape.push_back(integer(d, m.what + ": shape", INT64_MIN, INT64_MAX));
  if (auto* v = m.get("const")) t.is_const = boolean(*v, m.what + ": const");
  if (auto* v = m.get("state")) t.is_state = boolean(*v, m.what + ": state");
  if (auto* v = m.get("data")) t.data_ref = str(*v, m.what + ": data");
  if (auto* v = m.get("quant")) t.quant = quant(*v, m.what + ": quant");
  return t;
}

// Per-tensor {scale: S, zero_point: Z} or per-channel {axis: A, scale: [...], zero_point: [...]}.
// Counts and ranges are checked by check_tensor, for in-memory graphs too.
Quant Reader::quant(const YAML::Node& n, const std::string& what) {
  Map m = map(n, what);
  only(m, {"scale", "zero_point", "axis"});
  Quant q;
  const int32_t i32_min = std::numeric_limits<int32_t>::min();
  const int32_t i32_max = std::numeric_limits<int32_t>::max();
  const YAML::Node* axis = m.get("axis");
  const YAML::Node& scale = need(m, "scale");
  const YAML::Node* zp = m.get("zero_point");
  if (axis) {
    q.axis = int(integer(*axis, what + ": axis", 0, kMaxRank - 1));
    for (const auto& s : seq(scale, what + ": scale (per-channel)", SIZE_MAX))
      q.scale.push_back(real(s, what + ": scale"));
    if (zp)
      for (const auto& z : seq(*zp, what + ": zero_point (per-channel)", SIZE_MAX))
        q.zero_point.push_back(int32_t(integer(z, what + ": zero_point", i32_min, i32_max)));
  } else {
    if (scale.IsSequence()) fail(scale, what + ": a list of scales needs an axis");
    q.scale.push_back(real(scale, what + ": scale"));
    if (zp) q.zero_point.push_back(int32_t(integer(*zp, what + ": zero_point", i32_min, i32_max)));
  }
  return q;
}

NodeDef Reader::node(const YAML::Node& n, size_t i) {
  Map m = map(n, "nodes: item " + std::to_string(i));
  NodeDef d;
  d.line = line(n);
  d.name = str(need(m, "name"), m.what + ": name");
  m.what = "node " + quote(d.name);
  only(m, {"name", "op", "version", "inputs", "outputs", "attrs"});
  d.op = str(need(m, "op"), m.what + ": op");
  if (auto* v = m.get("version"))
    d.version = int(integer(*v, m.what + ": version", 1, std::numeric_limits<int>::max()));
  d.inputs = strings(need(m, "inputs"), m.what + ": inputs");
  d.outputs = strings(need(m, "outputs"), m.what + ": outputs");
  if (auto* v = m.get("attrs")) {
    Map attrs = map(*v, m.what + ": attrs");
    for (const auto& f : attrs.fields)
      d.attrs[f.key] = attr(f.value, m.what + ": attribute " + quote(f.key));
  }
  return d;
}

// ---- the writer ---------------------------------------------------------------------------------

// A string as a YAML scalar: plain when it reads back as the same string in YAML 1.1 and 1.2,
// else double-quoted.
std::string scalar(const std::string& s) {
  static const std::set<std::string> keywords = {"true", "false", "yes", "no",  "on",
                                                 "off",  "y",     "n",   "null"};
  auto word = [](unsigned char c) {
    return std::isalnum(c) || c == '_' || c == '.' || c == '-' || c == '/';
  };
  bool plain = !s.empty() && (std::isalpha(static_cast<unsigned char>(s[0])) || s[0] == '_');
  for (unsigned char c : s) plain = plain && word(c);
  std::string lower;
  for (unsigned char c : s) lower += char(std::tolower(c));
  if (plain && !keywords.count(lower)) return s;
  std::string out = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += char(c);
    } else if (c < 0x20 || c == 0x7f) {
      char esc[8];
      std::snprintf(esc, sizeof esc, "\\x%02x", c);
      out += esc;
    } else {
      out += char(c);
    }
  }
  return out + "\"";
}

// The shortest text that reads back as exactly `v`, always with a '.' so that it reads back as a
// float (not an integer) in YAML 1.1 and 1.2.
std::string real_str(double v) {
  if (std::isnan(v)) return ".nan";
  if (std::isinf(v)) return v > 0 ? ".inf" : "-.inf";
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  std::string s(buf, r.ptr);
  size_t e = s.find('e');
  if (s.find('.') == std::string::npos) s.insert(e == std::string::npos ? s.size() : e, ".0");
  return s;
}

template <class T, class F>
std::string flow(const std::vector<T>& items, F fmt) {
  std::string s = "[";
  for (size_t i = 0; i < items.size(); ++i) s += (i ? ", " : "") + fmt(items[i]);
  return s + "]";
}

std::string int_str(int64_t v) { return std::to_string(v); }

std::string attr_str(const Attr& a) {
  struct {
    std::string operator()(int64_t v) { return int_str(v); }
    std::string operator()(double v) { return real_str(v); }
    std::string operator()(const std::string& v) { return scalar(v); }
    std::string operator()(const std::vector<int64_t>& v) { return flow(v, int_str); }
    std::string operator()(const std::vector<double>& v) { return flow(v, real_str); }
  } visitor;
  return std::visit(visitor, a);
}

std::string quant_str(const Quant& q) {
  auto zp = [](int32_t z) { return int_str(z); };
  if (q.axis < 0) {
    std::string s = "{scale: " + real_str(q.scale.at(0));
    if (!q.zero_point.empty()) s += ", zero_point: " + zp(q.zero_point[0]);
    return s + "}";
  }
  std::string s = "{axis: " + int_str(q.axis) + ", scale: " + flow(q.scale, real_str);
  if (!q.zero_point.empty()) s += ", zero_point: " + flow(q.zero_point, zp);
  return s + "}";
}

struct IgnoreEvents : YAML::EventHandler {
  void OnDocumentStart(const YAML::Mark&) override {}
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
  void OnAlias(const YAML::Mark&, YAML::anchor_t) override {}
  void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t,
                const std::string&) override {}
  void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                       YAML::EmitterStyle::value) override {}
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                  YAML::EmitterStyle::value) override {}
  void OnMapEnd() override {}
};

}  // namespace

ParsedYaml parse_yaml(const std::string& text, const std::string& path) {
  ParsedYaml out;
  out.graph.path = path;
  try {
    // Count the documents with the event parser, looking at two at most: YAML::LoadAll loops
    // forever on some malformed input (its parser returns empty documents without advancing).
    std::istringstream in(text);
    YAML::Parser parser(in);
    IgnoreEvents ignore;
    if (!parser.HandleNextDocument(ignore))
      fail_at(path, 0, "empty document: expected a graph (format: fq-graph)");
    if (parser.HandleNextDocument(ignore)) fail_at(path, 0, "more than one YAML document");
    Reader(path, text.size()).graph(YAML::Load(text), &out);
  } catch (const YAML::Exception& e) {
    fail_at(path, e.mark.is_null() ? 0 : e.mark.line + 1, "invalid YAML: " + e.msg);
  }
  return out;
}

std::string graph_yaml(const Graph& g, const std::string& weights) {
  std::string y = "format: fq-graph\nversion: 1\n";
  if (!g.name.empty()) y += "name: " + scalar(g.name) + "\n";
  if (!weights.empty()) y += "weights: " + scalar(weights) + "\n";
  if (!g.meta.empty()) {
    std::string s;
    for (const auto& [k, v] : g.meta) s += (s.empty() ? "" : ", ") + scalar(k) + ": " + scalar(v);
    y += "meta: {" + s + "}\n";
  }
  y += "inputs: " + flow(g.inputs, scalar) + "\n";
  y += "outputs: " + flow(g.outputs, scalar) + "\n";
  y += g.tensors.empty() ? "tensors: []\n" : "tensors:\n";
  for (const auto& t : g.tensors) {
    y += "  - name: " + scalar(t.name) + "\n";
    y += std::string("    dtype: ") + dtype_name(t.dtype) + "\n";
    y += "    shape: " + flow(t.shape, int_str) + "\n";
    if (t.is_const) y += "    const: true\n";
    if (t.is_state) y += "    state: true\n";
    if (!t.data_ref.empty()) y += "    data: " + scalar(t.data_ref) + "\n";
    if (!t.quant.empty()) y += "    quant: " + quant_str(t.quant) + "\n";
  }
  y += g.nodes.empty() ? "nodes: []\n" : "nodes:\n";
  for (const auto& n : g.nodes) {
    y += "  - name: " + scalar(n.name) + "\n";
    y += "    op: " + scalar(n.op) + "\n";
    if (n.version != 1) y += "    version: " + int_str(n.version) + "\n";
    y += "    inputs: " + flow(n.inputs, scalar) + "\n";
    y += "    outputs: " + flow(n.outputs, scalar) + "\n";
    if (!n.attrs.empty()) {
      std::string s;
      for (const auto& [k, v] : n.attrs)
        s += (s.empty() ? "" : ", ") + scalar(k) + ": " + attr_str(v);
      y += "    attrs: {" + s + "}\n";
    }
  }
  return y;
}

}  // namespace fq::detail
