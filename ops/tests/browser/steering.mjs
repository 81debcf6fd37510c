// Failover of a STOCK player through Content Steering, in headless Chromium:
// stock hls.js or stock Shaka Player (from npm, default config) on a plain
// page that this script serves itself — never the project's player page,
// whose recovery code must not be what makes this pass. The player plays
// live `demo-1` through a router of a running `hlscdn demo`; the script
// kills the viewer's edge with SIGKILL, later kills the (new) viewer's edge
// again, then drains another edge with `hlscdn drain`, and checks:
//
//   - 0 fatal player errors (hls.js `fatal`, Shaka severity CRITICAL),
//   - 0 hls.js LEVEL_PARSING_ERROR (a listed segment changed URI),
//   - video.currentTime advanced >= 90 % of the wall time after the first frame,
//   - the steering manifest's answer (PATHWAY-PRIORITY, PATHWAY-CLONES) changed,
//   - the pathway the player used changed.
//
// Run by ops/tests/steering.rs, which starts the demo and passes:
//
//   PLAYER (hlsjs | shaka), ROUTER_URL, FLEET_TOKEN, HLSCDN_BIN, ARTIFACTS_DIR,
//   CHROMIUM (default /usr/bin/chromium), STREAM (default live/demo-1),
//   PLAY_SECONDS (default 70), KILL1_AT / KILL2_AT / DRAIN_AT (seconds after
//   the first frame; defaults 15, 35, 50), KILL_DOWN_S (how long a killed
//   edge is kept down, see keepDown; default 8), MIN_PROGRESS (default 0.9)
//
// The page loads the master from the router as `localhost` while the edges
// are named `127.0.0.1`, as a router and its edges have different host names
// in a real deployment (Shaka bans a failed segment's *host name* from every
// steering location: with one name for all, a retry bans every pathway).
//
// Figures go to stderr; exits 0 when every check passed, and prints a JSON
// summary as its last stdout line.

import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { checklist, hardLimit, sleep, until } from './checks.mjs';
import { launchChromium } from './launch.mjs';

const env = (name, fallback) => {
  const value = process.env[name] ?? fallback;
  if (value == null) throw new Error(`${name} is not set`);
  return value;
};
const PLAYER = env('PLAYER');
const ROUTER_URL = env('ROUTER_URL').replace(/\/$/, '');
const FLEET_TOKEN = env('FLEET_TOKEN');
const HLSCDN_BIN = env('HLSCDN_BIN');
const ARTIFACTS = env('ARTIFACTS_DIR');
const CHROMIUM = env('CHROMIUM', '/usr/bin/chromium');
const STREAM = env('STREAM', 'live/demo-1');
const PLAY_SECONDS = Number(env('PLAY_SECONDS', '70'));
const KILL1_AT = Number(env('KILL1_AT', '15'));
const KILL2_AT = Number(env('KILL2_AT', '35'));
const DRAIN_AT = Number(env('DRAIN_AT', '50'));
const MIN_PROGRESS = Number(env('MIN_PROGRESS', '0.9'));
const KILL_DOWN_S = Number(env('KILL_DOWN_S', '8'));
if (!['hlsjs', 'shaka'].includes(PLAYER)) throw new Error(`PLAYER must be hlsjs or shaka, not ${PLAYER}`);

const OPS = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const LIBRARY = {
  hlsjs: path.join(OPS, 'node_modules/hls.js/dist/hls.js'),
  shaka: path.join(OPS, 'node_modules/shaka-player/dist/shaka-player.compiled.js'),
}[PLAYER];
const VERSION = JSON.parse(fs.readFileSync(path.join(OPS, 'node_modules',
  PLAYER === 'hlsjs' ? 'hls.js' : 'shaka-player', 'package.json'), 'utf8')).version;

hardLimit('steering.mjs', (PLAY_SECONDS + 60) * 1000);
const { log, check, failures } = checklist();

// ---- The plain page: the library's dist file and a few lines that start it
// with its default config and record what it reports. ----
const RECORD = `
const rec = window.rec = { errors: [], frags: [], steering: [], pathways: [], log: [] };
const video = document.getElementById('video');
const src = new URLSearchParams(location.search).get('src');
video.addEventListener('playing', () => { rec.firstFrameAt = rec.firstFrameAt || Date.now(); });
`;
const PAGES = {
  hlsjs: `${RECORD}
const hls = window.hls = new Hls();
hls.on(Hls.Events.ERROR, (_, d) => rec.errors.push({
  t: Date.now(), type: d.type, details: d.details, fatal: d.fatal,
  url: (d.frag && d.frag.url) || d.url || (d.context && d.context.url) || null,
  reason: String(d.reason || (d.error && d.error.message) || '').split('\\n')[0].slice(0, 300),
  code: (d.response && d.response.code) || null,
  action: d.errorAction ? d.errorAction.action : null,
  resolved: d.errorAction ? !!d.errorAction.resolved : null,
}));
hls.on(Hls.Events.FRAG_LOADED, (_, d) => {
  const level = hls.levels[d.frag.level];
  rec.frags.push({ t: Date.now(), url: d.frag.url, sn: d.frag.sn, level: d.frag.level,
    pathway: level ? level.pathwayId : null });
});
hls.on(Hls.Events.STEERING_MANIFEST_LOADED, (_, d) => rec.steering.push({
  t: Date.now(), url: d.url, priority: d.steeringManifest['PATHWAY-PRIORITY'] || null,
  clones: (d.steeringManifest['PATHWAY-CLONES'] || []).map((c) => c.ID),
}));
hls.on(Hls.Events.LEVELS_UPDATED, (_, d) => rec.pathways.push({
  t: Date.now(), pathway: d.levels.length ? d.levels[0].pathwayId : null, levels: d.levels.length,
}));
hls.on(Hls.Events.MANIFEST_PARSED, (_, d) => rec.pathways.push({
  t: Date.now(), pathway: d.levels.length ? d.levels[0].pathwayId : null, levels: d.levels.length, initial: true,
}));
hls.loadSource(src);
hls.attachMedia(video);
video.play().catch((e) => rec.log.push('play(): ' + e.message));
`,
  shaka: `${RECORD}
shaka.polyfill.installAll();
const player = window.player = new shaka.Player();
player.addEventListener('error', (e) => {
  const d = e.detail || {};
  rec.errors.push({ t: Date.now(), severity: d.severity, critical: d.severity === shaka.util.Error.Severity.CRITICAL,
    category: d.category, code: d.code, data: JSON.stringify(d.data || []).slice(0, 400) });
});
player.addEventListener('variantchanged', () => rec.log.push(Date.now() + ' variantchanged'));
(async () => {
  await player.attach(video);
  await player.load(src);
  await video.play();
})().catch((d) => rec.errors.push({ t: Date.now(), severity: d.severity, critical: true, code: d.code,
  data: String(d.message || JSON.stringify(d.data || [])).slice(0, 400), from: 'load' }));
`,
};
const HTML = `<!doctype html>
<meta charset="utf-8">
<title>stock ${PLAYER} ${VERSION}</title>
<video id="video" muted autoplay playsinline controls width="640" height="360"></video>
<script src="/player.js"></script>
<script>${PAGES[PLAYER]}</script>
`;

const server = http.createServer((req, res) => {
  const url = new URL(req.url, 'http://x');
  if (url.pathname === '/') {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
    return res.end(HTML);
  }
  if (url.pathname === '/player.js') {
    res.writeHead(200, { 'content-type': 'text/javascript; charset=utf-8' });
    return fs.createReadStream(LIBRARY).pipe(res);
  }
  res.writeHead(404).end();
});
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const PAGE_URL = `http://127.0.0.1:${server.address().port}/`;
// The router as `localhost`: see the header.
const ROUTER_PAGE = ROUTER_URL.replace('//127.0.0.1:', '//localhost:');
const MASTER = `${ROUTER_PAGE}/${STREAM}/master.m3u8`;

// ---- The fleet: edges by host, and their processes. ----
async function edges() {
  const res = await fetch(`${ROUTER_URL}/api/v1/edges`, { signal: AbortSignal.timeout(3000) });
  if (!res.ok) throw new Error(`${ROUTER_URL}/api/v1/edges answered ${res.status}`);
  return (await res.json()).edges.map((e) => ({ id: e.id, url: e.url, host: new URL(e.url).host, state: e.state, fresh: e.fresh }));
}
// The pid of the `hlscdn-edge` of this demo listening on `host`
// (127.0.0.1:port), from /proc: the demo restarts a killed edge, so the pid
// changes.
function edgePid(host) {
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let argv;
    try {
      argv = fs.readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
    } catch {
      continue;
    }
    if (!path.basename(argv[0] || '').startsWith('hlscdn-edge')) continue;
    const listen = argv.indexOf('--listen');
    const id = argv.indexOf('--id');
    // Both: another test's edge may have taken the port of one that is down.
    if (listen >= 0 && argv[listen + 1] === host && id >= 0 && argv[id + 1] === edgeHosts.get(host)) {
      return Number(entry);
    }
  }
  return null;
}

// The demo restarts a killed edge within 0.5 s, sooner than a player's next
// segment request: such a crash goes unnoticed (rightly). To make each kill a
// crash the player must ride out, as a machine that stays down would be, the
// edge's restarts are killed too for KILL_DOWN_S seconds.
const respawns = [];
function keepDown(host, until) {
  const timer = setInterval(() => {
    if (Date.now() >= until) return clearInterval(timer);
    const pid = edgePid(host);
    if (pid) {
      try {
        process.kill(pid, 'SIGKILL');
        respawns.push({ t: Date.now(), host, pid });
      } catch {
        // it exited by itself
      }
    }
  }, 50);
}

fs.mkdirSync(ARTIFACTS, { recursive: true });
const summary = { player: PLAYER, version: VERSION, master: MASTER, events: [] };
const offsite = [];
const steering = []; // every /steer/ answer, as the page got it
const segments = []; // every edge response and failure, as the page got it
const playlists = []; // every media playlist response
let edgeHosts = new Map();

const { context, profile } = await launchChromium(CHROMIUM, { width: 800, height: 500 });
const shot = path.join(ARTIFACTS, `steering-${PLAYER}.png`);
let page;
try {
  await context.route('**/*', (route) => {
    const url = new URL(route.request().url());
    const loopback = ['127.0.0.1', 'localhost', '[::1]'].includes(url.hostname);
    if (loopback || url.protocol === 'data:' || url.protocol === 'blob:') return route.continue();
    offsite.push(url.href);
    return route.abort();
  });
  edgeHosts = new Map((await edges()).map((e) => [e.host, e.id]));
  log(`stock ${PLAYER} ${VERSION} on ${PAGE_URL}, master ${MASTER}, edges ${[...edgeHosts].map(([h, id]) => `${id}=${h}`).join(' ')}`);

  page = await context.newPage();
  page.on('console', (m) => { if (m.type() === 'error' || m.type() === 'warning') log(`page ${m.type()}:`, m.text().slice(0, 300)); });
  page.on('pageerror', (e) => log('page error:', e.message));
  page.on('response', async (res) => {
    const url = new URL(res.url());
    if (url.pathname.startsWith('/steer/')) {
      const entry = { t: Date.now(), status: res.status(), url: res.url() };
      steering.push(entry);
      try {
        const body = JSON.parse(await res.text());
        entry.priority = body['PATHWAY-PRIORITY'];
        entry.clones = (body['PATHWAY-CLONES'] || []).map((c) => ({ id: c.ID, base: c['BASE-ID'], replace: c['URI-REPLACEMENT'] }));
        entry.ttl = body.TTL;
      } catch (e) {
        entry.unreadable = e.message;
      }
    } else if (url.pathname.endsWith('.m3u8') && !url.pathname.endsWith('/master.m3u8')) {
      playlists.push({ t: Date.now(), path: url.pathname, s: url.searchParams.get('s'), status: res.status() });
    } else if (edgeHosts.has(url.host) || /^\/(live|vod)\//.test(url.pathname) && url.hostname === '127.0.0.1') {
      segments.push({ t: Date.now(), host: url.host, path: url.pathname, status: res.status() });
    }
  });
  page.on('requestfailed', (req) => {
    const url = new URL(req.url());
    const failure = req.failure()?.errorText ?? 'failed';
    if (url.pathname.startsWith('/steer/')) steering.push({ t: Date.now(), status: 0, url: req.url(), failure });
    else if (url.hostname === '127.0.0.1' && url.port !== String(server.address().port)) {
      segments.push({ t: Date.now(), host: url.host, path: url.pathname, status: 0, failure });
    }
  });

  const navigated = Date.now();
  await page.goto(`${PAGE_URL}?src=${encodeURIComponent(MASTER)}`, { timeout: 15000 });
  const codecs = await page.evaluate(() => typeof MediaSource !== 'undefined'
    && MediaSource.isTypeSupported('video/mp4; codecs="avc1.42c015,mp4a.40.2"'));
  check(codecs, 'this Chromium plays H.264 + AAC through MSE');

  const sample = () => page.evaluate(() => {
    const v = document.getElementById('video');
    const r = window.rec || {};
    return {
      now: Date.now(), currentTime: v.currentTime, paused: v.paused, readyState: v.readyState,
      firstFrameAt: r.firstFrameAt || null,
      pathway: window.hls ? (window.hls.levels[window.hls.currentLevel] || {}).pathwayId ?? null : null,
    };
  });
  const first = await until('the first frame', async () => {
    const s = await sample();
    return s.currentTime > 0 && s.firstFrameAt ? s : null;
  }, 30000, 100);
  summary.first_frame_ms = first.now - navigated;
  log(`first frame ${summary.first_frame_ms} ms after the page was opened (currentTime ${first.currentTime.toFixed(2)})`);

  // The viewer's edge: the host of the newest segment the page got.
  const viewerEdge = () => {
    const ok = segments.filter((s) => s.status >= 200 && s.status < 300);
    const last = ok[ok.length - 1];
    return last ? { host: last.host, id: edgeHosts.get(last.host) ?? last.host, t: last.t } : null;
  };
  const samples = [first];
  const at = (secs) => first.now + secs * 1000;
  const faults = [
    { at: KILL1_AT, kind: 'kill' },
    { at: KILL2_AT, kind: 'kill' },
    { at: DRAIN_AT, kind: 'drain' },
  ].sort((a, b) => a.at - b.at);
  const killed = [];
  while (Date.now() < at(PLAY_SECONDS)) {
    const next = faults[0];
    if (next && Date.now() >= at(next.at)) {
      faults.shift();
      const viewer = viewerEdge();
      if (next.kind === 'kill') {
        const pid = viewer && edgePid(viewer.host);
        if (!viewer || !pid) {
          check(false, `found the viewer's edge process to kill (${JSON.stringify(viewer)}, pid ${pid})`);
        } else {
          process.kill(pid, 'SIGKILL');
          keepDown(viewer.host, Date.now() + KILL_DOWN_S * 1000);
          killed.push({ t: Date.now(), id: viewer.id, host: viewer.host });
          summary.events.push({ t: (Date.now() - first.now) / 1000, kill: viewer.id, pid });
          log(`kill -9 ${pid}: ${viewer.id} (${viewer.host}), the viewer's edge`);
        }
      } else {
        const fleet = await edges().catch((e) => { log('the fleet view failed:', e.message); return []; });
        const target = fleet.find((e) => e.fresh && e.state === 'ready' && e.host !== viewer?.host);
        if (!target) {
          check(false, `found another fresh ready edge to drain (${JSON.stringify(fleet)})`);
        } else {
          const out = execFileSync(HLSCDN_BIN, ['drain', target.id, '--router', ROUTER_URL, '--fleet-token', FLEET_TOKEN],
            { encoding: 'utf8', timeout: 15000 });
          summary.events.push({ t: (Date.now() - first.now) / 1000, drain: target.id, viewer: viewer?.id });
          log(`hlscdn drain ${target.id} (the viewer is on ${viewer?.id}): ${out.trim()}`);
        }
      }
    }
    await sleep(1000);
    samples.push(await sample());
  }
  const last = samples[samples.length - 1];
  const wall = (last.now - first.now) / 1000;
  // Progress counts playback only: each second's advance of currentTime is
  // capped at the wall time it took, so a stall followed by a jump to the
  // live edge (Shaka, hls.js do that) counts as the stall it was.
  const advanced = last.currentTime - first.currentTime;
  let played = 0;
  for (let i = 1; i < samples.length; i++) {
    const dt = (samples[i].now - samples[i - 1].now) / 1000;
    const dv = samples[i].currentTime - samples[i - 1].currentTime;
    played += Math.min(Math.max(dv, 0), dt);
  }
  const progress = played / wall;
  const stalled = wall - played;
  const rec = await page.evaluate(() => window.rec);
  await page.screenshot({ path: shot });

  // Moves: each kill, until the page got a segment from another edge.
  const moves = killed.map((k) => {
    const after = segments.find((s) => s.t > k.t && s.status >= 200 && s.status < 300 && s.host !== k.host);
    const failed = segments.filter((s) => s.t > k.t && s.host === k.host && !(s.status >= 200 && s.status < 300)
      && (!after || s.t <= after.t + 1000)).length;
    return { edge: k.id, to: after ? edgeHosts.get(after.host) ?? after.host : null,
      after_ms: after ? after.t - k.t : null, failed_requests: failed };
  });
  const answers = steering.filter((s) => s.status === 200 && s.priority);
  const distinct = [...new Set(answers.map((s) => JSON.stringify({ p: s.priority, c: s.clones.map((c) => c.id) })))];
  const hostsUsed = [];
  for (const s of segments) {
    if (s.status >= 200 && s.status < 300 && hostsUsed[hostsUsed.length - 1] !== s.host) hostsUsed.push(s.host);
  }
  const pathwaysUsed = [];
  if (PLAYER === 'hlsjs') {
    for (const f of rec.frags) if (f.pathway && pathwaysUsed[pathwaysUsed.length - 1] !== f.pathway) pathwaysUsed.push(f.pathway);
  } else {
    for (const h of hostsUsed) pathwaysUsed.push(edgeHosts.get(h) ?? h);
  }
  // The session tokens of the media playlists, in the order the page used them.
  const tokens = [];
  for (const p of playlists) if (p.s && tokens[tokens.length - 1] !== p.s) tokens.push(p.s);
  const parsing = rec.errors.filter((e) => e.details === 'levelParsingError');
  const fatal = rec.errors.filter((e) => e.fatal || e.critical);
  Object.assign(summary, {
    wall_s: Number(wall.toFixed(1)),
    played_s: Number(played.toFixed(1)),
    current_time_advanced_s: Number(advanced.toFixed(1)),
    progress: Number(progress.toFixed(3)),
    stalled_s: Number(stalled.toFixed(1)),
    errors: rec.errors.length,
    errors_by_kind: rec.errors.reduce((m, e) => {
      const k = e.details ?? `${e.category}/${e.code}`;
      m[k] = (m[k] || 0) + 1;
      return m;
    }, {}),
    level_parsing_errors: parsing.length,
    fatal_errors: fatal.length,
    steering_requests: steering.length,
    steering_answers: distinct,
    pathways_used: pathwaysUsed,
    playlist_token_changes: Math.max(tokens.length - 1, 0),
    edges_used: hostsUsed.map((h) => edgeHosts.get(h) ?? h),
    moves,
    restarts_killed: respawns.length,
    segments_ok: segments.filter((s) => s.status >= 200 && s.status < 300).length,
    segments_failed: segments.filter((s) => !(s.status >= 200 && s.status < 300)).length,
  });
  log('currentTime samples', samples.map((s) => s.currentTime.toFixed(1)).join(' '));
  log('player errors', JSON.stringify(rec.errors));
  if (rec.log.length) log('player log', JSON.stringify(rec.log));
  if (PLAYER === 'hlsjs') log('hls.js pathway changes', JSON.stringify(rec.pathways));
  log('steering answers seen', JSON.stringify(answers.map((s) => ({ t: ((s.t - first.now) / 1000).toFixed(1), p: s.priority, c: s.clones.map((c) => c.id), q: new URL(s.url).searchParams.get('_HLS_pathway') }))));
  log('failed edge requests', JSON.stringify(segments.filter((s) => !(s.status >= 200 && s.status < 300)).map((s) => ({ t: ((s.t - first.now) / 1000).toFixed(1), host: s.host, status: s.status, failure: s.failure }))));
  log(`figures: ${PLAYER} ${VERSION}: played ${played.toFixed(1)} s in ${wall.toFixed(1)} s (progress ${(100 * progress).toFixed(1)} %, stalled ${stalled.toFixed(1)} s, currentTime advanced ${advanced.toFixed(1)} s); `
    + `errors ${rec.errors.length} (${JSON.stringify(summary.errors_by_kind)}), fatal ${fatal.length}, level parsing ${parsing.length}; `
    + `steering requests ${steering.length}, distinct answers ${distinct.length}; pathways ${pathwaysUsed.join(' -> ')}; `
    + `edges ${summary.edges_used.join(' -> ')}; media playlist token changes ${summary.playlist_token_changes}; moves ${JSON.stringify(moves)}`);

  check(wall >= 60, `played for at least 60 s of wall time after the first frame (${wall.toFixed(1)} s)`);
  check(killed.length === 2, `killed the viewer's edge twice (${killed.map((k) => k.id).join(', ')})`);
  check(summary.events.some((e) => e.drain), 'drained another edge');
  if (PLAYER === 'hlsjs') check(parsing.length === 0, `no hls.js LEVEL_PARSING_ERROR (${JSON.stringify(parsing.map((e) => e.reason))})`);
  check(fatal.length === 0, `no fatal player error (${JSON.stringify(fatal.map((e) => e.details ?? `${e.category}/${e.code}`))})`);
  check(progress >= MIN_PROGRESS, `played ${played.toFixed(1)} s in ${wall.toFixed(1)} s of wall time after the first frame: ${(100 * progress).toFixed(1)} % >= ${100 * MIN_PROGRESS} %`);
  check(distinct.length >= 2, `the steering manifest's answer changed (${distinct.join(' | ')})`);
  check(pathwaysUsed.length >= 2, `the pathway in use changed (${pathwaysUsed.join(' -> ')})`);
  check(offsite.length === 0, `the page requested nothing outside loopback (${offsite.join(', ')})`);
  summary.ok = failures.length === 0;
} finally {
  if (page && !fs.existsSync(shot)) await page.screenshot({ path: shot }).catch(() => {});
  await context.close();
  server.close();
  fs.rmSync(profile, { recursive: true, force: true });
}
summary.failures = failures;
console.log(JSON.stringify(summary));
process.exit(failures.length === 0 ? 0 : 1);
