// llama2.c tokenizer: loading and run.c-exact encode/decode (see tokenizer.h, docs/llama.md).
#include "tokenizer.h"

#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <sstream>

#include "checkpoint.h"  // kMaxVocab
#include "fq/graph.h"

namespace fq::llama {

namespace {

constexpr int kMaxTokenLength = 1 << 16;

[[noreturn]] void fail(const std::string& path, const std::string& msg) {
  throw fq::Error(path + ": " + msg);
}

}  // namespace

Tokenizer Tokenizer::load(const std::string& path, int vocab_size) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) fail(path, std::string("cannot open llama2.c tokenizer: ") + std::strerror(errno));
  std::vector<unsigned char> data;
  {
    unsigned char buf[1 << 16];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) {
      data.insert(data.end(), buf, buf + n);
      if (data.size() > (size_t(1) << 31)) {
        std::fclose(f);
        fail(path, "tokenizer file larger than 2 GiB");
      }
    }
    const bool err = std::ferror(f) != 0;
    std::fclose(f);
    if (err) fail(path, "read error");
  }
  if (vocab_size < 0 || vocab_size > kMaxVocab) {
    std::ostringstream s;
    s << "requested vocab_size " << vocab_size << " out of range [0, " << kMaxVocab << "]";
    fail(path, s.str());
  }

  size_t off = 0;
  auto i32 = [&](int32_t* v) {
    if (data.size() - off < 4) return false;
    std::memcpy(v, data.data() + off, 4);
    off += 4;
    return true;
  };
  Tokenizer t;
  t.path_ = path;
  int32_t max_len = 0;
  if (!i32(&max_len)) {
    std::ostringstream s;
    s << "file too short for the tokenizer header: " << data.size() << " bytes present, 4 expected";
    fail(path, s.str());
  }
  if (max_len <= 0 || max_len > kMaxTokenLength) {
    std::ostringstream s;
    s << "max_token_length " << max_len << " out of range [1, " << kMaxTokenLength << "]";
    fail(path, s.str());
  }
  t.max_token_length_ = max_len;
  while (off < data.size() && (vocab_size == 0 || t.vocab_size() < vocab_size)) {
    const int id = t.vocab_size();
    if (id >= kMaxVocab) {
      std::ostringstream s;
      s << "more than " << kMaxVocab << " tokens";
      fail(path, s.str());
    }
    float score;
    int32_t len;
    if (data.size() - off < 8) {
      std::ostringstream s;
      s << "truncated in token " << id << ": " << data.size() - off
        << " bytes left, 8 expected for its score and length";
      fail(path, s.str());
    }
    std::memcpy(&score, data.data() + off, 4);
    std::memcpy(&len, data.data() + off + 4, 4);
    off += 8;
    if (!std::isfinite(score)) {
      std::ostringstream s;
      s << "token " << id << " has a non-finite score";
      fail(path, s.str());
    }
    if (len < 0 || len > max_len) {
      std::ostringstream s;
      s << "token " << id << " has length " << len << ", outside [0, max_token_length " << max_len
        << "]";
      fail(path, s.str());
    }
    if (data.size() - off < static_cast<size_t>(len)) {
      std::ostringstream s;
      s << "truncated in token " << id << ": " << len << " bytes expected, " << data.size() - off
        << " present";
      fail(path, s.str());
    }
    const char* p = reinterpret_cast<const char*>(data.data() + off);
    // Like run.c's C strings, the text ends at the first NUL byte.
    t.pieces_.emplace_back(p, strnlen(p, static_cast<size_t>(len)));
    t.scores_.push_back(score);
    off += static_cast<size_t>(len);
  }
  if (vocab_size > 0 && t.vocab_size() != vocab_size) {
    std::ostringstream s;
    s << "truncated: " << t.vocab_size() << " tokens present, " << vocab_size << " expected";
    fail(path, s.str());
  }
  if (off != data.size()) {
    std::ostringstream s;
    s << data.size() - off << " trailing bytes after " << t.vocab_size() << " tokens";
    fail(path, s.str());
  }
  if (t.vocab_size() == 0) fail(path, "no tokens");
  t.build_index();
  return t;
}

Tokenizer Tokenizer::from_vocab(std::vector<std::string> pieces, std::vector<float> scores,
                                int max_token_length, const std::string& name) {
  if (pieces.empty() || pieces.size() != scores.size() ||
      pieces.size() > static_cast<size_t>(kMaxVocab))
    fail(name, "tokenizer needs as many scores as pieces (and at least one piece)");
  Tokenizer t;
  t.path_ = name;
  t.max_token_length_ = max_token_length;
  t.pieces_ = std::move(pieces);
  t.scores_ = std::move(scores);
  for (auto& p : t.pieces_) {
    p.resize(strnlen(p.c_str(), p.size()));
    if (static_cast<int>(p.size()) > max_token_length)
      fail(name, "piece longer than max_token_length");
  }
  t.build_index();
  return t;
}

void Tokenizer::build_index() {
  index_.clear();
  index_.reserve(pieces_.size());
  for (size_t i = 0; i < pieces_.size(); ++i) index_.emplace(pieces_[i], static_cast<int>(i));
}

int Tokenizer::lookup(const std::string& piece) const {
  auto it = index_.find(piece);
  return it == index_.end() ? -1 : it->second;
}

std::vector<int> Tokenizer::encode(const std::string& text_in, bool bos, bool eos) const {
  const size_t n = strnlen(text_in.c_str(), text_in.size());
  const char* text = text_in.c_str();
  std::vector<int> tokens;
  tokens.reserve(n + 3);
  if (bos) tokens.push_back(kBos);
  if (n > 0) {
    // add_dummy_prefix: sentencepiece prepends a space to non-empty text.
    const int prefix = lookup(" ");
    if (prefix < 0) fail(path_, "encode: the vocabulary has no ' ' piece for the dummy prefix");
    tokens.push_back(prefix);
  }

  // One token per UTF-8 codepoint (a start byte plus up to three continuation bytes), else one
  // byte-fallback token per byte: ids 3..258 are <0x00>..<0xFF> after <unk>, <s>, </s>.
  std::string buf;
  for (size_t i = 0; i < n; ++i) {
    const unsigned char c = static_cast<unsigned char>(text[i]);
    if ((c & 0xC0) != 0x80) buf.clear();  // not a continuation byte: a new codepoint starts
    buf.push_back(static_cast<char>(c));
    const unsigned char next = i + 1 < n ? static_cast<unsigned char>(text[i + 1]) : 0;
    if ((next & 0xC0) == 0x80 && buf.size() < 4) continue;
    const int id = lookup(buf);
    if (id >= 0) {
      tokens.push_back(id);
    } else {
      for (unsigned char b : buf) {
        const int fb = static_cast<int>(b) + 3;
        if (fb >= vocab_size())
          fail(path_, "encode: byte-fallback token " + std::to_string(fb) +
                          " is outside the vocabulary of " + std::to_string(vocab_size()));
        tokens.push_back(fb);
      }
    }
    buf.clear();
  }

  // Greedy merges: each round merges the adjacent pair whose concatenation is a piece with the
  // highest score (strictly greater than -1e10 and than any pair to its left). The pair table is
  // kept up to date instead of being rebuilt, which selects exactly the same pair as run.c.
  std::vector<int> pair;  // pair[i]: the piece id of tokens[i] + tokens[i+1], or -1
  auto pair_id = [&](size_t i) { return lookup(pieces_[tokens[i]] + pieces_[tokens[i + 1]]); };
  for (size_t i = 0; i + 1 < tokens.size(); ++i) pair.push_back(pair_id(i));
  while (true) {
    float best_score = -1e10f;
    int best_id = -1;
    size_t best_idx = 0;
    for (size_t i = 0; i < pair.size(); ++i) {
      if (pair[i] != -1 && scores_[pair[i]] > best_score) {
        best_score = scores_[pair[i]];
        best_id = pair[i];
        best_idx = i;
      }
    }
    if (best_id == -1) break;
    tokens[best_idx] = best_id;
    tokens.erase(tokens.begin() + static_cast<long>(best_idx) + 1);
    pair.erase(pair.begin() + static_cast<long>(best_idx));
    if (best_idx < pair.size()) pair[best_idx] = pair_id(best_idx);
    if (best_idx > 0) pair[best_idx - 1] = pair_id(best_idx - 1);
  }
  if (eos) tokens.push_back(kEos);
  return tokens;
}

std::string Tokenizer::decode(int prev_token, int token) const {
  if (token < 0 || token >= vocab_size()) {
    std::ostringstream s;
    s << "decode: token " << token << " outside the vocabulary of " << vocab_size();
    fail(path_, s.str());
  }
  const char* piece = pieces_[static_cast<size_t>(token)].c_str();
  // After BOS, the sentencepiece decoder strips the leading space.
  if (prev_token == kBos && piece[0] == ' ') ++piece;
  // Raw-byte pieces look like "<0x0A>": return that byte. The same sscanf format as run.c, so
  // the same pieces count as bytes.
  unsigned char byte_val;
  if (std::sscanf(piece, "<0x%02hhX>", &byte_val) == 1) {
    if (byte_val == 0) return std::string();  // a C string holding byte 0 is empty
    return std::string(1, static_cast<char>(byte_val));
  }
  return std::string(piece);
}

bool piece_printable(const std::string& piece) {
  if (piece.empty() || piece[0] == '\0') return false;
  if (piece.size() == 1) {
    const unsigned char b = static_cast<unsigned char>(piece[0]);
    const bool print = b >= 0x20 && b <= 0x7e;               // isprint, C locale
    const bool space = b == ' ' || (b >= '\t' && b <= '\r');  // isspace, C locale
    return print || space;
  }
  return true;
}

}  // namespace fq::llama
