/**
 * A minimal, deterministic ustar writer (files, directories, symlinks), enough
 * for image layers and OCI image layout archives. Everything is owned by 0:0
 * with a fixed mtime, in the order given.
 */
import * as crypto from "node:crypto";

/** One archive member. Names use `/`; directories may omit the trailing slash. */
export type TarEntry =
  | { type: "file"; name: string; data: Buffer | string; mode?: number }
  | { type: "dir"; name: string; mode?: number }
  | { type: "symlink"; name: string; target: string };

const BLOCK = 512;

function writeString(header: Buffer, value: string, offset: number, length: number): void {
  const bytes = Buffer.from(value, "utf8");
  if (bytes.length > length) throw new Error(`tar field too long (${length}): ${value}`);
  bytes.copy(header, offset);
}

function writeOctal(header: Buffer, value: number, offset: number, length: number): void {
  writeString(header, value.toString(8).padStart(length - 1, "0") + "\0", offset, length);
}

/** Splits a long name into ustar prefix (≤155) and name (≤100). */
function splitName(name: string): { prefix: string; base: string } {
  if (Buffer.byteLength(name) <= 100) return { prefix: "", base: name };
  for (let i = name.lastIndexOf("/"); i > 0; i = name.lastIndexOf("/", i - 1)) {
    const prefix = name.slice(0, i);
    const base = name.slice(i + 1);
    if (Buffer.byteLength(prefix) <= 155 && Buffer.byteLength(base) <= 100) return { prefix, base };
  }
  throw new Error(`tar name too long: ${name}`);
}

function header(name: string, typeflag: string, mode: number, size: number, linkname: string, mtime: number): Buffer {
  const h = Buffer.alloc(BLOCK);
  const { prefix, base } = splitName(name);
  writeString(h, base, 0, 100);
  writeOctal(h, mode, 100, 8);
  writeOctal(h, 0, 108, 8); // uid
  writeOctal(h, 0, 116, 8); // gid
  writeOctal(h, size, 124, 12);
  writeOctal(h, mtime, 136, 12);
  h.fill(" ", 148, 156); // checksum placeholder
  writeString(h, typeflag, 156, 1);
  writeString(h, linkname, 157, 100);
  writeString(h, "ustar\0", 257, 6);
  writeString(h, "00", 263, 2);
  writeString(h, "root", 265, 32);
  writeString(h, "root", 297, 32);
  writeString(h, prefix, 345, 155);
  let sum = 0;
  for (const byte of h) sum += byte;
  writeString(h, sum.toString(8).padStart(6, "0") + "\0 ", 148, 8);
  return h;
}

/** Builds a tar archive (ustar, two zero blocks at the end). */
export function createTar(entries: readonly TarEntry[], mtime = 0): Buffer {
  const parts: Buffer[] = [];
  for (const e of entries) {
    if (e.type === "dir") {
      const name = e.name.endsWith("/") ? e.name : e.name + "/";
      parts.push(header(name, "5", e.mode ?? 0o755, 0, "", mtime));
    } else if (e.type === "symlink") {
      parts.push(header(e.name, "2", 0o777, 0, e.target, mtime));
    } else {
      const data = typeof e.data === "string" ? Buffer.from(e.data, "utf8") : e.data;
      parts.push(header(e.name, "0", e.mode ?? 0o644, data.length, "", mtime));
      parts.push(data);
      const pad = (BLOCK - (data.length % BLOCK)) % BLOCK;
      if (pad > 0) parts.push(Buffer.alloc(pad));
    }
  }
  parts.push(Buffer.alloc(BLOCK * 2));
  return Buffer.concat(parts);
}

/** `sha256:<hex>` of a buffer. */
export function sha256Digest(data: Buffer | string): string {
  return "sha256:" + crypto.createHash("sha256").update(data).digest("hex");
}

/** A blob as it goes into an OCI layout: content plus its digest. */
export interface LayoutBlob {
  digest: string;
  data: Buffer;
}

/** Makes a {@link LayoutBlob} from content. */
export function blob(data: Buffer | string): LayoutBlob {
  const buf = typeof data === "string" ? Buffer.from(data, "utf8") : data;
  return { digest: sha256Digest(buf), data: buf };
}

/**
 * Builds an OCI image layout tar: `oci-layout`, `index.json` (raw bytes, as
 * given) and `blobs/sha256/<hex>` for every blob (duplicates dropped).
 */
export function createOciLayoutTar(indexJson: Buffer | string, blobs: readonly LayoutBlob[]): Buffer {
  const seen = new Set<string>();
  const entries: TarEntry[] = [
    { type: "file", name: "oci-layout", data: JSON.stringify({ imageLayoutVersion: "1.0.0" }) },
    { type: "file", name: "index.json", data: indexJson },
    { type: "dir", name: "blobs" },
    { type: "dir", name: "blobs/sha256" },
  ];
  for (const b of blobs) {
    if (seen.has(b.digest)) continue;
    seen.add(b.digest);
    const [alg, hex] = b.digest.split(":");
    if (alg !== "sha256" || !/^[0-9a-f]{64}$/.test(hex ?? "")) throw new Error(`bad blob digest ${b.digest}`);
    entries.push({ type: "file", name: `blobs/sha256/${hex}`, data: b.data });
  }
  return createTar(entries);
}
