/**
 * One planRestore (or the provider's check) in a fresh process, so that its peak
 * RSS is its own: `node limits.child.js <plan|check> <address> <namespace> <ref>`.
 * Prints one JSON line: the outcome (plan digest, RestoreError code/subject/message,
 * or check failures), wall time, and peak RSS before and after the call.
 */
import * as fs from "node:fs";
import { RestoreError, connect, planRestore } from "../../provider/index";
import { check } from "../../provider/pulumi/restored-container";

/**
 * This process's peak RSS in KiB: VmHWM, which exec resets. (getrusage's maxRSS
 * does not: after fork and exec it still holds the parent's RSS at the fork.)
 */
function peakRssKiB(): number {
  const match = /^VmHWM:\s+(\d+) kB$/m.exec(fs.readFileSync("/proc/self/status", "utf8"));
  return match ? Number(match[1]) : NaN;
}

async function main(): Promise<void> {
  const [mode, address, namespace, ref] = process.argv.slice(2);
  const baselineKiB = peakRssKiB();
  const t0 = performance.now();
  let outcome: Record<string, unknown>;
  try {
    if (mode === "check") {
      const result = await check({}, { checkpoint: ref, address, namespace, resourceName: "limits", stopTimeoutSeconds: 1 });
      outcome = { failures: result.failures ?? [] };
    } else {
      const client = connect(address, { namespace });
      try {
        outcome = { digest: (await planRestore(client, ref)).checkpoint.digest };
      } finally {
        client.close();
      }
    }
  } catch (err) {
    outcome =
      err instanceof RestoreError
        ? { code: err.code, subject: err.subject, message: err.message }
        : { thrown: (err as Error)?.name ?? typeof err, message: String((err as Error)?.message ?? err) };
  }
  const ms = performance.now() - t0;
  process.stdout.write(`${JSON.stringify({ outcome, ms, baselineKiB, peakKiB: peakRssKiB() })}\n`);
}

void main().then(() => process.exit(0));
