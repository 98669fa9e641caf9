/* llmshim: see shim.h. Thin by design: no policy lives here, only struct plumbing. */
#include "shim.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ggml-cpu.h"
#include "llama.h"

#define VOCAB(m) llama_model_get_vocab(m)

/* ---------------------------------------------------------------- logging */
static int32_t g_log_level = 1;
static _Thread_local char g_last_error[1024];
static _Thread_local int g_last_level = 0;

static void shim_log(enum ggml_log_level level, const char * text, void * user) {
    (void) user;
    int lvl = level == GGML_LOG_LEVEL_CONT ? g_last_level : (int) level;
    if (level != GGML_LOG_LEVEL_CONT) g_last_level = lvl;
    if (lvl == GGML_LOG_LEVEL_ERROR) {
        size_t n = strlen(text);
        if (level == GGML_LOG_LEVEL_CONT) {
            size_t cur = strlen(g_last_error);
            if (cur + n >= sizeof g_last_error) n = sizeof g_last_error - cur - 1;
            memcpy(g_last_error + cur, text, n); g_last_error[cur + n] = 0;
        } else {
            if (n >= sizeof g_last_error) n = sizeof g_last_error - 1;
            memcpy(g_last_error, text, n); g_last_error[n] = 0;
        }
    }
    /* our levels: 1 error .. 4 debug; ggml's: 4 error .. 1 debug */
    if (g_log_level > 0 && lvl > 0 && (5 - lvl) <= g_log_level) fputs(text, stderr);
}

int32_t      llmshim_abi_version(void) { return LLMSHIM_ABI_VERSION; }
const char * llmshim_llama_version(void) { return llama_version(); }
const char * llmshim_system_info(void) { return llama_print_system_info(); }
bool         llmshim_supports_gpu_offload(void) { return llama_supports_gpu_offload(); }
const char * llmshim_last_error(void) { return g_last_error; }

void llmshim_init(int32_t log_level) {
    static int initialized = 0;
    g_log_level = log_level;
    llama_log_set(shim_log, NULL);
    if (!initialized) { llama_backend_init(); initialized = 1; }
}

/* ---------------------------------------------------------------- model */
typedef struct { float * progress; const int32_t * cancel; } load_cb;

static bool on_progress(float p, void * user) {
    load_cb * cb = (load_cb *) user;
    if (cb->progress) *cb->progress = p;
    return !(cb->cancel && *cb->cancel);
}

struct llama_model * llmshim_model_load(const char * path, int32_t n_gpu_layers, bool use_mmap, bool vocab_only,
                                        float * progress, const int32_t * cancel) {
    struct llama_model_params p = llama_model_default_params();
    load_cb cb = { progress, cancel };
    p.n_gpu_layers = n_gpu_layers;
    p.load_mode = use_mmap ? LLAMA_LOAD_MODE_MMAP : LLAMA_LOAD_MODE_NONE;
    p.vocab_only = vocab_only;
    p.progress_callback = on_progress;
    p.progress_callback_user_data = &cb;
    g_last_error[0] = 0;
    return llama_model_load_from_file(path, p);
}

void     llmshim_model_free(struct llama_model * m) { if (m) llama_model_free(m); }
int32_t  llmshim_model_n_vocab(const struct llama_model * m) { return llama_vocab_n_tokens(VOCAB(m)); }
int32_t  llmshim_model_n_ctx_train(const struct llama_model * m) { return llama_model_n_ctx_train(m); }
int32_t  llmshim_model_n_embd(const struct llama_model * m) { return llama_model_n_embd(m); }
int32_t  llmshim_model_n_layer(const struct llama_model * m) { return llama_model_n_layer(m); }
int32_t  llmshim_model_n_head(const struct llama_model * m) { return llama_model_n_head(m); }
int32_t  llmshim_model_n_head_kv(const struct llama_model * m) { return llama_model_n_head_kv(m); }
uint64_t llmshim_model_n_params(const struct llama_model * m) { return llama_model_n_params(m); }
uint64_t llmshim_model_size(const struct llama_model * m) { return llama_model_size(m); }
int32_t  llmshim_model_desc(const struct llama_model * m, char * buf, int32_t size) { return llama_model_desc(m, buf, (size_t) size); }

int32_t llmshim_vocab_special(const struct llama_model * m, int32_t which) {
    const struct llama_vocab * v = VOCAB(m);
    switch (which) {
        case 0: return llama_vocab_bos(v);
        case 1: return llama_vocab_eos(v);
        case 2: return llama_vocab_eot(v);
        case 3: return llama_vocab_sep(v);
        case 4: return llama_vocab_nl(v);
        case 5: return llama_vocab_pad(v);
        default: return -1;
    }
}
bool llmshim_vocab_add_bos(const struct llama_model * m) { return llama_vocab_get_add_bos(VOCAB(m)); }
bool llmshim_vocab_is_eog(const struct llama_model * m, int32_t t) { return llama_vocab_is_eog(VOCAB(m), t); }
const char * llmshim_model_chat_template(const struct llama_model * m) { return llama_model_chat_template(m, NULL); }

/* ---------------------------------------------------------------- tokenizer */
int32_t llmshim_tokenize(const struct llama_model * m, const char * text, int32_t text_len, int32_t * tokens,
                         int32_t n_max, bool add_special, bool parse_special) {
    return llama_tokenize(VOCAB(m), text, text_len, tokens, n_max, add_special, parse_special);
}
int32_t llmshim_detokenize(const struct llama_model * m, const int32_t * tokens, int32_t n, char * buf, int32_t size,
                           bool remove_special, bool unparse_special) {
    return llama_detokenize(VOCAB(m), tokens, n, buf, size, remove_special, unparse_special);
}
int32_t llmshim_token_to_piece(const struct llama_model * m, int32_t t, char * buf, int32_t size, int32_t lstrip,
                               bool special) {
    return llama_token_to_piece(VOCAB(m), t, buf, size, lstrip, special);
}

/* ---------------------------------------------------------------- context */
/* Persistent CPU thread pools per context (as llama-server attaches them): without one, ggml
 * starts fresh threads for every graph computation, i.e. every decode step. */
#define MAX_CONTEXTS 64
static struct { struct llama_context * ctx; struct ggml_threadpool * tp, * tp_batch; } g_pools[MAX_CONTEXTS];

static int32_t g_poll = -1; /* ggml's default polling level when < 0 */
void llmshim_set_thread_poll(int32_t poll) { g_poll = poll; }

static void attach_pools(struct llama_context * ctx, int32_t n_threads, int32_t n_threads_batch) {
    for (int i = 0; i < MAX_CONTEXTS; i++) {
        if (g_pools[i].ctx) continue;
        struct ggml_threadpool_params p = ggml_threadpool_params_default(n_threads);
        if (g_poll >= 0) p.poll = (uint32_t) g_poll;
        struct ggml_threadpool * tp = ggml_threadpool_new(&p);
        struct ggml_threadpool * tb = NULL;
        if (!tp) return;
        if (n_threads_batch != n_threads) {
            struct ggml_threadpool_params pb = ggml_threadpool_params_default(n_threads_batch);
            if (g_poll >= 0) pb.poll = (uint32_t) g_poll;
            tb = ggml_threadpool_new(&pb);
        }
        llama_attach_threadpool(ctx, tp, tb);
        g_pools[i].ctx = ctx; g_pools[i].tp = tp; g_pools[i].tp_batch = tb;
        return;
    }
}

static void free_pools(struct llama_context * ctx) {
    for (int i = 0; i < MAX_CONTEXTS; i++) {
        if (g_pools[i].ctx != ctx) continue;
        if (g_pools[i].tp) ggml_threadpool_free(g_pools[i].tp);
        if (g_pools[i].tp_batch) ggml_threadpool_free(g_pools[i].tp_batch);
        g_pools[i].ctx = NULL; g_pools[i].tp = NULL; g_pools[i].tp_batch = NULL;
    }
}

struct llama_context * llmshim_context_new(struct llama_model * m, uint32_t n_ctx, uint32_t n_batch, uint32_t n_ubatch,
                                           uint32_t n_seq_max, int32_t n_threads, int32_t n_threads_batch,
                                           int32_t flash_attn, bool kv_unified, bool offload_kqv) {
    struct llama_context_params p = llama_context_default_params();
    p.n_ctx = n_ctx;
    p.n_batch = n_batch;
    p.n_ubatch = n_ubatch;
    p.n_seq_max = n_seq_max;
    if (n_threads > 0) p.n_threads = n_threads;
    if (n_threads_batch > 0) p.n_threads_batch = n_threads_batch;
    p.flash_attn_type = (enum llama_flash_attn_type) flash_attn;
    p.kv_unified = kv_unified;
    p.offload_kqv = offload_kqv;
    p.no_perf = true;
    g_last_error[0] = 0;
    struct llama_context * ctx = llama_init_from_model(m, p);
    if (ctx) attach_pools(ctx, (int32_t) p.n_threads, (int32_t) p.n_threads_batch);
    return ctx;
}
void llmshim_context_free(struct llama_context * ctx) {
    if (!ctx) return;
    llama_detach_threadpool(ctx);
    llama_free(ctx);
    free_pools(ctx);
}
uint32_t llmshim_n_ctx(const struct llama_context * ctx) { return llama_n_ctx(ctx); }
uint32_t llmshim_n_batch(const struct llama_context * ctx) { return llama_n_batch(ctx); }
uint32_t llmshim_n_seq_max(const struct llama_context * ctx) { return llama_n_seq_max(ctx); }

/* ---------------------------------------------------------------- batch */
struct llmshim_batch {
    struct llama_batch b;
    int32_t capacity;
    int32_t n_seq_max;
    int32_t * seq_flat;
};

llmshim_batch * llmshim_batch_new(int32_t capacity, int32_t n_seq_max) {
    if (capacity <= 0 || n_seq_max <= 0) return NULL;
    llmshim_batch * batch = calloc(1, sizeof *batch);
    if (!batch) return NULL;
    batch->capacity = capacity;
    batch->n_seq_max = n_seq_max;
    batch->b.token = calloc((size_t) capacity, sizeof(llama_token));
    batch->b.pos = calloc((size_t) capacity, sizeof(llama_pos));
    batch->b.n_seq_id = calloc((size_t) capacity, sizeof(int32_t));
    batch->b.seq_id = calloc((size_t) capacity + 1, sizeof(llama_seq_id *));
    batch->b.logits = calloc((size_t) capacity, sizeof(int8_t));
    batch->seq_flat = calloc((size_t) capacity * (size_t) n_seq_max, sizeof(llama_seq_id));
    if (!batch->b.token || !batch->b.pos || !batch->b.n_seq_id || !batch->b.seq_id || !batch->b.logits || !batch->seq_flat) {
        llmshim_batch_free(batch);
        return NULL;
    }
    for (int32_t i = 0; i < capacity; i++) batch->b.seq_id[i] = batch->seq_flat + (size_t) i * (size_t) n_seq_max;
    return batch;
}

void llmshim_batch_free(llmshim_batch * batch) {
    if (!batch) return;
    free(batch->b.token); free(batch->b.pos); free(batch->b.n_seq_id);
    free(batch->b.seq_id); free(batch->b.logits); free(batch->seq_flat);
    free(batch);
}
int32_t * llmshim_batch_tokens(llmshim_batch * batch) { return batch->b.token; }
int32_t * llmshim_batch_pos(llmshim_batch * batch) { return batch->b.pos; }
int32_t * llmshim_batch_n_seq(llmshim_batch * batch) { return batch->b.n_seq_id; }
int32_t * llmshim_batch_seq_ids(llmshim_batch * batch) { return batch->seq_flat; }
int8_t *  llmshim_batch_logits(llmshim_batch * batch) { return batch->b.logits; }

int32_t llmshim_decode(struct llama_context * ctx, llmshim_batch * batch, int32_t n_tokens) {
    if (!batch || n_tokens <= 0 || n_tokens > batch->capacity) return -1;
    batch->b.n_tokens = n_tokens;
    g_last_error[0] = 0;
    return llama_decode(ctx, batch->b);
}
float * llmshim_logits(struct llama_context * ctx) { return llama_get_logits(ctx); }

/* ---------------------------------------------------------------- KV memory */
bool llmshim_seq_rm(struct llama_context * ctx, int32_t s, int32_t p0, int32_t p1) {
    return llama_memory_seq_rm(llama_get_memory(ctx), s, p0, p1);
}
void llmshim_seq_cp(struct llama_context * ctx, int32_t src, int32_t dst, int32_t p0, int32_t p1) {
    llama_memory_seq_cp(llama_get_memory(ctx), src, dst, p0, p1);
}
int32_t llmshim_seq_pos_max(struct llama_context * ctx, int32_t s) { return llama_memory_seq_pos_max(llama_get_memory(ctx), s); }
void    llmshim_memory_clear(struct llama_context * ctx, bool data) { llama_memory_clear(llama_get_memory(ctx), data); }

/* ---------------------------------------------------------------- state */
uint64_t llmshim_state_seq_size(struct llama_context * ctx, int32_t s) { return llama_state_seq_get_size(ctx, s); }
uint64_t llmshim_state_seq_get(struct llama_context * ctx, uint8_t * dst, uint64_t size, int32_t s) {
    return llama_state_seq_get_data(ctx, dst, (size_t) size, s);
}
uint64_t llmshim_state_seq_set(struct llama_context * ctx, const uint8_t * src, uint64_t size, int32_t s) {
    return llama_state_seq_set_data(ctx, src, (size_t) size, s);
}

/* ---------------------------------------------------------------- sampler */
struct llama_sampler * llmshim_sampler_new(const struct llama_model * m, uint32_t seed, int32_t top_k, float top_p, float min_p, float temp,
                                           float repeat_penalty, int32_t penalty_last_n) {
    struct llama_sampler_chain_params cp = llama_sampler_chain_default_params();
    cp.no_perf = true;
    struct llama_sampler * chain = llama_sampler_chain_init(cp);
    if (repeat_penalty != 1.0f && penalty_last_n != 0)
        llama_sampler_chain_add(chain, llama_sampler_init_penalties(llama_vocab_n_tokens(VOCAB(m)), penalty_last_n, repeat_penalty, 0.0f, 0.0f));
    if (temp <= 0.0f) {
        llama_sampler_chain_add(chain, llama_sampler_init_greedy());
        return chain;
    }
    if (top_k > 0) llama_sampler_chain_add(chain, llama_sampler_init_top_k(top_k));
    if (top_p < 1.0f) llama_sampler_chain_add(chain, llama_sampler_init_top_p(top_p, 1));
    if (min_p > 0.0f) llama_sampler_chain_add(chain, llama_sampler_init_min_p(min_p, 1));
    llama_sampler_chain_add(chain, llama_sampler_init_temp(temp));
    llama_sampler_chain_add(chain, llama_sampler_init_dist(seed));
    return chain;
}
void    llmshim_sampler_free(struct llama_sampler * s) { if (s) llama_sampler_free(s); }
int32_t llmshim_sampler_sample(struct llama_sampler * s, struct llama_context * ctx, int32_t idx) {
    /* llama_sampler_sample aborts the process for a token without logits: refuse it instead */
    if (!llama_get_logits_ith(ctx, idx)) return -1;
    return llama_sampler_sample(s, ctx, idx);
}

/* ---------------------------------------------------------------- GPU devices */
static ggml_backend_dev_t gpu_device(int32_t k) {
    for (size_t i = 0; i < ggml_backend_dev_count(); i++) {
        ggml_backend_dev_t dev = ggml_backend_dev_get(i);
        enum ggml_backend_dev_type t = ggml_backend_dev_type(dev);
        if ((t == GGML_BACKEND_DEVICE_TYPE_GPU || t == GGML_BACKEND_DEVICE_TYPE_IGPU) && k-- == 0) return dev;
    }
    return NULL;
}
int32_t llmshim_gpu_device_count(void) {
    int32_t n = 0;
    while (gpu_device(n)) n++;
    return n;
}
int32_t llmshim_gpu_device_desc(int32_t i, char * buf, int32_t size) {
    ggml_backend_dev_t dev = i >= 0 ? gpu_device(i) : NULL;
    if (!dev) return -1;
    size_t free_b = 0, total_b = 0;
    ggml_backend_dev_memory(dev, &free_b, &total_b);
    return (int32_t) snprintf(buf, size > 0 ? (size_t) size : 0, "%s: %s, %zu MiB (%zu MiB free)", ggml_backend_dev_name(dev),
                              ggml_backend_dev_description(dev), total_b >> 20, free_b >> 20);
}
