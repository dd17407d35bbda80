/**
 * One blob A → B through the copy's pipeline (readChunks → readAhead → writeBlob),
 * for choosing the pipeline's knobs: per knob set, a fresh pair of private daemons,
 * `--rounds` copies of a new `--mib` MiB pseudo-random blob each, and per copy the
 * throughput, the process's CPU, its VmHWM over the RSS just before the copy and
 * the peak of process.memoryUsage().external (sampled every 10 ms). Knob sets are
 * JSON objects of STREAM_TUNING / H2_TUNING fields, one per argument.
 *
 *   node dist/bench/blob-copy.js [--mib 256] [--rounds 3] '{"rangeBytes":16777216}' '{"rangeBytes":2097152}' …
 *
 * (bash bench/transfer.sh measures the whole copyCheckpoint against ctr and the old code.)
 */
import { createCipheriv, createHash } from "node:crypto";
import * as fs from "node:fs";
import { H2_TUNING, STREAM_TUNING, connect, readAhead, readChunks, writeBlob } from "../provider/containerd";
import { startContainerd } from "../test/harness/index";
import { f1, intFlag, median, parseFlags, runMain, table } from "./common";

const MiB = 1024 * 1024;
const kib = (field: string): number => Number(new RegExp(`${field}:\\s+(\\d+)`).exec(fs.readFileSync("/proc/self/status", "utf8"))![1]);

/** Chunk `i` of round `round`'s blob: an AES-CTR keystream, cheap to make twice (to hash, then to write). */
function chunk(round: number, i: number): Buffer {
  const iv = Buffer.alloc(16);
  iv.writeUInt32BE(round, 0);
  iv.writeUInt32BE(i, 4);
  return createCipheriv("aes-128-ctr", Buffer.alloc(16, 7), iv).update(Buffer.alloc(MiB));
}

async function main(): Promise<void> {
  const usage = "usage: node dist/bench/blob-copy.js [--mib M] [--rounds N] KNOBS_JSON…";
  let mib = 256;
  let rounds = 3;
  const sets: string[] = [];
  parseFlags(process.argv.slice(2), usage, (flag, value) => {
    if (flag === "--mib") mib = intFlag("--mib", value(), 1, usage);
    else if (flag === "--rounds") rounds = intFlag("--rounds", value(), 1, usage);
    else if (flag.startsWith("{")) sets.push(flag);
    else return false;
    return true;
  });
  if (sets.length === 0) sets.push("{}");
  const defaults = { ...STREAM_TUNING, ...H2_TUNING };
  const rows: string[][] = [["knobs (over the defaults)", "median MB/s", "CPU ms/MB", "max VmHWM − RSS before, MiB", "max external MB"]];
  for (const set of sets) {
    for (const k of Object.keys(STREAM_TUNING)) (STREAM_TUNING as Record<string, number>)[k] = (defaults as Record<string, number>)[k];
    for (const k of Object.keys(H2_TUNING)) (H2_TUNING as Record<string, number>)[k] = (defaults as Record<string, number>)[k];
    for (const [k, v] of Object.entries(JSON.parse(set) as Record<string, number>)) {
      if (k in STREAM_TUNING) (STREAM_TUNING as Record<string, number>)[k] = v;
      else if (k in H2_TUNING) (H2_TUNING as Record<string, number>)[k] = v;
      else throw new Error(`unknown knob ${k}`);
    }
    const [a, b] = await Promise.all([startContainerd(), startContainerd()]);
    const ca = connect(a.address, { namespace: a.namespace });
    const cb = connect(b.address, { namespace: b.namespace });
    const mbs: number[] = [];
    const cpus: number[] = [];
    const over: number[] = [];
    const ext: number[] = [];
    try {
      const size = mib * MiB;
      for (let round = 0; round < rounds; round++) {
        const hash = createHash("sha256");
        for (let i = 0; i < mib; i++) hash.update(chunk(round, i));
        const digest = `sha256:${hash.digest("hex")}`;
        await writeBlob(ca, `src-${round}`, { digest, size }, async function* () {
          for (let i = 0; i < mib; i++) yield chunk(round, i);
        });
        await new Promise((resolve) => setTimeout(resolve, 300));
        fs.writeFileSync("/proc/self/clear_refs", "5");
        const before = kib("VmRSS");
        let peakExternal = 0;
        const timer = setInterval(() => (peakExternal = Math.max(peakExternal, process.memoryUsage().external)), 10);
        const cpu0 = process.cpuUsage();
        const t0 = performance.now();
        const result = await writeBlob(cb, `dst-${round}`, { digest, size }, (offset) => readAhead(readChunks(ca, digest, size, offset), STREAM_TUNING.readAheadBytes));
        const ms = performance.now() - t0;
        const cpu = process.cpuUsage(cpu0);
        clearInterval(timer);
        if (result.bytesWritten !== size) throw new Error(`wrote ${result.bytesWritten} of ${size}`);
        mbs.push(size / 1e6 / (ms / 1000));
        cpus.push((cpu.user + cpu.system) / 1000 / (size / 1e6));
        over.push((kib("VmHWM") - before) / 1024);
        ext.push(peakExternal / 1e6);
      }
    } finally {
      ca.close();
      cb.close();
      await Promise.all([a.stop(), b.stop()]);
    }
    rows.push([set, f1(median(mbs)), median(cpus).toFixed(2), f1(Math.max(...over)), f1(Math.max(...ext))]);
    process.stderr.write(`${set}: ${mbs.map(f1).join(" ")} MB/s\n`);
  }
  process.stdout.write(`${mib} MiB blob A → B, ${rounds} round(s) per knob set; defaults ${JSON.stringify(defaults)}\n${table(rows)}\n`);
}

if (require.main === module) runMain(main);
