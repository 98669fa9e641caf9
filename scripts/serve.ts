// `bun run server`: builds what is missing (native library, default model), then serves the API.
import { loadSettings } from "../src/config.ts";
import { startServer } from "../src/server.ts";

const settings = loadSettings();
await startServer(settings);
