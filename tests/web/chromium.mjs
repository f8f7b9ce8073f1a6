// chromium.mjs - the one way Debian's Chromium is launched headless, for
// the browser tests (driver.mjs) and the web bench (bench/web_bench.mjs).
import puppeteer from 'puppeteer-core';

// Root has no user namespace sandbox here; no first-run, sync or
// extension traffic; shared memory in /tmp (small /dev/shm in containers);
// no throttling of pages in the background (several people's pages run
// side by side, only one of them in front).
const ARGS = ['--no-sandbox', '--disable-dev-shm-usage', '--disable-gpu', '--no-first-run',
  '--disable-extensions', '--disable-background-networking', '--disable-sync',
  '--disable-renderer-backgrounding', '--disable-background-timer-throttling',
  '--disable-backgrounding-occluded-windows', '--mute-audio'];

export function launchChromium(executablePath, protocolTimeout) {
  return puppeteer.launch({ executablePath, headless: true, args: ARGS, protocolTimeout });
}
