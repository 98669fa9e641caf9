// Entry point of the single binary (`bun run compile`): the native library is embedded as a file;
// it is copied out once (dlopen cannot read Bun's embedded file system) and the server starts.
import { runServer } from "../server.ts";
import { extractEmbeddedLibrary } from "../native/library-path.ts";
// @ts-ignore: resolved by `bun build --compile`; the file exists once ./build-native.sh has run
import embeddedLib from "../../native/build/libllmshim.so" with { type: "file" };

process.env.LLM_LIB_PATH ||= extractEmbeddedLibrary(embeddedLib as unknown as string);
// the workers are the build's other entry points; Bun names them by their paths under src/
process.env.LLM_GRAMMAR_WORKER_URL ||= "./constraints/grammar-worker.ts";
await runServer({ workerUrl: process.env.LLM_WORKER_URL || "./engine/worker.ts" });
