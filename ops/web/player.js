// The player page: plays a stream through a router with hls.js and shows
// which edge every segment came from, and when the player moved.
import { bytes, clock, el, fillBody, getJSON } from './common.js';

const $ = (id) => document.getElementById(id);
const Hls = window.Hls;

const state = {
  hls: null,
  fragments: [],     // {t, level, sn, host, edge, ms, bytes, url}
  moves: [],         // {t, from, to, sn}
  errors: [],        // every hls.js error: {t, type, details, fatal}
  fatalErrors: [],
  edgesByHost: {},   // "127.0.0.1:9001" -> "edge-1"
  levels: [],
  levelUrl: null,
};
window.hlscdnPlayer = {
  fragments: state.fragments,
  moves: state.moves,
  errors: state.errors,
  fatalErrors: state.fatalErrors,
  currentEdge: () => (state.fragments.length ? state.fragments[state.fragments.length - 1].edge : null),
  currentTime: () => $('video').currentTime,
};

function edgeOf(host) {
  return state.edgesByHost[host] || host;
}

function renderFragments() {
  const last = state.fragments.slice(-12).reverse();
  fillBody($('frags'), last.map((f) => el('tr', { dataset: { edge: f.edge } },
    el('td', {}, clock(f.t)),
    el('td', {}, state.levels[f.level] || `level ${f.level}`),
    el('td', { class: 'num' }, `${f.sn}`),
    el('td', {}, el('b', {}, f.edge)),
    el('td', { class: 'dim' }, f.host),
    el('td', { class: 'num' }, `${Math.round(f.ms)} ms`),
    el('td', { class: 'num' }, bytes(f.bytes)),
  )));
  const per = new Map();
  for (const f of state.fragments) {
    const p = per.get(f.edge) || { n: 0, bytes: 0, ms: 0 };
    p.n += 1; p.bytes += f.bytes; p.ms += f.ms;
    per.set(f.edge, p);
  }
  fillBody($('per-edge'), [...per.entries()].sort().map(([edge, p]) => el('tr', { dataset: { edge } },
    el('td', {}, el('b', {}, edge)),
    el('td', { class: 'num' }, `${p.n}`),
    el('td', { class: 'num' }, bytes(p.bytes)),
    el('td', { class: 'num' }, `${Math.round(p.ms / p.n)} ms`),
  )));
  const current = state.fragments[state.fragments.length - 1];
  if (current) {
    $('current-edge').textContent = current.edge;
    $('current-host').textContent = `(${current.host})`;
  }
  if (state.moves.length) {
    $('moves').replaceChildren(...state.moves.slice().reverse().map((m, i) =>
      el('li', { class: i === 0 ? 'latest' : '' }, `${clock(m.t)}: ${m.from} → ${m.to} at segment ${m.sn}`)));
  }
}

function onFragment(data) {
  const frag = data.frag;
  let url;
  try { url = new URL(frag.url); } catch (_) { return; }
  const stats = frag.stats || data.stats || {};
  const loading = stats.loading || {};
  const f = {
    t: Date.now(),
    level: frag.level,
    sn: frag.sn,
    host: url.host,
    edge: edgeOf(url.host),
    url: url.origin + url.pathname,
    ms: loading.end && loading.start ? loading.end - loading.start : 0,
    bytes: stats.total || stats.loaded || 0,
  };
  const previous = state.fragments[state.fragments.length - 1];
  state.fragments.push(f);
  if (state.fragments.length > 2000) state.fragments.splice(0, 1000);
  if (previous && previous.host !== f.host) {
    state.moves.push({ t: f.t, from: previous.edge, to: f.edge, sn: f.sn });
  }
  renderFragments();
}

function updateWhy() {
  if (!state.levelUrl) return;
  let u;
  try { u = new URL(state.levelUrl); } catch (_) { return; }
  const params = new URLSearchParams({ explain: u.pathname });
  if (u.searchParams.get('s')) params.set('session', u.searchParams.get('s'));
  params.set('router', $('router').value);
  $('why').href = '/?' + params + '#explain';
}

function play() {
  const stream = $('stream').value;
  const router = $('router').value;
  if (!stream || !router) return;
  if (state.hls) state.hls.destroy();
  $('error').textContent = '';
  const video = $('video');
  const src = router.replace(/\/$/, '') + '/' + stream.replace(/^\//, '');
  if (!Hls || !Hls.isSupported()) {
    $('error').textContent = 'This browser has no Media Source Extensions; hls.js cannot play here.';
    return;
  }
  const hls = new Hls({ enableWorker: true, lowLatencyMode: false, backBufferLength: 30 });
  state.hls = hls;
  hls.on(Hls.Events.MANIFEST_PARSED, (_, data) => {
    state.levels = data.levels.map((l) => (l.height ? `${l.height}p` : `${Math.round(l.bitrate / 1000)}k`));
    $('state').textContent = 'playing ' + src;
    video.play().catch(() => { /* autoplay needs muted; it is */ });
  });
  hls.on(Hls.Events.LEVEL_LOADED, (_, data) => { state.levelUrl = data.details.url; updateWhy(); });
  hls.on(Hls.Events.FRAG_LOADED, (_, data) => onFragment(data));
  hls.on(Hls.Events.ERROR, (_, data) => {
    const e = { t: Date.now(), type: data.type, details: data.details, fatal: !!data.fatal };
    state.errors.push(e);
    if (!data.fatal) return;
    state.fatalErrors.push(e);
    $('error').textContent = `fatal player error: ${data.type} / ${data.details}; recovering…`;
    if (data.type === Hls.ErrorTypes.NETWORK_ERROR) hls.startLoad();
    else if (data.type === Hls.ErrorTypes.MEDIA_ERROR) hls.recoverMediaError();
    else setTimeout(play, 2000);
  });
  hls.loadSource(src);
  hls.attachMedia(video);
  const params = new URLSearchParams(location.search);
  params.set('stream', stream.replace(/\/master\.m3u8$/, ''));
  params.set('router', router);
  history.replaceState(null, '', '?' + params);
}

async function refreshFleet() {
  try {
    const o = await getJSON('/api/overview');
    for (const e of o.edges || []) {
      try { state.edgesByHost[new URL(e.url).host] = e.id; } catch (_) { /* not a URL */ }
    }
    const select = $('router');
    const routers = (o.routers || []).filter((r) => r.reachable);
    if (!select.options.length && routers.length) {
      const wanted = new URLSearchParams(location.search).get('router');
      select.replaceChildren(...routers.map((r) => el('option', { value: r.url }, `${r.id || ''} ${r.url}`)));
      if (wanted) {
        if (![...select.options].some((opt) => opt.value === wanted)) select.append(el('option', { value: wanted }, wanted));
        select.value = wanted;
      }
    }
    return routers.length > 0;
  } catch (_) {
    return false;
  }
}

async function main() {
  const params = new URLSearchParams(location.search);
  const { streams } = await getJSON('/api/streams');
  const playable = streams.filter((s) => s.master);
  $('stream').replaceChildren(...playable.map((s) => el('option', { value: s.master }, s.name)));
  const wanted = params.get('stream');
  if (wanted) {
    const match = playable.find((s) => s.name === wanted || s.master === wanted);
    if (match) $('stream').value = match.master;
  }
  while (!(await refreshFleet())) await new Promise((r) => setTimeout(r, 500));
  setInterval(refreshFleet, 2000);
  setInterval(() => {
    const v = $('video');
    $('clock').textContent = `position ${v.currentTime.toFixed(1)} s · buffered ${v.buffered.length ? (v.buffered.end(v.buffered.length - 1) - v.currentTime).toFixed(1) : 0} s`;
  }, 500);
  $('pick').addEventListener('submit', (event) => { event.preventDefault(); play(); });
  if (params.get('autoplay') !== '0') play();
}

main().catch((error) => { $('error').textContent = String(error.message || error); });
