// llama2.c tokenizer (tokenizer.bin / tok512.bin format) with encode/decode behaving exactly like
// llama2.c's run.c (docs/llama.md): sentencepiece-style BPE by greedy best-score pair merges over
// UTF-8 codepoints, byte fallback, dummy-prefix space, BOS whitespace stripping on decode.
#pragma once
#include <string>
#include <unordered_map>
#include <vector>

namespace fq::llama {

constexpr int kBos = 1;  // <s>
constexpr int kEos = 2;  // </s>

class Tokenizer {
 public:
  // Reads the llama2.c tokenizer file: int32 max_token_length, then per token float32 score,
  // int32 byte length, bytes. With vocab_size > 0 the file must hold exactly that many tokens (the
  // model's vocab_size); with 0 it holds as many as it has. Like run.c, a token's text ends at its
  // first NUL byte. Malformed files (truncated, negative or over-long lengths, trailing bytes,
  // non-finite scores) throw fq::Error with a one-line message naming the file.
  static Tokenizer load(const std::string& path, int vocab_size = 0);
  // Builds a tokenizer from memory (tests, synthetic vocabularies). Throws fq::Error on
  // inconsistent input.
  static Tokenizer from_vocab(std::vector<std::string> pieces, std::vector<float> scores,
                              int max_token_length, const std::string& name = "<memory>");

  int vocab_size() const { return static_cast<int>(pieces_.size()); }
  int max_token_length() const { return max_token_length_; }
  const std::string& piece(int id) const { return pieces_.at(static_cast<size_t>(id)); }
  float score(int id) const { return scores_.at(static_cast<size_t>(id)); }
  const std::string& path() const { return path_; }
  // Exact-match lookup (run.c's str_lookup); -1 when absent. With duplicate pieces, the lowest id.
  int lookup(const std::string& piece) const;

  // run.c encode(): optional BOS (1); the dummy-prefix token " " when the text is non-empty; one
  // token per UTF-8 codepoint found in the vocabulary, else one byte-fallback token per byte
  // (byte + 3); then repeatedly merge the adjacent pair whose concatenation is in the vocabulary
  // with the highest score (leftmost on ties) until no pair merges; optional EOS (2). The text
  // ends at its first NUL byte, as a C string would.
  std::vector<int> encode(const std::string& text, bool bos, bool eos) const;

  // run.c decode(): the piece of `token`, without its leading space when prev_token is BOS, and
  // byte tokens "<0xXX>" turned into that single byte (byte 0 gives the empty string).
  std::string decode(int prev_token, int token) const;

 private:
  std::vector<std::string> pieces_;
  std::vector<float> scores_;
  std::unordered_map<std::string, int> index_;
  int max_token_length_ = 0;
  std::string path_;
  void build_index();
};

// run.c safe_printf()'s filter: false for an empty piece and for a one-byte piece that is neither
// printable nor whitespace in the C locale (control bytes); true otherwise.
bool piece_printable(const std::string& piece);

}  // namespace fq::llama
