// fqrun bench: latency per inference for a list of thread counts, a per-node profile, and the
// float reference graph timed in the same run (llama-bench / TFLite benchmark_model conventions).
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <memory>
#include <optional>

#include "common.h"

namespace fqrun {

namespace {

const char kBenchUsage[] =
    "usage: fqrun bench GRAPH [options]\n"
    "\n"
    "Times Session::run() on random-but-fixed inputs (uniform random pixels from a seeded\n"
    "generator, converted like an image) for each thread count: median, mean, min, max and\n"
    "standard deviation in microseconds over the timed runs after the warmup runs. The float\n"
    "reference graph is timed in the same run and the speed ratio printed (reference median /\n"
    "median). --profile adds a per-node table from separate profiled runs (median per node and\n"
    "its share of the sum).\n"
    "\n"
    "options:\n"
    "  --warmup N          untimed runs before timing, per graph and thread count (default 10)\n"
    "  --iterations N      timed runs per graph and thread count (default 100)\n"
    "  --threads LIST      comma-separated thread counts, e.g. 1,2 (default 1)\n"
    "  --reference FILE    float graph to time beside GRAPH (default: GRAPH's meta\n"
    "                      'float_reference', relative to GRAPH's folder; none if absent)\n"
    "  --no-reference      do not time a float reference\n"
    "  --profile           per-node time table (of GRAPH; separate profiled runs)\n"
    "  --seed S            input generator seed (default 1)\n"
    "  --json              one JSON object instead of tables\n"
    "  --csv               CSV rows instead of tables\n"
    "  --isa ISA           highest kernel ISA (default: $FQ_ISA, else the best)\n";

struct Stats {
  double median = 0, mean = 0, min = 0, max = 0, stddev = 0;
  std::vector<double> samples;  // microseconds, in run order
};

Stats stats_of(std::vector<double> us) {
  Stats s;
  s.samples = us;
  if (us.empty()) return s;
  std::sort(us.begin(), us.end());
  const size_t n = us.size();
  s.median = n % 2 ? us[n / 2] : (us[n / 2 - 1] + us[n / 2]) / 2;
  s.min = us.front(), s.max = us.back();
  double sum = 0;
  for (double v : us) sum += v;
  s.mean = sum / double(n);
  double var = 0;
  for (double v : us) var += (v - s.mean) * (v - s.mean);
  s.stddev = n > 1 ? std::sqrt(var / double(n - 1)) : 0;
  return s;
}

double median_of(std::vector<double> v) { return stats_of(std::move(v)).median; }

struct OpStat {
  std::string name, op, kernel;
  double median_us = 0, share = 0;
};

struct Model {
  std::string role;  // "model" or "reference"
  std::string path;
  fq::Graph g;
  uint64_t weight_bytes = 0;
};

struct Result {
  const Model* model = nullptr;
  int threads = 1;
  std::string isa;
  size_t arena = 0;
  Stats lat;
  double speedup = 0;  // reference median / this median (model rows with a reference)
  std::vector<OpStat> ops;
};

uint64_t splitmix64(uint64_t& state) {
  uint64_t z = (state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// Every input gets uniform random pixels (from `seed` and the input's index), converted to its
// dtype like an image, so graphs with the same input shapes get the same real-valued inputs.
void fill_inputs(fq::Session& s, uint64_t seed) {
  for (size_t i = 0; i < s.num_inputs(); ++i) {
    fq::TensorView in = s.input(i);
    const int64_t n = numel(in.shape);
    std::vector<uint8_t> px(size_t(std::max<int64_t>(n, 0)));
    uint64_t state = seed * 0x100000001B3ull + i;
    for (auto& p : px) p = uint8_t(splitmix64(state) >> 56);
    const fq::tools::PixelConverter conv(in.name, in.dtype, in.shape, in.quant);
    conv.convert(px.data(), 0, n, in.data);
  }
}

Result time_model(const Model& m, const fq::Options& opt, int warmup, int iterations, uint64_t seed) {
  fq::Session s(m.g, opt);
  fill_inputs(s, seed);
  for (int i = 0; i < warmup; ++i) s.run();
  std::vector<double> us;
  us.reserve(size_t(iterations));
  for (int i = 0; i < iterations; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    s.run();
    const auto t1 = std::chrono::steady_clock::now();
    us.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());
  }
  Result r;
  r.model = &m;
  r.threads = s.threads();
  r.isa = s.isa();
  r.arena = s.arena_bytes();
  r.lat = stats_of(std::move(us));
  return r;
}

std::vector<OpStat> profile_model(const Model& m, fq::Options opt, int warmup, int iterations,
                                  uint64_t seed) {
  opt.profile = true;
  fq::Session s(m.g, opt);
  fill_inputs(s, seed);
  for (int i = 0; i < warmup; ++i) s.run();
  const size_t n = s.nodes().size();
  std::vector<std::vector<double>> per(n);
  for (int i = 0; i < iterations; ++i) {
    s.run();
    const auto& nodes = s.nodes();
    for (size_t k = 0; k < n; ++k) per[k].push_back(double(nodes[k].last_ns) / 1000.0);
  }
  std::vector<OpStat> ops(n);
  double total = 0;
  for (size_t k = 0; k < n; ++k) {
    const fq::NodeReport& r = s.nodes()[k];
    ops[k].name = r.name, ops[k].op = r.op, ops[k].kernel = r.kernel;
    ops[k].median_us = median_of(per[k]);
    total += ops[k].median_us;
  }
  for (auto& o : ops) o.share = total > 0 ? o.median_us / total : 0;
  return ops;
}

std::string json_str(const std::string& s) {
  std::string o = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') o += '\\', o += char(c);
    else if (c == '\n') o += "\\n";
    else if (c < 0x20) {
      char b[8];
      std::snprintf(b, sizeof b, "\\u%04x", c);
      o += b;
    } else o += char(c);
  }
  return o + "\"";
}

std::string num(double v, int decimals = 3) {
  if (!std::isfinite(v)) return "null";
  char b[64];
  std::snprintf(b, sizeof b, "%.*f", decimals, v);
  return b;
}

std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\n") == std::string::npos) return s;
  std::string o = "\"";
  for (char c : s) o += c == '"' ? std::string("\"\"") : std::string(1, c);
  return o + "\"";
}

uint64_t peak_rss_bytes() {
  struct rusage u;
  if (getrusage(RUSAGE_SELF, &u) != 0) return 0;
  return uint64_t(u.ru_maxrss) * 1024;  // Linux: kilobytes
}

}  // namespace

int cmd_bench(const std::vector<std::string>& argv, const Global& global) {
  const Args a(argv,
               {{"warmup", 0, true}, {"iterations", 0, true}, {"threads", 't', true},
                {"reference", 0, true}, {"no-reference", 0, false}, {"profile", 0, false},
                {"seed", 0, true}, {"json", 0, false}, {"csv", 0, false}},
               1);
  if (a.help) {
    std::fputs(kBenchUsage, stdout);
    return 0;
  }
  const std::string& path = a.graph();
  const int warmup = int(a.integer("warmup", 10, 0, 1000000));
  const int iterations = int(a.integer("iterations", 100, 1, 10000000));
  const std::vector<int64_t> thread_list = a.int_list("threads", "1", 1, 1024);
  const uint64_t seed = uint64_t(a.integer("seed", 1, 0, int64_t(1) << 62));
  const bool json = a.has("json"), csv = a.has("csv"), profile = a.has("profile");
  if (json && csv) throw UsageError("--json and --csv exclude each other");
  if (a.has("reference") && a.has("no-reference"))
    throw UsageError("--reference and --no-reference exclude each other");
  (void)session_options(global, a, 1);  // validates --isa before the slow part

  std::vector<std::unique_ptr<Model>> models;
  auto add_model = [&](const std::string& role, const std::string& p) {
    auto m = std::make_unique<Model>();
    m->role = role, m->path = p, m->g = fq::load_graph(p);
    for (const auto& t : m->g.tensors)
      if (t.is_const) m->weight_bytes += t.nbytes();
    models.push_back(std::move(m));
  };
  add_model("model", path);
  std::string ref_path;
  if (a.has("reference")) {
    ref_path = a.str("reference", "");
  } else if (!a.has("no-reference")) {
    const auto it = models[0]->g.meta.find("float_reference");
    if (it != models[0]->g.meta.end() && !it->second.empty())
      ref_path = it->second[0] == '/' ? it->second : dirname_of(path) + "/" + it->second;
  }
  if (!ref_path.empty()) {
    if (a.has("reference")) {
      add_model("reference", ref_path);
    } else {
      try {  // named by the graph's meta: a missing file is a note, not a failure
        add_model("reference", ref_path);
      } catch (const fq::Error& e) {
        std::fprintf(stderr, "fqrun bench: float reference skipped: %s\n", e.what());
      }
    }
  }
  const Model* ref = models.size() > 1 ? models[1].get() : nullptr;

  std::vector<Result> results;
  std::string isa_in_force;
  for (int64_t t : thread_list) {
    const fq::Options opt = session_options(global, a, int(t));
    Result r = time_model(*models[0], opt, warmup, iterations, seed);
    if (profile) r.ops = profile_model(*models[0], opt, warmup, iterations, seed);
    isa_in_force = r.isa;
    if (ref) {
      Result rr = time_model(*ref, opt, warmup, iterations, seed);
      rr.speedup = 1.0;
      if (r.lat.median > 0) r.speedup = rr.lat.median / r.lat.median;
      results.push_back(std::move(r));
      results.push_back(std::move(rr));
    } else {
      results.push_back(std::move(r));
    }
  }
  const std::string cpu = cpu_name();
  const uint64_t rss = peak_rss_bytes();

  if (json) {
    std::string o = "{";
    o += "\"model\":" + json_str(models[0]->g.name) + ",\"path\":" + json_str(path);
    o += ",\"isa\":" + json_str(isa_in_force) + ",\"cpu\":" + json_str(cpu);
    o += ",\"threads\":[";
    for (size_t i = 0; i < thread_list.size(); ++i) o += (i ? "," : "") + std::to_string(thread_list[i]);
    o += "],\"warmup\":" + std::to_string(warmup) + ",\"iterations\":" + std::to_string(iterations);
    o += ",\"seed\":" + std::to_string(seed) + ",\"weight_bytes\":" + std::to_string(models[0]->weight_bytes);
    o += ",\"peak_rss_bytes\":" + std::to_string(rss);
    o += ",\"reference\":";
    if (ref)
      o += "{\"model\":" + json_str(ref->g.name) + ",\"path\":" + json_str(ref->path) +
           ",\"weight_bytes\":" + std::to_string(ref->weight_bytes) + "}";
    else
      o += "null";
    o += ",\"runs\":[";
    for (size_t i = 0; i < results.size(); ++i) {
      const Result& r = results[i];
      o += std::string(i ? "," : "") + "{\"graph\":" + json_str(r.model->g.name) +
           ",\"role\":" + json_str(r.model->role) + ",\"threads\":" + std::to_string(r.threads) +
           ",\"isa\":" + json_str(r.isa) + ",\"arena_bytes\":" + std::to_string(r.arena) +
           ",\"median_us\":" + num(r.lat.median) + ",\"mean_us\":" + num(r.lat.mean) +
           ",\"min_us\":" + num(r.lat.min) + ",\"max_us\":" + num(r.lat.max) +
           ",\"stddev_us\":" + num(r.lat.stddev);
      if (ref && r.model->role == "model") o += ",\"speedup_vs_reference\":" + num(r.speedup, 4);
      o += ",\"samples_us\":[";
      for (size_t k = 0; k < r.lat.samples.size(); ++k) o += (k ? "," : "") + num(r.lat.samples[k]);
      o += "]";
      if (!r.ops.empty()) {
        o += ",\"ops\":[";
        for (size_t k = 0; k < r.ops.size(); ++k)
          o += std::string(k ? "," : "") + "{\"node\":" + json_str(r.ops[k].name) +
               ",\"op\":" + json_str(r.ops[k].op) + ",\"kernel\":" + json_str(r.ops[k].kernel) +
               ",\"median_us\":" + num(r.ops[k].median_us) + ",\"share\":" + num(r.ops[k].share, 4) + "}";
        o += "]";
      }
      o += "}";
    }
    o += "]}";
    std::printf("%s\n", o.c_str());
    return 0;
  }

  if (csv) {
    std::printf("kind,graph,role,isa,threads,iterations,node,op,kernel,median_us,mean_us,min_us,max_us,"
                "stddev_us,share,speedup\n");
    for (const Result& r : results) {
      const std::string head = csv_field(r.model->g.name) + "," + r.model->role + "," + r.isa + "," +
                               std::to_string(r.threads) + "," + std::to_string(iterations);
      std::printf("latency,%s,,,,%s,%s,%s,%s,%s,,%s\n", head.c_str(), num(r.lat.median).c_str(),
                  num(r.lat.mean).c_str(), num(r.lat.min).c_str(), num(r.lat.max).c_str(),
                  num(r.lat.stddev).c_str(), r.speedup > 0 ? num(r.speedup, 4).c_str() : "");
      for (const OpStat& op : r.ops)
        std::printf("op,%s,%s,%s,%s,%s,,,,,%s,\n", head.c_str(), csv_field(op.name).c_str(),
                    csv_field(op.op).c_str(), csv_field(op.kernel).c_str(), num(op.median_us).c_str(),
                    num(op.share, 4).c_str());
    }
    return 0;
  }

  // Markdown tables.
  std::printf("model      %s (%s): weights %s bytes\n", models[0]->g.name.c_str(), path.c_str(),
              with_commas(models[0]->weight_bytes).c_str());
  if (ref)
    std::printf("reference  %s (%s): weights %s bytes\n", ref->g.name.c_str(), ref->path.c_str(),
                with_commas(ref->weight_bytes).c_str());
  std::printf("cpu        %s; isa %s\n", cpu.c_str(), isa_in_force.c_str());
  std::printf("runs       %d warmup + %d timed per graph and thread count; random pixels, seed %llu; "
              "peak RSS %s\n\n",
              warmup, iterations, (unsigned long long)seed, human_bytes(rss).c_str());
  size_t wg = 5;
  for (const auto& m : models) wg = std::max(wg, m->g.name.size());
  std::printf("| %-*s | isa    | threads | median us |  mean us |   min us |   max us | stddev us |  arena B | speedup |\n", int(wg), "graph");
  std::printf("| %s | ------ | ------: | --------: | -------: | -------: | -------: | --------: | -------: | ------: |\n",
              std::string(wg, '-').c_str());
  for (const Result& r : results) {
    char sp[32] = "";
    if (r.speedup > 0) std::snprintf(sp, sizeof sp, "%.2fx", r.speedup);
    std::printf("| %-*s | %-6s | %7d | %9.2f | %8.2f | %8.2f | %8.2f | %9.2f | %8zu | %7s |\n", int(wg),
                r.model->g.name.c_str(), r.isa.c_str(), r.threads, r.lat.median, r.lat.mean, r.lat.min,
                r.lat.max, r.lat.stddev, r.arena, sp);
  }
  if (ref)
    std::printf("\nspeedup = median of %s / median of the row (same threads).\n", ref->g.name.c_str());
  for (const Result& r : results) {
    if (r.ops.empty()) continue;
    size_t wn = 4, wo = 2, wk = 6;
    for (const OpStat& op : r.ops)
      wn = std::max(wn, op.name.size()), wo = std::max(wo, op.op.size()), wk = std::max(wk, op.kernel.size());
    std::printf("\nper node: %s, %d thread%s, median of %d profiled runs\n\n", r.model->g.name.c_str(),
                r.threads, r.threads == 1 ? "" : "s", iterations);
    std::printf("|    # | %-*s | %-*s | %-*s | median us |  share |\n", int(wn), "node", int(wo), "op",
                int(wk), "kernel");
    std::printf("| ---: | %s | %s | %s | --------: | -----: |\n", std::string(wn, '-').c_str(),
                std::string(wo, '-').c_str(), std::string(wk, '-').c_str());
    double total = 0;
    for (size_t k = 0; k < r.ops.size(); ++k) {
      const OpStat& op = r.ops[k];
      total += op.median_us;
      std::printf("| %4zu | %-*s | %-*s | %-*s | %9.2f | %5.1f%% |\n", k, int(wn), op.name.c_str(),
                  int(wo), op.op.c_str(), int(wk), op.kernel.c_str(), op.median_us, 100 * op.share);
    }
    std::printf("|      | %-*s | %-*s | %-*s | %9.2f | 100.0%% |\n", int(wn), "total", int(wo), "", int(wk),
                "", total);
  }
  return 0;
}

}  // namespace fqrun
