import { randomBytes } from "node:crypto";
import { z } from "zod";
import { DEFAULT_ADDRESS, DEFAULT_NAMESPACE, MAX_ID_LENGTH, invalidIdReason, parseAddress } from "../index";
import { tlsMaterialProblems } from "../containerd/tls-material";
import { isReservedLabel } from "../restore/labels";
import { signalNumber } from "../restore/teardown";

/** What the engine sends for a value not known yet (preview of computed inputs). */
export const UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9";

const idRule = (field: string) => (value: string, ctx: z.RefinementCtx) => {
  const why = invalidIdReason(value);
  if (why) ctx.addIssue({ code: "custom", message: `${field} "${value}" ${why}` });
};

/** An image ref: a tag or `name@sha256:…`, no spaces. */
const imageRef = (field: string) =>
  z
    .string({ error: `${field} is required: a checkpoint image ref (tag or name@sha256:…) in the daemon's image store` })
    .min(1, `${field} must not be empty`)
    .regex(/^\S+$/, `${field} must be an image ref without spaces (e.g. checkpoint/app:v1)`);

/**
 * Malformed material (key and certificate swapped, a key that is not the
 * certificate's, corrupted PEM, expired) is a failure on `tls` at check, with
 * the field in the reason, instead of OpenSSL's throw at the first connection.
 */
function checkTlsMaterial(tls: { ca: string; cert: string; key: string }, ctx: z.RefinementCtx): void {
  for (const problem of tlsMaterialProblems(tls)) ctx.addIssue({ code: "custom", message: problem });
}

/** How to reach a daemon: shared by every resource. */
const daemonFields = {
  address: z
    .string()
    .default(DEFAULT_ADDRESS)
    .superRefine((value, ctx) => {
      try {
        parseAddress(value);
      } catch (err) {
        ctx.addIssue({ code: "custom", message: (err as Error).message.replace(/^connect: /, "") });
      }
    }),
  namespace: z.string().default(DEFAULT_NAMESPACE).superRefine(idRule("namespace")),
  /** Mutual TLS for a tcp:// address (PEM); pass them as secrets. */
  tls: z
    .object({
      ca: z.string().min(1, "tls.ca must be a PEM certificate"),
      cert: z.string().min(1, "tls.cert must be a PEM certificate"),
      key: z.string().min(1, "tls.key must be a PEM private key"),
      serverName: z.string().optional(),
    })
    .superRefine(checkTlsMaterial)
    .optional(),
  /** Allow plaintext tcp:// (no TLS). */
  insecure: z.boolean().default(false),
};

/** Set by the SDK: the Pulumi resource name, the stem of auto-generated names. */
const resourceName = z.string().min(1);

/** The RestoredContainer inputs, validated once; defaults applied. */
export const inputsSchema = z.object({
  checkpoint: imageRef("checkpoint"),
  name: z.string().superRefine(idRule("name")).optional(),
  ...daemonFields,
  live: z.boolean().default(true),
  restoreRw: z.boolean().default(true),
  stopSignal: z
    .string()
    .superRefine((value, ctx) => {
      try {
        signalNumber(value);
      } catch (err) {
        ctx.addIssue({ code: "custom", message: `${(err as Error).message}: use a name like SIGTERM or a number` });
      }
    })
    .optional(),
  stopTimeoutSeconds: z.number().int().min(0).max(3600).default(10),
  labels: z
    .record(z.string(), z.string())
    .default({})
    .superRefine((labels, ctx) => {
      for (const key of Object.keys(labels).filter(isReservedLabel)) {
        ctx.addIssue({ code: "custom", path: [key], message: `label ${key} is written by the provider; choose another key` });
      }
    }),
  logPath: z.string().startsWith("/", "logPath must be an absolute path on the daemon host").optional(),
  resourceName,
  /** Set by the SDK: `<project>/<stack>/<resource name>`, recorded on the container. */
  owner: z.string().min(1).optional(),
});

export type Inputs = z.infer<typeof inputsSchema>;

/** The ContainerCheckpoint inputs. */
export const checkpointInputsSchema = z.object({
  containerId: z.string({ error: "containerId is required: the running container to checkpoint" }).superRefine(idRule("containerId")),
  ref: imageRef("ref").optional(),
  ...daemonFields,
  leaveRunning: z.boolean().default(true),
  includeRw: z.boolean().default(true),
  resourceName,
});

export type CheckpointInputs = z.infer<typeof checkpointInputsSchema>;

/** The CheckpointCopy inputs: a checkpoint on one daemon, copied to another. */
export const copyInputsSchema = z.object({
  source: z.object({ ...daemonFields, ref: imageRef("source.ref") }, { error: "source is required: { address, namespace, ref }" }),
  target: z.object({ ...daemonFields, ref: imageRef("target.ref").optional() }, { error: "target is required: { address, namespace }" }),
  /** Move an existing target ref that names another image to the checkpoint (default false: refused). */
  overwrite: z.boolean().default(false),
  resourceName,
  /** Set by the SDK: `<project>/<stack>/<resource name>`, recorded on the target ref. */
  owner: z.string().min(1).optional(),
});

export type CopyInputs = z.infer<typeof copyInputsSchema>;

/** A validated daemon connection, as every resource's inputs carry it. */
export type Daemon = Pick<Inputs, "address" | "namespace" | "tls" | "insecure">;

/** tcp:// needs TLS material or an explicit insecure: true; checked with the address. */
export function transportFailures(daemon: Daemon, prefix = ""): CheckFailure[] {
  if (!daemon.address.startsWith("tcp://") || daemon.tls || daemon.insecure) return [];
  return [
    {
      property: `${prefix}address`,
      reason: `${daemon.address} is plaintext TCP: give tls (ca, cert, key) for mutual TLS, or set insecure: true to allow plaintext`,
    },
  ];
}

/** Checked inputs: the user's, with defaults, plus what check resolved. */
export interface CheckedInputs extends Inputs {
  /** The container id: `name`, or the resource name plus a random suffix. */
  containerId: string;
  /** The checkpoint digest the ref resolved to (absent when the daemon was not asked). */
  checkpointDigest?: string;
}

export interface CheckFailure {
  property: string;
  reason: string;
}

export const isUnknown = (value: unknown): boolean => value === UNKNOWN;

/** Whether two input values are the same (absent and undefined alike), for diffs. */
export const sameValue = (a: unknown, b: unknown): boolean => JSON.stringify(a ?? null) === JSON.stringify(b ?? null);

/** True when the value is unknown or holds an unknown anywhere inside. */
function holdsUnknown(value: unknown): boolean {
  if (isUnknown(value)) return true;
  return typeof value === "object" && value !== null && Object.values(value).some(holdsUnknown);
}

/** Keys whose value is (or holds something) still unknown (preview). */
export function unknownKeys(news: Record<string, unknown>): Set<string> {
  return new Set(Object.keys(news).filter((key) => holdsUnknown(news[key])));
}

/**
 * Validates raw inputs against `schema`. Unknown values are not validated and
 * are passed through as the unknown sentinel; failures name the property and say
 * what to do. `daemons` names where daemon connections sit ("" for top level).
 */
export function validate<S extends z.ZodObject>(
  schema: S,
  news: Record<string, unknown>,
  daemons: string[] = [""],
): { inputs?: z.infer<S>; failures: CheckFailure[] } {
  const unknown = unknownKeys(news);
  const known = Object.fromEntries(Object.entries(news).filter(([key]) => !unknown.has(key) && key !== "__provider"));
  const parsed = schema.partial(Object.fromEntries([...unknown].map((k) => [k, true])) as never).safeParse(known);
  if (!parsed.success) {
    return { failures: parsed.error.issues.map((issue) => ({ property: issue.path.map(String).join("."), reason: issue.message })) };
  }
  const inputs = { ...(parsed.data as object), ...Object.fromEntries([...unknown].map((k) => [k, UNKNOWN])) } as Record<string, unknown>;
  const transport = daemons.flatMap((at) => {
    const daemon = (at ? inputs[at] : inputs) as Daemon | string;
    const prefix = at ? `${at}.` : "";
    if (typeof daemon !== "object" || unknown.has(at || "address") || unknown.has(at || "tls")) return [];
    return transportFailures(daemon, prefix);
  });
  return transport.length ? { failures: transport } : { inputs: inputs as z.infer<S>, failures: [] };
}

/** Validates RestoredContainer inputs. */
export function validateInputs(news: Record<string, unknown>): { inputs?: Inputs; failures: CheckFailure[] } {
  return validate(inputsSchema, news);
}

/**
 * The container id: the user's `name`, else the previous auto-name (same resource),
 * else `<resource name>-<random>` cut to containerd's 76 characters.
 */
export function containerIdFor(inputs: Inputs, olds: Partial<CheckedInputs>): string {
  if (inputs.name !== undefined) return inputs.name;
  if (olds.containerId && olds.name === undefined && olds.resourceName === inputs.resourceName) return olds.containerId;
  const stem = inputs.resourceName.replace(/[^A-Za-z0-9._-]+/g, "-").replace(/^[._-]+|[._-]+$/g, "").replace(/[._-]{2,}/g, "-") || "restored";
  // Cut before the suffix, then drop a separator the cut may leave at the end ("a-" + "-1f2e3d4" is invalid).
  return `${stem.slice(0, MAX_ID_LENGTH - 8).replace(/[._-]+$/, "")}-${randomBytes(4).toString("hex").slice(0, 7)}`;
}
