/* FQ C API, for embedding. Every call returns 0 on success or -1 on error; fq_last_error() then
 * gives a one-line message (thread-local). Handles are opaque. */
#ifndef FQ_C_H
#define FQ_C_H
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct fq_model fq_model;
typedef struct fq_session fq_session;

const char* fq_last_error(void);
int fq_model_load(const char* yaml_path, fq_model** out);
void fq_model_free(fq_model* m);
int fq_session_create(const fq_model* m, int threads, fq_session** out);
void fq_session_free(fq_session* s);
int fq_num_inputs(const fq_session* s);
int fq_num_outputs(const fq_session* s);
int fq_set_input(fq_session* s, int index, const void* data, size_t bytes);
int fq_run(fq_session* s);
/* Zeroes the session's state tensors (KV caches, recurrent state): a fresh sequence. */
int fq_reset_state(fq_session* s);
int fq_get_output(fq_session* s, int index, const void** data, size_t* bytes);

#ifdef __cplusplus
}
#endif
#endif
