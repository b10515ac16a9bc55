// Builds the lineage explorer into dist/ (committed; go:embed serves it).
// The output depends only on src/ and package-lock.json: no timestamps, no
// absolute paths, no source maps, so scripts/test.sh can rebuild and fail
// on any difference.
//
//   node build.mjs          build dist/
//   node build.mjs --test   bundle and run the verifier tests with node
import * as esbuild from "esbuild";
import { copyFileSync, mkdirSync, rmSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { spawnSync } from "node:child_process";

const common = {
  bundle: true,
  minify: true,
  format: "iife",
  target: ["chrome120", "firefox120", "safari17"],
  legalComments: "eof",
  charset: "utf8",
  logLevel: "warning",
};

if (process.argv.includes("--test")) {
  const dir = mkdtempSync(join(tmpdir(), "provlog-ui-test-"));
  try {
    const tests = ["verify", "layout", "claims"];
    for (const t of tests) {
      await esbuild.build({ ...common, minify: false, format: "esm", platform: "node", target: "node20", entryPoints: [`test/${t}.test.ts`], outfile: join(dir, `${t}.test.mjs`) });
    }
    const r = spawnSync(process.execPath, ["--test", ...tests.map((t) => join(dir, `${t}.test.mjs`))], { stdio: "inherit" });
    process.exitCode = r.status ?? 1;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
} else {
  rmSync("dist", { recursive: true, force: true });
  mkdirSync("dist");
  await esbuild.build({ ...common, entryPoints: ["src/main.ts"], outfile: "dist/app.js" });
  await esbuild.build({ ...common, entryPoints: ["src/layout-worker.ts"], outfile: "dist/layout-worker.js" });
  await esbuild.build({ ...common, entryPoints: ["src/verify-worker.ts"], outfile: "dist/verify-worker.js" });
  await esbuild.build({ ...common, loader: { ".css": "css" }, entryPoints: ["src/style.css"], outfile: "dist/app.css" });
  copyFileSync("src/index.html", "dist/index.html");
}
