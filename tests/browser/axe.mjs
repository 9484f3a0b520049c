// Loads an HTML file in headless Chromium (Debian's, or $CHROMIUM), runs
// axe-core's WCAG 2.0/2.1/2.2 A and AA rules over it, and prints the result
// as JSON: {violations: [...], passes, incomplete}. Optionally saves a
// full-page screenshot. Exit code 0 even with violations: the caller judges.
//
//   node axe.mjs <file.html> [screenshot.png]
import { chromium } from "playwright-core";
import { createRequire } from "node:module";
import { pathToFileURL } from "node:url";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const require = createRequire(import.meta.url);
const [file, screenshot] = process.argv.slice(2);
if (!file) {
  console.error("usage: node axe.mjs <file.html> [screenshot.png]");
  process.exit(2);
}

const args = [
  "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
  "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
];
if (process.getuid && process.getuid() === 0) args.push("--no-sandbox");

const browser = await chromium.launchPersistentContext(mkdtempSync(join(tmpdir(), "cs-axe-")), {
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args,
});
try {
  const page = await browser.newPage();
  await page.goto(pathToFileURL(file).href, { waitUntil: "load" });
  await page.addScriptTag({ path: require.resolve("axe-core") });
  const results = await page.evaluate(async () =>
    // eslint-disable-next-line no-undef
    await axe.run(document, {
      runOnly: { type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"] },
      resultTypes: ["violations"],
    }));
  if (screenshot) await page.screenshot({ path: screenshot, fullPage: true });
  console.log(JSON.stringify({
    axe: results.testEngine.version,
    title: await page.title(),
    violations: results.violations.map((v) => ({
      id: v.id, impact: v.impact, help: v.help,
      nodes: v.nodes.map((n) => ({ target: n.target, summary: n.failureSummary })),
    })),
    passes: results.passes.length,
    incomplete: results.incomplete.map((v) => v.id),
  }));
} finally {
  await browser.close();
}
