import { z } from "zod";
import { DEFAULT_ADDRESS, DEFAULT_NAMESPACE, RestoreError } from "../index";
import { invalidTlsReason, isPlaintextTcp, parseAddress } from "../containerd";
import { allowanceProblems, type Allowances } from "../policy";
import { invalidIdReason, invalidLogPathReason, invalidSignalReason, isReservedLabel } from "../restore";
import { autoName, containerIdRule, seedOf } from "./naming";

/** What the engine sends for a value not known yet (preview of computed inputs). */
export const UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9";

/** A zod refinement from one of the library's rules ("why not, or undefined"). */
const rule =
  <T>(reason: (value: T) => string | undefined, message: (why: string, value: T) => string) =>
  (value: T, ctx: z.RefinementCtx) => {
    const why = reason(value);
    if (why) ctx.addIssue({ code: "custom", message: message(why, value) });
  };

const idRule = (field: string) => rule(invalidIdReason, (why, value: string) => `${field} "${value}" ${why}`);

/** An image ref: a tag or `name@sha256:…`, no spaces. */
const imageRef = (field: string) =>
  z
    .string({ error: `${field} is required: a checkpoint image ref (tag or name@sha256:…) in the daemon's image store` })
    .min(1, `${field} must not be empty`)
    .regex(/^\S+$/, `${field} must be an image ref without spaces (e.g. checkpoint/app:v1)`);

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
  /** TLS for a tcp:// address (PEM): a CA, and a client certificate with its key for mutual TLS; pass them as secrets. */
  tls: z
    .object({
      ca: z.string().min(1, "tls.ca must be a PEM certificate"),
      cert: z.string().min(1, "tls.cert must be a PEM certificate").optional(),
      key: z.string().min(1, "tls.key must be a PEM private key").optional(),
      serverName: z.string().optional(),
    })
    // An empty ca is reported on tls.ca above; the pairing of cert and key is the client's rule.
    .superRefine(rule((tls) => (tls.ca ? invalidTlsReason(tls) : undefined), (why) => why))
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
    .superRefine(rule(invalidSignalReason, (why) => `${why}: use a name like SIGTERM or a number`))
    .optional(),
  stopTimeoutSeconds: z.number().int("stopTimeoutSeconds must be a whole number of seconds").min(0).max(3600).default(10),
  labels: z
    .record(z.string(), z.string())
    .default({})
    .superRefine((labels, ctx) => {
      for (const key of Object.keys(labels).filter(isReservedLabel)) {
        ctx.addIssue({ code: "custom", path: [key], message: `label ${key} is written by the provider (keys under containerd-restore/ and io.containerd.image.config.stop-signal are reserved; set stopSignal for the latter); choose another key` });
      }
    }),
  logPath: z
    .string()
    .superRefine(rule(invalidLogPathReason, (why) => `logPath ${why}`))
    .optional(),
  /** What the checkpoint may have beyond an ordinary unprivileged container (the restore policy). */
  allow: z
    .custom<Allowances>()
    .superRefine((value, ctx) => {
      for (const problem of allowanceProblems(value)) ctx.addIssue({ code: "custom", message: problem.message });
    })
    .optional(),
  /** Admit everything the checkpoint asks for. */
  privileged: z.boolean({ error: "privileged must be true or false" }).default(false),
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
  /** Set by the SDK: `<project>/<stack>/<resource name>`, the seed of the generated ref. */
  owner: z.string().min(1).optional(),
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

/** tcp:// needs TLS material or an explicit insecure: true (the client's rule); checked with the address. */
export function transportFailures(daemon: Daemon, prefix = ""): CheckFailure[] {
  if (!isPlaintextTcp(daemon.address, daemon)) return [];
  return [
    {
      property: `${prefix}address`,
      reason: `${daemon.address} is plaintext TCP: give tls (ca, cert, key) for mutual TLS, or set insecure: true to allow plaintext`,
    },
  ];
}

/** The RestoredContainer inputs as check returns them: the user's, with defaults, plus what check resolved. */
export const checkedInputsSchema = inputsSchema.extend({
  /**
   * The container id: `name` when the user gave one; otherwise absent (create names
   * it, so an auto-name is unknown in preview, as an output that exists only after create).
   */
  containerId: z.string().superRefine(idRule("containerId")).optional(),
  /** The checkpoint digest the ref resolved to (absent when the daemon was not asked). */
  checkpointDigest: z.string().optional(),
});

export type CheckedInputs = z.infer<typeof checkedInputsSchema>;

/** The ContainerCheckpoint inputs as check returns them: the ref named. */
export const checkedCheckpointInputsSchema = checkpointInputsSchema.extend({
  /** Absent when generated: create names it (unknown in preview). */
  ref: imageRef("ref").optional(),
  /** The ref was generated (kept for the same resource; replacements make a new one). */
  autoRef: z.boolean().default(false),
});

export type CheckedCheckpointInputs = z.infer<typeof checkedCheckpointInputsSchema>;

/** The CheckpointCopy inputs as check returns them: the digest the source ref resolved to. */
export const checkedCopyInputsSchema = copyInputsSchema.extend({ sourceDigest: z.string().optional() });

export type CheckedCopyInputs = z.infer<typeof checkedCopyInputsSchema>;

/** A daemon connection as resource state carries it; other state is passed through. */
export const daemonStateSchema = z.object(daemonFields).loose();

/** A property bag as the engine passes it to a dynamic provider. */
export type PropertyBag = Record<string, unknown>;

/**
 * `bag` parsed with `schema`: create and update parse what check produced, read and
 * delete what state holds, so no method trusts a shape it did not check. A
 * mismatch (a hand-edited state, a bug) is named by property.
 */
export function parseProperties<S extends z.ZodType>(schema: S, bag: PropertyBag, what: string): z.infer<S> {
  const parsed = schema.safeParse(Object.fromEntries(Object.entries(bag).filter(([key]) => key !== "__provider")));
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  const property = issue.path.map(String).join(".") || "(top level)";
  throw new RestoreError("invalid-option", `${what}: property ${property}: ${issue.message}`, { subject: property, cause: parsed.error });
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
    return { failures: parsed.error.issues.map((issue) => ({ property: issue.path.map(String).join("."), reason: inProjectWords(issue) })) };
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

/**
 * zod's generic messages ("Invalid input: expected boolean, received string", "Too small:
 * expected number to be >=0") in the project's words, naming the property; the messages this
 * file writes itself are kept.
 */
export function inProjectWords(issue: z.core.$ZodIssue): string {
  const property = issue.path.map(String).join(".") || "input";
  const generic = /^(Invalid input|Too small|Too big|Invalid option)\b/.test(issue.message);
  if (!generic) return issue.message;
  switch (issue.code) {
    case "invalid_type": {
      const expected = String((issue as { expected?: string }).expected);
      const words: Record<string, string> = { boolean: "true or false", number: "a number", string: "a string", object: "an object", record: "an object of strings", array: "a list", int: "a whole number" };
      return `${property} must be ${words[expected] ?? expected}`;
    }
    case "too_small": {
      const { minimum, inclusive } = issue as { minimum: number | bigint; inclusive?: boolean };
      return `${property} must be ${inclusive === false ? ">" : "≥"} ${minimum}`;
    }
    case "too_big": {
      const { maximum, inclusive } = issue as { maximum: number | bigint; inclusive?: boolean };
      return `${property} must be ${inclusive === false ? "<" : "≤"} ${maximum}`;
    }
    default:
      return `${property}: ${issue.message}`;
  }
}

/** Validates RestoredContainer inputs. */
export function validateInputs(news: Record<string, unknown>): { inputs?: Inputs; failures: CheckFailure[] } {
  return validate(inputsSchema, news);
}

/**
 * The container id: the user's `name`, else `<resource name>-<7 hex>` cut to
 * containerd's 76 characters, the hex hashed from the owner and every input whose
 * change replaces the container (`digest`, the checkpoint digest the ref resolved
 * to, among them): the same in preview and up, and new for a replacement.
 */
export function containerIdFor(inputs: Inputs, digest: string | undefined): string {
  if (inputs.name !== undefined) return inputs.name;
  const seed = seedOf(inputs.owner ?? inputs.resourceName, digest, inputs.address, inputs.namespace, inputs.live, inputs.restoreRw, inputs.logPath);
  return autoName(inputs.resourceName, undefined, containerIdRule, seed);
}
