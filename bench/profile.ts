/**
 * Summarizes a V8 CPU profile (`node --cpu-prof`, e.g. the copy workers of
 * `bench/transfer.sh --cpu-prof DIR`) into where the copying process's time
 * goes: each sample is charged to the innermost frame of a known kind
 * (protobufjs, grpc-js, digest, Buffer, http2, streams, this project, …), so a
 * native memcpy under Buffer.concat counts as Buffer and one under protobufjs's
 * writer as protobuf; V8's own (idle) / (garbage collector) / (program) stay apart.
 *
 *   node dist/bench/profile.js FILE.cpuprofile [--top 15]
 */
import * as fs from "node:fs";
import { intFlag, parseFlags } from "./common";

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

/** Kinds, tried on each frame from the leaf up; the first that matches takes the sample. */
const KINDS: Array<[string, (f: ProfileNode["callFrame"]) => boolean]> = [
  ["digest (node:crypto)", (f) => /internal\/crypto/.test(f.url)],
  ["protobufjs encode/decode", (f) => /protobufjs|@protobufjs/.test(f.url)],
  ["protobuf glue (proto.js, blob-codec.js)", (f) => /provider\/containerd\/(blob-codec|proto)\.js/.test(f.url)],
  ["gRPC over node:http2 (grpc-h2.js)", (f) => /provider\/containerd\/grpc-h2\.js/.test(f.url)],
  ["Buffer ops (alloc, concat, copy, slice)", (f) => /^node:buffer$|internal\/buffer/.test(f.url)],
  ["grpc-js framing and call layers", (f) => /@grpc\/grpc-js/.test(f.url)],
  ["http2 session/stream (node)", (f) => /http2/.test(f.url)],
  ["streams and events (node)", (f) => /internal\/streams|node:events|^node:stream/.test(f.url)],
  ["this project (copy, content, client)", (f) => /dist\/(provider|bench)\//.test(f.url)],
  ["timers, promises, microtasks", (f) => /internal\/(timers|process\/task_queues|process\/promises)/.test(f.url)],
];
const SPECIAL = new Set(["(idle)", "(garbage collector)", "(program)", "(root)"]);

function main(): void {
  const usage = "usage: node dist/bench/profile.js FILE.cpuprofile [--top N]";
  let file: string | undefined;
  let top = 15;
  parseFlags(process.argv.slice(2), usage, (flag, value) => {
    if (flag === "--top") top = intFlag("--top", value(), 1, usage);
    else if (!flag.startsWith("--") && file === undefined) file = flag;
    else return false;
    return true;
  });
  if (!file) throw new Error(usage);
  const profile = JSON.parse(fs.readFileSync(file, "utf8")) as Profile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);

  const kindOf = new Map<number, string>();
  const classify = (id: number): string => {
    const cached = kindOf.get(id);
    if (cached) return cached;
    const leaf = byId.get(id)!;
    let kind = SPECIAL.has(leaf.callFrame.functionName) ? leaf.callFrame.functionName : "";
    for (let at: number | undefined = id; !kind && at !== undefined; at = parent.get(at)) {
      const frame = byId.get(at)!.callFrame;
      kind = KINDS.find(([, test]) => test(frame))?.[0] ?? "";
    }
    kind ||= "other (node internals, native)";
    kindOf.set(id, kind);
    return kind;
  };

  const byKind = new Map<string, number>();
  const selfByFn = new Map<string, number>();
  let total = 0;
  profile.samples.forEach((id, i) => {
    const us = profile.timeDeltas[i] ?? 0;
    total += us;
    const kind = classify(id);
    byKind.set(kind, (byKind.get(kind) ?? 0) + us);
    const f = byId.get(id)!.callFrame;
    const name = `${f.functionName || "(anonymous)"} ${f.url.replace(/^.*node_modules\//, "").replace(/^file:\/\/.*\/dist\//, "dist/")}:${f.lineNumber + 1}`;
    selfByFn.set(name, (selfByFn.get(name) ?? 0) + us);
  });
  const busy = total - (byKind.get("(idle)") ?? 0);
  const ms = (us: number) => (us / 1000).toFixed(0).padStart(7);
  const pct = (us: number, of: number) => `${((100 * us) / of).toFixed(1).padStart(5)}%`;
  const out: string[] = [`${file}: ${(total / 1e6).toFixed(2)} s sampled, ${(busy / 1e6).toFixed(2)} s on CPU (not idle)`, "", "by kind (innermost known frame)        ms   of busy"];
  for (const [kind, us] of [...byKind].sort((a, b) => b[1] - a[1])) out.push(`  ${kind.padEnd(38)}${ms(us)}  ${kind === "(idle)" ? "   —" : pct(us, busy)}`);
  out.push("", `top ${top} functions by self time`);
  for (const [name, us] of [...selfByFn].sort((a, b) => b[1] - a[1]).slice(0, top)) out.push(`  ${ms(us)} ms  ${pct(us, total)}  ${name}`);
  process.stdout.write(`${out.join("\n")}\n`);
}

main();
