// tools/llama: the llama2.c importer and float reference against llama2.c itself. Both checkpoint
// formats give the same weights; greedy decoding of stories260K reproduces llama2.c's own output
// byte for byte; the tokenizer reproduces llama2.c's test.c encodings; malformed files are
// rejected with one-line fq::Error messages that name the file.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>

#include <unistd.h>

#include "checkpoint.h"
#include "forward.h"
#include "fq/graph.h"
#include "llama_test_util.h"
#include "tokenizer.h"

using namespace fq::llama;
using namespace fq::llama::test;
namespace fs = std::filesystem;

namespace {


void write_file(const std::string& path, const std::string& bytes) {
  std::ofstream f(path, std::ios::binary);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  REQUIRE(f.good());
}


const LlamaWeights& stories_legacy() {
  static const LlamaWeights w = load_checkpoint(model_file("stories260K.bin"));
  return w;
}
const Tokenizer& tok512() {
  static const Tokenizer t = Tokenizer::load(model_file("tok512.bin"), 512);
  return t;
}
const Tokenizer& tok32000() {
  static const Tokenizer t = Tokenizer::load(model_file("tokenizer-32000.bin"), 32000);
  return t;
}


// Expects an fq::Error whose message is one line and contains every fragment.
template <class F>
void require_error(F&& f, std::initializer_list<std::string> fragments) {
  try {
    f();
    FAIL("expected fq::Error");
  } catch (const fq::Error& e) {
    const std::string msg = e.what();
    INFO(msg);
    CHECK(msg.find('\n') == std::string::npos);
    for (const auto& frag : fragments) CHECK(msg.find(frag) != std::string::npos);
  }
}

void put_i32(std::string& bytes, size_t off, int32_t v) { std::memcpy(&bytes[off], &v, 4); }

void append_floats(std::string& out, const std::vector<float>& v) {
  out.append(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(float));
}

// Writes weights in the legacy layout (export.py legacy_export): a separate classifier is
// signalled by a negative vocab_size and stored after the two RoPE tables.
std::string legacy_bytes(const LlamaWeights& w) {
  const LlamaConfig& c = w.config;
  std::string out(28, '\0');
  const int32_t hdr[7] = {c.dim,     c.hidden_dim,
                          c.n_layers, c.n_heads,
                          c.n_kv_heads, c.shared_classifier ? c.vocab_size : -c.vocab_size,
                          c.seq_len};
  std::memcpy(&out[0], hdr, sizeof hdr);
  append_floats(out, w.token_embedding);
  for (auto m : {&LlamaLayer::rms_att, &LlamaLayer::wq, &LlamaLayer::wk, &LlamaLayer::wv,
                 &LlamaLayer::wo, &LlamaLayer::rms_ffn, &LlamaLayer::w1, &LlamaLayer::w2,
                 &LlamaLayer::w3})
    for (const auto& L : w.layers) append_floats(out, L.*m);
  append_floats(out, w.rms_final);
  append_floats(out, std::vector<float>(2 * (size_t(c.seq_len) * c.head_size() / 2), 0.f));
  if (!c.shared_classifier) append_floats(out, w.wcls);
  return out;
}

// The v1 layout (export.py version1_export).
std::string v1_bytes(const LlamaWeights& w) {
  const LlamaConfig& c = w.config;
  std::string out(256, '\0');
  const uint32_t magic = kV1Magic;
  std::memcpy(&out[0], &magic, 4);
  const int32_t hdr[8] = {1, c.dim, c.hidden_dim, c.n_layers, c.n_heads, c.n_kv_heads,
                          c.vocab_size, c.seq_len};
  std::memcpy(&out[4], hdr, sizeof hdr);
  out[36] = c.shared_classifier ? 1 : 0;
  for (const auto& L : w.layers) append_floats(out, L.rms_att);
  for (const auto& L : w.layers) append_floats(out, L.rms_ffn);
  append_floats(out, w.rms_final);
  append_floats(out, w.token_embedding);
  for (auto m : {&LlamaLayer::wq, &LlamaLayer::wk, &LlamaLayer::wv, &LlamaLayer::wo,
                 &LlamaLayer::w1, &LlamaLayer::w2, &LlamaLayer::w3})
    for (const auto& L : w.layers) append_floats(out, L.*m);
  if (!c.shared_classifier) append_floats(out, w.wcls);
  return out;
}

void require_same_weights(const LlamaWeights& a, const LlamaWeights& b) {
  REQUIRE(a.config == b.config);
  CHECK(a.token_embedding == b.token_embedding);
  CHECK(a.rms_final == b.rms_final);
  CHECK(a.wcls == b.wcls);
  REQUIRE(a.layers.size() == b.layers.size());
  for (size_t l = 0; l < a.layers.size(); ++l) {
    INFO("layer " << l);
    const LlamaLayer &x = a.layers[l], &y = b.layers[l];
    CHECK(x.rms_att == y.rms_att);
    CHECK(x.wq == y.wq);
    CHECK(x.wk == y.wk);
    CHECK(x.wv == y.wv);
    CHECK(x.wo == y.wo);
    CHECK(x.rms_ffn == y.rms_ffn);
    CHECK(x.w1 == y.w1);
    CHECK(x.w2 == y.w2);
    CHECK(x.w3 == y.w3);
  }
}

}  // namespace

TEST_CASE("llama: legacy and v1 checkpoints load to identical weights", "[llama]") {
  const LlamaWeights& legacy = stories_legacy();
  const LlamaWeights v1 = load_checkpoint(model_file("stories260K_v1.bin"));
  CHECK(legacy.format == CheckpointFormat::legacy);
  CHECK(v1.format == CheckpointFormat::v1);
  const LlamaConfig& c = legacy.config;
  CHECK(c.dim == 64);
  CHECK(c.hidden_dim == 172);
  CHECK(c.n_layers == 5);
  CHECK(c.n_heads == 8);
  CHECK(c.n_kv_heads == 4);
  CHECK(c.vocab_size == 512);
  CHECK(c.seq_len == 512);
  CHECK(c.shared_classifier);
  CHECK(c.head_size() == 8);
  CHECK(c.kv_dim() == 32);
  CHECK(legacy.layers[4].wk.size() == 32u * 64u);
  CHECK(legacy.layers[4].w2.size() == 64u * 172u);
  CHECK(legacy.wcls.empty());
  CHECK(&legacy.classifier() == &legacy.token_embedding);
  require_same_weights(legacy, v1);
  CHECK(checkpoint_bytes(c, CheckpointFormat::legacy) == fs::file_size(model_file("stories260K.bin")));
  CHECK(checkpoint_bytes(c, CheckpointFormat::v1) == fs::file_size(model_file("stories260K_v1.bin")));

  // Forcing the format: the legacy file read as v1 fails on the magic; v1 as v1 works.
  require_error([] { load_checkpoint(model_file("stories260K.bin"), CheckpointFormat::v1); },
                {"stories260K.bin", "bad magic", "ak42"});
  require_same_weights(legacy, load_checkpoint(model_file("stories260K_v1.bin"),
                                               CheckpointFormat::v1));
}

TEST_CASE("llama: separate classifier in both formats", "[llama]") {
  // stories260K with a separate classifier equal to a scaled embedding, written in both layouts.
  LlamaWeights w = stories_legacy();
  w.config.shared_classifier = false;
  w.wcls = w.token_embedding;
  for (float& v : w.wcls) v *= 0.5f;
  TempDir dir;
  write_file(dir.file("sep_legacy.bin"), legacy_bytes(w));
  write_file(dir.file("sep_v1.bin"), v1_bytes(w));
  const LlamaWeights a = load_checkpoint(dir.file("sep_legacy.bin"));
  const LlamaWeights b = load_checkpoint(dir.file("sep_v1.bin"));
  CHECK_FALSE(a.config.shared_classifier);
  CHECK(a.config.vocab_size == 512);
  require_same_weights(a, b);
  REQUIRE(a.wcls == w.wcls);
  CHECK(&a.classifier() == &a.wcls);

  // The logits use wcls: half of the shared-classifier logits (a power-of-two scale is exact).
  RunState s1(stories_legacy().config), s2(a.config);
  const float* l1 = forward(stories_legacy(), s1, kBos, 0);
  const float* l2 = forward(a, s2, kBos, 0);
  for (int i = 0; i < 512; ++i) REQUIRE(l2[i] == l1[i] * 0.5f);
}

TEST_CASE("llama: greedy generation reproduces llama2.c byte for byte", "[llama]") {
  const std::string expected = expected_greedy_text();
  REQUIRE(expected.size() > 100);
  for (const char* file : {"stories260K.bin", "stories260K_v1.bin"}) {
    INFO(file);
    const LlamaWeights w = load_checkpoint(model_file(file));
    Sampler greedy(w.config.vocab_size, 0.0f, 0.9f, 1234);
    std::string streamed;
    const GenerateResult r = generate(w, tok512(), greedy, "", 200,
                                      [&](const std::string& p) { streamed += p; });
    CHECK(r.text == expected);
    CHECK(streamed == r.text);
    CHECK(r.positions == 200);
    REQUIRE(r.tokens.size() == 201u);  // BOS + 200 generated
    CHECK(r.tokens[0] == kBos);
    // Decoding the tokens again (run.c's decode + safe_printf) gives the same text.
    std::string text;
    for (size_t i = 1; i < r.tokens.size(); ++i) {
      const std::string piece = tok512().decode(r.tokens[i - 1], r.tokens[i]);
      if (piece_printable(piece)) text += piece;
    }
    CHECK(text == expected);
  }
}

TEST_CASE("llama: forward pass is deterministic and validates its inputs", "[llama]") {
  const LlamaWeights& w = stories_legacy();
  RunState a(w.config), b(w.config);
  const int toks[] = {kBos, 403, 407, 261};
  for (int pos = 0; pos < 4; ++pos) {
    const float* la = forward(w, a, toks[pos], pos);
    const float* lb = forward(w, b, toks[pos], pos);
    for (int i = 0; i < w.config.vocab_size; ++i) {
      REQUIRE(std::isfinite(la[i]));
      REQUIRE(la[i] == lb[i]);
    }
  }
  require_error([&] { forward(w, a, 512, 0); }, {"stories260K.bin", "token 512"});
  require_error([&] { forward(w, a, 0, 512); }, {"stories260K.bin", "position 512"});
  LlamaConfig other = w.config;
  other.seq_len = 16;
  RunState small(other);
  require_error([&] { forward(w, small, 0, 0); }, {"another config"});
}

TEST_CASE("llama: building blocks match their definitions", "[llama]") {
  // RMSNorm with eps 1e-5.
  const float x[4] = {1.f, -2.f, 3.f, 0.5f}, g[4] = {1.f, 2.f, 0.5f, -1.f};
  float o[4];
  rmsnorm(o, x, g, 4);
  const double ms = (1 + 4 + 9 + 0.25) / 4.0;
  for (int i = 0; i < 4; ++i) CHECK(o[i] == Approx(g[i] * x[i] / std::sqrt(ms + 1e-5)).epsilon(1e-6));
  // RoPE on adjacent pairs, angle pos * 10000^(-(i % head_size) / head_size).
  float v[8] = {1, 0, 1, 0, 0, 1, 0, 1};
  rope(v, 8, 4, 3);
  const double a0 = 3.0, a1 = 3.0 * std::pow(10000.0, -2.0 / 4.0);
  CHECK(v[0] == Approx(std::cos(a0)).margin(1e-6));
  CHECK(v[1] == Approx(std::sin(a0)).margin(1e-6));
  CHECK(v[2] == Approx(std::cos(a1)).margin(1e-6));
  CHECK(v[3] == Approx(std::sin(a1)).margin(1e-6));
  CHECK(v[4] == Approx(-std::sin(a0)).margin(1e-6));  // second head restarts the frequencies
  CHECK(v[5] == Approx(std::cos(a0)).margin(1e-6));
  // xorshift64* as in run.c: deterministic, in [0, 1).
  uint64_t s1 = 42, s2 = 42;
  for (int i = 0; i < 1000; ++i) {
    const float f = random_f32(&s1);
    REQUIRE(f >= 0.f);
    REQUIRE(f < 1.f);
    REQUIRE(random_u32(&s2) >> 8 == static_cast<uint32_t>(f * 16777216.0f));
  }
  // Sampling helpers.
  const float p[4] = {0.1f, 0.4f, 0.4f, 0.1f};
  CHECK(sample_argmax(p, 4) == 1);  // first of the ties
  CHECK(sample_mult(p, 4, 0.05f) == 0);
  CHECK(sample_mult(p, 4, 0.45f) == 1);
  CHECK(sample_mult(p, 4, 0.95f) == 3);
  CHECK(sample_topp(p, 4, 0.5f, 0.0f) == 1);   // nucleus {1, 2}
  CHECK(sample_topp(p, 4, 0.5f, 0.99f) == 2);
}

TEST_CASE("llama: tokenizer-32000 encodings match llama2.c test.c", "[llama]") {
  const Tokenizer& t = tok32000();
  CHECK(t.vocab_size() == 32000);
  CHECK(t.max_token_length() == 27);
  struct Case {
    std::string text;
    std::vector<int> tokens;
  };
  // From llama2.c test.c (prompts from Meta's example_text_completion.py), plus "hello world".
  const std::vector<Case> cases = {
      {"", {1}},
      {"hello world", {1, 22172, 3186}},
      {"I believe the meaning of life is", {1, 306, 4658, 278, 6593, 310, 2834, 338}},
      {"Simply put, the theory of relativity states that ",
       {1, 3439, 17632, 1925, 29892, 278, 6368, 310, 14215, 537, 5922, 393, 29871}},
      {"A brief message congratulating the team on the launch:\n\n        Hi everyone,\n\n        "
       "I just ",
       {1,   319,  11473, 2643, 378,   629,  271, 18099, 278,  3815, 373, 278,  6826,
        29901, 13, 13,    4706, 6324,  14332, 29892, 13, 13,    4706, 306, 925,  29871}},
      {"Translate English to French:\n\n        sea otter => loutre de mer\n        peppermint => "
       "menthe poivrée\n        plush girafe => girafe peluche\n        cheese =>",
       {1,    4103, 9632, 4223, 304,  5176, 29901, 13,   13,    4706, 7205, 4932, 357,
        1149, 301,  449,  276,  316,  2778, 13,   4706, 1236,  407,  837,  524,  1149,
        6042, 354,  772,  440,  29878, 1318, 13,   4706, 715,  1878, 330,  3055, 1725,
        1149, 330,  3055, 1725, 4639, 28754, 13,   4706, 923,  968,  1149}},
      // Byte fallback: U+8C1B is not a piece, so its three UTF-8 bytes become <0xE8><0xB0><0x9B>.
      {"生活的真谛是", {1, 29871, 30486, 31704, 30210, 30848, 235, 179, 158, 30392}},
  };
  for (const Case& c : cases) {
    INFO("text: " << c.text);
    const std::vector<int> got = t.encode(c.text, true, false);
    CHECK(got == c.tokens);
    // Round trip: decoding after BOS drops the dummy-prefix space.
    std::string text;
    for (size_t i = 1; i < got.size(); ++i) text += t.decode(got[i - 1], got[i]);
    CHECK(text == c.text);
  }
  // BOS/EOS flags.
  CHECK(t.encode("", false, false).empty());
  CHECK(t.encode("", true, true) == std::vector<int>{1, 2});
  CHECK(t.encode("hello world", false, true) == std::vector<int>{22172, 3186, 2});
  // Text ends at a NUL byte, as a C string.
  CHECK(t.encode(std::string("hello world\0junk", 16), true, false) ==
        std::vector<int>{1, 22172, 3186});
  // Decode details: the space is kept when the previous token is not BOS; byte tokens.
  CHECK(t.decode(1, 22172) == "hello");
  CHECK(t.decode(3186, 22172) == " hello");
  CHECK(t.decode(1, 13) == "\n");             // <0x0A>
  CHECK(t.decode(1, 3).empty());              // <0x00>: an empty C string
  CHECK(t.decode(1, 4) == std::string(1, '\x01'));
  CHECK(t.lookup(" hello") == 22172);
  CHECK(t.lookup("no such piece") == -1);
  require_error([&] { t.decode(1, 32000); }, {"tokenizer-32000.bin", "32000"});
}

TEST_CASE("llama: tok512 encodes and round-trips", "[llama]") {
  const Tokenizer& t = tok512();
  CHECK(t.vocab_size() == 512);
  CHECK(t.encode("", true, false) == std::vector<int>{1});
  const std::string text = expected_greedy_text();
  const std::vector<int> toks = t.encode(text, true, false);
  REQUIRE(toks.size() > 2);
  CHECK(toks.size() < text.size() / 2);  // merges happened
  std::string back;
  for (size_t i = 1; i < toks.size(); ++i) back += t.decode(toks[i - 1], toks[i]);
  CHECK(back == text);
  // Non-ASCII text falls back to byte tokens in a 512-piece vocabulary and still round-trips.
  const std::string utf8 = "caf\xc3\xa9 \xe2\x82\xac";
  std::string back2;
  const std::vector<int> t2 = t.encode(utf8, true, true);
  CHECK(t2.back() == kEos);
  for (size_t i = 1; i + 1 < t2.size(); ++i) back2 += t.decode(t2[i - 1], t2[i]);
  CHECK(back2 == utf8);
}

TEST_CASE("llama: safe_printf filter", "[llama]") {
  CHECK_FALSE(piece_printable(""));
  CHECK_FALSE(piece_printable(std::string(1, '\x01')));
  CHECK_FALSE(piece_printable(std::string(1, '\x7f')));
  CHECK_FALSE(piece_printable(std::string(1, '\xe9')));  // a lone high byte
  CHECK(piece_printable("\n"));
  CHECK(piece_printable("\t"));
  CHECK(piece_printable(" "));
  CHECK(piece_printable("a"));
  CHECK(piece_printable("\xc3\xa9"));  // multi-byte pieces always print
}

TEST_CASE("llama: temperature sampling follows llama2.c's RNG", "[llama]") {
  // Same seed, same text; the sampler consumes exactly one random_f32 per sampled token.
  const LlamaWeights& w = stories_legacy();
  Sampler a(512, 1.0f, 0.9f, 42), b(512, 1.0f, 0.9f, 42);
  const GenerateResult ra = generate(w, tok512(), a, "Once upon a time", 60);
  const GenerateResult rb = generate(w, tok512(), b, "Once upon a time", 60);
  CHECK(ra.text == rb.text);
  CHECK(ra.text.rfind("Once upon a time", 0) == 0);
  const int n_prompt = static_cast<int>(tok512().encode("Once upon a time", true, false).size());
  const int sampled = static_cast<int>(ra.tokens.size()) - n_prompt;
  uint64_t rng = 42;
  for (int i = 0; i < sampled; ++i) random_f32(&rng);
  // (a sampled BOS ends generation without being appended, after one more draw)
  if (ra.positions < 60) random_f32(&rng);
  CHECK(a.rng_state() == rng);
  require_error([] { Sampler(512, -1.0f, 0.9f, 1); }, {"temperature"});
  require_error([] { Sampler(512, 1.0f, 1.5f, 1); }, {"topp"});
}

TEST_CASE("llama: temperature and top-p sampling reproduce llama2.c run.c", "[llama]") {
  // stdout of llama2.c run.c (karpathy/llama2.c run.c at bd182289, gcc -O3), without the final
  // newline: `run stories260K.bin -z tok512.bin <args>`.
  struct Case {
    float temperature, topp;
    uint64_t seed;
    int steps;
    const char* prompt;
    const char* expected;
  };
  const Case cases[] = {
      {1.0f, 0.9f, 42, 100, "",  // -t 1.0 -s 42 -n 100
       "Once upon a time, there was a little girl named Lily. She loved to play outside in the "
       "sun. One day, her mom asked her to teach him a nice way to play in the sun. Lily was so "
       "excited to go outside and jump in the sky. \nAs she walked, she saw a t"},
      {0.8f, 1.0f, 123, 100, "",  // -t 0.8 -p 1.0 -s 123 -n 100 (plain multinomial sampling)
       "Once upon a time, there was a little boy named Timmy. Timmy loved to play with his toys "
       "and his ball. One day, he found a lot of traffic. He asked his mom, \"Boo! It's good to "
       "share your ball again.\"\nTimmy said, \"It's okay to be ni"},
      {1.0f, 0.5f, 7, 60, "Tom had a red car",  // -t 1.0 -p 0.5 -s 7 -n 60 -i "Tom had a red car"
       "Tom had a red car named Kitty. She loved to play outside in the sun. One day, she saw a "
       "small bird on the ground. The bird was very excited to"},
  };
  for (const Case& c : cases) {
    INFO("seed " << c.seed);
    Sampler s(512, c.temperature, c.topp, c.seed);
    CHECK(generate(stories_legacy(), tok512(), s, c.prompt, c.steps).text == c.expected);
  }
}

TEST_CASE("llama: malformed checkpoints are rejected with the file name", "[llama]") {
  TempDir dir;
  const std::string legacy = read_file(model_file("stories260K.bin"));
  const std::string v1 = read_file(model_file("stories260K_v1.bin"));
  auto write = [&](const std::string& name, const std::string& bytes) {
    const std::string p = dir.file(name);
    write_file(p, bytes);
    return p;
  };

  require_error([&] { load_checkpoint(dir.file("missing.bin")); }, {"missing.bin", "cannot open"});
  const std::string trunc = write("trunc.bin", legacy.substr(0, 100000));
  require_error([&] { load_checkpoint(trunc); },
                {"trunc.bin", "truncated", "1056540 bytes", "100000 bytes present"});
  const std::string trunc_v1 = write("trunc_v1.bin", v1.substr(0, v1.size() - 4));
  require_error([&] { load_checkpoint(trunc_v1); },
                {"trunc_v1.bin", "truncated", "1040384 bytes", "1040380 bytes present"});
  const std::string tiny = write("tiny.bin", legacy.substr(0, 20));
  require_error([&] { load_checkpoint(tiny); }, {"tiny.bin", "too short", "20 bytes present"});
  const std::string tiny_v1 = write("tiny_v1.bin", v1.substr(0, 100));
  require_error([&] { load_checkpoint(tiny_v1); }, {"tiny_v1.bin", "too short", "256"});
  const std::string trailing = write("trailing.bin", legacy + std::string(8, '\0'));
  require_error([&] { load_checkpoint(trailing); }, {"trailing.bin", "trailing"});

  std::string m = v1;
  m[3] = 'b';  // "24kb": not the v1 magic, and not a plausible legacy header either
  const std::string bad_magic = write("bad_magic.bin", m);
  require_error([&] { load_checkpoint(bad_magic); }, {"bad_magic.bin", "bad magic", "'24kb'", "ak42"});
  require_error([&] { load_checkpoint(bad_magic, CheckpointFormat::v1); },
                {"bad_magic.bin", "bad magic 0x626b3432", "ak42"});
  m = v1;
  put_i32(m, 4, 2);
  const std::string v2 = write("v2.bin", m);
  require_error([&] { load_checkpoint(v2); }, {"v2.bin", "version 2"});
  m = v1;
  m[36] = 7;
  const std::string flag = write("flag.bin", m);
  require_error([&] { load_checkpoint(flag); }, {"flag.bin", "shared_classifier"});

  struct HeaderCase {
    const char* name;
    int field;
    int32_t value;
    const char* fragment;
  };
  const HeaderCase cases[] = {
      {"dim0.bin", 0, 0, "dim 0 out of range"},
      {"dimneg.bin", 0, -64, "dim -64 out of range"},
      {"dimhuge.bin", 0, 1 << 30, "out of range"},
      {"hidden.bin", 1, -1, "hidden_dim -1"},
      {"layers.bin", 2, 100000, "n_layers 100000"},
      {"heads.bin", 3, 7, "dim 64 is not divisible by n_heads 7"},
      {"kvheads.bin", 4, 3, "n_heads 8 is not divisible by n_kv_heads 3"},
      {"kvmore.bin", 4, 16, "n_kv_heads 16 out of range"},
      {"vocab0.bin", 5, 0, "vocab_size 0"},
      {"seq.bin", 6, -5, "seq_len -5"},
      {"odd.bin", 3, 64, "odd"},  // head size 1
  };
  for (const HeaderCase& hc : cases) {
    INFO(hc.name);
    std::string h = legacy;
    put_i32(h, 4 * hc.field, hc.value);
    const std::string p = write(hc.name, h);
    require_error([&] { load_checkpoint(p); }, {hc.name, hc.fragment});
    std::string hv = v1;
    put_i32(hv, 8 + 4 * hc.field, hc.value);
    const std::string pv = write(std::string("v1_") + hc.name, hv);
    require_error([&] { load_checkpoint(pv); }, {std::string("v1_") + hc.name, hc.fragment});
  }
  // A header that is valid but describes another model: the size check catches it.
  std::string h = legacy;
  put_i32(h, 4 * 1, 128);
  const std::string p = write("hidden128.bin", h);
  require_error([&] { load_checkpoint(p); }, {"hidden128.bin", "hidden_dim 128", "bytes present"});

  // Non-finite weights are named.
  std::string nan = legacy;
  const float q = std::numeric_limits<float>::quiet_NaN();
  std::memcpy(&nan[28 + 4 * 5], &q, 4);
  const std::string pn = write("nan.bin", nan);
  require_error([&] { load_checkpoint(pn); }, {"nan.bin", "token_embedding", "non-finite"});
}

TEST_CASE("llama: malformed tokenizers are rejected with the file name", "[llama]") {
  TempDir dir;
  const std::string tok = read_file(model_file("tok512.bin"));
  auto write = [&](const std::string& name, const std::string& bytes) {
    const std::string p = dir.file(name);
    write_file(p, bytes);
    return p;
  };
  require_error([&] { Tokenizer::load(dir.file("none.bin")); }, {"none.bin", "cannot open"});
  const std::string trunc = write("tok_trunc.bin", tok.substr(0, 3000));
  require_error([&] { Tokenizer::load(trunc, 512); }, {"tok_trunc.bin", "truncated"});
  require_error([&] { Tokenizer::load(trunc); }, {"tok_trunc.bin", "truncated"});
  const std::string empty = write("tok_empty.bin", tok.substr(0, 2));
  require_error([&] { Tokenizer::load(empty); }, {"tok_empty.bin", "too short"});
  // Wrong vocabulary size for the model.
  require_error([&] { Tokenizer::load(model_file("tok512.bin"), 32000); },
                {"tok512.bin", "512 tokens present, 32000 expected"});
  require_error([&] { Tokenizer::load(model_file("tok512.bin"), 500); },
                {"tok512.bin", "trailing bytes"});
  // Absurd lengths: max_token_length, then the first token's length.
  std::string bad = tok;
  put_i32(bad, 0, -3);
  const std::string bad_max = write("tok_max.bin", bad);
  require_error([&] { Tokenizer::load(bad_max); }, {"tok_max.bin", "max_token_length -3"});
  bad = tok;
  put_i32(bad, 8, 1 << 30);
  const std::string bad_len = write("tok_len.bin", bad);
  require_error([&] { Tokenizer::load(bad_len); }, {"tok_len.bin", "token 0 has length"});
  bad = tok;
  put_i32(bad, 8, -1);
  const std::string neg_len = write("tok_neg.bin", bad);
  require_error([&] { Tokenizer::load(neg_len); }, {"tok_neg.bin", "token 0 has length -1"});
  bad = tok;
  const float inf = std::numeric_limits<float>::infinity();
  std::memcpy(&bad[4], &inf, 4);
  const std::string bad_score = write("tok_score.bin", bad);
  require_error([&] { Tokenizer::load(bad_score); }, {"tok_score.bin", "non-finite score"});

  // A vocabulary too small for byte fallback, or without the dummy-prefix piece.
  const Tokenizer small = Tokenizer::from_vocab({"<unk>", "<s>", "</s>", " ", "a"},
                                                {0, 0, 0, 0, 0}, 5, "small");
  CHECK(small.encode("a", true, false) == std::vector<int>{1, 3, 4});
  require_error([&] { small.encode("b", true, false); }, {"small", "byte-fallback"});
  const Tokenizer nospace = Tokenizer::from_vocab({"<unk>", "<s>", "</s>", "a"}, {0, 0, 0, 0}, 5,
                                                  "nospace");
  require_error([&] { nospace.encode("a", true, false); }, {"nospace", "dummy prefix"});
}
