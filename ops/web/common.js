// Helpers shared by the dashboard and the player page.

/** Bits per second for people: "1.5 Mb/s". */
export function bits(bps) {
  if (bps == null || !isFinite(bps)) return '–';
  if (bps >= 1e9) return (bps / 1e9).toFixed(1) + ' Gb/s';
  if (bps >= 1e6) return (bps / 1e6).toFixed(1) + ' Mb/s';
  if (bps >= 1e3) return (bps / 1e3).toFixed(0) + ' kb/s';
  return Math.round(bps) + ' b/s';
}

/** Bytes for people: "12.3 MB". */
export function bytes(n) {
  if (n == null) return '–';
  if (n >= 1e9) return (n / 1e9).toFixed(1) + ' GB';
  if (n >= 1e6) return (n / 1e6).toFixed(1) + ' MB';
  if (n >= 1e3) return (n / 1e3).toFixed(0) + ' kB';
  return n + ' B';
}

/** Milliseconds as seconds: "1.2 s". */
export function age(ms) {
  if (ms == null) return '–';
  return ms >= 100000 ? Math.round(ms / 1000) + ' s' : (ms / 1000).toFixed(1) + ' s';
}

/** A ratio as a percentage: "42%". */
export function pct(x) {
  return x == null || !isFinite(x) ? '–' : Math.round(x * 100) + '%';
}

/** Clock time of a unix-ms instant: "03:12:45". */
export function clock(t) {
  return new Date(t).toLocaleTimeString([], { hour12: false });
}

/**
 * Creates an element: el('td', {class: 'num', dataset: {edge: 'e1'}}, 'text', child...).
 * Text is always set as text, never parsed as HTML.
 */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v == null) continue;
    if (k === 'class') node.className = v;
    else if (k === 'dataset') Object.assign(node.dataset, v);
    else if (k === 'title') node.title = v;
    else node.setAttribute(k, v);
  }
  for (const child of children.flat()) {
    if (child == null) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/** A status pill. */
export function pill(text, kind = text) {
  return el('span', { class: 'pill ' + kind }, text);
}

/** A load bar for a utilization (0..1+). */
export function bar(utilization) {
  const u = isFinite(utilization) ? utilization : 0;
  const kind = u >= 1 ? 'bad' : u >= 0.8 ? 'warn' : '';
  const fill = el('i', { class: kind });
  fill.style.width = Math.min(100, u * 100).toFixed(1) + '%';
  return el('span', { class: 'bar', title: pct(u) + ' of capacity' }, fill, el('b', {}, pct(u)));
}

/** GET a JSON document. */
export async function getJSON(url) {
  const response = await fetch(url, { cache: 'no-store' });
  if (!response.ok) throw new Error(url + ': ' + response.status + ' ' + (await response.text()).trim());
  return response.json();
}

/** A stable colour per edge id. */
export function colour(id) {
  const palette = ['#58a6ff', '#3fb950', '#d2a8ff', '#f0883e', '#39c5cf', '#ff7b72', '#e3b341', '#a5d6ff', '#7ee787', '#ffa198'];
  let h = 0;
  for (const c of id) h = (h * 31 + c.charCodeAt(0)) >>> 0;
  const m = /(\d+)$/.exec(id);
  return palette[(m ? Number(m[1]) : h) % palette.length];
}

/** Replaces the rows of a table body. */
export function fillBody(table, rows) {
  const body = table.tBodies[0] || table.appendChild(document.createElement('tbody'));
  body.replaceChildren(...rows);
}
