// Opens one page in headless Chromium (Debian's binary, driven by playwright-core) with a fake camera and
// microphone, waits until the page's window.state satisfies the test, and prints that state as JSON.
// Usage: node browser.mjs URL TIMEOUT_MS
import { chromium } from "playwright-core";

const [url, timeoutMs] = [process.argv[2], Number(process.argv[3] || 30000)];
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
         "--disable-features=WebRtcHideLocalIpsWithMdns"],
});
let state = null;
try {
  const page = await browser.newPage();
  page.on("console", (message) => process.stderr.write(`page: ${message.text()}\n`));
  await page.goto(url);
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    state = await page.evaluate(() => window.state);
    if (state && state.connectionState === "connected" && state.received.length > 0) break;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
} finally {
  await browser.close();
}
process.stdout.write(JSON.stringify(state) + "\n");
