/**
 * Text from a daemon (its error messages, a CRIU log) goes into errors and Pulumi
 * output: terminal escapes and control characters in it could rewrite what a
 * user sees. Tabs and newlines stay; everything else below 0x20, DEL, C1 controls
 * and ANSI escape sequences go.
 */
// eslint-disable-next-line no-control-regex
const ANSI_ESCAPE = /\u001b(?:\[[0-?]*[ -/]*[@-~]|\][^\u0007\u001b]*(?:\u0007|\u001b\\)|[@-Z\\-_])/g;
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g;

export function stripControlCharacters(text: string): string {
  return text.replace(ANSI_ESCAPE, "").replace(CONTROL, "");
}
