/* llmshim: a pointer-and-scalar C API over llama.h for bun:ffi.
 * bun:ffi cannot pass structs by value, so every llama.cpp call that takes or returns
 * a struct (model/context params, llama_batch) goes through a function here.
 * Only symbols marked LLMSHIM_API are exported from libllmshim.so. */
#ifndef LLMSHIM_H
#define LLMSHIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LLMSHIM_ABI_VERSION 4
#define LLMSHIM_API __attribute__((visibility("default")))

#ifdef __cplusplus
extern "C" {
#endif

struct llama_model;
struct llama_context;
struct llama_sampler;
typedef struct llmshim_batch llmshim_batch;

/* ---- library ---- */
LLMSHIM_API int32_t      llmshim_abi_version(void);
LLMSHIM_API const char * llmshim_llama_version(void);
LLMSHIM_API const char * llmshim_system_info(void);
LLMSHIM_API bool         llmshim_supports_gpu_offload(void);
/* log_level: 0 silent, 1 errors, 2 + warnings, 3 + info, 4 + debug. Logs go to stderr. */
LLMSHIM_API void         llmshim_init(int32_t log_level);
/* the last error-level log line of llama.cpp on this thread (empty if none) */
LLMSHIM_API const char * llmshim_last_error(void);

/* ---- model ---- */
/* progress: optional float* written with 0..1 while loading; cancel: optional int32* (nonzero aborts). */
LLMSHIM_API struct llama_model * llmshim_model_load(const char * path, int32_t n_gpu_layers, bool use_mmap,
                                                    bool vocab_only, float * progress, const int32_t * cancel);
LLMSHIM_API void     llmshim_model_free(struct llama_model * model);
LLMSHIM_API int32_t  llmshim_model_n_vocab(const struct llama_model * model);
LLMSHIM_API int32_t  llmshim_model_n_ctx_train(const struct llama_model * model);
LLMSHIM_API int32_t  llmshim_model_n_embd(const struct llama_model * model);
LLMSHIM_API int32_t  llmshim_model_n_layer(const struct llama_model * model);
LLMSHIM_API int32_t  llmshim_model_n_head(const struct llama_model * model);
LLMSHIM_API int32_t  llmshim_model_n_head_kv(const struct llama_model * model);
LLMSHIM_API uint64_t llmshim_model_n_params(const struct llama_model * model);
LLMSHIM_API uint64_t llmshim_model_size(const struct llama_model * model);
LLMSHIM_API int32_t  llmshim_model_desc(const struct llama_model * model, char * buf, int32_t size);
/* which: 0 bos, 1 eos, 2 eot, 3 sep, 4 nl, 5 pad; -1 when the vocabulary has none */
LLMSHIM_API int32_t  llmshim_vocab_special(const struct llama_model * model, int32_t which);
LLMSHIM_API bool     llmshim_vocab_add_bos(const struct llama_model * model);
LLMSHIM_API bool     llmshim_vocab_is_eog(const struct llama_model * model, int32_t token);
/* NULL when the model has no chat template */
LLMSHIM_API const char * llmshim_model_chat_template(const struct llama_model * model);
/* metadata value as string; returns length or -1 when the key is absent */

/* ---- tokenizer (text is UTF-8 bytes, not NUL-terminated) ---- */
/* returns the number of tokens, or -(needed) when n_max is too small */
LLMSHIM_API int32_t llmshim_tokenize(const struct llama_model * model, const char * text, int32_t text_len,
                                     int32_t * tokens, int32_t n_max, bool add_special, bool parse_special);
/* returns bytes written, or -(needed) when size is too small */
LLMSHIM_API int32_t llmshim_detokenize(const struct llama_model * model, const int32_t * tokens, int32_t n_tokens,
                                       char * buf, int32_t size, bool remove_special, bool unparse_special);
LLMSHIM_API int32_t llmshim_token_to_piece(const struct llama_model * model, int32_t token, char * buf, int32_t size,
                                           int32_t lstrip, bool special);

/* ---- context ---- */
/* flash_attn: -1 auto, 0 off, 1 on */
LLMSHIM_API struct llama_context * llmshim_context_new(struct llama_model * model, uint32_t n_ctx, uint32_t n_batch,
                                                       uint32_t n_ubatch, uint32_t n_seq_max, int32_t n_threads,
                                                       int32_t n_threads_batch, int32_t flash_attn, bool kv_unified,
                                                       bool offload_kqv);
LLMSHIM_API void     llmshim_context_free(struct llama_context * ctx);
LLMSHIM_API uint32_t llmshim_n_ctx(const struct llama_context * ctx);
LLMSHIM_API uint32_t llmshim_n_batch(const struct llama_context * ctx);
LLMSHIM_API uint32_t llmshim_n_seq_max(const struct llama_context * ctx);
/* polling level (0 = threads sleep between graphs .. 100 = spin) of thread pools created from now on; < 0: ggml's default */
LLMSHIM_API void     llmshim_set_thread_poll(int32_t poll);
/* decodes the first n_tokens entries of the batch; llama_decode's return code */
LLMSHIM_API int32_t  llmshim_decode(struct llama_context * ctx, llmshim_batch * batch, int32_t n_tokens);
/* logits of the batch's output rows, contiguous in batch order (rows with logits flag set) */
LLMSHIM_API float *  llmshim_logits(struct llama_context * ctx);

/* ---- kernels.c: host-side math over logits rows ---- */
/* torch.argmax: first index of the largest value, NaN never wins (SIMD where the CPU has it) */
LLMSHIM_API int32_t  llmshim_argmax(const float * x, int32_t n);
/* the same, always scalar: the reference the SIMD path is tested against */
LLMSHIM_API int32_t  llmshim_argmax_scalar(const float * x, int32_t n);

/* ---- batch: owned arrays, filled by the caller through typed-array views ---- */
LLMSHIM_API llmshim_batch * llmshim_batch_new(int32_t capacity, int32_t n_seq_max);
LLMSHIM_API void      llmshim_batch_free(llmshim_batch * batch);
LLMSHIM_API int32_t * llmshim_batch_tokens(llmshim_batch * batch);   /* [capacity] */
LLMSHIM_API int32_t * llmshim_batch_pos(llmshim_batch * batch);      /* [capacity] */
LLMSHIM_API int32_t * llmshim_batch_n_seq(llmshim_batch * batch);    /* [capacity] */
LLMSHIM_API int32_t * llmshim_batch_seq_ids(llmshim_batch * batch);  /* [capacity * n_seq_max], row i = token i */
LLMSHIM_API int8_t *  llmshim_batch_logits(llmshim_batch * batch);   /* [capacity] */

/* ---- KV memory ---- */
LLMSHIM_API bool    llmshim_seq_rm(struct llama_context * ctx, int32_t seq, int32_t p0, int32_t p1);
LLMSHIM_API void    llmshim_seq_cp(struct llama_context * ctx, int32_t src, int32_t dst, int32_t p0, int32_t p1);
LLMSHIM_API int32_t llmshim_seq_pos_max(struct llama_context * ctx, int32_t seq);
LLMSHIM_API void    llmshim_memory_clear(struct llama_context * ctx, bool data);

/* ---- per-sequence state (save / restore a cached sequence) ---- */
LLMSHIM_API uint64_t llmshim_state_seq_size(struct llama_context * ctx, int32_t seq);
LLMSHIM_API uint64_t llmshim_state_seq_get(struct llama_context * ctx, uint8_t * dst, uint64_t size, int32_t seq);
LLMSHIM_API uint64_t llmshim_state_seq_set(struct llama_context * ctx, const uint8_t * src, uint64_t size, int32_t seq);

/* ---- llama.cpp sampler chain ---- */
/* penalties -> top_k (0 off) -> top_p (1 off) -> min_p (0 off) -> temp -> dist(seed); greedy when temp <= 0 */
LLMSHIM_API struct llama_sampler * llmshim_sampler_new(const struct llama_model * model, uint32_t seed, int32_t top_k, float top_p, float min_p,
                                                       float temp, float repeat_penalty, int32_t penalty_last_n);
LLMSHIM_API void    llmshim_sampler_free(struct llama_sampler * smpl);
/* idx: position in the last decoded batch of a token that had its logits flag set; -1 if it had none */
LLMSHIM_API int32_t llmshim_sampler_sample(struct llama_sampler * smpl, struct llama_context * ctx, int32_t idx);

/* ---- grammar.cpp: llama.cpp's GBNF engine (a grammar is a llama_sampler; free it with llmshim_sampler_free) ---- */
/* NULL when the grammar does not parse, lacks `root` or is left-recursive; the reason is in llmshim_grammar_last_error() */
LLMSHIM_API struct llama_sampler * llmshim_grammar_new(const struct llama_model * model, const char * gbnf, const char * root);
LLMSHIM_API struct llama_sampler * llmshim_grammar_clone(const struct llama_sampler * smpl);
/* false (and no change) when the grammar does not allow the token here */
LLMSHIM_API bool    llmshim_grammar_accept(struct llama_sampler * smpl, int32_t token);
/* sets the logits of tokens the grammar rejects to -INFINITY in place; returns how many stay finite, -1 on error */
LLMSHIM_API int32_t llmshim_grammar_apply(struct llama_sampler * smpl, float * logits, int32_t n_vocab);
/* is this one token allowed now (false for an id outside the vocabulary) */
LLMSHIM_API bool    llmshim_grammar_allows(struct llama_sampler * smpl, int32_t token);
/* JSON Schema text -> GBNF (root rule "root"). Returns bytes written (NUL added), -(needed) when size is too
 * small, 0 on error (message in llmshim_grammar_last_error()) */
LLMSHIM_API int32_t llmshim_json_schema_to_grammar(const char * schema_json, char * out, int32_t size);
/* this thread's last grammar error ("" if none) */
LLMSHIM_API const char * llmshim_grammar_last_error(void);
/* GBNF text checked by llama.cpp's parser alone (no model): false with the reason and its line:column in llmshim_grammar_last_error() */
LLMSHIM_API bool llmshim_gbnf_check(const char * gbnf, const char * root);

/* ---- GPU devices (ggml's backend registry; a CUDA library on a host without a GPU or driver has none) ---- */
LLMSHIM_API int32_t llmshim_gpu_device_count(void);
/* device i (0 .. count-1) as "CUDA0: NVIDIA H100 80GB HBM3, 81079 MiB (80600 MiB free)"; returns the text's length
 * (snprintf's: >= size means it was cut), -1 for no such device */
LLMSHIM_API int32_t llmshim_gpu_device_desc(int32_t i, char * buf, int32_t size);

#ifdef __cplusplus
}
#endif
#endif
