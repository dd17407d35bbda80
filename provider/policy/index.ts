/**
 * The restore policy: what a checkpoint may grant itself on the host. A pure
 * function of the decoded checkpoint (spec, runtime, runtime options), run on
 * the plan before anything changes on the daemon.
 */
import { RestoreError } from "../errors";
import type { RestorePolicy } from "./allowances";
import { evaluatePolicy, type PolicyFinding, type PolicyInput, type PolicyResult } from "./evaluate";

export { allowanceProblems, RUNTIME_OPTION_FIELDS } from "./allowances";
export type { Allowances, AllowanceProblem, RestorePolicy, RuntimeOptionField } from "./allowances";
export { evaluatePolicy, summaryLines, grantsBeyondDefault, hostPaths, hostPathAllowed } from "./evaluate";
export type { HostPath, PolicyFinding, PolicyInput, PolicyResult, RuncOptionsView, SecuritySummary } from "./evaluate";
export { NAMESPACE_TYPES, type NamespaceType } from "./defaults";

/** The message of a policy refusal: every refused field, and what would admit it. */
export function describeRefusal(subject: string, refused: readonly PolicyFinding[]): string {
  const lines = refused.map((f) => `  ${f.path}: ${f.grant} (admit with ${f.allowance})`);
  return (
    `checkpoint ${subject} asks for ${refused.length === 1 ? "something" : `${refused.length} things`} the restore policy refuses:\n${lines.join("\n")}\n` +
    "Allow each by name (allow: { … }) if you trust the checkpoint, or set privileged: true to admit everything."
  );
}

/**
 * Evaluates the policy and throws a `policy-violation` RestoreError listing every
 * refused field; returns the result (summary and admitted findings) otherwise.
 */
export function enforcePolicy(input: PolicyInput, policy: RestorePolicy, subject: string): PolicyResult {
  const result = evaluatePolicy(input, policy);
  if (result.refused.length > 0) {
    throw new RestoreError("policy-violation", describeRefusal(subject, result.refused), {
      subject: result.refused[0].path,
      violations: result.refused,
    });
  }
  return result;
}
