// Entry point of the single binary (`bun run compile`): the native library is embedded as a file;
// it is copied out once (dlopen cannot read Bun's embedded file system) and the server starts.
import { runServer } from "../server.ts";
import { extractEmbeddedLibrary } from "../native/library-path.ts";
// @ts-ignore: resolved by `bun build --compile`; the file exists once ./build-native.sh has run
import embeddedLib from "../../native/build/libllmshim.so" with { type: "file" };

process.env.LLM_LIB_PATH ||= extractEmbeddedLibrary(embeddedLib as unknown as string);
// the worker is the build's second entry point; Bun names it by its path under src/
await runServer({ workerUrl: process.env.LLM_WORKER_URL || "./engine/worker.ts" });
