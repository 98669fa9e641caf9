// llmshim grammar: llama.cpp's GBNF engine and JSON-Schema converter behind the C API in shim.h.
// No C++ exception crosses the C boundary: every entry point catches and reports through
// llmshim_grammar_last_error() (thread-local, the calling thread's last failure).
#include "shim.h"

#include <cmath>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "llama.h"
#include "llama-grammar.h"            // llama_grammar_parser: parse errors with their position
#include "json.h"                     // common_json (llama.cpp common/)
#include "json-schema-to-grammar.h"

namespace {

thread_local std::string g_error;
// the last conversion, so that a retry with a larger buffer (-(needed)) does not convert again
thread_local std::string g_schema_in;
thread_local std::string g_schema_out;
// reusable candidates array for apply: grown once per thread, never freed
thread_local std::vector<llama_token_data> g_cand;

void set_error(std::string msg) {
    while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ')) msg.pop_back();
    g_error = std::move(msg);
}

// "1:5" for the byte offset `off` of `src`
std::string line_col(const char * src, size_t off) {
    size_t line = 1, col = 1;
    for (size_t i = 0; i < off && src[i]; i++) {
        if (src[i] == '\n') line++, col = 1;
        else col++;
    }
    return std::to_string(line) + ":" + std::to_string(col);
}

// llama.cpp's parser prints its errors to stderr and returns false; this runs the same parser
// (its public members) so the message, with a line:column, comes back to the caller instead.
// Returns "" when the grammar parses and has `root`.
std::string diagnose(const llama_vocab * vocab, const char * src, const char * root) {
    llama_grammar_parser parser(vocab);
    try {
        const char * pos = src;
        // parse_space(src, true) is file-static in llama-grammar.cpp: whitespace, newlines, # comments
        for (;;) {
            if (*pos == ' ' || *pos == '\t' || *pos == '\r' || *pos == '\n') pos++;
            else if (*pos == '#') { while (*pos && *pos != '\r' && *pos != '\n') pos++; }
            else break;
        }
        while (*pos) pos = parser.parse_rule(pos);
        for (const auto & kv : parser.symbol_ids) {
            if (kv.second >= parser.rules.size() || parser.rules[kv.second].empty()) {
                return "undefined rule '" + kv.first + "'";
            }
        }
    } catch (const std::exception & e) {
        std::string msg = e.what();
        // the parser's messages end with " at <rest of the source>": turn that into line:column
        const size_t n = std::strlen(src);
        size_t at = msg.find(" at ");
        while (at != std::string::npos) {
            const std::string rest = msg.substr(at + 4);
            if (rest.size() <= n && std::memcmp(src + n - rest.size(), rest.data(), rest.size()) == 0) {
                std::string near = rest.substr(0, rest.find('\n')).substr(0, 40);
                return msg.substr(0, at) + " at " + line_col(src, n - rest.size()) + " (near \"" + near + "\")";
            }
            at = msg.find(" at ", at + 1);
        }
        return msg;
    }
    if (parser.rules.empty()) return "empty grammar";
    if (parser.symbol_ids.find(root) == parser.symbol_ids.end()) {
        return std::string("grammar does not define the root rule '") + root + "'";
    }
    return "";
}

// 1-entry apply: does the grammar allow `token` now? Throws std::out_of_range for a bad id.
bool allows_impl(llama_sampler * smpl, llama_token token) {
    llama_token_data one = { token, 0.0f, 0.0f };
    llama_token_data_array arr = { &one, 1, -1, false };
    llama_sampler_apply(smpl, &arr);
    return arr.data[0].logit != -INFINITY;
}

}  // namespace

extern "C" {

const char * llmshim_grammar_last_error(void) { return g_error.c_str(); }

llama_sampler * llmshim_grammar_new(const llama_model * model, const char * gbnf, const char * root) {
    g_error.clear();
    if (!model || !gbnf || !root) { set_error("null argument"); return nullptr; }
    try {
        const llama_vocab * vocab = llama_model_get_vocab(model);
        std::string why = diagnose(vocab, gbnf, root);
        if (!why.empty()) { set_error("invalid grammar: " + why); return nullptr; }
        llama_sampler * smpl = llama_sampler_init_grammar(vocab, gbnf, root);
        if (!smpl) {
            // parsed, so the engine refused it for another reason (left recursion): it logged that
            std::string last = llmshim_last_error();
            set_error("invalid grammar: " + (last.empty() ? std::string("rejected by llama.cpp") : last));
        }
        return smpl;
    } catch (const std::exception & e) {
        set_error(std::string("grammar init failed: ") + e.what());
        return nullptr;
    }
}

llama_sampler * llmshim_grammar_clone(const llama_sampler * smpl) {
    if (!smpl) return nullptr;
    try {
        return llama_sampler_clone(smpl);
    } catch (const std::exception & e) {
        set_error(std::string("grammar clone failed: ") + e.what());
        return nullptr;
    }
}

bool llmshim_grammar_allows(llama_sampler * smpl, int32_t token) {
    if (!smpl) return false;
    try {
        return allows_impl(smpl, token);
    } catch (const std::exception &) {
        return false;  // token id outside the vocabulary
    }
}

bool llmshim_grammar_accept(llama_sampler * smpl, int32_t token) {
    if (!smpl) return false;
    try {
        // llama.cpp aborts the process on a disallowed end-of-generation token and leaves the
        // grammar dead (no stacks) on any other disallowed token: check first, change nothing.
        if (!allows_impl(smpl, token)) {
            set_error("token " + std::to_string(token) + " is not allowed by the grammar here");
            return false;
        }
        llama_sampler_accept(smpl, token);
        return true;
    } catch (const std::exception & e) {
        set_error(std::string("grammar accept failed: ") + e.what());
        return false;
    }
}

int32_t llmshim_grammar_apply(llama_sampler * smpl, float * logits, int32_t n_vocab) {
    if (!smpl || !logits || n_vocab <= 0) return -1;
    try {
        if (g_cand.size() < (size_t) n_vocab) g_cand.resize((size_t) n_vocab);
        llama_token_data * d = g_cand.data();
        for (int32_t i = 0; i < n_vocab; i++) d[i] = { i, logits[i], 0.0f };
        llama_token_data_array arr = { d, (size_t) n_vocab, -1, false };
        llama_sampler_apply(smpl, &arr);
        // the grammar sampler only writes -INFINITY into logit, in place and in order
        int32_t allowed = 0;
        for (int32_t i = 0; i < n_vocab; i++) {
            const float v = d[i].logit;
            logits[i] = v;
            allowed += v != -INFINITY;
        }
        return allowed;
    } catch (const std::exception & e) {
        set_error(std::string("grammar apply failed: ") + e.what());
        return -1;
    }
}

int32_t llmshim_json_schema_to_grammar(const char * schema_json, char * out, int32_t size) {
    g_error.clear();
    if (!schema_json) { set_error("null schema"); return 0; }
    try {
        if (g_schema_out.empty() || g_schema_in != schema_json) {
            g_schema_in.clear();
            g_schema_out.clear();
            common_json schema;
            try {
                schema = common_json::parse(schema_json);
            } catch (const std::exception & e) {
                set_error(std::string("schema is not valid JSON: ") + e.what());
                return 0;
            }
            std::string gbnf = json_schema_to_grammar(schema, /* force_gbnf = */ true);
            if (gbnf.empty()) { set_error("JSON schema conversion produced an empty grammar"); return 0; }
            g_schema_in = schema_json;
            g_schema_out = std::move(gbnf);
        }
        const int64_t n = (int64_t) g_schema_out.size();
        if (n + 1 > (int64_t) size || !out) return n + 1 > INT32_MAX ? INT32_MIN : -(int32_t) (n + 1);
        std::memcpy(out, g_schema_out.data(), (size_t) n);
        out[n] = 0;
        return (int32_t) n;
    } catch (const std::exception & e) {
        set_error(e.what());
        return 0;
    }
}

/* the parser's verdict on GBNF text alone (no vocabulary): true when it parses and defines `root`;
 * otherwise false with the reason, and its line:column, in llmshim_grammar_last_error() */
bool llmshim_gbnf_check(const char * gbnf, const char * root) {
    g_error.clear();
    if (!gbnf || !root) { set_error("null grammar"); return false; }
    try {
        std::string why = diagnose(nullptr, gbnf, root);
        if (why.empty()) return true;
        set_error(why);
    } catch (const std::exception & e) {
        set_error(e.what());
    }
    return false;
}

}  // extern "C"
