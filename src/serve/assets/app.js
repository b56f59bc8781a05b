// The painting page: scenes, a concept palette, a brush, and the stroke stack sent whole to
// /api/paint after every change. The history of stacks (with their answers) lives here, so
// undo and redo show exactly the images they showed before.
'use strict';

const $ = (sel) => document.querySelector(sel);
const STRIP = 12;
const DISPLAY = 512;

const state = {
  projects: [],
  project: null, // a project of /api/projects
  layer: null, // one of its layers
  seed: 129,
  stripStart: 120,
  tool: 'remove',
  concept: null,
  size: 6,
  k: 20,
  history: [], // [{strokes, result}]; history[0] is the original scene
  at: 0,
  selected: null, // stroke index shown in the units panel
  before: false,
  overlay: false,
  busy: 0,
  generation: 0, // bumped when the scene changes, so late answers are ignored
};

// ---- the API ---------------------------------------------------------------------------------

async function api(path, body) {
  const init = body === undefined ? {} : {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  };
  const res = await fetch(path, init);
  if (!res.ok) {
    let reason = res.statusText;
    try { reason = (await res.json()).error || reason; } catch (_) { /* not JSON */ }
    throw new Error(reason);
  }
  return res;
}

function paintRequest(strokes) {
  return { project: state.project.project, layer: state.layer.layer, seed: state.seed, strokes };
}

// Runs `task` after every earlier one, so that strokes on a scene apply in order.
let chain = Promise.resolve();
function enqueue(task) {
  const generation = state.generation;
  busy(+1);
  chain = chain
    .then(() => (generation === state.generation ? task() : null))
    .catch((e) => status(e.message, true))
    .finally(() => busy(-1));
  return chain;
}

function busy(delta) {
  state.busy += delta;
  document.body.dataset.busy = state.busy > 0 ? '1' : '0';
  if (state.busy > 0) status('painting…');
}

function status(text, error = false) {
  const s = $('#status');
  s.textContent = text;
  s.classList.toggle('error', error);
}

// ---- masks -----------------------------------------------------------------------------------

function side() { return state.project.image_size; }

function newMask() { return new Uint8Array(side() * side()); }

function stamp(mask, cx, cy) {
  const n = side();
  const r = state.size / 2;
  for (let y = Math.floor(cy - r); y <= Math.ceil(cy + r); y++) {
    for (let x = Math.floor(cx - r); x <= Math.ceil(cx + r); x++) {
      if (x < 0 || y < 0 || x >= n || y >= n) continue;
      const dx = x + 0.5 - cx, dy = y + 0.5 - cy;
      if (dx * dx + dy * dy <= r * r || (r < 1 && Math.floor(cx) === x && Math.floor(cy) === y)) {
        mask[y * n + x] = 1;
      }
    }
  }
}

function stampLine(mask, a, b) {
  const steps = Math.max(1, Math.ceil(Math.hypot(b.x - a.x, b.y - a.y) * 2));
  for (let i = 0; i <= steps; i++) {
    const t = i / steps;
    stamp(mask, a.x + (b.x - a.x) * t, a.y + (b.y - a.y) * t);
  }
}

// One bit per pixel, row-major, most significant bit first, base64.
function packMask(mask) {
  const bytes = new Uint8Array(Math.ceil(mask.length / 8));
  mask.forEach((on, i) => { if (on) bytes[i >> 3] |= 0x80 >> (i & 7); });
  let text = '';
  bytes.forEach((b) => { text += String.fromCharCode(b); });
  return { width: side(), height: side(), bits: btoa(text) };
}

// ---- painting with the pointer ---------------------------------------------------------------

let drawing = null; // {mask, last}

function pointAt(ev) {
  const box = $('#canvas').getBoundingClientRect();
  const scale = side() / box.width;
  return { x: (ev.clientX - box.left) * scale, y: (ev.clientY - box.top) * scale };
}

function drawPreview(mask) {
  const c = $('#canvas');
  const g = c.getContext('2d');
  g.clearRect(0, 0, c.width, c.height);
  if (!mask) return;
  const n = side();
  const cell = c.width / n;
  const concept = state.layer.concepts.find((x) => x.concept === state.concept);
  g.fillStyle = concept ? concept.color : '#ff0';
  g.globalAlpha = 0.45;
  for (let y = 0; y < n; y++) {
    for (let x = 0; x < n; x++) {
      if (mask[y * n + x]) g.fillRect(x * cell, y * cell, cell, cell);
    }
  }
  g.globalAlpha = 1;
}

function setupCanvas() {
  const c = $('#canvas');
  c.addEventListener('pointerdown', (ev) => {
    if (ev.button !== 0 || !state.concept) {
      if (!state.concept) status('pick a concept first', true);
      return;
    }
    c.setPointerCapture(ev.pointerId);
    const p = pointAt(ev);
    drawing = { mask: newMask(), last: p };
    stamp(drawing.mask, p.x, p.y);
    drawPreview(drawing.mask);
  });
  c.addEventListener('pointermove', (ev) => {
    if (!drawing) return;
    const p = pointAt(ev);
    stampLine(drawing.mask, drawing.last, p);
    drawing.last = p;
    drawPreview(drawing.mask);
  });
  const finish = () => {
    if (!drawing) return;
    const stroke = {
      op: state.tool,
      concept: state.concept,
      mask: packMask(drawing.mask),
      k: state.k,
      force: false,
    };
    drawing = null;
    addStroke(stroke);
  };
  c.addEventListener('pointerup', finish);
  c.addEventListener('pointercancel', () => { drawing = null; drawPreview(null); });
}

// ---- the history of stacks -------------------------------------------------------------------

function current() { return state.history[state.at]; }

function push(strokes, result) {
  state.history = state.history.slice(0, state.at + 1);
  state.history.push({ strokes, result });
  state.at = state.history.length - 1;
  state.selected = strokes.length ? strokes.length - 1 : null;
}

// Paints `change(current stack)` and makes it the current state.
function paintStack(change) {
  return enqueue(async () => {
    const strokes = change(current().strokes);
    const t0 = performance.now();
    const res = await api('/api/paint', paintRequest(strokes));
    const result = await res.json();
    push(strokes, result);
    drawPreview(null);
    render();
    status(`painted in ${Math.round(performance.now() - t0)} ms`);
  });
}

function addStroke(stroke) { paintStack((strokes) => strokes.concat([stroke])); }

function forceStroke(index) {
  paintStack((strokes) => strokes.map((s, i) => (i === index ? { ...s, force: true } : s)));
}

function undo() { enqueue(async () => { if (state.at > 0) { state.at--; state.selected = null; render(); } }); }
function redo() { enqueue(async () => { if (state.at < state.history.length - 1) { state.at++; state.selected = null; render(); } }); }
function reset() {
  enqueue(async () => {
    if (current().strokes.length) { push([], state.history[0].result); render(); }
  });
}

// Opens scene `seed`: its original becomes the first state of a new history.
function openScene(seed) {
  state.generation++;
  state.seed = seed;
  if (seed < state.stripStart || seed >= state.stripStart + STRIP) {
    state.stripStart = Math.max(0, seed - (seed % STRIP));
  }
  renderStrip();
  return enqueue(async () => {
    const res = await api('/api/paint', paintRequest([]));
    state.history = [{ strokes: [], result: await res.json() }];
    state.at = 0;
    state.selected = null;
    render();
    status(`scene ${seed}`);
  });
}

// ---- rendering -------------------------------------------------------------------------------

function render() {
  const now = current();
  const shown = state.before ? state.history[0].result : now.result;
  $('#scene').src = shown.image;
  const seg = $('#segmentation');
  seg.src = shown.segmentation;
  seg.hidden = !state.overlay;
  $('#undo').disabled = state.at === 0;
  $('#redo').disabled = state.at >= state.history.length - 1;
  $('#reset').disabled = now.strokes.length === 0;
  $('#before').classList.toggle('on', state.before);
  const link = $('#download-png');
  link.href = now.result.image;
  link.download = `scene${state.seed}-${state.project.project}-${state.layer.layer}.png`;
  $('#caption').textContent =
    `scene ${state.seed} · ${state.project.project} at ${state.layer.layer} · ` +
    `${now.strokes.length} stroke${now.strokes.length === 1 ? '' : 's'}` +
    (state.before ? ' · showing the original' : '');
  renderStrokes(now);
  renderUnits(now);
}

function verdictClass(outcome) {
  const e = outcome.effect;
  if (e.kind === 'insertion') return e.accepted ? 'accepted' : 'rejected';
  return e.kind;
}

function renderStrokes(now) {
  const list = $('#strokes');
  list.replaceChildren();
  now.result.strokes.forEach((outcome, i) => {
    const li = document.createElement('li');
    li.classList.add(verdictClass(outcome));
    if (!outcome.kept) li.classList.add('dropped');
    if (i === state.selected) li.classList.add('selected');
    li.dataset.kind = outcome.effect.kind;
    li.dataset.kept = outcome.kept ? '1' : '0';
    if (outcome.effect.kind === 'removal') {
      li.dataset.before = outcome.effect.before;
      li.dataset.after = outcome.effect.after;
    } else if (outcome.effect.kind === 'insertion') {
      li.dataset.gained = outcome.effect.gained;
      li.dataset.accepted = outcome.effect.accepted ? '1' : '0';
    }
    const verdict = document.createElement('span');
    verdict.className = 'verdict';
    // the page's own button forces a stroke, not the command line's flag
    verdict.textContent = outcome.summary.replace(/; dropped \(.*\)$/, '; dropped');
    li.append(verdict);
    if (outcome.effect.kind === 'insertion' && !outcome.effect.accepted && !outcome.kept) {
      const b = document.createElement('button');
      b.textContent = 'force';
      b.title = 'keep this insertion although the context check rejects it';
      b.addEventListener('click', (ev) => { ev.stopPropagation(); forceStroke(i); });
      li.append(b);
    }
    li.addEventListener('click', () => { state.selected = i; render(); });
    list.append(li);
  });
}

function renderUnits(now) {
  const box = $('#units');
  box.replaceChildren();
  const outcome = state.selected === null ? null : now.result.strokes[state.selected];
  if (!outcome) {
    box.textContent = 'paint a stroke, or pick one, to see its units';
    return;
  }
  const units = new Map(state.layer.units.map((u) => [u.unit, u]));
  outcome.units.forEach((unit, j) => {
    const u = units.get(unit);
    const fig = document.createElement('figure');
    const img = document.createElement('img');
    img.loading = 'lazy';
    img.alt = `top images of unit ${unit}`;
    img.src = `/api/unit.png?project=${encodeURIComponent(state.project.project)}` +
      `&layer=${encodeURIComponent(state.layer.layer)}&unit=${unit}`;
    const cap = document.createElement('figcaption');
    const iou = outcome.ious[j] === undefined ? '' : ` · ${outcome.concept} IoU ${outcome.ious[j].toFixed(3)}`;
    cap.textContent = `unit ${unit}${u ? ` · labelled ${u.label}` : ''}${iou}`;
    fig.append(img, cap);
    box.append(fig);
  });
}

function renderStrip() {
  const strip = $('#strip');
  strip.replaceChildren();
  for (let id = state.stripStart; id < state.stripStart + STRIP; id++) {
    const fig = document.createElement('figure');
    if (id === state.seed) fig.classList.add('current');
    const img = document.createElement('img');
    img.alt = `scene ${id}`;
    img.src = `/api/scene.png?project=${encodeURIComponent(state.project.project)}&seed=${id}`;
    const cap = document.createElement('figcaption');
    cap.textContent = id;
    fig.append(img, cap);
    fig.addEventListener('click', () => openScene(id));
    strip.append(fig);
  }
}

function renderPalette() {
  const box = $('#concepts');
  box.replaceChildren();
  if (!state.layer.concepts.some((c) => c.concept === state.concept)) {
    state.concept = state.layer.concepts.length ? state.layer.concepts[0].concept : null;
  }
  for (const c of state.layer.concepts) {
    const b = document.createElement('button');
    b.dataset.concept = c.concept;
    b.title = `${c.units} interpretable ${c.concept} unit${c.units === 1 ? '' : 's'} at ${state.layer.layer}`;
    const sw = document.createElement('span');
    sw.className = 'swatch';
    sw.style.background = c.color;
    const name = document.createElement('span');
    name.textContent = c.concept;
    const count = document.createElement('span');
    count.className = 'count';
    count.textContent = c.units;
    b.append(sw, name, count);
    b.classList.toggle('on', c.concept === state.concept);
    b.addEventListener('click', () => { state.concept = c.concept; renderPalette(); });
    box.append(b);
  }
  if (!state.layer.concepts.length) box.textContent = 'no concept has interpretable units here';
}

function renderTools() {
  document.querySelectorAll('#tool button').forEach((b) => b.classList.toggle('on', b.dataset.tool === state.tool));
  document.querySelectorAll('#strength button').forEach((b) => b.classList.toggle('on', Number(b.dataset.k) === state.k));
  $('#size-out').textContent = state.size;
}

// ---- projects and layers ---------------------------------------------------------------------

function chooseProject(name) {
  state.project = state.projects.find((p) => p.project === name) || state.projects[0];
  const layers = $('#layer');
  layers.replaceChildren(...state.project.layers.map((l) => new Option(l.layer, l.layer)));
  chooseLayer(state.project.default_layer);
}

function chooseLayer(name) {
  state.layer = state.project.layers.find((l) => l.layer === name);
  $('#layer').value = state.layer.layer;
  renderPalette();
  openScene(state.seed);
}

async function exportPainting() {
  enqueue(async () => {
    const res = await api('/api/export', paintRequest(current().strokes));
    const blob = await res.blob();
    const a = document.createElement('a');
    a.href = URL.createObjectURL(blob);
    a.download = `painting-${state.project.project}-${state.seed}.zip`;
    a.click();
    setTimeout(() => URL.revokeObjectURL(a.href), 10000);
    status('painting downloaded');
  });
}

function setupControls() {
  $('#project').addEventListener('change', (e) => chooseProject(e.target.value));
  $('#layer').addEventListener('change', (e) => chooseLayer(e.target.value));
  $('#strip-prev').addEventListener('click', () => { state.stripStart = Math.max(0, state.stripStart - STRIP); renderStrip(); });
  $('#strip-next').addEventListener('click', () => { state.stripStart += STRIP; renderStrip(); });
  $('#random').addEventListener('click', () => openScene(Math.floor(Math.random() * 10000)));
  $('#goto-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const id = Number($('#goto-id').value);
    if (Number.isInteger(id) && id >= 0) openScene(id); else status('give a scene id: 0, 1, 2, …', true);
  });
  document.querySelectorAll('#tool button').forEach((b) => b.addEventListener('click', () => { state.tool = b.dataset.tool; renderTools(); }));
  document.querySelectorAll('#strength button').forEach((b) => b.addEventListener('click', () => { state.k = Number(b.dataset.k); renderTools(); }));
  $('#size').addEventListener('input', (e) => { state.size = Number(e.target.value); renderTools(); });
  $('#undo').addEventListener('click', undo);
  $('#redo').addEventListener('click', redo);
  $('#reset').addEventListener('click', reset);
  $('#before').addEventListener('click', () => { state.before = !state.before; render(); });
  $('#overlay').addEventListener('change', (e) => { state.overlay = e.target.checked; render(); });
  $('#download-zip').addEventListener('click', exportPainting);
  document.addEventListener('keydown', (e) => {
    if (e.target.tagName === 'INPUT') return;
    if ((e.ctrlKey || e.metaKey) && e.key === 'z') { e.preventDefault(); undo(); }
    else if ((e.ctrlKey || e.metaKey) && e.key === 'y') { e.preventDefault(); redo(); }
    else if (e.key === 'b') { state.before = !state.before; render(); }
    else if (e.key === 'd') { state.tool = 'add'; renderTools(); }
    else if (e.key === 'e') { state.tool = 'remove'; renderTools(); }
  });
}

async function main() {
  setupCanvas();
  setupControls();
  renderTools();
  try {
    state.projects = await (await api('/api/projects')).json();
  } catch (e) {
    status(`cannot load the projects: ${e.message}`, true);
    return;
  }
  $('#project').replaceChildren(...state.projects.map((p) => new Option(p.project, p.project)));
  const hash = Number(location.hash.slice(1));
  if (location.hash && Number.isInteger(hash) && hash >= 0) state.seed = hash;
  chooseProject(state.projects[0].project);
}

main();
