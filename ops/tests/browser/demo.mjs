// Browser test of `hlscdn demo`: plays a stream on the player page in headless
// Chromium, checks the dashboard, drains the edge the player is on with the
// CLI, and checks that the dashboard shows it draining while the player keeps
// playing. Run by ops/tests/browser.rs, which starts the demo and passes:
//
//   PLAYER_URL, DASHBOARD_URL, ROUTER_URL, FLEET_TOKEN, HLSCDN_BIN, ARTIFACTS_DIR,
//   CHROMIUM (default /usr/bin/chromium)
//
// Exits 0 when every check passed; prints a JSON summary as its last line.

import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { sleep, until } from './checks.mjs';
import { launchChromium } from './launch.mjs';

const env = (name, fallback) => {
  const value = process.env[name] ?? fallback;
  if (value == null) throw new Error(`${name} is not set`);
  return value;
};
const PLAYER_URL = env('PLAYER_URL');
const DASHBOARD_URL = env('DASHBOARD_URL');
const ROUTER_URL = env('ROUTER_URL');
const FLEET_TOKEN = env('FLEET_TOKEN');
const HLSCDN_BIN = env('HLSCDN_BIN');
const ARTIFACTS = env('ARTIFACTS_DIR');
const CHROMIUM = env('CHROMIUM', '/usr/bin/chromium');

const log = (...args) => console.log(`[${new Date().toISOString().slice(11, 23)}]`, ...args);
function check(condition, message) {
  if (!condition) throw new Error('check failed: ' + message);
  log('ok:', message);
}

fs.mkdirSync(ARTIFACTS, { recursive: true });
const summary = { screenshots: [] };
const offsite = [];

const { context, profile } = await launchChromium(CHROMIUM, { width: 1400, height: 1000 });

async function screenshot(page, name) {
  const file = path.join(ARTIFACTS, name);
  await page.screenshot({ path: file, fullPage: true });
  summary.screenshots.push(file);
  log('screenshot', file);
}

try {
  // The pages may reach loopback only: anything else is refused and fails the test.
  await context.route('**/*', (route) => {
    const url = new URL(route.request().url());
    const loopback = ['127.0.0.1', 'localhost', '[::1]'].includes(url.hostname);
    if (loopback || url.protocol === 'data:' || url.protocol === 'blob:') return route.continue();
    offsite.push(url.href);
    return route.abort();
  });

  const player = await context.newPage();
  player.on('console', (m) => { if (m.type() === 'error') log('player console:', m.text()); });
  player.on('pageerror', (e) => log('player page error:', e.message));
  const navigated = Date.now();
  await player.goto(`${PLAYER_URL}?stream=live/demo-1`);

  const codecs = await player.evaluate(() => ({
    mse: typeof MediaSource !== 'undefined',
    h264: typeof MediaSource !== 'undefined' && MediaSource.isTypeSupported('video/mp4; codecs="avc1.42c015"'),
    aac: typeof MediaSource !== 'undefined' && MediaSource.isTypeSupported('audio/mp4; codecs="mp4a.40.2"'),
    agent: navigator.userAgent,
  }));
  log('codecs', JSON.stringify(codecs));
  check(codecs.mse && codecs.h264 && codecs.aac,
    `this Chromium plays H.264 + AAC through MSE (${JSON.stringify(codecs)})`);

  // 1. The player plays, for at least 10 s, from edges.
  await until('playback to start', () => player.evaluate(() => document.getElementById('video').currentTime > 0), 30000, 50);
  summary.first_frame_ms_after_page_load = Date.now() - navigated;
  log(`playing ${summary.first_frame_ms_after_page_load} ms after the page was opened`);
  // Sample once a second until the video advanced 10.5 s (a short stall on a
  // busy machine is allowed: at most 18 s of wall time).
  const now = () => player.evaluate(() => document.getElementById('video').currentTime);
  const start = await now();
  const samples = [start];
  const began = Date.now();
  while (samples[samples.length - 1] - start < 10.5 && Date.now() - began < 18000) {
    await sleep(1000);
    samples.push(await now());
  }
  const advanced = samples[samples.length - 1] - start;
  const wall = (Date.now() - began) / 1000;
  log('currentTime samples', samples.map((s) => s.toFixed(2)).join(' '));
  check(advanced >= 10, `video currentTime advanced ${advanced.toFixed(1)} s in ${wall.toFixed(1)} s of wall time (>= 10 s)`);
  check(samples.every((s, i) => i === 0 || s >= samples[i - 1]), 'currentTime never went backwards');
  let state = await player.evaluate(() => ({
    fragments: window.hlscdnPlayer.fragments.map((f) => ({ host: f.host, edge: f.edge, sn: f.sn, t: f.t })),
    fatal: window.hlscdnPlayer.fatalErrors,
    errors: window.hlscdnPlayer.errors,
  }));
  check(state.fatal.length === 0, `no fatal hls.js error (${JSON.stringify(state.fatal)})`);
  const overview = await (await fetch(`${DASHBOARD_URL.replace(/\/$/, '')}/api/overview`)).json();
  const edgeHosts = new Map(overview.edges.map((e) => [new URL(e.url).host, e.id]));
  check(state.fragments.length >= 3, `${state.fragments.length} segments loaded`);
  check(state.fragments.every((f) => edgeHosts.has(f.host)),
    `every segment came from an edge (${[...new Set(state.fragments.map((f) => f.host))].join(', ')})`);
  check(state.fragments.every((f) => /^edge-\d+$/.test(f.edge)), 'the page names the edge of every segment');
  const onEdge = state.fragments[state.fragments.length - 1].edge;
  summary.played_seconds_before_drain = advanced;
  summary.edge_before_drain = onEdge;
  await screenshot(player, 'player.png');

  // 2. The dashboard: three fresh edges, two routers, healthy.
  const dashboard = await context.newPage();
  dashboard.on('pageerror', (e) => log('dashboard page error:', e.message));
  await dashboard.goto(DASHBOARD_URL);
  await until('three fresh edges and two routers on the dashboard', () => dashboard.evaluate(() =>
    document.body.dataset.freshEdges === '3' && document.body.dataset.routers === '2'), 15000);
  const table = await dashboard.evaluate(() => ({
    ready: document.querySelectorAll('#edges tbody tr[data-status="ready"][data-fresh="true"]').length,
    routers: document.querySelectorAll('#routers tbody tr[data-reachable="true"][data-agrees="true"]').length,
    healthy: document.getElementById('health').dataset.healthy,
    freshCount: document.getElementById('fresh-count').textContent,
  }));
  check(table.ready === 3, `the edges table shows 3 fresh ready edges (${table.ready})`);
  check(table.routers === 2, `the routers table shows 2 routers that answer and agree (${table.routers})`);
  check(table.healthy === 'true', 'the fleet banner says healthy');
  await until('the chart to have samples', () => dashboard.evaluate(() => document.getElementById('legend').children.length >= 3), 10000);
  // The explain view: which edge a viewer of the player's rendition gets, and why.
  await dashboard.fill('#explain-path', '/live/demo-1/240p/index.m3u8');
  await dashboard.click('#explain-form button[type="submit"]');
  const explained = await until('an explanation', () => dashboard.evaluate(() => {
    const rows = document.querySelectorAll('#explain-result tbody tr');
    return rows.length === 3 ? [...rows].map((r) => r.textContent) : null;
  }), 10000);
  check(explained.filter((r) => r.includes('chosen')).length === 1, `the explain view names one chosen edge of 3 (${explained.join(' | ')})`);
  await screenshot(dashboard, 'dashboard.png');

  // 3. Drain the player's edge with the CLI.
  const drainedAt = Date.now();
  const out = execFileSync(HLSCDN_BIN, ['drain', onEdge, '--router', ROUTER_URL, '--fleet-token', FLEET_TOKEN], { encoding: 'utf8' });
  log('hlscdn drain:', out.trim());
  check(out.includes('is draining'), `hlscdn drain ${onEdge} succeeded`);
  await until(`${onEdge} shown draining on the dashboard`, () => dashboard.evaluate((id) => {
    const row = document.querySelector(`#edges tbody tr[data-edge="${id}"]`);
    return row && row.dataset.status === 'draining' && row.dataset.severity === 'warn';
  }, onEdge), 10000, 100);
  const firstRow = await dashboard.evaluate(() => document.querySelector('#edges tbody tr').dataset.edge);
  check(firstRow === onEdge, `the draining edge is sorted first (${firstRow})`);
  await screenshot(dashboard, 'dashboard-draining.png');

  // 4. The player keeps playing, and moves off the drained edge.
  const before = await now();
  const drainWatch = Date.now();
  let after = before;
  while (after - before < 8 && Date.now() - drainWatch < 15000) {
    await sleep(1000);
    after = await now();
  }
  state = await player.evaluate(() => ({
    fragments: window.hlscdnPlayer.fragments.map((f) => ({ host: f.host, edge: f.edge, sn: f.sn, t: f.t })),
    moves: window.hlscdnPlayer.moves,
    fatal: window.hlscdnPlayer.fatalErrors,
  }));
  check(after - before >= 8,
    `the player kept playing after the drain (${(after - before).toFixed(1)} s in ${((Date.now() - drainWatch) / 1000).toFixed(1)} s)`);
  check(state.fatal.length === 0, `still no fatal hls.js error (${JSON.stringify(state.fatal)})`);
  const moved = state.moves.find((m) => m.from === onEdge && m.t >= drainedAt);
  check(moved, `the player moved off ${onEdge} (${JSON.stringify(state.moves)})`);
  const recent = state.fragments.filter((f) => f.t > Date.now() - 4000);
  check(recent.length > 0 && recent.every((f) => f.edge !== onEdge),
    `recent segments come from other edges (${[...new Set(recent.map((f) => f.edge))].join(', ')})`);
  summary.moved_to = moved.to;
  summary.move_after_ms = moved.t - drainedAt;
  await screenshot(player, 'player-after-drain.png');

  check(offsite.length === 0, `the pages requested nothing outside loopback (${offsite.join(', ')})`);
  summary.ok = true;
} finally {
  await context.close();
  fs.rmSync(profile, { recursive: true, force: true });
}
console.log(JSON.stringify(summary));
