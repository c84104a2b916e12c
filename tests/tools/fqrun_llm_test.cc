// fqrun on language-model decode graphs (docs/fqrun.md): `eval --tokens/--text` against an
// independent NLL computation (the llama2.c float reference, tools/llama/forward.h, and the
// engine API on an integer graph), `generate --tokens-out/--no-stop`, the committed evaluation
// sequences reproduced from their documented command, bad inputs, and fqimport-llama on
// truncated checkpoints. Needs the `models` target (build/models/stories260K-f32.yaml).
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "cli_test_util.h"
#include "checkpoint.h"
#include "forward.h"
#include "fq/fq.h"
#include "fq/graph.h"
#include "tokenizer.h"

namespace {

using namespace fq::test;

const std::string kModels = FQ_MODELS_DIR "/";
const std::string kF32 = kModels + "stories260K-f32.yaml";
const std::string kW8A8 = kModels + "stories260K-w8a8.yaml";
const std::string kLlama = FQ_SHARED_DIR "/models/llama/";
const std::string kEvalTokens = FQ_SOURCE_DIR "/graphs/llama/stories260K-eval.tokens";
// The float graph's numbers on kEvalTokens, as recorded in docs/fqrun.md.
const std::string kF32EvalLine = "nll=0.908896 ppl=2.4816 top1=0.7154 tokens=2544";

std::string q(const std::string& s) { return "'" + s + "'"; }

struct EvalLine {
  double nll = -1, ppl = -1, top1 = -1;
  long long tokens = -1;
};

EvalLine parse_eval(const std::string& line) {
  EvalLine e;
  const size_t at = line.find("nll=");
  REQUIRE(at != std::string::npos);
  REQUIRE(std::sscanf(line.c_str() + at, "nll=%lf ppl=%lf top1=%lf tokens=%lld", &e.nll, &e.ppl,
                      &e.top1, &e.tokens) == 4);
  return e;
}

void need_f32() {
  if (!exists(kF32)) FAIL("missing " << kF32 << ": build the models first (cmake --build . --target models)");
}

std::vector<std::vector<int>> read_tokens(const std::string& path) {
  std::vector<std::vector<int>> seqs;
  for (const std::string& l : lines_of(slurp(path))) {
    std::istringstream in(l);
    std::vector<int> s;
    int t;
    while (in >> t) s.push_back(t);
    seqs.push_back(s);
  }
  return seqs;
}

// Mean NLL and top-1 count of teacher-forced next-token prediction with the float reference.
struct RefScore {
  double nll_sum = 0;
  long long n = 0, top1 = 0;
};
RefScore reference_score(const fq::llama::LlamaWeights& w, const std::vector<std::vector<int>>& seqs) {
  RefScore r;
  const int V = w.config.vocab_size;
  for (const auto& s : seqs) {
    fq::llama::RunState st(w.config);
    for (size_t t = 0; t + 1 < s.size(); ++t) {
      const float* lg = fq::llama::forward(w, st, s[t], int(t));
      int best = 0;
      for (int i = 1; i < V; ++i)
        if (lg[i] > lg[best]) best = i;
      double sum = 0;
      for (int i = 0; i < V; ++i) sum += std::exp(double(lg[i]) - double(lg[best]));
      r.nll_sum += double(lg[best]) + std::log(sum) - double(lg[s[t + 1]]);
      r.top1 += best == s[t + 1];
      r.n += 1;
    }
  }
  return r;
}

// The documented command that wrote graphs/llama/stories260K-eval.tokens (docs/fqrun.md), with
// this build's paths.
std::string eval_data_command(int seed, const std::string& out) {
  return "generate " + q(kF32) + " -n 160 --temp 1 --topp 0.9 --seed " + std::to_string(seed) +
         " --no-stop --tokens-out " + q(out);
}

}  // namespace

TEST_CASE("fqrun eval --tokens on the float graph equals the float reference", "[fqrun][llm]") {
  need_f32();
  const Proc t1 = fqrun("eval " + q(kF32) + " --tokens " + q(kEvalTokens) + " --threads 1");
  const Proc t2 = fqrun("eval " + q(kF32) + " --tokens " + q(kEvalTokens) + " --threads 2");
  INFO(t1.out << t1.err);
  REQUIRE(t1.code == 0);
  REQUIRE(t2.code == 0);
  const auto l1 = lines_of(t1.out), l2 = lines_of(t2.out);
  REQUIRE(l1.size() == 1 + 16 + 1);  // header, one line per sequence, the result
  REQUIRE(l2.size() == l1.size());
  for (size_t i = 1; i < l1.size(); ++i) CHECK(l1[i] == l2[i]);  // exactly equal numbers
  CHECK(l1[1].rfind("seq 1  line 1  nll=", 0) == 0);
  CHECK(l1.back() == kF32EvalLine);  // the numbers recorded in docs/fqrun.md

  const EvalLine e = parse_eval(l1.back());
  CHECK(std::isfinite(e.nll));
  CHECK(e.nll > 0.1);
  CHECK(e.nll < std::log(512.0));  // better than uniform over the vocabulary
  CHECK(std::fabs(e.ppl - std::exp(e.nll)) < 1e-3);
  CHECK(e.top1 >= 0.0);
  CHECK(e.top1 <= 1.0);
  CHECK(e.tokens == 16 * 159);

  // Independent computation: llama2.c's forward pass (bit-identical logits) and a double
  // log-softmax.
  const auto w = fq::llama::load_checkpoint(kLlama + "stories260K.bin");
  const RefScore r = reference_score(w, read_tokens(kEvalTokens));
  CHECK(r.n == e.tokens);
  CHECK(std::fabs(r.nll_sum / double(r.n) - e.nll) < 1e-6);
  CHECK(std::fabs(double(r.top1) / double(r.n) - e.top1) < 1e-4);

  // --limit: the first sequences only; every ISA gives the same numbers.
  Proc p = fqrun("eval " + q(kF32) + " --tokens " + q(kEvalTokens) + " --limit 2");
  REQUIRE(p.code == 0);
  CHECK(parse_eval(last_line(p.out)).tokens == 2 * 159);
  p = fqrun("--isa scalar eval " + q(kF32) + " --tokens " + q(kEvalTokens));
  REQUIRE(p.code == 0);
  CHECK(last_line(p.out) == kF32EvalLine);
}

TEST_CASE("the evaluation tokens reproduce from their documented command", "[fqrun][llm]") {
  need_f32();
  const std::string out = tmpdir() + "/eval.tokens";
  std::remove(out.c_str());
  for (int seed = 1; seed <= 16; ++seed) {
    const Proc p = fqrun(eval_data_command(seed, out));
    REQUIRE(p.code == 0);
  }
  const std::string got = slurp(out), want = slurp(kEvalTokens);
  REQUIRE(!want.empty());
  CHECK(got == want);
  const auto seqs = read_tokens(kEvalTokens);
  REQUIRE(seqs.size() == 16);
  for (const auto& s : seqs) {
    REQUIRE(s.size() == 160);
    CHECK(s[0] == fq::llama::kBos);
  }
}

TEST_CASE("fqrun generate --tokens-out and --no-stop", "[fqrun][llm]") {
  need_f32();
  const std::string g = q(kF32), f = tmpdir() + "/gen.tokens";
  std::remove(f.c_str());
  // Greedy: the line holds the token fed at each position; re-decoding it gives the text except
  // the piece of the token sampled at the last position (printed, never fed).
  Proc p = fqrun("generate " + g + " --temp 0 -n 40 --tokens-out " + q(f));
  REQUIRE(p.code == 0);
  auto seqs = read_tokens(f);
  REQUIRE(seqs.size() == 1);
  REQUIRE(seqs[0].size() == 40);
  const auto tok = fq::llama::Tokenizer::load(kModels + "tok512.bin", 512);
  std::string text;
  for (size_t i = 1; i < seqs[0].size(); ++i) text += tok.decode(seqs[0][i - 1], seqs[0][i]);
  CHECK(p.out.rfind(text, 0) == 0);
  CHECK(p.out.size() > text.size() + 1);
  // A prompt: BOS, the prompt's tokens, then the sampled ones; appended as a second line.
  p = fqrun("generate " + g + " --prompt 'Lily had a cat' --temp 0 -n 20 --tokens-out " + q(f));
  REQUIRE(p.code == 0);
  seqs = read_tokens(f);
  REQUIRE(seqs.size() == 2);
  const std::vector<int> prompt = tok.encode("Lily had a cat", true, false);
  REQUIRE(seqs[1].size() == 20);
  CHECK(std::vector<int>(seqs[1].begin(), seqs[1].begin() + long(prompt.size())) == prompt);

  // Seed 7 samples BOS (the end of its story) after 164 positions: without --no-stop the run
  // stops there; with it, BOS is fed and generation goes on to -n.
  const std::string f2 = tmpdir() + "/stop.tokens";
  std::remove(f2.c_str());
  p = fqrun("generate " + g + " -n 200 --seed 7 --tokens-out " + q(f2));
  REQUIRE(p.code == 0);
  const std::string stopped_text = p.out;
  p = fqrun("generate " + g + " -n 200 --seed 7 --no-stop --tokens-out " + q(f2));
  REQUIRE(p.code == 0);
  seqs = read_tokens(f2);
  REQUIRE(seqs.size() == 2);
  REQUIRE(seqs[0].size() == 164);
  REQUIRE(seqs[1].size() == 200);
  CHECK(std::vector<int>(seqs[1].begin(), seqs[1].begin() + 164) == seqs[0]);
  CHECK(seqs[1][164] == fq::llama::kBos);
  CHECK(p.out.rfind(stopped_text.substr(0, stopped_text.size() - 1), 0) == 0);
  CHECK(p.out.find("<s>") != std::string::npos);
  // Such a line is valid eval input (BOS inside a sequence is an ordinary token).
  p = fqrun("eval " + g + " --tokens " + q(f2));
  REQUIRE(p.code == 0);
  CHECK(parse_eval(last_line(p.out)).tokens == 163 + 199);
}

TEST_CASE("fqrun eval --text encodes with the graph's tokenizer", "[fqrun][llm]") {
  need_f32();
  const auto tok = fq::llama::Tokenizer::load(kModels + "tok512.bin", 512);
  const std::string small = tmpdir() + "/small.txt";
  const std::string text = "Once upon a time, there was a little girl named Lily. She liked to play.\n";
  spit(small, text);
  Proc p = fqrun("eval " + q(kF32) + " --text " + q(small));
  INFO(p.out << p.err);
  REQUIRE(p.code == 0);
  const std::vector<int> ids = tok.encode(text, true, false);
  CHECK(parse_eval(last_line(p.out)).tokens == (long long)ids.size() - 1);
  // The same sequence as a tokens file gives the same numbers.
  std::string line;
  for (size_t i = 0; i < ids.size(); ++i) line += (i ? " " : "") + std::to_string(ids[i]);
  spit(tmpdir() + "/small.tokens", line + "\n");
  const Proc pt = fqrun("eval " + q(kF32) + " --tokens " + q(tmpdir() + "/small.tokens"));
  REQUIRE(pt.code == 0);
  CHECK(last_line(pt.out) == last_line(p.out));

  // Longer than the context (512): cut into sequences of BOS + 511 tokens.
  std::string big;
  for (int i = 0; i < 60; ++i) big += "Tom and Sue went to the park. They saw a big red ball and played all day. ";
  spit(tmpdir() + "/big.txt", big);
  p = fqrun("eval " + q(kF32) + " --text " + q(tmpdir() + "/big.txt"));
  REQUIRE(p.code == 0);
  const long long n = (long long)tok.encode(big, true, false).size() - 1;
  REQUIRE(n > 511);
  CHECK(parse_eval(last_line(p.out)).tokens == n);
  CHECK(p.out.find("seq " + std::to_string((n + 510) / 511) + "  nll=") != std::string::npos);
  CHECK(p.out.find("seq " + std::to_string((n + 510) / 511 + 1) + " ") == std::string::npos);
}

TEST_CASE("fqrun eval / generate on language models: bad input exits 2 with one line", "[fqrun][llm]") {
  need_f32();
  const std::string d = tmpdir() + "/", g = q(kF32);
  struct Bad {
    const char* file;
    std::string bytes, want;
  };
  const std::string long_line = [] {
    std::string s = "1";
    for (int i = 0; i < 512; ++i) s += " 5";
    return s + "\n";
  }();
  const Bad cases[] = {
      {"blank.tokens", "1 5 6\n\n1 7\n", ":2: empty line"},
      {"spaces.tokens", "1 5 6\n \t \n", ":2: empty line"},
      {"vocab.tokens", "1 5 6\n1 512 3\n", ":2: token 512 (word 2 of the line) is outside the vocabulary [0, 512)"},
      {"neg.tokens", "1 -4\n", ":1: token -4 (word 2 of the line) is outside the vocabulary"},
      {"huge.tokens", "1 123456789012345678901234567890\n", ":1: token 123456789012345678901234567890"},
      {"word.tokens", "1 5 x7\n", ":1: 'x7' is not a token id"},
      {"nobos.tokens", "1 5\n5 6 7\n", ":2: the sequence starts with token 5, not BOS (1)"},
      {"short.tokens", "1\n", ":1: a sequence needs BOS and at least one token to predict"},
      {"long.tokens", long_line, ":1: the sequence has 513 tokens, more than the context length 512"},
      {"empty.tokens", "", ": empty file (no sequences)"},
  };
  for (const Bad& b : cases) {
    INFO(b.file);
    spit(d + b.file, b.bytes);
    const Proc p = fqrun("eval " + g + " --tokens " + q(d + b.file));
    INFO(p.err);
    CHECK(p.code == 2);
    CHECK(p.err_lines() == 1);
    CHECK(p.out.empty());
    CHECK(p.err.find(d + b.file + b.want) != std::string::npos);
  }
  // A line of exactly the context length is fine.
  std::string full = "1";
  for (int i = 0; i < 511; ++i) full += " 5";
  spit(d + "full.tokens", full);  // no final newline: still a line
  Proc p = fqrun("eval " + g + " --tokens " + q(d + "full.tokens"));
  CHECK(p.code == 0);
  CHECK(parse_eval(last_line(p.out)).tokens == 511);

  // --text: empty file, NUL byte, missing file.
  spit(d + "empty.txt", "");
  spit(d + "nul.txt", std::string("Once\nupon\0 a time", 17));
  const std::pair<const char*, const char*> text_cases[] = {
      {"empty.txt", ": empty file (no text)"},
      {"nul.txt", ":2: NUL byte in the text"},
      {"missing.txt", ": cannot open"}};
  for (const auto& [f, want] : text_cases) {
    INFO(f);
    p = fqrun("eval " + g + " --text " + q(d + f));
    CHECK(p.code == 2);
    CHECK(p.err_lines() == 1);
    CHECK(p.out.empty());
    CHECK(p.err.find(d + f + want) != std::string::npos);
  }

  // The graph without its tokenizer: --text and generate fail naming the graph; --tokens works.
  fq::Graph ng = fq::load_graph(kF32);
  ng.meta.erase("tokenizer");
  const std::string notok = d + "notok.yaml";
  fq::save_graph(ng, notok);
  spit(d + "ok.txt", "Once upon a time.");
  for (const std::string& cmd : {"eval " + q(notok) + " --text " + q(d + "ok.txt"),
                                 "generate " + q(notok) + " -n 10",
                                 "generate " + q(notok) + " --prompt 'Once' -n 10"}) {
    INFO(cmd);
    p = fqrun(cmd);
    CHECK(p.code == 2);
    CHECK(p.err_lines() == 1);
    CHECK(p.err.find(notok + ": the graph names no tokenizer") != std::string::npos);
  }
  p = fqrun("eval " + q(notok) + " --tokens " + q(kEvalTokens) + " --limit 1");
  CHECK(p.code == 0);

  // Usage and graph-kind errors.
  const std::string digits = q(FQ_SOURCE_DIR "/graphs/digits/digits-f32.yaml");
  struct Usage {
    std::string args, want;
  };
  const Usage usage[] = {
      {"eval " + g, "missing --tokens FILE or --text FILE"},
      {"eval " + g + " --tokens " + q(kEvalTokens) + " --text " + q(d + "ok.txt"), "give one of"},
      {"eval " + g + " --tokens " + q(kEvalTokens) + " --split 1:2:test", "'--split' applies to --dataset only"},
      {"eval " + g + " --tokens " + q(kEvalTokens) + " --limit x", "option '--limit'"},
      {"eval " + g + " --dataset mnist:a,b", "a language-model graph"},
      {"eval " + digits + " --tokens " + q(kEvalTokens), "need a language-model decode graph"},
      {"generate " + g + " -n 513", "-n 513 is beyond the context length 512"},
      {"generate " + g + " -n 3 --prompt 'Once upon a time there was'", "more than -n 3"},
      {"generate " + g + " -n 3 --tokens-out " + q(d + "no/such/dir/x.tokens"), "cannot open for appending"},
      {"generate " + digits, "names no tokenizer"},
  };
  for (const Usage& u : usage) {
    INFO(u.args);
    p = fqrun(u.args);
    INFO(p.err);
    CHECK(p.code == 2);
    CHECK(p.err_lines() == 1);
    CHECK(p.out.empty());
    CHECK(p.err.find(u.want) != std::string::npos);
  }
  // An empty prompt is BOS alone (run.c); it never encodes to nothing.
  p = fqrun("generate " + g + " --prompt '' --temp 0 -n 5");
  CHECK(p.code == 0);
  CHECK(p.out == fqrun("generate " + g + " --temp 0 -n 5").out);
}

namespace {

// A small integer decode graph in the form of docs/llm_int.md: embedding -> rmsnorm -> q/k/v
// dimatmul -> attention (int8 KV cache) -> dimatmul classifier, output logits i16 [1, V] and
// logits_scale i32 [1, 2]. Random weights: only the tool's arithmetic on its outputs is tested.
fq::Graph tiny_int_graph(int V, int D, int S) {
  std::mt19937 rng(2027);
  fq::Graph g;
  g.name = "tiny-int";
  auto tensor = [&](const std::string& name, fq::DType t, std::vector<int64_t> shape, bool state = false) {
    fq::TensorDef d;
    d.name = name, d.dtype = t, d.shape = std::move(shape), d.is_state = state;
    g.add_tensor(d);
  };
  auto constant = [&](const std::string& name, fq::DType t, std::vector<int64_t> shape, const void* p) {
    fq::TensorDef d;
    d.name = name, d.dtype = t, d.shape = std::move(shape), d.is_const = true;
    d.data = fq::ConstData::copy_of(p, d.nbytes());
    g.add_tensor(d);
  };
  auto i8s = [&](size_t n) {
    std::vector<int8_t> v(n);
    for (auto& x : v) x = int8_t(int(rng() % 255) - 127);
    return v;
  };
  auto node = [&](const std::string& name, const std::string& op, std::vector<std::string> in,
                  std::vector<std::string> out, std::map<std::string, fq::Attr> attrs) {
    fq::NodeDef n;
    n.name = name, n.op = op, n.inputs = std::move(in), n.outputs = std::move(out), n.attrs = std::move(attrs);
    g.nodes.push_back(n);
  };
  tensor("tokens", fq::DType::i32, {1});
  tensor("pos", fq::DType::i32, {1});
  const auto table = i8s(size_t(V) * D);
  constant("table", fq::DType::i8, {V, D}, table.data());
  std::vector<int32_t> ts(size_t(V) * 2);
  for (int v = 0; v < V; ++v) ts[2 * v] = (1 << 14) + int(rng() % 1000), ts[2 * v + 1] = 20;
  constant("table_scale", fq::DType::i32, {V, 2}, ts.data());
  tensor("x", fq::DType::i32, {1, D});
  node("embed", "embedding", {"tokens", "table", "table_scale"}, {"x"}, {{"exp", int64_t{16}}});
  tensor("xb", fq::DType::i8, {1, D});
  tensor("xb_s", fq::DType::i32, {1, 2});
  node("norm", "rmsnorm", {"x"}, {"xb", "xb_s"}, {{"eps_m", int64_t{1}}, {"eps_e", int64_t{20}}, {"qmax", int64_t{127}}});
  std::vector<int32_t> mult(size_t(std::max(V, D)), 1 << 20);
  for (const char* w : {"q", "k", "v"}) {
    const auto wt = i8s(size_t(D) * D);
    constant(std::string("w") + w, fq::DType::i8, {D, D}, wt.data());
    constant(std::string("m") + w, fq::DType::i32, {D}, mult.data());
    tensor(w, fq::DType::i16, {1, D});
    tensor(std::string(w) + "_s", fq::DType::i32, {1, 2});
    node(std::string("mm_") + w, "dimatmul", {"xb", "xb_s", std::string("w") + w, std::string("m") + w},
         {w, std::string(w) + "_s"}, {{"w_exp", int64_t{26}}});
  }
  const int H = 2;  // heads of D / H = 16
  tensor("kc", fq::DType::i8, {S, D}, true);
  tensor("kc_s", fq::DType::i32, {S, H, 2}, true);
  tensor("vc", fq::DType::i8, {S, D}, true);
  tensor("vc_s", fq::DType::i32, {S, H, 2}, true);
  tensor("a", fq::DType::i8, {1, D});
  tensor("a_s", fq::DType::i32, {1, 2});
  node("attn", "attention", {"q", "q_s", "k", "k_s", "v", "v_s", "kc", "kc_s", "vc", "vc_s", "pos"},
       {"a", "a_s"},
       {{"n_heads", int64_t{H}}, {"n_kv_heads", int64_t{H}}, {"clip_q16", int64_t{15} << 16}, {"qmax", int64_t{127}}});
  const auto wc = i8s(size_t(V) * D);
  constant("wcls", fq::DType::i8, {V, D}, wc.data());
  constant("mcls", fq::DType::i32, {V}, mult.data());
  tensor("logits", fq::DType::i16, {1, V});
  tensor("logits_scale", fq::DType::i32, {1, 2});
  node("cls", "dimatmul", {"a", "a_s", "wcls", "mcls"}, {"logits", "logits_scale"}, {{"w_exp", int64_t{26}}});
  g.inputs = {"tokens", "pos"};
  g.outputs = {"logits", "logits_scale"};
  g.meta["tokenizer"] = "tok512.bin";
  fq::validate_graph(g);
  return g;
}

std::vector<double> real_logits(fq::Session& s) {
  const fq::TensorView l = s.output("logits"), sc = s.output("logits_scale");
  const int16_t* v = static_cast<const int16_t*>(l.data);
  const int32_t* m = static_cast<const int32_t*>(sc.data);
  std::vector<double> r(size_t(l.shape.back()));
  for (size_t i = 0; i < r.size(); ++i) r[i] = double(v[i]) * double(m[0]) * std::pow(2.0, -double(m[1]));
  return r;
}

}  // namespace

TEST_CASE("fqrun eval and generate on an integer graph (logits i16 + logits_scale)", "[fqrun][llm]") {
  need_f32();
  const int V = 512, D = 32, S = 64;
  fq::Graph g;
  try {
    g = tiny_int_graph(V, D, S);
  } catch (const fq::Error& e) {
    FAIL("the engine rejects the integer graph: " << e.what());
  }
  const std::string path = tmpdir() + "/tiny-int.yaml";
  fq::save_graph(g, path);
  std::filesystem::copy_file(kModels + "tok512.bin", tmpdir() + "/tok512.bin",
                             std::filesystem::copy_options::overwrite_existing);

  // Reference through the API: teacher-forced NLL of two sequences, and the greedy chain.
  const std::vector<std::vector<int>> seqs = {{1, 5, 300, 7, 9, 400, 2}, {1, 511, 0, 3}};
  std::string file;
  for (const auto& s : seqs) {
    for (size_t i = 0; i < s.size(); ++i) file += (i ? " " : "") + std::to_string(s[i]);
    file += "\n";
  }
  spit(tmpdir() + "/int.tokens", file);
  const fq::Graph loaded = fq::load_graph(path);
  fq::Session s(loaded);
  double nll = 0;
  long long n = 0, top1 = 0;
  for (const auto& sq : seqs) {
    s.reset_state();
    for (size_t t = 0; t + 1 < sq.size(); ++t) {
      *static_cast<int32_t*>(s.input("tokens").data) = sq[t];
      *static_cast<int32_t*>(s.input("pos").data) = int32_t(t);
      s.run();
      const std::vector<double> l = real_logits(s);
      size_t best = 0;
      for (size_t i = 1; i < l.size(); ++i)
        if (l[i] > l[best]) best = i;
      double sum = 0;
      for (double v : l) sum += std::exp(v - l[best]);
      nll += l[best] + std::log(sum) - l[size_t(sq[t + 1])];
      top1 += int(best) == sq[t + 1];
      ++n;
    }
  }
  CHECK(nll > 0);
  const Proc p = fqrun("eval " + q(path) + " --tokens " + q(tmpdir() + "/int.tokens"));
  INFO(p.out << p.err);
  REQUIRE(p.code == 0);
  CHECK(p.out.find("logits integer + logits_scale") != std::string::npos);
  const EvalLine e = parse_eval(last_line(p.out));
  CHECK(e.tokens == n);
  CHECK(std::fabs(e.nll - nll / double(n)) < 1e-6);
  CHECK(std::fabs(e.top1 - double(top1) / double(n)) < 1e-4);
  const Proc p2 = fqrun("eval " + q(path) + " --tokens " + q(tmpdir() + "/int.tokens") + " --threads 2");
  CHECK(last_line(p2.out) == last_line(p.out));

  // Greedy generation takes the argmax of the integer logits.
  const std::string f = tmpdir() + "/int-gen.tokens";
  std::remove(f.c_str());
  Proc gp = fqrun("generate " + q(path) + " --temp 0 -n 12 --no-stop --tokens-out " + q(f));
  REQUIRE(gp.code == 0);
  std::vector<int> want = {1};
  s.reset_state();
  for (int pos = 0; pos + 1 < 12; ++pos) {
    *static_cast<int32_t*>(s.input("tokens").data) = want.back();
    *static_cast<int32_t*>(s.input("pos").data) = pos;
    s.run();
    const fq::TensorView l = s.output("logits");
    const int16_t* v = static_cast<const int16_t*>(l.data);
    int best = 0;
    for (int i = 1; i < V; ++i)
      if (v[i] > v[best]) best = i;
    want.push_back(best);
  }
  CHECK(read_tokens(f).at(0) == want);
  // Sampling uses the real logits; reproducible with a seed, and -n beyond the cache rows fails.
  const Proc s1 = fqrun("generate " + q(path) + " -n 20 --seed 3 --no-stop");
  const Proc s2 = fqrun("generate " + q(path) + " -n 20 --seed 3 --no-stop --threads 2");
  CHECK(s1.code == 0);
  CHECK(s1.out == s2.out);
  const Proc over = fqrun("generate " + q(path) + " -n " + std::to_string(S + 1));
  CHECK(over.code == 2);
  CHECK(over.err.find("beyond the context length " + std::to_string(S)) != std::string::npos);
}

TEST_CASE("fqrun eval on the integer stories260K models (when built)", "[fqrun][llm]") {
  need_f32();
  for (const char* name : {"stories260K-w8a8", "stories260K-w4a8", "stories260K-w4a4"}) {
    const std::string m = kModels + name + ".yaml";
    if (!exists(m)) {
      WARN("skipped: " << m << " is not built yet");
      continue;
    }
    INFO(m);
    const Proc p = fqrun("eval " + q(m) + " --tokens " + q(kEvalTokens));
    INFO(p.err);
    REQUIRE(p.code == 0);
    const EvalLine e = parse_eval(last_line(p.out));
    CHECK(std::isfinite(e.nll));
    CHECK(e.tokens == 16 * 159);
    CHECK(e.top1 >= 0.0);
    CHECK(e.top1 <= 1.0);
    const Proc gen = fqrun("generate " + q(m) + " --temp 0 -n 50");
    CHECK(gen.code == 0);
    CHECK(!gen.out.empty());
  }
}

TEST_CASE("fqimport-llama: truncated checkpoints exit 2 with one line naming the file", "[fqrun][llm]") {
  const std::string d = tmpdir() + "/";
  for (const char* src : {"stories260K.bin", "stories260K_v1.bin"}) {
    const std::string bytes = slurp(kLlama + src);
    REQUIRE(bytes.size() > 100000);
    for (size_t keep : {size_t(0), size_t(20), size_t(100), bytes.size() / 2, bytes.size() - 4}) {
      const std::string f = d + "cut-" + std::to_string(keep) + "-" + src;
      spit(f, bytes.substr(0, keep));
      INFO(f);
      const Proc p = run(FQIMPORT_LLAMA_PATH, q(f) + " " + q(kLlama + "tok512.bin") + " -o " + q(d + "out.yaml"));
      CHECK(p.code == 2);
      CHECK(p.err_lines() == 1);
      CHECK(p.err.find(f + ": ") != std::string::npos);
    }
  }
}
