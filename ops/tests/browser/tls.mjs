// A stock player on an https page plays through `hlscdn demo --tls`, in
// headless Debian Chromium that trusts the demo's CA the way a user would
// (an NSS database in the browser's HOME, where Chromium on Linux keeps
// locally trusted roots) — no --ignore-certificate-errors of any kind.
//
// The page is plain: stock hls.js (from npm, default config) and a few lines
// that record what it reports; it is served by this script over https with
// the demo's server certificate, as `localhost` (the fleet is `127.0.0.1`,
// so every playlist and segment request is cross-origin, as in a real site).
// The script plays live `demo-1` for PLAY_SECONDS, then VOD `demo` for a few
// seconds, and checks:
//
//   - 0 fatal hls.js errors, and playback progress >= MIN_PROGRESS of wall time,
//   - 0 console messages about mixed content or certificates, 0 requests
//     failed with a certificate error, and every URL hls.js loaded is https,
//   - every playlist and segment came over HTTP/2: `nextHopProtocol` of the
//     resource timing entries (the fleet answers `Timing-Allow-Origin: *`).
//
// Run by ops/tests/tls.rs, which starts the demo and passes:
//
//   ROUTER_URL, CA_FILE, PAGE_CERT, PAGE_KEY, ARTIFACTS_DIR,
//   CHROMIUM (default /usr/bin/chromium), PLAY_SECONDS (default 20),
//   MIN_PROGRESS (default 0.8)
//
// Figures go to stderr; exits 0 when every check passed, and prints a JSON
// summary as its last stdout line.

import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { checklist, hardLimit, sleep, until } from './checks.mjs';
import { launchChromium } from './launch.mjs';

const env = (name, fallback) => {
  const value = process.env[name] ?? fallback;
  if (value == null) throw new Error(`${name} is not set`);
  return value;
};
const ROUTER_URL = env('ROUTER_URL').replace(/\/$/, '');
const CA_FILE = env('CA_FILE');
const PAGE_CERT = env('PAGE_CERT');
const PAGE_KEY = env('PAGE_KEY');
const ARTIFACTS = env('ARTIFACTS_DIR');
const CHROMIUM = env('CHROMIUM', '/usr/bin/chromium');
const PLAY_SECONDS = Number(env('PLAY_SECONDS', '20'));
const MIN_PROGRESS = Number(env('MIN_PROGRESS', '0.8'));

const OPS = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const HLSJS = path.join(OPS, 'node_modules/hls.js/dist/hls.js');

hardLimit('tls.mjs', (PLAY_SECONDS + 90) * 1000);
const { log, check, failures } = checklist();

// ---- A HOME whose NSS database trusts the demo's CA (certutil, libnss3-tools). ----
const home = fs.mkdtempSync(path.join(os.tmpdir(), 'hlscdn-tls-home-'));
const nssdb = path.join(home, '.pki', 'nssdb');
fs.mkdirSync(nssdb, { recursive: true });
execFileSync('certutil', ['-d', `sql:${nssdb}`, '-N', '--empty-password']);
execFileSync('certutil', ['-d', `sql:${nssdb}`, '-A', '-t', 'C,,', '-n', 'hlscdn-demo', '-i', CA_FILE]);
log('trusted the demo CA in', nssdb);

// ---- The plain page, over https. ----
const PAGE = `<!doctype html><meta charset="utf-8"><title>stock hls.js over https</title>
<video id="video" muted playsinline style="width:640px"></video>
<script src="/hls.js"></script>
<script>
const rec = window.rec = { errors: [], urls: [] };
const video = document.getElementById('video');
video.addEventListener('playing', () => { rec.firstFrameAt = rec.firstFrameAt || Date.now(); });
window.play = (src) => {
  if (window.hls) window.hls.destroy();
  rec.firstFrameAt = null;
  const hls = window.hls = new Hls();
  hls.on(Hls.Events.ERROR, (_, d) => rec.errors.push({ type: d.type, details: d.details, fatal: d.fatal,
    url: (d.frag && d.frag.url) || d.url || (d.context && d.context.url) || null }));
  hls.on(Hls.Events.FRAG_LOADED, (_, d) => rec.urls.push(d.frag.url));
  hls.on(Hls.Events.LEVEL_LOADED, (_, d) => rec.urls.push(d.details.url));
  hls.loadSource(src);
  hls.attachMedia(video);
  video.play().catch(() => {});
};
</script>`;
const server = https.createServer({ cert: fs.readFileSync(PAGE_CERT), key: fs.readFileSync(PAGE_KEY) }, (req, res) => {
  if (req.url === '/hls.js') {
    res.writeHead(200, { 'content-type': 'text/javascript' });
    res.end(fs.readFileSync(HLSJS));
  } else {
    res.writeHead(200, { 'content-type': 'text/html' });
    res.end(PAGE);
  }
});
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const pageUrl = `https://localhost:${server.address().port}/`;

const { context } = await launchChromium(CHROMIUM, { width: 800, height: 500 }, { ...process.env, HOME: home });
const page = context.pages()[0] || await context.newPage();
const consoleProblems = [];
page.on('console', (m) => {
  const text = m.text();
  if (/mixed content|certificate|ERR_CERT|ERR_SSL|insecure/i.test(text)) consoleProblems.push(text);
});
const failedRequests = [];
page.on('requestfailed', (r) => failedRequests.push({ url: r.url(), error: r.failure() && r.failure().errorText }));

let summary = {};
try {
  await page.goto(pageUrl);
  check(page.url().startsWith('https://'), `the page itself is https (${page.url()})`);

  async function playFor(stream, seconds) {
    const src = `${ROUTER_URL}/${stream}/master.m3u8`;
    await page.evaluate((s) => window.play(s), src);
    await until(`the first frame of ${stream}`, () => page.evaluate(() => window.rec.firstFrameAt), 30_000);
    const t0 = await page.evaluate(() => document.getElementById('video').currentTime);
    const wall0 = Date.now();
    await sleep(seconds * 1000);
    const t1 = await page.evaluate(() => document.getElementById('video').currentTime);
    const progress = (t1 - t0) / ((Date.now() - wall0) / 1000);
    log(`${stream}: played ${(t1 - t0).toFixed(1)} s in ${((Date.now() - wall0) / 1000).toFixed(1)} s`);
    return progress;
  }
  const liveProgress = await playFor('live/demo-1', PLAY_SECONDS);
  const vodProgress = await playFor('vod/demo', Math.min(8, PLAY_SECONDS));
  await page.screenshot({ path: path.join(ARTIFACTS, 'tls-hlsjs.png') });

  const rec = await page.evaluate(() => window.rec);
  const timing = await page.evaluate(() => performance.getEntriesByType('resource')
    .map((e) => ({ url: e.name, protocol: e.nextHopProtocol })));
  const fleet = timing.filter((e) => /\.(m3u8|ts|m4s|mp4|aac)$/.test(new URL(e.url).pathname));
  const protocols = {};
  for (const e of fleet) protocols[e.protocol || '(empty)'] = (protocols[e.protocol || '(empty)'] || 0) + 1;
  log('resource timing protocols of playlists and segments:', JSON.stringify(protocols));

  const fatal = rec.errors.filter((e) => e.fatal);
  check(fatal.length === 0, `0 fatal hls.js errors (${JSON.stringify(fatal).slice(0, 400)})`);
  check(liveProgress >= MIN_PROGRESS, `live progress ${liveProgress.toFixed(2)} >= ${MIN_PROGRESS}`);
  check(vodProgress >= MIN_PROGRESS, `VOD progress ${vodProgress.toFixed(2)} >= ${MIN_PROGRESS}`);
  check(consoleProblems.length === 0, `0 mixed-content or certificate messages (${JSON.stringify(consoleProblems).slice(0, 400)})`);
  const certFailures = failedRequests.filter((f) => /CERT|SSL/i.test(f.error || ''));
  check(certFailures.length === 0, `0 requests failed on a certificate (${JSON.stringify(certFailures).slice(0, 400)})`);
  const plain = rec.urls.filter((u) => !u.startsWith('https://'));
  check(rec.urls.length > 0 && plain.length === 0, `every URL hls.js loaded is https (${rec.urls.length} URLs, plain: ${plain.slice(0, 3)})`);
  check(fleet.length > 0 && fleet.every((e) => e.protocol === 'h2'),
    `every playlist and segment came over HTTP/2 (${fleet.length} entries: ${JSON.stringify(protocols)})`);
  summary = { liveProgress, vodProgress, urls: rec.urls.length, protocols, consoleProblems: consoleProblems.length,
    failedRequests: failedRequests.length, errors: rec.errors.length };
} catch (error) {
  failures.push(String(error && error.stack || error));
  log('FAILED:', error);
} finally {
  await context.close().catch(() => {});
  server.close();
  fs.rmSync(home, { recursive: true, force: true });
}
console.log(JSON.stringify({ ok: failures.length === 0, failures, ...summary }));
process.exit(failures.length === 0 ? 0 : 1);
