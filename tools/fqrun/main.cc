// fqrun: run, evaluate, inspect, validate and benchmark FQ graphs. docs/fqrun.md is the manual.
#include <cstdio>
#include <cstring>
#include <exception>
#include <new>
#include <string>
#include <vector>

#include "common.h"

#ifndef FQ_VERSION
#define FQ_VERSION "0"
#endif

namespace fqrun {
int cmd_conformance(const std::vector<std::string>& argv, const Global& g);  // conformance.cc
}

namespace {

const char kUsage[] =
    "usage: fqrun [--isa ISA] COMMAND GRAPH [options]\n"
    "\n"
    "Runs FQ graphs (docs/format.md) with the integer engine.\n"
    "\n"
    "commands:\n"
    "  run    GRAPH --image FILE       classify one image, print the top classes\n"
    "  eval   GRAPH --dataset SPEC     top-1 accuracy over a digit data set\n"
    "  eval   GRAPH --tokens FILE      perplexity of a language model (also --text FILE)\n"
    "  info   GRAPH                    graph summary and the kernel bound to each node\n"
    "  check  GRAPH                    validate a graph and its weight blob completely\n"
    "  bench  GRAPH                    latency per inference, per-op profile, float reference\n"
    "  generate GRAPH [--prompt TEXT]  generate text with a language-model graph (llama2.c)\n"
    "  conformance DIR...             run ONNX node tests on the integer kernels\n"
    "\n"
    "global options (before or after COMMAND):\n"
    "  --isa scalar|avx2|avx512|amx   highest kernel ISA to use (default: $FQ_ISA if set,\n"
    "                                 else the best this CPU runs); an ISA the CPU lacks is an error\n"
    "  -h, --help                     this text; 'fqrun COMMAND --help' for a command's options\n"
    "  --version                      print the version\n"
    "\n"
    "exit status: 0 success; 2 usage error, bad graph or bad input (one line on stderr).\n";

struct Command {
  const char* name;
  int (*fn)(const std::vector<std::string>&, const fqrun::Global&);
};

const Command kCommands[] = {{"run", fqrun::cmd_run},     {"eval", fqrun::cmd_eval},
                             {"info", fqrun::cmd_info},   {"check", fqrun::cmd_check},
                             {"bench", fqrun::cmd_bench}, {"generate", fqrun::cmd_generate},
                             {"conformance", fqrun::cmd_conformance}};

int usage_error(const std::string& cmd, const std::string& msg) {
  const std::string where = cmd.empty() ? "fqrun" : "fqrun " + cmd;
  std::fprintf(stderr, "%s: %s (see '%s --help')\n", where.c_str(), msg.c_str(), where.c_str());
  return 2;
}

// Keeps error output to one line whatever the message holds.
std::string one_line(std::string s) {
  for (char& c : s)
    if (c == '\n' || c == '\r') c = ' ';
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + (argc > 0 ? 1 : 0), argv + (argc > 0 ? argc : 0));
  fqrun::Global global;
  std::string cmd;
  try {
    // Global options before the command name.
    size_t i = 0;
    for (; i < args.size(); ++i) {
      const std::string& a = args[i];
      if (a == "-h" || a == "--help") {
        std::fputs(kUsage, stdout);
        return 0;
      }
      if (a == "--version") {
        std::printf("fqrun %s\n", FQ_VERSION);
        return 0;
      }
      if (a == "--isa" || a.rfind("--isa=", 0) == 0) {
        std::string v;
        if (a == "--isa") {
          if (i + 1 >= args.size() || args[i + 1].rfind("--", 0) == 0)
            return usage_error("", "option '--isa' needs a value");
          v = args[++i];
        } else {
          v = a.substr(6);
        }
        bool ok = false;
        for (const auto& n : fqrun::kIsaNames) ok = ok || n == v;
        if (!ok) return usage_error("", "option '--isa' takes scalar|avx2|avx512|amx|neon|neondot, not '" + v + "'");
        global.isa = v;
        continue;
      }
      if (!a.empty() && a[0] == '-') return usage_error("", "unknown option '" + a + "'");
      break;
    }
    if (i >= args.size()) {
      std::fputs(kUsage, stderr);
      return 2;
    }
    cmd = args[i];
    if (cmd == "help") {
      std::fputs(kUsage, stdout);
      return 0;
    }
    const std::vector<std::string> rest(args.begin() + i + 1, args.end());
    for (const Command& c : kCommands)
      if (cmd == c.name) return c.fn(rest, global);
    const std::string bad = cmd;
    cmd.clear();
    return usage_error("", "unknown command '" + bad + "'");
  } catch (const fqrun::UsageError& e) {
    return usage_error(cmd, one_line(e.what()));
  } catch (const fq::Error& e) {
    std::fprintf(stderr, "fqrun: %s\n", one_line(e.what()).c_str());
    return 2;
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "fqrun: out of memory\n");
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "fqrun: %s\n", one_line(e.what()).c_str());
    return 2;
  }
}
