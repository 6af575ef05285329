// Opens one page in headless Chromium (Debian's binary, driven by playwright-core) with cookies set for the
// careline host, waits until the page sets window.state.done, and prints window.state as JSON.
// Usage: node page_state.mjs URL TIMEOUT_MS COOKIES_JSON   (COOKIES_JSON: [{name, value, url, httpOnly}])
import { chromium } from "playwright-core";

const [url, timeoutMs, cookies] = [process.argv[2], Number(process.argv[3] || 30000), JSON.parse(process.argv[4] || "[]")];
const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || "/usr/bin/chromium", args: ["--no-sandbox"] });
let state = null;
try {
  const context = await browser.newContext();
  await context.addCookies(cookies);
  const page = await context.newPage();
  page.on("console", (message) => process.stderr.write(`page: ${message.text()}\n`));
  await page.goto(url);
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    state = await page.evaluate(() => window.state);
    if (state && state.done) break;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
} finally {
  await browser.close();
}
process.stdout.write(JSON.stringify(state) + "\n");
