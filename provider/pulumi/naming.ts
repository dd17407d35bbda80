import { createHash } from "node:crypto";
import { MAX_ID_LENGTH } from "../restore";

/** How one kind of auto-generated name is formed from a resource name. */
export interface NamingRule {
  /** Image refs are lower case; container ids keep the case. */
  lowerCase: boolean;
  /** The stem when nothing of the resource name is usable. */
  fallback: string;
  /** Longest name allowed (containerd's 76 characters for ids). */
  maxLength: number;
  /** Stem and hashed hex digits into the name. */
  join(stem: string, random: string): string;
  /** Characters `join` adds around the stem besides the hex part. */
  overhead: number;
  /** Hex digits in the name. */
  randomDigits: number;
}

/**
 * The name for resource `resourceName` under `rule`: its characters outside
 * `[A-Za-z0-9._-]` as `-`, no separator at the ends or twice in a row, cut to
 * fit, then a suffix of hex digits hashed from `seed`. The seed is what makes
 * the resource this one (its owner: project, stack and resource name) plus
 * every input whose change replaces it, so the name is the same in preview and
 * up, stays across in-place updates, and a create-before-delete replacement
 * gets a name of its own. `kept` (a name an earlier run recorded) wins.
 */
export function autoName(resourceName: string, kept: string | undefined, rule: NamingRule, seed: string = resourceName): string {
  if (kept) return kept;
  const source = rule.lowerCase ? resourceName.toLowerCase() : resourceName;
  const stem = source.replace(/[^A-Za-z0-9._-]+/g, "-").replace(/^[._-]+|[._-]+$/g, "").replace(/[._-]{2,}/g, "-") || rule.fallback;
  // Cut before the suffix, then drop a separator the cut may leave at the end ("a-" + "-1f2e3d4" is invalid).
  const cut = stem.slice(0, rule.maxLength - rule.overhead - rule.randomDigits).replace(/[._-]+$/, "") || rule.fallback;
  return rule.join(cut, createHash("sha256").update(seed).digest("hex").slice(0, rule.randomDigits));
}

/** A naming seed from its parts (absent and undefined alike). */
export const seedOf = (...parts: unknown[]): string => JSON.stringify(parts.map((p) => p ?? null));

/** Container ids: `<resource name>-<7 hex>`, within containerd's 76 characters. */
export const containerIdRule: NamingRule = {
  lowerCase: false,
  fallback: "restored",
  maxLength: MAX_ID_LENGTH,
  join: (stem, random) => `${stem}-${random}`,
  overhead: 1,
  randomDigits: 7,
};

/** Checkpoint refs: `checkpoint/<resource name>:<8 hex>`. */
export const checkpointRefRule: NamingRule = {
  lowerCase: true,
  fallback: "checkpoint",
  maxLength: 255,
  join: (stem, random) => `checkpoint/${stem}:${random}`,
  overhead: "checkpoint/:".length,
  randomDigits: 8,
};
