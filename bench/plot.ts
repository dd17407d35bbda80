/**
 * Renders the benchmarks' JSON results as the SVG plots the README shows.
 *
 *   node dist/bench/plot.js [--in docs/bench] [--out docs]
 *
 * Reads what the benchmarks wrote with `--out` (each file is optional; a
 * missing one is reported and its plots skipped):
 *   - large.json (bench/large.sh): restore time vs checkpoint size (library,
 *     ctr, CRIU alone) → restore-vs-size.svg; the library's RSS vs size →
 *     rss-vs-size.svg;
 *   - pulumi.json (bench/pulumi.sh): `up` time vs N (RestoredContainer, the
 *     shell-out provider, raw ctr), one panel per driver → up-vs-n.svg;
 *   - criu-phases.json (bench/criu-phases.sh): CRIU's restore phases per
 *     setting and path → criu-phases.svg.
 * The inputs are checked against the shapes below (zod) so a renamed field
 * fails here, not as an empty plot. Plots are vega-lite specs rendered to SVG
 * by vega without a browser.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { z } from "zod";
import { parseFlags, runMain } from "./common";

const USAGE = `usage: node dist/bench/plot.js [--in DIR] [--out DIR]
  --in DIR    where the benchmarks' JSON results are (default docs/bench)
  --out DIR   where the SVG files go (default docs)`;

const REPO_ROOT = path.resolve(__dirname, "..", "..");

// ---- the inputs --------------------------------------------------------------------

const LargeResults = z.object({
  sizes: z.array(
    z.object({
      memMib: z.number(),
      library: z.object({ wallMedianMs: z.number(), criuMedianMs: z.number(), idleRssMiB: z.number(), peakRssMiB: z.number() }),
      ctr: z.object({ wallMedianMs: z.number(), criuMedianMs: z.number(), peakRssMiB: z.number().nullable().optional() }),
      /** The bench-only path with the CRIU image untarred once and passed as criu_image_path. */
      unpackedDir: z.object({ wallMedianMs: z.number() }).optional(),
    }),
  ),
});

const PulumiResults = z.object({
  parallel: z.number(),
  results: z.array(
    z.object({
      driver: z.enum(["cli", "automation"]),
      n: z.number(),
      kind: z.enum(["restored-container", "shell-out", "ctr", "empty"]),
      op: z.enum(["up", "preview", "destroy"]),
      medianMs: z.number(),
    }),
  ),
});

const CriuPhaseResults = z.object({
  runs: z.array(
    z.object({
      setting: z.string(),
      path: z.enum(["ctr", "library"]),
      failures: z.number().optional(),
      /** Null for a setting whose restores all failed; `parent/child` names a phase inside another. */
      phases: z.array(z.object({ name: z.string(), medianMs: z.number().nullable() })),
    }),
  ),
});

/** `file` parsed with `schema`, or undefined (and a note on stderr) when it does not exist. */
function readResults<T>(dir: string, file: string, schema: z.ZodType<T>): T | undefined {
  const p = path.join(dir, file);
  if (!fs.existsSync(p)) {
    process.stderr.write(`plot: no ${p}; its plots are skipped\n`);
    return undefined;
  }
  const parsed = schema.safeParse(JSON.parse(fs.readFileSync(p, "utf8")));
  if (!parsed.success) throw new Error(`${p} is not what plot.ts reads: ${z.prettifyError(parsed.error)}`);
  return parsed.data;
}

// ---- the plots ---------------------------------------------------------------------

type Row = Record<string, string | number>;

/** What every plot shares: size, font, a white background (the README may be dark). */
const BASE = {
  $schema: "https://vega.github.io/schema/vega-lite/v6.json",
  width: 420,
  height: 260,
  background: "white",
  config: { font: "sans-serif", axis: { labelFontSize: 11, titleFontSize: 12 }, legend: { labelFontSize: 11, titleFontSize: 12, labelLimit: 0, orient: "bottom", direction: "vertical" } },
} as const;

/** A line chart with points: `x`, `y`, one line per `series` value, in `order`. */
function lineChart(title: string, rows: Row[], x: { field: string; title: string; log?: boolean }, y: { field: string; title: string }, series: { field: string; order: string[] }) {
  return {
    ...BASE,
    title,
    data: { values: rows },
    mark: { type: "line", point: true },
    encoding: {
      x: { field: x.field, type: "quantitative", title: x.title, scale: x.log ? { type: "log", base: 2 } : {}, axis: { values: [...new Set(rows.map((r) => r[x.field]))] } },
      y: { field: y.field, type: "quantitative", title: y.title, scale: { zero: true } },
      color: { field: series.field, type: "nominal", title: null, sort: series.order },
    },
  };
}

const UNPACKED = "library, CRIU image kept unpacked (measured, not shipped)";

function restoreVsSize(large: z.infer<typeof LargeResults>) {
  const rows = large.sizes.flatMap((s) => [
    { memMib: s.memMib, path: "library (plan + restore)", ms: s.library.wallMedianMs },
    { memMib: s.memMib, path: "ctr containers restore", ms: s.ctr.wallMedianMs },
    { memMib: s.memMib, path: "CRIU alone (library path)", ms: s.library.criuMedianMs },
    ...(s.unpackedDir ? [{ memMib: s.memMib, path: UNPACKED, ms: s.unpackedDir.wallMedianMs }] : []),
  ]);
  return lineChart(
    "Restore time vs checkpoint size (median)",
    rows,
    { field: "memMib", title: "process memory in the checkpoint (MiB)", log: true },
    { field: "ms", title: "wall time (ms)" },
    { field: "path", order: ["library (plan + restore)", "ctr containers restore", "CRIU alone (library path)", UNPACKED] },
  );
}

function rssVsSize(large: z.infer<typeof LargeResults>) {
  const rows = large.sizes.flatMap((s) => [
    { memMib: s.memMib, what: "library process, peak", mib: s.library.peakRssMiB },
    { memMib: s.memMib, what: "library process, idle", mib: s.library.idleRssMiB },
    ...(s.ctr.peakRssMiB != null ? [{ memMib: s.memMib, what: "ctr process, peak", mib: s.ctr.peakRssMiB }] : []),
  ]);
  return lineChart(
    "Restoring process's RSS vs checkpoint size",
    rows,
    { field: "memMib", title: "process memory in the checkpoint (MiB)", log: true },
    { field: "mib", title: "RSS (MiB)" },
    { field: "what", order: ["library process, peak", "library process, idle", "ctr process, peak"] },
  );
}

const KIND_LABEL: Record<string, string> = {
  "restored-container": "RestoredContainer",
  "shell-out": "shell-out provider (ctr)",
  ctr: "raw ctr",
};

function upVsN(pulumi: z.infer<typeof PulumiResults>) {
  const rows = pulumi.results
    .filter((r) => r.op === "up" && r.kind in KIND_LABEL)
    .map((r) => ({ n: r.n, kind: KIND_LABEL[r.kind], ms: r.medianMs, driver: r.driver === "cli" ? "pulumi up (CLI)" : "stack.up() (Automation API)" }));
  const { width, height, ...base } = BASE;
  const chart = lineChart(
    `Bringing up N containers (median; parallelism ${pulumi.parallel})`,
    rows,
    { field: "n", title: "N containers" },
    { field: "ms", title: "wall time (ms)" },
    { field: "kind", order: Object.values(KIND_LABEL) },
  );
  const { data, title, mark, encoding } = chart;
  return { ...base, title, data, facet: { column: { field: "driver", type: "nominal", title: null } }, spec: { width: width * 0.7, height, mark, encoding } };
}

function criuPhases(criu: z.infer<typeof CriuPhaseResults>) {
  // Top-level phases only (a `parent/child` phase lies inside its parent); a setting whose every
  // restore failed has no phases and is left out (the tuning notes say why).
  const rows = criu.runs.flatMap((run) => {
    const top = run.phases.filter((p) => !p.name.includes("/"));
    return top.every((p) => p.medianMs !== null) ? top.map((p, i) => ({ run: `${run.setting} · ${run.path}`, phase: p.name, order: i, ms: p.medianMs! })) : [];
  });
  return {
    ...BASE,
    width: 480,
    height: { step: 22 },
    title: "Where CRIU's restore time goes (median per phase)",
    data: { values: rows },
    mark: "bar",
    encoding: {
      y: { field: "run", type: "nominal", title: null, sort: null, axis: { labelLimit: 0 } },
      x: { field: "ms", type: "quantitative", title: "ms inside CRIU", stack: "zero" },
      color: { field: "phase", type: "nominal", title: "phase", sort: { field: "order" } },
      order: { field: "order", type: "quantitative" },
    },
  };
}

// ---- rendering ---------------------------------------------------------------------

/** vega-lite spec → SVG text, with vega's own renderer (no browser, no canvas). */
async function renderSvg(spec: object): Promise<string> {
  const [vega, vegaLite] = await Promise.all([import("vega"), import("vega-lite")]);
  const compiled = vegaLite.compile(spec as Parameters<typeof vegaLite.compile>[0]).spec;
  const view = new vega.View(vega.parse(compiled), { renderer: "none" });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

async function main(): Promise<void> {
  let inDir = path.join(REPO_ROOT, "docs", "bench");
  let outDir = path.join(REPO_ROOT, "docs");
  parseFlags(process.argv.slice(2), USAGE, (flag, value) => {
    if (flag === "--in") inDir = path.resolve(value() ?? "");
    else if (flag === "--out") outDir = path.resolve(value() ?? "");
    else return false;
    return true;
  });
  const large = readResults(inDir, "large.json", LargeResults);
  const pulumi = readResults(inDir, "pulumi.json", PulumiResults);
  const criu = readResults(inDir, "criu-phases.json", CriuPhaseResults);
  const plots: Array<readonly [string, object]> = [];
  if (large) plots.push(["restore-vs-size.svg", restoreVsSize(large)], ["rss-vs-size.svg", rssVsSize(large)]);
  if (pulumi) plots.push(["up-vs-n.svg", upVsN(pulumi)]);
  if (criu) plots.push(["criu-phases.svg", criuPhases(criu)]);
  fs.mkdirSync(outDir, { recursive: true });
  for (const [file, spec] of plots) {
    const out = path.join(outDir, file);
    fs.writeFileSync(out, await renderSvg(spec));
    process.stdout.write(`plot: wrote ${path.relative(process.cwd(), out)}\n`);
  }
}

if (require.main === module) runMain(main);
