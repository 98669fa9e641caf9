// The persistent session tier on a local (or shared) directory: `<key>.meta` and `<key>.kv` files,
// each replaced atomically (unique temp file, fsync, rename, fsync of the directory), so a reader,
// another replica or a restart after a crash sees either the old record or the new one, never a mix.
import { chmodSync, mkdirSync } from "node:fs";
import { open, readdir, readFile, rename, rm, stat, unlink, type FileHandle } from "node:fs/promises";
import { join } from "node:path";
import type { RecordKind, SessionStore, StoredRecord } from "./store.ts";

const KEY = /^[0-9a-f]{16,128}$/;
const RECORD_FILE = /^([0-9a-f]{16,128})\.(meta|kv)$/;
const TEMP_FILE = /^\..+\.tmp$/;
/** temp files older than this belong to a process that died mid-put */
const STALE_TEMP_MS = 60 * 60 * 1000;
/** records at least this large are read with mmap */
const MMAP_MIN_BYTES = 1 << 20;

export interface DirectoryStoreOptions {
  /** fsync each record and the directory before put() resolves (default true) */
  fsync?: boolean;
}

/** Keys are hex hashes (sessionKey); anything else is refused so no client string ever names a file. */
export function checkKey(key: string): void {
  if (!KEY.test(key)) throw new Error(`invalid session store key ${JSON.stringify(key.slice(0, 40))}`);
}

const isNotFound = (e: unknown) => (e as NodeJS.ErrnoException | null)?.code === "ENOENT";

export class DirectoryStore implements SessionStore {
  readonly dir: string;
  readonly description: string;
  /** one server process owns a directory: its index knows every record */
  readonly shared = false;
  readonly #fsync: boolean;

  constructor(dir: string, opts: DirectoryStoreOptions = {}) {
    this.dir = dir;
    this.description = `directory ${dir}`;
    this.#fsync = opts.fsync !== false;
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    chmodSync(dir, 0o700);
  }

  #path(key: string, kind: RecordKind): string {
    checkKey(key);
    return join(this.dir, `${key}.${kind}`);
  }

  async put(key: string, kind: RecordKind, data: Uint8Array): Promise<void> {
    const target = this.#path(key, kind);
    const tag = Buffer.from(crypto.getRandomValues(new Uint8Array(6))).toString("hex");
    const temp = join(this.dir, `.${key}.${kind}.${process.pid}.${tag}.tmp`);
    let fh: FileHandle | undefined;
    try {
      fh = await open(temp, "wx", 0o600);
      for (let off = 0; off < data.length; ) {
        const { bytesWritten } = await fh.write(data, off, data.length - off, off);
        if (bytesWritten <= 0) throw new Error(`write to ${temp} made no progress`);
        off += bytesWritten;
      }
      if (this.#fsync) await fh.sync();
      await fh.close();
      fh = undefined;
      await rename(temp, target);
      if (this.#fsync) await this.#syncDir();
    } catch (e) {
      await fh?.close().catch(() => {});
      await rm(temp, { force: true }).catch(() => {});
      throw e;
    }
  }

  /** Makes the rename itself durable. */
  async #syncDir(): Promise<void> {
    const dh = await open(this.dir, "r");
    try {
      await dh.sync();
    } finally {
      await dh.close();
    }
  }

  async get(key: string, kind: RecordKind): Promise<Uint8Array | null> {
    const path = this.#path(key, kind);
    try {
      // large KV blobs are mapped, not copied into a fresh buffer: a 12 MB blob reads and checks
      // in ~3 ms instead of ~9. Safe because records are only ever replaced by rename, never
      // rewritten in place: the mapped file keeps its contents until the mapping goes.
      if ((await stat(path)).size >= MMAP_MIN_BYTES) return Bun.mmap(path, { shared: false });
      const buf = await readFile(path);
      return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
    } catch (e) {
      if (isNotFound(e)) return null;
      throw e;
    }
  }

  async delete(key: string): Promise<boolean> {
    const paths = [this.#path(key, "meta"), this.#path(key, "kv")];
    let found = false;
    for (const p of paths) {
      found = (await unlink(p).then(() => true, (e) => {
        if (!isNotFound(e)) throw e;
        return false;
      })) || found;
    }
    return found;
  }

  async list(): Promise<StoredRecord[]> {
    const names = await readdir(this.dir);
    const now = Date.now();
    const found = await Promise.all(
      names.map(async (name): Promise<StoredRecord | null> => {
        const m = RECORD_FILE.exec(name);
        if (!m && !TEMP_FILE.test(name)) return null;
        const path = join(this.dir, name);
        try {
          const st = await stat(path);
          if (m) return st.isFile() ? { key: m[1], kind: m[2] as RecordKind, bytes: st.size, lastUsed: st.mtimeMs } : null;
          if (st.isFile() && now - st.mtimeMs > STALE_TEMP_MS) await rm(path, { force: true });
          return null;
        } catch (e) {
          if (isNotFound(e)) return null; // removed between readdir and stat
          throw e;
        }
      }),
    );
    return found.filter((r): r is StoredRecord => r !== null);
  }

  close(): void {}
}
