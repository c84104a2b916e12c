// C API: thin wrappers that turn exceptions into return codes and a thread-local message.
#include "fq/fq_c.h"

#include <cstring>
#include <new>
#include <string>

#include "fq/fq.h"

struct fq_model {
  fq::Graph graph;
};
struct fq_session {
  fq::Session session;
  fq_session(const fq::Graph& g, int threads) : session(g, [&] {
    fq::Options o;
    o.threads = threads;
    return o;
  }()) {}
};

namespace {
thread_local std::string g_error;

template <class F>
int guarded(F&& f) {
  try {
    f();
    return 0;
  } catch (const std::bad_alloc&) {
    g_error = "out of memory";
  } catch (const std::exception& e) {
    g_error = e.what();
  } catch (...) {
    g_error = "unknown error";
  }
  return -1;
}

int bad_arg(const char* what) {
  g_error = what;
  return -1;
}
}  // namespace

extern "C" {

const char* fq_last_error(void) { return g_error.c_str(); }

int fq_model_load(const char* yaml_path, fq_model** out) {
  if (!yaml_path || !out) return bad_arg("fq_model_load: null argument");
  *out = nullptr;
  return guarded([&] { *out = new fq_model{fq::load_graph(yaml_path)}; });
}

void fq_model_free(fq_model* m) { delete m; }

int fq_session_create(const fq_model* m, int threads, fq_session** out) {
  if (!m || !out) return bad_arg("fq_session_create: null argument");
  *out = nullptr;
  return guarded([&] { *out = new fq_session(m->graph, threads); });
}

void fq_session_free(fq_session* s) { delete s; }

int fq_num_inputs(const fq_session* s) { return s ? int(s->session.num_inputs()) : -1; }
int fq_num_outputs(const fq_session* s) { return s ? int(s->session.num_outputs()) : -1; }

int fq_set_input(fq_session* s, int index, const void* data, size_t bytes) {
  if (!s || !data) return bad_arg("fq_set_input: null argument");
  return guarded([&] {
    fq::TensorView v = s->session.input(static_cast<size_t>(index));
    if (bytes != v.bytes)
      throw fq::Error("input '" + v.name + "' takes " + std::to_string(v.bytes) + " bytes, got " +
                      std::to_string(bytes));
    std::memcpy(v.data, data, bytes);
  });
}

int fq_run(fq_session* s) {
  if (!s) return bad_arg("fq_run: null session");
  return guarded([&] { s->session.run(); });
}

int fq_reset_state(fq_session* s) {
  if (!s) return bad_arg("fq_reset_state: null session");
  return guarded([&] { s->session.reset_state(); });
}

int fq_get_output(fq_session* s, int index, const void** data, size_t* bytes) {
  if (!s || !data || !bytes) return bad_arg("fq_get_output: null argument");
  return guarded([&] {
    fq::TensorView v = s->session.output(static_cast<size_t>(index));
    *data = v.data;
    *bytes = v.bytes;
  });
}

}  // extern "C"
