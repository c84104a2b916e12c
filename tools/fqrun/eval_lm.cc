// fqrun eval on a language-model decode graph: teacher-forced negative log-likelihood,
// perplexity and next-token top-1 over token sequences (docs/fqrun.md, "eval on language models").
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "common.h"
#include "lm.h"
#include "tokenizer.h"  // tools/llama: Tokenizer, kBos

namespace fqrun {

namespace {

struct Sequence {
  int line = 0;  // line in the --tokens file (0 for --text)
  std::vector<int> ids;
};

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f'; }

// Reads a --tokens file: one sequence per line, whitespace-separated decimal token ids, the
// first BOS, at least two ids, at most `context`, each in [0, vocab). Every problem is an
// fq::Error "FILE:LINE: ..." (one line).
std::vector<Sequence> read_token_file(const std::string& file, int vocab, int64_t context,
                                      const std::string& graph_path) {
  const std::string text = fq::read_file(file);
  if (text.empty()) throw fq::Error(file + ": empty file (no sequences)");
  std::vector<Sequence> seqs;
  size_t at = 0;
  int line = 0;
  while (at < text.size()) {
    size_t nl = text.find('\n', at);
    if (nl == std::string::npos) nl = text.size();
    ++line;
    const std::string where = file + ":" + std::to_string(line) + ": ";
    Sequence sq;
    sq.line = line;
    size_t i = at;
    while (i < nl) {
      while (i < nl && is_space(text[i])) ++i;
      if (i >= nl) break;
      size_t j = i;
      while (j < nl && !is_space(text[j])) ++j;
      const std::string word = text.substr(i, j - i);
      i = j;
      bool digits = word != "-";
      for (size_t k = word[0] == '-' ? 1 : 0; k < word.size(); ++k)
        digits = digits && word[k] >= '0' && word[k] <= '9';
      if (!digits)
        throw fq::Error(where + "'" + word.substr(0, 40) + "' is not a token id (a decimal integer)");
      int64_t v = -1;
      if (!parse_int(word, &v) || v < 0 || v >= vocab)
        throw fq::Error(where + "token " + word.substr(0, 40) + " (word " +
                        std::to_string(sq.ids.size() + 1) + " of the line) is outside the vocabulary [0, " +
                        std::to_string(vocab) + ")");
      sq.ids.push_back(int(v));
    }
    if (int64_t(sq.ids.size()) > context)
      throw fq::Error(where + "the sequence has " + std::to_string(sq.ids.size()) +
                      " tokens, more than the context length " + std::to_string(context) + " of " +
                      graph_path);
    if (sq.ids.empty()) throw fq::Error(where + "empty line (one sequence per line, no blank lines)");
    if (sq.ids[0] != fq::llama::kBos)
      throw fq::Error(where + "the sequence starts with token " + std::to_string(sq.ids[0]) +
                      ", not BOS (" + std::to_string(fq::llama::kBos) + ")");
    if (sq.ids.size() < 2)
      throw fq::Error(where + "a sequence needs BOS and at least one token to predict");
    seqs.push_back(std::move(sq));
    at = nl + 1;
  }
  return seqs;
}

// --text: the whole file encoded like a generate prompt (BOS first), then cut into sequences of
// BOS + up to context - 1 text tokens.
std::vector<Sequence> read_text_file(const std::string& file, const fq::llama::Tokenizer& tok,
                                     int64_t context) {
  const std::string text = fq::read_file(file);
  if (text.empty()) throw fq::Error(file + ": empty file (no text)");
  const size_t nul = text.find('\0');
  if (nul != std::string::npos) {
    int line = 1;
    for (size_t i = 0; i < nul; ++i) line += text[i] == '\n';
    throw fq::Error(file + ":" + std::to_string(line) +
                    ": NUL byte in the text (the tokenizer reads text as a C string)");
  }
  const std::vector<int> ids = tok.encode(text, true, false);
  // Non-empty text without NUL encodes to BOS + at least one token (docs/fqrun.md).
  if (ids.size() < 2) throw fq::Error(file + ": the text encodes to no tokens");
  std::vector<Sequence> seqs;
  const size_t chunk = size_t(context - 1);
  for (size_t at = 1; at < ids.size(); at += chunk) {
    Sequence sq;
    sq.ids.push_back(fq::llama::kBos);
    sq.ids.insert(sq.ids.end(), ids.begin() + long(at), ids.begin() + long(std::min(ids.size(), at + chunk)));
    seqs.push_back(std::move(sq));
  }
  return seqs;
}

struct Score {
  double nll = 0;    // sum of -log p(next)
  int64_t n = 0;     // predictions
  int64_t top1 = 0;  // predictions whose argmax is the next token
};

std::string score_str(const Score& s) {
  const double mean = s.n ? s.nll / double(s.n) : 0.0;
  char buf[160];
  std::snprintf(buf, sizeof buf, "nll=%.6f ppl=%.4f top1=%.4f tokens=%lld", mean, std::exp(mean),
                s.n ? double(s.top1) / double(s.n) : 0.0, (long long)s.n);
  return buf;
}

// --text on a byte-level model: the file's bytes are the tokens, one sequence from the zero
// state; the first byte is context only, every later byte is predicted. --limit caps the
// predicted bytes. Last line: bpb (bits per byte), top1 and the count of predicted bytes.
int eval_bytes(const fq::Graph& g, const std::string& path, const std::string& file,
               int64_t limit, const fq::Options& opt) {
  const std::string text = fq::read_file(file);
  if (text.size() < 2)
    throw fq::Error(file + ": " + std::to_string(text.size()) +
                    " bytes; byte-level eval needs at least 2 (the first is context only)");
  DecodeSession ds(g, path, opt);
  if (ds.vocab() != 256)
    throw fq::Error(path + ": a byte-level graph needs 256 logits, it has " + std::to_string(ds.vocab()));
  int64_t n = int64_t(text.size()) - 1;
  if (limit >= 0 && limit < n) n = limit;
  if (n > ds.context()) n = ds.context();
  const RealOutput& logits = ds.logits();
  std::vector<double> l(256);
  Score sc;
  ds.session().reset_state();
  for (int64_t t = 0; t < n; ++t) {
    ds.step(static_cast<unsigned char>(text[size_t(t)]), int(t));
    logits.read_row(0, l.data());
    size_t best = 0;
    for (size_t i = 1; i < l.size(); ++i)
      if (l[i] > l[best]) best = i;
    double sum = 0;
    for (double v : l) sum += std::exp(v - l[best]);
    const size_t next = static_cast<unsigned char>(text[size_t(t) + 1]);
    sc.nll += l[best] + std::log(sum) - l[next];
    sc.top1 += best == next;
    sc.n += 1;
  }
  const char* kind = logits.is_float() ? "f32" : logits.has_row_scale ? "integer + logits_scale" : "integer + quant";
  std::printf("graph %s  bytes %s  vocab 256  logits %s  isa %s  threads %d\n", g.name.c_str(),
              file.c_str(), kind, ds.session().isa().c_str(), ds.session().threads());
  const double nats = sc.n ? sc.nll / double(sc.n) : 0.0;
  std::printf("nll=%.6f (nats per byte)\n", nats);
  std::printf("bpb=%.6f top1=%.4f bytes=%lld\n", nats / std::log(2.0),
              sc.n ? double(sc.top1) / double(sc.n) : 0.0, (long long)sc.n);
  return 0;
}

}  // namespace

int eval_lm(const Args& a, const Global& global) {
  const std::string& path = a.graph();
  const bool by_text = a.has("text");
  const std::string file = a.str(by_text ? "text" : "tokens", "");
  if (file.empty()) throw UsageError(std::string("option '--") + (by_text ? "text" : "tokens") + "' needs a file name");
  const int64_t limit = a.integer("limit", -1, 0, int64_t(1) << 40);
  const int threads = int(a.integer("threads", 1, 1, 1024));
  const fq::Options opt = session_options(global, a, threads);

  const fq::Graph g = fq::load_graph(path);
  if (!is_decode_graph(g))
    throw fq::Error(path + ": --tokens and --text need a language-model decode graph (inputs "
                           "'tokens' and 'pos'); use --dataset for an image classifier");
  if (by_text && is_byte_model(g)) return eval_bytes(g, path, file, limit, opt);
  const std::string tok_path = by_text ? tokenizer_file(g, path, "--text") : std::string();
  DecodeSession ds(g, path, opt);
  const int vocab = ds.vocab();
  const int64_t context = ds.context();
  if (context < 2) throw fq::Error(path + ": context length " + std::to_string(context) + " is too short");

  std::vector<Sequence> seqs;
  if (by_text) {
    const fq::llama::Tokenizer tok = fq::llama::Tokenizer::load(tok_path, vocab);
    seqs = read_text_file(file, tok, context);
  } else {
    seqs = read_token_file(file, vocab, context, path);
  }
  if (limit >= 0 && size_t(limit) < seqs.size()) seqs.resize(size_t(limit));

  const RealOutput& logits = ds.logits();
  std::vector<double> l(static_cast<size_t>(vocab));
  std::vector<Score> per;
  Score all;
  for (const Sequence& sq : seqs) {
    Score sc;
    ds.session().reset_state();
    for (size_t t = 0; t + 1 < sq.ids.size(); ++t) {
      ds.step(sq.ids[t], int(t));
      logits.read_row(0, l.data());
      // log-softmax in double: lse = max + log(sum exp(l - max)); argmax lowest index on ties.
      size_t best = 0;
      for (size_t i = 1; i < l.size(); ++i)
        if (l[i] > l[best]) best = i;
      double sum = 0;
      for (double v : l) sum += std::exp(v - l[best]);
      const size_t next = size_t(sq.ids[t + 1]);
      sc.nll += l[best] + std::log(sum) - l[next];
      sc.top1 += best == next;
      sc.n += 1;
    }
    all.nll += sc.nll, all.n += sc.n, all.top1 += sc.top1;
    per.push_back(sc);
  }

  const char* kind = logits.is_float() ? "f32" : logits.has_row_scale ? "integer + logits_scale" : "integer + quant";
  std::printf("graph %s  %s %s  sequences %zu  context %lld  vocab %d  logits %s  isa %s  threads %d\n",
              g.name.c_str(), by_text ? "text" : "tokens", file.c_str(), seqs.size(),
              (long long)context, vocab, kind, ds.session().isa().c_str(), ds.session().threads());
  for (size_t i = 0; i < seqs.size(); ++i) {
    const std::string where = by_text ? "" : "  line " + std::to_string(seqs[i].line);
    std::printf("seq %zu%s  %s\n", i + 1, where.c_str(), score_str(per[i]).c_str());
  }
  std::printf("%s\n", score_str(all).c_str());
  return 0;
}

}  // namespace fqrun
