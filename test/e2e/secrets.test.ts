/**
 * TLS credentials as Pulumi secrets, through the real engine (Automation API,
 * inline program, file:// backend) against a private containerd reached over
 * mutual TLS on loopback TCP: the restore works over TLS, and the client key,
 * client certificate and CA never appear in plaintext in the exported state,
 * the backend's files on disk, the engine's events or its output text (also
 * with `--diff`), also when the program passes tls as plain strings (the SDK
 * marks it secret); tls is stored as secret objects; the serialized provider
 * holds no secret. Plaintext tcp:// fails preview on `address`.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { test } from "node:test";
import { promisify } from "node:util";
import * as pulumi from "@pulumi/pulumi";
import type { EngineEvent } from "@pulumi/pulumi/automation";
import { RestoredContainer, type RestoredContainerArgs } from "../../sdk";
import { daemonSuite, generateTlsMaterial, readLog, taskStatus, waitFor, type TlsMaterial } from "../harness";
import { RESOURCE_TYPE, failureOf, newStack, resourceSteps, type TestStack } from "./stack";

/** Pulumi's marker key of a secret value in state: `{ [SECRET_SIG]: SECRET_VALUE, ciphertext }`. */
const SECRET_SIG = "4dabf18193072939515e22adb298388d";
const SECRET_VALUE = "1b47061264138c4ac30d75fd1eb44270";

let material: TlsMaterial;
let s: TestStack;
/** What the program declares: the TLS mode and the rest of the args. */
let mode: "tls" | "plaintext" | "wrong-ca" = "tls";
let logPath: string;

const suite = daemonSuite({
  daemon: async () => ({ tls: (material = await generateTlsMaterial()) }),
  checkpoints: { counter: { ref: "checkpoint/secret-counter:v1" } },
  setUp: async ({ d, checkpoints }) => {
    logPath = path.join(d.logDir, "secret-counter.log");
    s = await newStack("restore-secrets", async () => {
      const args: RestoredContainerArgs = {
        checkpoint: checkpoints.counter.ref,
        address: d.tcpAddress!,
        namespace: d.namespace,
        logPath,
        stopTimeoutSeconds: 1,
      };
      // Plain strings, as from a file or a non-secret config: the SDK marks them secret itself.
      if (mode === "tls") args.tls = material.clientTls();
      if (mode === "wrong-ca") args.tls = pulumi.secret({ ...material.clientTls(), ca: material.otherCa.certPem });
      const counter = new RestoredContainer("counter", args);
      return { containerId: counter.containerId, status: counter.status, pid: counter.pid };
    });
  },
  tearDown: async () => {
    await s?.remove();
    material?.remove();
  },
});

/** Everything the engine printed and emitted, over every operation of this file. */
const printed: string[] = [];
const events: EngineEvent[] = [];

/** Output and event options for an operation; everything lands in `printed` and `events`. */
const watched = () => ({
  onOutput: (text: string) => void printed.push(text),
  onError: (text: string) => void printed.push(text),
  onEvent: (event: EngineEvent) => void events.push(event),
});

/** The lines of a PEM body (no BEGIN/END), the pieces to look for in plaintext. */
function pemLines(pem: string): string[] {
  return pem
    .split("\n")
    .map((line) => line.trim())
    .filter((line) => line.length >= 16 && !line.startsWith("-----"));
}

/** What must never appear in plaintext: every body line of the client key, client certificate and CA. */
function needles(): { what: string; line: string }[] {
  return [
    ...pemLines(material.client.keyPem).map((line) => ({ what: "client key", line })),
    ...pemLines(material.client.certPem).map((line) => ({ what: "client cert", line })),
    ...pemLines(material.ca.certPem).map((line) => ({ what: "CA cert", line })),
    // The key whole, as one base64 string (in case something re-wrapped it).
    { what: "client key (unwrapped)", line: pemLines(material.client.keyPem).join("") },
  ];
}

/** The needles found in `text` ("what: line"). */
function leaks(text: string): string[] {
  // JSON and the engine's display may escape or fold newlines; lines themselves are base64 and survive.
  const flat = text.replace(/\\+n|\n/g, "");
  return needles()
    .filter(({ line }) => text.includes(line) || flat.includes(line))
    .map(({ what, line }) => `${what}: ${line.slice(0, 24)}…`);
}

/** Every file under `dir` (the backend, with its history and backups, and PULUMI_HOME). */
function filesUnder(dir: string): string[] {
  const out: string[] = [];
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    if (entry.isDirectory()) out.push(...filesUnder(p));
    else if (entry.isFile()) out.push(p);
  }
  return out;
}

/** Leaks in every backend file on disk, by file. */
function leaksOnDisk(): { files: string[]; found: string[] } {
  const files = filesUnder(s.dir).filter((f) => fs.statSync(f).size < 64 * 1024 * 1024);
  const found = files.flatMap((f) => leaks(fs.readFileSync(f, "latin1")).map((l) => `${path.relative(s.dir, f)}: ${l}`));
  return { files, found };
}

const isSecret = (v: unknown): v is Record<string, string> =>
  typeof v === "object" && v !== null && (v as Record<string, unknown>)[SECRET_SIG] === SECRET_VALUE;

/** Secret objects anywhere in `value`, by path. */
function secretPaths(value: unknown, at = "$"): string[] {
  if (isSecret(value)) return [at];
  if (Array.isArray(value)) return value.flatMap((v, i) => secretPaths(v, `${at}[${i}]`));
  if (typeof value === "object" && value !== null) return Object.entries(value).flatMap(([k, v]) => secretPaths(v, `${at}.${k}`));
  return [];
}

test("preview of a plaintext tcp:// address without tls or insecure fails, naming property address", async () => {
  mode = "plaintext";
  const message = await failureOf(s.stack.preview({ ...watched(), diff: true }));
  assert.match(message, /property address .*is plaintext TCP: give tls \(ca, cert, key\) for mutual TLS, or set insecure: true/);
  assert.ok(message.includes(suite.d.tcpAddress!), "the message names the address");
  await suite.assertUnchanged("after the plaintext preview", { settleMs: 0 });
});

test("preview with a secret tls whose CA is wrong fails on address, and prints none of the secret", async () => {
  mode = "wrong-ca";
  const message = await failureOf(s.stack.preview({ ...watched(), diff: true }));
  assert.match(message, /property address .*cannot reach containerd at tcp:\/\/127\.0\.0\.1:\d+: .*certificate/);
  assert.deepEqual(leaks(message), []);
});

test("up with tls given as plain strings restores the container over mutual TLS, tls shown as [secret]", async () => {
  mode = "tls";
  const preview = await s.stack.preview({ ...watched(), diff: true });
  assert.equal(preview.changeSummary.create, 2);
  const result = await s.stack.up({ ...watched(), diff: true });
  assert.equal(result.summary.result, "succeeded");
  printed.push(result.stdout, result.stderr);
  const out = Object.fromEntries(Object.entries(await s.stack.outputs()).map(([k, v]) => [k, v.value]));
  assert.equal(out.status, "running");
  assert.equal(await taskStatus(suite.d, String(out.containerId)), "RUNNING");
  const counts = await waitFor(() => {
    const n = readLog(logPath).filter((l) => /^\d+$/.test(l)).map(Number);
    return n.length >= 2 ? n : undefined;
  }, 10_000, () => "restored counter output");
  assert.ok(counts[0] > suite.checkpoints.counter.countBefore && counts[0] <= suite.checkpoints.counter.countAfter + 1, `resumed at ${counts[0]}`);
  // The engine shows the secret as [secret] in the diff.
  assert.match(result.stdout, /tls\s*:\s*\[secret\]/);
});

type Deployment = { resources: { type: string; inputs?: Record<string, unknown>; outputs?: Record<string, unknown> }[] };

/** `pulumi stack export` as a user runs it (no --show-secrets; the Automation API's exportStack() passes it). */
async function cliExport(): Promise<string> {
  const ws = s.stack.workspace;
  const { stdout } = await promisify(execFile)(ws.pulumiCommand.command, ["stack", "export", "--stack", s.stack.name], {
    cwd: ws.workDir,
    env: { ...process.env, ...ws.envVars, ...(ws.pulumiHome ? { PULUMI_HOME: ws.pulumiHome } : {}) },
    maxBuffer: 64 * 1024 * 1024,
  });
  return stdout;
}

/** `value` with every secret object replaced by a marker: what is left is stored in plaintext. */
function withoutSecrets(value: unknown): unknown {
  if (isSecret(value)) return "<secret>";
  if (Array.isArray(value)) return value.map(withoutSecrets);
  if (typeof value === "object" && value !== null) return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, withoutSecrets(v)]));
  return value;
}

/** Leaks found in state over this file (exports and files on disk); must stay 0. */
let secretsFoundInState = 0;

test("the exported state holds tls only as secrets, no PEM in plaintext, and a provider without secrets", async () => {
  // As stored: `pulumi stack export` shows ciphertext only.
  const cliText = await cliExport();
  const stored = JSON.parse(cliText).deployment as Deployment;
  const storedLeaks = leaks(cliText);
  // Automation API's exportStack() decrypts (--show-secrets): the PEM may only sit inside secret objects.
  const decrypted = (await s.stack.exportStack()).deployment as Deployment;
  const outsideSecrets = leaks(JSON.stringify(withoutSecrets(decrypted)));
  const insideSecrets = leaks(JSON.stringify(decrypted)).length;
  secretsFoundInState += storedLeaks.length + outsideSecrets.length;
  console.log(
    `secrets found in exported state: ${storedLeaks.length} (pulumi stack export), ${outsideSecrets.length} outside secret objects ` +
      `(exportStack with --show-secrets; ${insideSecrets} PEM lines inside them, as expected); ${needles().length} PEM lines searched`,
  );
  assert.deepEqual(storedLeaks, []);
  assert.deepEqual(outsideSecrets, []);
  assert.ok(insideSecrets > 0, "the decrypted export does hold the PEM, inside secret objects: the search works");
  assert.doesNotMatch(cliText, /PRIVATE KEY|CERTIFICATE/);

  for (const [label, deployment] of [["stored", stored], ["decrypted", decrypted]] as const) {
    const resource = deployment.resources.find((r) => r.type === RESOURCE_TYPE);
    assert.ok(resource?.inputs && resource.outputs, `${label}: the RestoredContainer is in the state`);
    assert.ok(isSecret(resource.inputs.tls), `${label}: inputs.tls is a secret: ${JSON.stringify(resource.inputs.tls)?.slice(0, 80)}`);
    assert.ok(isSecret(resource.outputs.tls), `${label}: outputs.tls is a secret: ${JSON.stringify(resource.outputs.tls)?.slice(0, 80)}`);
    // tls is the only secret: nothing else was marked (or needed to be).
    assert.deepEqual(secretPaths(resource.inputs), ["$.tls"]);
    assert.deepEqual(secretPaths(resource.outputs), ["$.tls"]);
  }
  const resource = stored.resources.find((r) => r.type === RESOURCE_TYPE)!;
  const tls = resource.inputs!.tls as Record<string, string>;
  assert.ok(typeof tls.ciphertext === "string" && tls.ciphertext.length > 0 && tls.plaintext === undefined, "stored as ciphertext");

  // The serialized provider: plain code, no secret captured, no credential inside.
  for (const where of [resource.inputs!, resource.outputs!]) {
    const provider = where.__provider;
    assert.equal(typeof provider, "string", "__provider is stored in plaintext: it captured no secret");
    assert.ok(!isSecret(provider));
    assert.deepEqual(leaks(String(provider)), []);
    assert.doesNotMatch(String(provider), /BEGIN|PRIVATE KEY|CERTIFICATE/);
  }
});

test("the state files on disk (stack, history, backups) hold no PEM in plaintext", async () => {
  const { files, found } = leaksOnDisk();
  const stackFiles = files.filter((f) => /\.pulumi\/stacks\/.*\.json$/.test(f));
  assert.ok(stackFiles.length > 0, `a stack state file under ${s.dir}: ${files.map((f) => path.relative(s.dir, f)).join(", ")}`);
  const state = fs.readFileSync(stackFiles[0], "utf8");
  assert.ok(state.includes(SECRET_SIG), "the state file on disk holds secret objects");
  secretsFoundInState += found.length;
  console.log(`secrets found in state files on disk: ${found.length} (${files.length} files searched)`);
  assert.deepEqual(found, []);
});

test("refresh reads the container over TLS with the credentials from state", async () => {
  const result = await s.stack.refresh({ ...watched() });
  assert.equal(result.summary.result, "succeeded");
  printed.push(result.stdout, result.stderr);
  const again = await s.stack.preview({ ...watched(), diff: true });
  assert.equal(again.changeSummary.same, 2, "no changes after refresh");
});

test("destroy tears down over TLS and leaves the daemon as it was; no output or event ever showed the secret", async () => {
  const result = await s.stack.destroy({ ...watched(), diff: true });
  assert.equal(result.summary.result, "succeeded");
  printed.push(result.stdout, result.stderr);
  await suite.assertUnchanged("after destroy");

  const output = printed.join("\n");
  assert.ok(output.length > 0);
  // The daemon is at 127.0.0.1: grpc-js's SNI for an IP must not put Node's DEP0123 warning in the stack's output.
  assert.doesNotMatch(output, /DEP0123|TLS ServerName to an IP address/);
  const inOutput = leaks(output);
  // Known, upstream: @pulumi/pulumi's own runtime in the *program* logs each RegisterResource
  // response, secret outputs decrypted, as a debug diagnostic (runtime/resource.js, "RegisterResource
  // RPC finished: … resp: …"). The engine forwards it to the event stream; the CLI shows it only with
  // --debug. Not the provider's doing, and nothing else may carry the secret.
  const sdkDebug = (e: EngineEvent) =>
    (e.diagnosticEvent?.severity as string | undefined) === "debug" &&
    /^(RegisterResource|ReadResource) RPC finished: /.test(e.diagnosticEvent?.message ?? "");
  const leakyEvents = events.filter((e) => leaks(JSON.stringify(e)).length > 0);
  const inEvents = leaks(JSON.stringify(events.filter((e) => !sdkDebug(e))));
  console.log(
    `secrets found in engine output: ${inOutput.length}; in engine events: ${inEvents.length} of ${events.length} ` +
      `(plus ${leakyEvents.filter(sdkDebug).length} debug diagnostics of the program's Pulumi SDK runtime, known upstream)`,
  );
  assert.deepEqual(inOutput, []);
  assert.deepEqual(inEvents, []);
  assert.deepEqual(leakyEvents.filter((e) => !sdkDebug(e)), []);
  // The engine's events did carry the resource's tls: as a secret object whose value is "[secret]".
  const shown = resourceSteps(events).flatMap((m) => [m.new?.inputs?.tls, m.old?.inputs?.tls]).filter((t) => t !== undefined);
  assert.ok(shown.length > 0, "resource steps carry tls");
  for (const t of shown) assert.ok(isSecret(t) && t.ciphertext === "[secret]" && t.plaintext === undefined, `tls in events: ${JSON.stringify(t)}`);

  const { found } = leaksOnDisk();
  secretsFoundInState += found.length;
  console.log(`secrets found in state files on disk after destroy: ${found.length}`);
  assert.deepEqual(found, []);
  console.log(`secrets found in state (all checks): ${secretsFoundInState}`);
  assert.equal(secretsFoundInState, 0);
});
