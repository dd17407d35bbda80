import { decodeRuncOptions, encodeRuncOptions, isRuncOptionsType, RUNC_OPTIONS_TYPE_URL, type Any, type RuncOptions } from "../containerd";
import type { RuntimeOptions } from "../checkpoint";
import { RestoreError } from "../errors";
import { realpath } from "node:fs/promises";
import * as path from "node:path";
import {
  allowanceProblems,
  describeRefusal,
  enforcePolicy,
  hostPaths,
  hostPathAllowed,
  type PolicyFinding,
  type PolicyInput,
  type RestorePolicy,
  type SecuritySummary,
} from "../policy";
/** The part of a RestorePlan the policy reads (written out: plan.ts imports this file). */
interface PlanPart {
  spec: Record<string, unknown>;
  runtime: { name: string; options?: RuntimeOptions };
  checkpoint: { ref: string; digest: string };
}

function decodedRuncOptions(plan: PlanPart): { options: RuncOptions; unknownFields: number[] } | undefined {
  const options = plan.runtime.options;
  if (!options || !isRuncOptionsType(options.typeUrl)) return undefined;
  try {
    return decodeRuncOptions(Buffer.from(options.valueBase64, "base64"));
  } catch (err) {
    throw new RestoreError("malformed-runtime-options", `runtime options of ${plan.checkpoint.ref} are not valid ${RUNC_OPTIONS_TYPE_URL}: ${(err as Error).message}`, {
      subject: "runtimeOptions",
      cause: err,
    });
  }
}

/** What the policy reads from a plan: the spec, the runtime and its options decoded. */
export function policyInput(plan: PlanPart): PolicyInput {
  const options = plan.runtime.options;
  if (!options || options.typeUrl === "") return { spec: plan.spec, runtime: { name: plan.runtime.name } };
  const runc = decodedRuncOptions(plan);
  return {
    spec: plan.spec,
    runtime: { name: plan.runtime.name, options: { typeUrl: options.typeUrl, runc: runc?.options, unknownFields: runc?.unknownFields ?? [] } },
  };
}

/**
 * Checks `policy` itself, then the plan against it: throws `invalid-allowance` or
 * `policy-violation` (listing every refused field); returns what the checkpoint is granted.
 */
export function enforcePlanPolicy(plan: PlanPart, policy: RestorePolicy): SecuritySummary {
  const problems = allowanceProblems(policy.allow);
  if (problems.length > 0) {
    throw new RestoreError("invalid-allowance", problems.map((p) => p.message).join("; "), { subject: problems[0].path });
  }
  if (policy.privileged !== undefined && typeof policy.privileged !== "boolean") {
    throw new RestoreError("invalid-allowance", "privileged must be true or false", { subject: "privileged" });
  }
  return enforcePolicy(policyInput(plan), policy, `${plan.checkpoint.ref}@${plan.checkpoint.digest}`).summary;
}

/**
 * The real path of `p`: its longest existing ancestor with symlinks resolved, and
 * the rest appended (a path that does not exist yet, such as a socket made later,
 * still cannot lead out through a symlinked parent).
 */
async function resolved(p: string): Promise<string> {
  const rest: string[] = [];
  for (let at = p; ; at = path.dirname(at)) {
    try {
      return path.join(await realpath(at), ...rest.reverse());
    } catch {
      if (at === path.dirname(at)) return p;
      rest.push(path.basename(at));
    }
  }
}

/**
 * On a local daemon, every admitted host path (bind and other mount sources, the
 * seccomp listener socket) must still be inside its allowance with symlinks
 * resolved: a container that can write below an allowed prefix could otherwise
 * plant `x → /` there for a later checkpoint to name. (The path can still change
 * between this check and runc's use of it: allow only paths that no container can write.)
 */
export async function assertHostPathsResolveInside(plan: PlanPart, policy: RestorePolicy): Promise<void> {
  if (policy.privileged) return;
  const allow = policy.allow ?? {};
  const admitted = hostPaths(plan.spec).filter((host) => hostPathAllowed(host.source, allow));
  if (admitted.length === 0) return;
  const prefixes = await Promise.all((allow.hostMounts ?? []).map(resolved));
  const escaped: PolicyFinding[] = [];
  for (const host of admitted) {
    const real = await resolved(host.source);
    if (hostPathAllowed(real, { hostMounts: prefixes })) continue;
    escaped.push({
      path: host.path,
      grant: `host path ${host.source}, which resolves through a symlink to ${real}, outside the allowed host paths`,
      allowance: `allow.hostMounts: ["${real}"]`,
    });
  }
  if (escaped.length > 0) {
    throw new RestoreError("policy-violation", describeRefusal(`${plan.checkpoint.ref}@${plan.checkpoint.digest}`, escaped), {
      subject: escaped[0].path,
      violations: escaped,
    });
  }
}

/**
 * The runc options for Tasks.Create, which override the container's for this
 * task: the checkpoint's own (already admitted by the policy) with CRIU's work
 * directory set to the provider's. Undefined when the runtime is not runc's or
 * the options hold fields this provider cannot re-encode (only under privileged).
 */
export function taskRuntimeOptions(plan: PlanPart, criuWorkPath: string): Any | undefined {
  const options = plan.runtime.options;
  if (options?.typeUrl && !isRuncOptionsType(options.typeUrl)) return undefined;
  const runc = options?.typeUrl ? decodedRuncOptions(plan) : { options: {}, unknownFields: [] };
  if (!runc || runc.unknownFields.length > 0) return undefined;
  return { typeUrl: RUNC_OPTIONS_TYPE_URL, value: encodeRuncOptions({ ...runc.options, criuWorkPath }) };
}
