// Render /docs and /docs/data-dictionary in the system's headless Chromium, at desktop and at
// phone width, with every request that does not go to the hub refused: the pages must work
// offline. Checks that every operation of openapi.json is rendered (Redoc's
// `data-section-id="…operation/<operationId>"`), that no element is wider than the viewport
// (nothing to scroll sideways on a phone), and keeps a screenshot of each page and width.
//
// Usage: node check.js BASE_URL OPENAPI_JSON OUT_DIR
import { readFileSync } from "node:fs";
import puppeteer from "puppeteer-core";

const [base, openapiPath, out] = process.argv.slice(2);
const spec = JSON.parse(readFileSync(openapiPath, "utf8"));
const operationIds = Object.values(spec.paths).flatMap((item) =>
  Object.values(item).map((op) => op.operationId),
);
const viewports = [
  { name: "desktop", width: 1280, height: 900, isMobile: false },
  { name: "phone", width: 390, height: 844, isMobile: true, deviceScaleFactor: 2, hasTouch: true },
];
const pages = [
  { name: "docs", path: "/docs", ready: "[data-section-id]" },
  { name: "data-dictionary", path: "/docs/data-dictionary", ready: "table" },
];

const browser = await puppeteer.launch({
  executablePath: process.env.CHROMIUM || "chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"],
});
let failed = false;
const fail = (message) => {
  console.log(`FAIL ${message}`);
  failed = true;
};
try {
  for (const viewport of viewports) {
    for (const target of pages) {
      const page = await browser.newPage();
      await page.setViewport(viewport);
      const outside = [];
      await page.setRequestInterception(true);
      page.on("request", (request) => {
        const url = request.url();
        if (url.startsWith(base) || url.startsWith("data:") || url.startsWith("blob:")) {
          request.continue();
        } else {
          outside.push(url);
          request.abort();
        }
      });
      const errors = [];
      page.on("pageerror", (error) => errors.push(String(error)));
      page.on("console", (message) => {
        if (message.type() === "error") console.log(`  console: ${message.text()}`);
      });
      await page.goto(base + target.path, { waitUntil: "networkidle0", timeout: 60000 });
      await page.waitForSelector(target.ready, { timeout: 60000 });
      const at = `${target.name} (${viewport.name}, ${viewport.width}px)`;
      // A page without a viewport meta tag is laid out 980px wide on a phone and shrunk.
      const layout = await page.evaluate(() => document.documentElement.clientWidth);
      if (layout > viewport.width) fail(`${at}: laid out ${layout}px wide (no viewport meta tag?)`);
      if (outside.length) fail(`${at}: requests outside the hub: ${outside.join(", ")}`);
      if (errors.length) fail(`${at}: script errors: ${errors.join("; ")}`);
      if (target.name === "docs") {
        const rendered = await page.$$eval("[data-section-id]", (nodes) =>
          nodes.map((n) => n.getAttribute("data-section-id")),
        );
        const missing = operationIds.filter(
          (id) => !rendered.some((section) => section.endsWith(`operation/${id}`)),
        );
        console.log(`${at}: rendered ${operationIds.length - missing.length} of ${operationIds.length} operations`);
        if (missing.length) fail(`${at}: operations not rendered: ${missing.join(", ")}`);
      }
      // Elements wider than the viewport that are not inside a box scrolling (or clipping) on
      // its own: those make the whole page scroll sideways.
      const wide = await page.evaluate(() => {
        const limit = document.documentElement.clientWidth + 1;
        const clipped = (element) => {
          for (let e = element.parentElement; e && e !== document.body; e = e.parentElement) {
            const style = getComputedStyle(e);
            if (style.overflowX !== "visible" && style.overflowX !== "clip") return true;
            if (style.overflowX === "clip" || style.display === "none") return true;
          }
          return false;
        };
        const found = [];
        for (const element of document.body.querySelectorAll("*")) {
          const rect = element.getBoundingClientRect();
          if (rect.width > 0 && rect.right > limit && !clipped(element)) {
            const name = element.tagName.toLowerCase() + (element.className && typeof element.className === "string" ? "." + element.className.split(" ")[0] : "");
            found.push(`${name} ${Math.round(rect.left)}–${Math.round(rect.right)}px: ${(element.textContent || "").trim().slice(0, 40)}`);
          }
        }
        return { scroll: document.scrollingElement.scrollWidth, width: limit - 1, found: found.slice(0, 10) };
      });
      if (wide.scroll > wide.width + 1 || wide.found.length) {
        fail(`${at}: wider than the viewport (${wide.scroll}px > ${wide.width}px): ${wide.found.join(" | ")}`);
      }
      await page.screenshot({ path: `${out}/${target.name}-${viewport.name}.png`, fullPage: false });
      console.log(`${at}: no overflow, screenshot ${target.name}-${viewport.name}.png`);
      await page.close();
    }
  }
} finally {
  await browser.close();
}
process.exit(failed ? 1 : 0);
