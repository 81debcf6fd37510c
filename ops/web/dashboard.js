// The dashboard: renders the overview the dashboard server pushes every second.
import { age, bar, bits, clock, colour, el, fillBody, getJSON, pct, pill } from './common.js';

const $ = (id) => document.getElementById(id);
let samples = [];
let latest = null;
const SPAN_MS = 10 * 60 * 1000;

function renderHealth(o) {
  const box = $('health');
  box.className = 'banner ' + (o.healthy ? 'healthy' : 'unhealthy');
  const title = o.healthy
    ? `Healthy: ${o.fresh_ready} fresh ready edge${o.fresh_ready === 1 ? '' : 's'}, ${o.routers.length} router${o.routers.length === 1 ? '' : 's'} in agreement`
    : 'UNHEALTHY';
  const parts = [el('div', {}, title)];
  if (o.problems.length) parts.push(el('ul', {}, o.problems.map((p) => el('li', {}, p))));
  if (o.warnings.length) parts.push(el('ul', { class: 'warnings' }, o.warnings.map((w) => el('li', {}, w))));
  box.replaceChildren(...parts);
  box.dataset.healthy = String(o.healthy);
}

function renderSummary(o) {
  $('fresh-count').textContent = o.fresh_ready;
  $('router-count').textContent = o.routers.filter((r) => r.reachable).length + '/' + o.routers.length;
  const serving = o.edges.filter((e) => e.fresh && e.state === 'ready');
  const egress = serving.reduce((s, e) => s + e.egress_bps, 0);
  const capacity = serving.reduce((s, e) => s + e.capacity_bps, 0);
  $('fleet-egress').textContent = bits(egress);
  $('fleet-util').textContent = capacity ? pct(egress / capacity) : '–';
  $('scale').textContent = o.scale ? `${o.scale.desired_edges}` : '–';
  $('scale').title = o.scale
    ? `utilization ${pct(o.scale.utilization)} vs target ${pct(o.scale.target_utilization)}; bounds ${o.scale.min_edges}..${o.scale.max_edges}`
    : 'the router does not serve /api/v1/scale';
}

function renderEdges(o) {
  const rows = o.edges.map((e) =>
    el('tr', { class: 'sev-' + e.severity, dataset: { edge: e.id, status: e.status, severity: e.severity, fresh: String(e.fresh) } },
      el('td', { title: e.url }, el('b', {}, e.id), e.configured ? el('span', { class: 'dim' }, ' (configured)') : null),
      el('td', {}, pill(e.status)),
      el('td', { class: 'num' }, age(e.ad_age_ms)),
      el('td', {}, bar(e.utilization)),
      el('td', { class: 'num' }, bits(e.egress_bps)),
      el('td', { class: 'num' }, bits(e.capacity_bps)),
      el('td', { class: 'num' }, `${e.connections}`),
      el('td', { class: 'num' }, pct(e.cache_hit_ratio)),
      el('td', { class: 'num' }, e.requests_per_sec.toFixed(1)),
      el('td', { class: 'num' }, `${e.viewers}`),
      el('td', { class: 'wrap dim' }, e.hot_streams.slice(0, 3).map((h) => `${h.stream} ${bits(h.egress_bps)}`).join(', ')),
      el('td', { class: 'wrap' }, e.notes.join('; ')),
    ));
  fillBody($('edges'), rows);
}

function renderRouters(o) {
  fillBody($('routers'), o.routers.map((r) =>
    el('tr', { class: r.reachable && r.agrees ? '' : 'sev-bad', dataset: { router: r.id || r.url, reachable: String(r.reachable), agrees: String(r.agrees) } },
      el('td', {}, r.id || '?'),
      el('td', {}, r.url),
      el('td', {}, r.reachable ? pill('yes', 'ok') : pill('no', 'bad'), r.error ? el('div', { class: 'dim wrap' }, r.error) : null),
      el('td', { class: 'num' }, `${r.edges}`),
      el('td', { class: 'wrap' }, r.fresh.join(', ') || '–'),
      el('td', {}, r.agrees ? pill('yes', 'ok') : pill('no', 'bad')),
    )));
  const select = $('explain-router');
  const current = select.value;
  const options = o.routers.filter((r) => r.reachable).map((r) => el('option', { value: r.id || r.url }, `${r.id || '?'} ${r.url}`));
  if (options.length !== select.options.length || [...select.options].some((opt, i) => opt.value !== options[i].value)) {
    select.replaceChildren(...options);
    if (current) select.value = current;
  }
}

function renderStreams(o) {
  const rows = [];
  const playlists = [];
  for (const s of o.streams) {
    s.renditions.forEach((r, i) => {
      if (r.playlist) playlists.push('/' + r.playlist);
      rows.push(el('tr', { dataset: { stream: s.name, rendition: r.name } },
        el('td', {}, i === 0 ? el('b', {}, s.name) : ''),
        el('td', {}, r.name),
        el('td', { class: 'num' }, r.bandwidth ? bits(r.bandwidth) : '–'),
        el('td', { class: 'num' }, bits(r.egress_bps)),
        el('td', { class: 'num' }, r.viewers == null ? '–' : `${r.viewers}`),
        el('td', { class: 'wrap dim' }, r.edges.join(', ') || '–'),
      ));
    });
  }
  fillBody($('streams'), rows);
  const list = $('playlists');
  if (list.options.length !== playlists.length) {
    list.replaceChildren(...playlists.map((p) => el('option', { value: p })));
  }
}

function drawChart() {
  const canvas = $('chart');
  const ratio = window.devicePixelRatio || 1;
  const width = canvas.clientWidth || 1200;
  const height = canvas.clientHeight || 260;
  canvas.width = width * ratio;
  canvas.height = height * ratio;
  const g = canvas.getContext('2d');
  g.scale(ratio, ratio);
  g.clearRect(0, 0, width, height);
  const left = 70, right = 10, top = 10, bottom = 22;
  const now = samples.length ? samples[samples.length - 1].t : Date.now();
  const from = now - SPAN_MS;
  const ids = new Set();
  let max = 1;
  for (const s of samples) for (const [id, v] of Object.entries(s.egress)) { ids.add(id); max = Math.max(max, v); }
  max *= 1.1;
  const x = (t) => left + ((t - from) / SPAN_MS) * (width - left - right);
  const y = (v) => top + (1 - v / max) * (height - top - bottom);
  g.strokeStyle = '#2a3038'; g.fillStyle = '#8a939e'; g.font = '11px system-ui, sans-serif'; g.lineWidth = 1;
  for (let i = 0; i <= 4; i++) {
    const v = (max / 4) * i;
    g.beginPath(); g.moveTo(left, y(v)); g.lineTo(width - right, y(v)); g.stroke();
    g.fillText(bits(v), 4, y(v) + 4);
  }
  for (let m = 0; m <= 10; m += 2) {
    const t = now - m * 60000;
    g.fillText(m === 0 ? 'now' : `-${m} min`, x(t) - 14, height - 6);
  }
  for (const id of [...ids].sort()) {
    g.strokeStyle = colour(id); g.lineWidth = 2; g.beginPath();
    let drawing = false, lastT = 0;
    for (const s of samples) {
      if (s.t < from) continue;
      const v = s.egress[id];
      if (v == null || s.t - lastT > 5000) drawing = false;
      if (v == null) continue;
      if (drawing) g.lineTo(x(s.t), y(v)); else { g.moveTo(x(s.t), y(v)); drawing = true; }
      lastT = s.t;
    }
    g.stroke();
  }
  $('legend').replaceChildren(...[...ids].sort().map((id) => {
    const swatch = el('i'); swatch.style.background = colour(id);
    return el('span', {}, swatch, id);
  }));
}

function render(o) {
  latest = o;
  renderHealth(o);
  renderSummary(o);
  renderEdges(o);
  renderRouters(o);
  renderStreams(o);
  if (o.sample && (!samples.length || o.sample.t > samples[samples.length - 1].t)) samples.push(o.sample);
  while (samples.length && samples[0].t < o.sample.t - SPAN_MS) samples.shift();
  drawChart();
  $('updated').textContent = 'updated ' + clock(o.generated_unix_ms);
  document.body.dataset.freshEdges = String(o.fresh_ready);
  document.body.dataset.routers = String(o.routers.filter((r) => r.reachable).length);
}

async function explain(event) {
  if (event) event.preventDefault();
  const params = new URLSearchParams({ path: $('explain-path').value.trim() });
  if ($('explain-router').value) params.set('router', $('explain-router').value);
  if ($('explain-session').value.trim()) params.set('session', $('explain-session').value.trim());
  const out = $('explain-result');
  try {
    const answer = await getJSON('/api/explain?' + params);
    const x = answer.explanation || {};
    const head = el('div', { class: 'explain-head' },
      'Chosen: ', el('b', {}, answer.chosen || x.chosen_edge || 'no edge'),
      ` · stream key ${x.stream_key || '–'} · average ${pct(x.average_utilization)} · ceiling ${pct(x.ceiling_utilization)}`,
      answer.session_valid === false && params.get('session') ? ' · session not valid (a fresh placement)' : '');
    const table = el('table', {},
      el('thead', {}, el('tr', {},
        ['#', 'Edge', 'Verdict', 'Score', 'Utilization', 'Load', 'Assigned', 'Capacity', 'Bound', 'Fresh for', 'Eligible in'].map((h) => el('th', {}, h)))),
      el('tbody', {}, (x.candidates || []).map((c, i) => el('tr', { class: c.verdict === 'chosen' ? 'sev-ok' : '' },
        el('td', {}, `${c.position ?? i}`),
        el('td', {}, el('b', {}, c.edge_id)),
        el('td', {}, pill(c.verdict.replaceAll('_', ' '), c.verdict)),
        el('td', { class: 'num' }, c.score != null ? Number(c.score).toExponential(3) : '–'),
        el('td', { class: 'num' }, pct(c.utilization)),
        el('td', { class: 'num' }, bits(c.load_bps)),
        el('td', { class: 'num' }, bits(c.assigned_bps)),
        el('td', { class: 'num' }, bits(c.capacity_bps)),
        el('td', { class: 'num' }, c.bound_bps != null ? bits(c.bound_bps) : '–'),
        el('td', { class: 'num' }, c.fresh_for_ms != null ? age(c.fresh_for_ms) : 'always'),
        el('td', { class: 'num' }, c.eligible_in_ms ? age(c.eligible_in_ms) : 'now'),
      ))));
    out.className = '';
    out.replaceChildren(head, table);
  } catch (error) {
    out.className = 'error';
    out.textContent = String(error.message || error);
  }
}

async function main() {
  const params = new URLSearchParams(location.search);
  if (params.get('explain')) $('explain-path').value = params.get('explain');
  if (params.get('session')) $('explain-session').value = params.get('session');
  $('explain-form').addEventListener('submit', explain);
  try {
    samples = (await getJSON('/api/history')).samples || [];
  } catch (_) { samples = []; }
  const events = new EventSource('/api/events');
  let first = true;
  events.addEventListener('overview', (event) => {
    render(JSON.parse(event.data));
    if (first && params.get('explain')) {
      if (params.get('router')) $('explain-router').value = params.get('router');
      explain();
      document.getElementById('explain').scrollIntoView();
    }
    first = false;
  });
  events.addEventListener('error', () => {
    $('updated').textContent = 'connection to the dashboard lost; retrying…';
    $('updated').className = 'error';
  });
  events.addEventListener('open', () => { $('updated').className = ''; });
  window.addEventListener('resize', drawChart);
  window.hlscdnDashboard = { latest: () => latest };
}

main();
