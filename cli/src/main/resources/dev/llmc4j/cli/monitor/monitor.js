// The llmc monitor page: the state of a run (live from /events, or window.LLMC_STATE in a static report) drawn
// with Chart.js. Every chart is a Chart.js chart; the attention heatmaps are scatter charts of square points.
'use strict';
(() => {
  const COLORS = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f',
    '#bcbd22', '#17becf'];
  Chart.defaults.animation = false;
  Chart.defaults.maintainAspectRatio = false;
  Chart.defaults.font.size = 11;

  let S;                 // the run's state: run, steps, val, tensors, activations, attention, samples
  const charts = {};
  let attentionCharts = [];
  window.llmcMonitor = { charts, state: () => S };

  // ---- the curves of main.log ----

  function lineChart(id, title, datasets, yType = 'linear') {
    charts[id] = new Chart(document.getElementById(id), {
      type: 'line',
      data: { datasets: datasets.map((d, i) => Object.assign({
        data: [], borderColor: COLORS[i % COLORS.length], backgroundColor: COLORS[i % COLORS.length],
        pointRadius: 0, borderWidth: 1.5, parsing: false, spanGaps: true }, d)) },
      options: {
        plugins: { title: { display: true, text: title }, legend: { display: datasets.length > 1 } },
        scales: { x: { type: 'linear', title: { display: true, text: 'step' } }, y: { type: yType } },
        interaction: { mode: 'nearest', intersect: false } }
    });
  }

  lineChart('chart-loss', 'loss', [{ label: 'train' }, { label: 'val', pointRadius: 3 }]);
  lineChart('chart-norm', 'gradient norm', [{ label: 'norm' },
    { label: 'update skipped', type: 'scatter', pointStyle: 'triangle', pointRadius: 6, borderColor: '#d62728',
      backgroundColor: '#d62728' }]);
  lineChart('chart-z', 'outlier z-scores against the last 128 steps (from step 129)', [{ label: 'loss z' }, { label: 'norm z' }]);
  lineChart('chart-lr', 'learning rate', [{ label: 'lr' }]);
  lineChart('chart-tps', 'tokens per second', [{ label: 'tok/s' }]);
  lineChart('chart-ms', 'ms per step', [{ label: 'ms' }]);
  lineChart('chart-grad', '|gradient| / |weights|', [], 'logarithmic');
  lineChart('chart-update', '|update| / |weights|', [], 'logarithmic');
  lineChart('chart-act-std', 'standard deviation', []);
  lineChart('chart-act-max', 'largest magnitude', [], 'logarithmic');

  const series = (id, i) => charts[id].data.datasets[i].data;
  const point = (x, y) => ({ x, y: y === null || y === undefined ? NaN : y });

  function addStep(p) {
    S.steps.push(p);
    series('chart-loss', 0).push(point(p.step, p.loss));
    series('chart-norm', 0).push(point(p.step, p.norm));
    if (p.skipped) series('chart-norm', 1).push(point(p.step, p.norm));
    series('chart-z', 0).push(point(p.step, p.lossZ));
    series('chart-z', 1).push(point(p.step, p.normZ));
    series('chart-lr', 0).push(point(p.step, p.lr));
    if (p.tokensPerSecond != null) series('chart-tps', 0).push(point(p.step, p.tokensPerSecond));
    if (p.ms != null) series('chart-ms', 0).push(point(p.step, p.ms));
  }

  function addVal(v) {
    S.val.push(v);
    series('chart-loss', 1).push(point(v.step, v.loss));
  }

  // ---- per tensor and layer: one line per layer of the chosen tensor (or activation) ----

  function fillSelect(select, names, preferred) {
    const chosen = select.value;
    if ([...select.options].map(o => o.value).join() === names.join()) return;
    select.replaceChildren(...names.map(n => new Option(n, n)));
    if (names.includes(chosen)) select.value = chosen;
    else if (names.includes(preferred)) select.value = preferred;
  }

  function byLayer(history, name, key) {
    const lines = new Map();
    for (const h of history) {
      for (const row of h.stats) {
        if (row.name !== name) continue;
        if (!lines.has(row.layer)) lines.set(row.layer, []);
        lines.get(row.layer).push(point(h.step, row[key] > 0 ? row[key] : NaN)); // log scales: no zeros
      }
    }
    return [...lines.entries()].map(([layer, data], i) => ({
      label: layer < 0 ? name : 'layer ' + layer, data, parsing: false, pointRadius: 2, borderWidth: 1.5,
      borderColor: COLORS[i % COLORS.length], backgroundColor: COLORS[i % COLORS.length] }));
  }

  function drawTensors() {
    const tensorSelect = document.getElementById('tensor-select');
    const activationSelect = document.getElementById('activation-select');
    const names = history => [...new Set(history.flatMap(h => h.stats.map(r => r.name)))];
    fillSelect(tensorSelect, names(S.tensors), 'qkvw'); // a per-layer tensor first: a line per layer
    fillSelect(activationSelect, names(S.activations), 'residual');
    const show = (id, history, name, key) => {
      charts[id].data.datasets = byLayer(history, name, key);
      charts[id].options.plugins.legend.display = true;
    };
    show('chart-grad', S.tensors, tensorSelect.value, 'grad');
    show('chart-update', S.tensors, tensorSelect.value, 'update');
    show('chart-act-std', S.activations, activationSelect.value, 'std');
    show('chart-act-max', S.activations, activationSelect.value, 'maxAbs');
    document.getElementById('tensors-section').hidden = S.run.inspectable === false;
  }
  document.getElementById('tensor-select').onchange = () => { drawTensors(); redraw(); };
  document.getElementById('activation-select').onchange = () => { drawTensors(); redraw(); };

  // ---- attention: a heatmap per layer and head ----

  const shown = t => t.replace(/\n/g, '\u23ce').replace(/ /g, '\u00b7');

  function heatmap(canvas, attention, layer, head, big) {
    const n = attention.tokens.length, map = attention.maps[layer][head], cells = [];
    for (let q = 0; q < n; q++) for (let k = 0; k <= q; k++) cells.push({ x: k, y: q, v: map[q * n + k] / 1000 });
    // 'rect' points are squares of side radius * sqrt(2): one cell each
    const radius = c => c.chart.chartArea ? Math.min(c.chart.chartArea.width, c.chart.chartArea.height) / n / Math.SQRT2 : 1;
    const axis = reverse => ({ type: 'linear', min: -0.5, max: n - 0.5, reverse, display: big, grid: { display: false },
      afterBuildTicks: scale => { scale.ticks = attention.tokens.map((_, i) => ({ value: i })); }, // one per token
      ticks: { autoSkip: false, font: { size: 9 }, callback: v => shown(attention.tokens[v] ?? '') } });
    return new Chart(canvas, {
      type: 'scatter',
      data: { datasets: [{ data: cells, parsing: false, pointStyle: 'rect', borderWidth: 0,
        pointRadius: radius, pointHoverRadius: radius,
        backgroundColor: c => `rgba(31, 80, 180, ${Math.sqrt(c.raw ? c.raw.v : 0)})` }] },
      options: {
        events: big ? ['mousemove', 'mouseout'] : [],
        plugins: { legend: { display: false }, title: { display: big, text: `layer ${layer}, head ${head}: row = query, column = key` },
          tooltip: { enabled: big, callbacks: { label: c => `${shown(attention.tokens[c.raw.y])} \u2192 ` +
            `${shown(attention.tokens[c.raw.x])}: ${c.raw.v.toFixed(3)}` } } },
        scales: { x: Object.assign(axis(false), { ticks: Object.assign(axis(false).ticks, { maxRotation: 90, minRotation: 90 }) }),
          y: axis(true) },
        layout: { padding: big ? 4 : 0 } }
    });
  }

  function drawAttention() {
    const a = S.attention, grid = document.getElementById('attention-grid');
    attentionCharts.forEach(c => c.destroy());
    attentionCharts = [];
    grid.replaceChildren();
    if (!a) {
      grid.innerHTML = S.run.inspectable === false
        ? '<p class="empty">this model does not show its attention (the CPU models do)</p>'
        : '<p class="empty">at the first validation</p>';
      return;
    }
    document.getElementById('attention-caption').textContent =
      `step ${a.step}: every layer (rows) and head (columns) over a fixed val sequence of ${a.tokens.length} tokens; ` +
      'colour: square root of the probability; click a map for the full size';
    grid.style.gridTemplateColumns = `repeat(${a.heads}, 110px)`;
    for (let l = 0; l < a.layers; l++) {
      for (let h = 0; h < a.heads; h++) {
        const figure = document.createElement('figure'), box = document.createElement('div'), canvas = document.createElement('canvas');
        box.className = 'map';
        canvas.dataset.layer = l;
        canvas.dataset.head = h;
        box.append(canvas);
        const caption = document.createElement('figcaption');
        caption.textContent = `L${l} H${h}`;
        figure.append(box, caption);
        figure.onclick = () => openAttention(l, h);
        grid.append(figure);
        attentionCharts.push(heatmap(canvas, a, l, h, false));
      }
    }
  }

  let bigChart;
  function openAttention(layer, head) {
    const dialog = document.getElementById('attention-dialog');
    document.getElementById('attention-dialog-title').textContent = `step ${S.attention.step}`;
    dialog.showModal();
    if (bigChart) bigChart.destroy();
    bigChart = heatmap(document.getElementById('chart-attention-big'), S.attention, layer, head, true);
  }

  // ---- samples ----

  function addSample(s) {
    S.samples.push(s);
    const article = document.createElement('article'), title = document.createElement('h3'), text = document.createElement('pre');
    article.className = 'sample';
    article.dataset.step = s.step;
    title.textContent = `step ${s.step}`;
    text.textContent = s.text;
    article.append(title, text);
    document.getElementById('samples').append(article);
  }

  // ---- the state, and the events that change it ----

  function setStatus(text, kind) {
    const status = document.getElementById('status');
    status.textContent = text;
    status.className = 'status ' + (kind || '');
  }

  function summary() {
    const r = S.run, last = S.steps[S.steps.length - 1];
    const parts = [];
    if (r.parameters) parts.push(`${r.parameters.toLocaleString()} parameters`);
    if (r.batchSize) parts.push(`B=${r.batchSize}, T=${r.seqLen}` + (r.processes > 1 ? `, ${r.processes} processes` : ''));
    if (last) parts.push(`step ${last.step}` + (last.numSteps ? `/${last.numSteps}` : '') + `, loss ${last.loss.toFixed(4)}`);
    document.getElementById('summary').textContent = parts.join(' \u00b7 ');
  }

  let pending = false;
  function redraw() {
    if (pending) return;
    pending = true;
    requestAnimationFrame(() => {
      pending = false;
      Object.values(charts).forEach(c => c.update('none'));
      summary();
    });
  }

  function load(state) {
    S = { run: state.run || {}, steps: [], val: [], tensors: state.tensors || [], activations: state.activations || [],
      attention: state.attention, samples: [] };
    Object.values(charts).forEach(c => c.data.datasets.forEach(d => { d.data = []; }));
    document.getElementById('samples').replaceChildren();
    document.getElementById('title').textContent = S.run.title || 'llmc';
    (state.steps || []).forEach(addStep);
    (state.val || []).forEach(addVal);
    (state.samples || []).forEach(addSample);
    drawTensors();
    drawAttention();
    redraw();
  }

  const handlers = {
    step: p => addStep(p),
    val: v => addVal(v),
    sample: s => addSample(s),
    tensors: t => { S.tensors.push(t); drawTensors(); },
    activations: a => { S.activations.push(a); drawTensors(); },
    attention: a => { S.attention = a; drawAttention(); },
  };

  if (window.LLMC_STATE) {
    load(window.LLMC_STATE);
    setStatus(S.run.finished ? 'report of a finished run' : 'report', 'finished');
  } else if (window.LLMC_LIVE) {
    const events = new EventSource('events');
    events.addEventListener('state', e => { load(JSON.parse(e.data)); setStatus(S.run.finished ? 'finished' : 'live', S.run.finished ? 'finished' : 'live'); });
    for (const [name, handle] of Object.entries(handlers)) {
      events.addEventListener(name, e => { handle(JSON.parse(e.data)); redraw(); });
    }
    events.addEventListener('end', () => { events.close(); setStatus('finished', 'finished'); });
    events.onerror = () => { if (events.readyState === EventSource.CLOSED) setStatus('disconnected', 'lost'); else setStatus('reconnecting', 'lost'); };
    events.onopen = () => setStatus('live', 'live');
  } else {
    setStatus('no data (open the page the run serves, or a report)', 'lost');
  }
  // the errors once the page has loaded, for a check that reads only the DOM (docs/check-site.sh): data-errors="[]"
  addEventListener('load', () => { document.documentElement.dataset.errors = JSON.stringify(llmcErrors); });
})();
