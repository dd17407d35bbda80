import { randomBytes } from "node:crypto";
import { MAX_ID_LENGTH } from "../restore";

/** How one kind of auto-generated name is formed from a resource name. */
export interface NamingRule {
  /** Image refs are lower case; container ids keep the case. */
  lowerCase: boolean;
  /** The stem when nothing of the resource name is usable. */
  fallback: string;
  /** Longest name allowed (containerd's 76 characters for ids). */
  maxLength: number;
  /** Stem and random hex (8 digits) into the name. */
  join(stem: string, random: string): string;
  /** Characters `join` adds around the stem besides the random part. */
  overhead: number;
  /** Random hex digits in the name. */
  randomDigits: number;
}

/**
 * A new name for resource `resourceName` under `rule`: its characters outside
 * `[A-Za-z0-9._-]` as `-`, no separator at the ends or twice in a row, cut to
 * fit, then a random suffix. `kept` (the name an earlier run of the same
 * resource got) wins, so a resource keeps its name across updates.
 */
export function autoName(resourceName: string, kept: string | undefined, rule: NamingRule): string {
  if (kept) return kept;
  const source = rule.lowerCase ? resourceName.toLowerCase() : resourceName;
  const stem = source.replace(/[^A-Za-z0-9._-]+/g, "-").replace(/^[._-]+|[._-]+$/g, "").replace(/[._-]{2,}/g, "-") || rule.fallback;
  // Cut before the suffix, then drop a separator the cut may leave at the end ("a-" + "-1f2e3d4" is invalid).
  const cut = stem.slice(0, rule.maxLength - rule.overhead - rule.randomDigits).replace(/[._-]+$/, "") || rule.fallback;
  return rule.join(cut, randomBytes(4).toString("hex").slice(0, rule.randomDigits));
}

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
