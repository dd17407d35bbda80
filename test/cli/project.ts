/**
 * Pulumi projects as a user has them: a directory with Pulumi.yaml, index.ts,
 * tsconfig.json (strict) and package.json, this package installed from the
 * tarball `npm pack` makes (not a link into the repo), @pulumi/pulumi at the
 * version under test, and the real CLI run in that directory (`pulumi preview`,
 * `up`, `refresh`, `destroy`) through the language host setup builds.
 */
import { execFile } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);

/** The repo root. */
export const REPO_ROOT = path.resolve(__dirname, "..", "..", "..");

const repoPackage = JSON.parse(fs.readFileSync(path.join(REPO_ROOT, "package.json"), "utf8")) as {
  version: string;
  peerDependencies: Record<string, string>;
  devDependencies: Record<string, string>;
};

/** The oldest @pulumi/pulumi the package supports: the lower bound of its peer dependency range. */
export const OLDEST_PULUMI = /^>=\s*(\d+\.\d+\.\d+)/.exec(repoPackage.peerDependencies["@pulumi/pulumi"])?.[1] ?? "";
/** The @pulumi/pulumi the repo itself develops and tests against (its dev dependency). */
export const DEV_PULUMI = repoPackage.devDependencies["@pulumi/pulumi"];
/** The newest 3.x the npm registry serves (an npm range, resolved at install). */
export const NEWEST_PULUMI = "^3";

let tarball: Promise<string> | undefined;

/** `npm pack` of the repo as the test run built it (dist/, clean: the build starts from an empty dist), once per test process; `--ignore-scripts` so its prepack does not rebuild dist under the other test files. */
export function packedTarball(): Promise<string> {
  tarball ??= (async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "pcr-pack-"));
    const { stdout } = await run("npm", ["pack", "--silent", "--ignore-scripts", "--pack-destination", dir], { cwd: REPO_ROOT, maxBuffer: 16 << 20 });
    const file = path.join(dir, stdout.trim().split("\n").pop()!);
    if (!fs.existsSync(file)) throw new Error(`npm pack wrote no ${file}: ${stdout}`);
    return file;
  })();
  return tarball;
}

export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface CliProject {
  /** The project directory (the program's and the dynamic provider's working directory). */
  dir: string;
  /** The local backend's directory (state files). */
  stateDir: string;
  /** The @pulumi/pulumi version installed in the project. */
  pulumiVersion: string;
  /** Runs `pulumi <args>` in the project; rejects (with stdout and stderr) on a non-zero exit unless `allowFailure`. */
  pulumi(args: string[], options?: PulumiRunOptions): Promise<CommandResult>;
  /** The stack's outputs (`pulumi stack output --json --show-secrets`). */
  outputs(): Promise<Record<string, unknown>>;
  /** Every file under the backend directory: stacks, history, backups. */
  stateFiles(): string[];
  remove(): Promise<void>;
}

export interface CliProjectOptions {
  /** npm version or range of @pulumi/pulumi for the project. Default the newest 3.x. */
  pulumiVersion?: string;
  /** Program to use instead of the example's index.ts. */
  program?: string;
}

function listFiles(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? listFiles(p) : [p];
  });
}

/**
 * A fresh project from examples/<example> (its Pulumi.yaml and index.ts), with
 * `npm install` of the packed package, the chosen @pulumi/pulumi, TypeScript 5
 * and @types/node, and a local backend of its own.
 */
export async function newCliProject(example: string, options: CliProjectOptions = {}): Promise<CliProject> {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), `pcr-cli-${example}-`));
  const dir = path.join(root, example);
  const stateDir = path.join(root, "state");
  fs.mkdirSync(dir);
  fs.mkdirSync(stateDir);
  const source = path.join(REPO_ROOT, "examples", example);
  fs.copyFileSync(path.join(source, "Pulumi.yaml"), path.join(dir, "Pulumi.yaml"));
  if (options.program !== undefined) fs.writeFileSync(path.join(dir, "index.ts"), options.program);
  else fs.copyFileSync(path.join(source, "index.ts"), path.join(dir, "index.ts"));
  // What `pulumi new typescript` writes.
  fs.writeFileSync(
    path.join(dir, "tsconfig.json"),
    JSON.stringify(
      {
        compilerOptions: {
          strict: true,
          outDir: "bin",
          target: "es2020",
          module: "commonjs",
          moduleResolution: "node",
          sourceMap: true,
          experimentalDecorators: true,
          pretty: true,
          noFallthroughCasesInSwitch: true,
          noImplicitReturns: true,
          forceConsistentCasingInFileNames: true,
        },
        files: ["index.ts"],
      },
      null,
      2,
    ),
  );
  const wanted = options.pulumiVersion ?? NEWEST_PULUMI;
  fs.writeFileSync(
    path.join(dir, "package.json"),
    JSON.stringify(
      {
        name: example,
        private: true,
        main: "index.ts",
        dependencies: { "@pulumi/pulumi": wanted, "pulumi-containerd-restore": `file:${await packedTarball()}` },
        devDependencies: { typescript: repoPackage.devDependencies.typescript, "@types/node": repoPackage.devDependencies["@types/node"] },
      },
      null,
      2,
    ),
  );
  await run("npm", ["install", "--no-audit", "--no-fund", "--prefer-offline", "--loglevel=error"], { cwd: dir, maxBuffer: 16 << 20 }).catch((err) => {
    throw new Error(`npm install in ${dir} failed: ${(err as { stderr?: string }).stderr ?? err}`);
  });
  const pulumiVersion = (JSON.parse(fs.readFileSync(path.join(dir, "node_modules", "@pulumi", "pulumi", "package.json"), "utf8")) as { version: string }).version;

  const { pulumi, outputs } = pulumiIn(dir, root);
  return {
    dir,
    stateDir,
    pulumiVersion,
    pulumi,
    outputs,
    stateFiles: () => listFiles(stateDir),
    async remove() {
      fs.rmSync(root, { recursive: true, force: true });
    },
  };
}

export interface PulumiRunOptions {
  allowFailure?: boolean;
  /** Copy the command's output to this process's stdout and stderr as it comes (the demo). */
  stream?: boolean;
}

/**
 * The real CLI, run in the project directory `dir` as a user runs it, with a
 * local backend (`<root>/state`), PULUMI_HOME (`<root>/home`) and a passphrase
 * for secrets; no update checks, no plugin downloads.
 */
export function pulumiIn(dir: string, root: string) {
  const cli = process.env.PULUMI_CLI_BIN ?? "pulumi";
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    // The language host and the dynamic provider run the first `node` on PATH: this Node (24).
    PATH: `${path.dirname(process.execPath)}:${path.dirname(cli)}:${process.env.PATH}`,
    PULUMI_HOME: path.join(root, "home"),
    PULUMI_BACKEND_URL: `file://${path.join(root, "state")}`,
    PULUMI_CONFIG_PASSPHRASE: "test",
    PULUMI_SKIP_UPDATE_CHECK: "true",
    PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION: "true",
    PULUMI_SKIP_CONFIRMATIONS: "true",
    NO_COLOR: "1",
  };
  delete env.PULUMI_ACCESS_TOKEN;
  fs.mkdirSync(path.join(root, "state"), { recursive: true });
  const pulumi = async (args: string[], opts: PulumiRunOptions = {}): Promise<CommandResult> => {
    // --non-interactive before a `--` (after it, it would be a value).
    const dashes = args.indexOf("--");
    const argv = dashes < 0 ? [...args, "--non-interactive"] : [...args.slice(0, dashes), "--non-interactive", ...args.slice(dashes)];
    const child = execFile(cli, argv, { cwd: dir, env, maxBuffer: 64 << 20 });
    if (opts.stream) {
      child.stdout?.pipe(process.stdout, { end: false });
      child.stderr?.pipe(process.stderr, { end: false });
    }
    let stdout = "";
    let stderr = "";
    child.stdout?.on("data", (d: string) => (stdout += d));
    child.stderr?.on("data", (d: string) => (stderr += d));
    const code = await new Promise<number>((resolve, reject) => {
      child.on("error", reject);
      child.on("close", (c) => resolve(c ?? 1));
    });
    const result = { code, stdout, stderr };
    if (code !== 0 && !opts.allowFailure) {
      throw new Error(`pulumi ${args.join(" ")} exited ${code}\n--- stdout\n${stdout}\n--- stderr\n${stderr}`);
    }
    return result;
  };
  const outputs = async (): Promise<Record<string, unknown>> =>
    JSON.parse((await pulumi(["stack", "output", "--json", "--show-secrets"])).stdout) as Record<string, unknown>;
  return { pulumi, outputs };
}
