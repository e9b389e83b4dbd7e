// ecco-rs report: renders the views embedded as JSON in #ecco-data. Text goes in with
// textContent only, never as markup, so token text cannot inject anything.
(function () {
  'use strict';
  var t0 = performance.now();
  var data = JSON.parse(document.getElementById('ecco-data').textContent);
  var toks = data.tokens.tokens;
  var root = document.getElementById('ecco-root');

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  function svgEl(tag, attrs) {
    var e = document.createElementNS('http://www.w3.org/2000/svg', tag);
    for (var k in attrs) e.setAttribute(k, attrs[k]);
    return e;
  }
  // Viridis, sampled at ten stops (matplotlib's table).
  var VIR = [[68,1,84],[72,40,120],[62,74,137],[49,104,142],[38,130,142],[31,158,137],[53,183,121],[109,205,89],[180,222,44],[253,231,37]];
  function viridis(t) {
    t = Math.max(0, Math.min(1, isFinite(t) ? t : 0));
    var x = t * (VIR.length - 1), i = Math.min(VIR.length - 2, Math.floor(x)), f = x - i;
    var a = VIR[i], b = VIR[i + 1];
    return 'rgb(' + Math.round(a[0] + (b[0] - a[0]) * f) + ',' + Math.round(a[1] + (b[1] - a[1]) * f) + ',' + Math.round(a[2] + (b[2] - a[2]) * f) + ')';
  }
  function ink(t) { return t > 0.55 ? '#111' : '#fff'; }
  var PALETTE = ['#1f77b4','#ff7f0e','#2ca02c','#d62728','#9467bd','#8c564b','#e377c2','#7f7f7f','#bcbd22','#17becf'];
  function shown(text) { return text.replace(/\n/g, '\u21b5').replace(/\t/g, '\u21e5'); }
  function fmt(x) { return x >= 0.01 || x === 0 ? x.toFixed(3) : x.toExponential(1); }

  function section(id, title, note) {
    var s = el('section'); s.id = id;
    s.appendChild(el('h2', null, title));
    if (note) s.appendChild(el('p', 'note', note));
    root.appendChild(s);
    var a = el('a', null, title); a.href = '#' + id;
    document.getElementById('ecco-nav').appendChild(a);
    return s;
  }
  function scaleBar(label0, label1) {
    var wrap = el('span');
    var c = document.createElement('canvas'); c.width = 120; c.height = 10; c.className = 'scale';
    var g = c.getContext('2d');
    for (var x = 0; x < 120; x++) { g.fillStyle = viridis(x / 119); g.fillRect(x, 0, 1, 10); }
    wrap.appendChild(el('span', null, label0 + ' '));
    wrap.appendChild(c);
    wrap.appendChild(el('span', null, ' ' + label1));
    return wrap;
  }

  // A strip of tokens `0..n`; tokens for which `selectable(i)` holds take the keyboard focus,
  // and focusing, hovering or clicking one calls `onSelect(i)`. Arrow keys move between them.
  function strip(parent, n, selectable, onSelect) {
    var box = el('div', 'strip');
    var spans = [];
    for (var i = 0; i < n; i++) {
      var t = toks[i];
      var s = el('span', 'tok ' + (t.generated ? 'gen' : 'inp') + (t.word_start ? '' : ' cont'), shown(t.text));
      s.dataset.i = i;
      s.title = t.raw + ' (id ' + t.id + ', index ' + i + ')';
      if (selectable && selectable(i)) {
        s.tabIndex = 0;
        (function (j, span) {
          var go = function () { onSelect(j); };
          span.addEventListener('mouseenter', go);
          span.addEventListener('focus', go);
          span.addEventListener('click', go);
          span.addEventListener('keydown', function (ev) {
            var step = ev.key === 'ArrowRight' ? 1 : ev.key === 'ArrowLeft' ? -1 : 0;
            if (!step) return;
            for (var k = j + step; k >= 0 && k < n; k += step) {
              if (spans[k].tabIndex === 0) { spans[k].focus(); ev.preventDefault(); break; }
            }
          });
        })(i, s);
      }
      spans.push(s);
      box.appendChild(s);
    }
    parent.appendChild(box);
    return spans;
  }
  // Colours `spans` by `weights` (index -> weight), scaled to the largest weight.
  function paint(spans, weights) {
    var max = 0;
    weights.forEach(function (w) { if (w > max) max = w; });
    for (var i = 0; i < spans.length; i++) {
      var s = spans[i];
      var w = weights.get(i);
      if (w === undefined || max <= 0) {
        if (s.classList.contains('hl')) { s.classList.remove('hl'); s.style.backgroundColor = ''; s.style.color = ''; delete s.dataset.w; }
        continue;
      }
      var t = w / max;
      s.classList.add('hl');
      s.dataset.w = w;
      s.style.backgroundColor = viridis(t);
      s.style.color = ink(t);
    }
  }
  function mark(spans, i) {
    spans.forEach(function (s) { s.classList.remove('sel'); });
    if (spans[i]) spans[i].classList.add('sel');
  }

  function outputView() {
    var s = section('v-output', 'Output sequence', data.tokens.n_input + ' input tokens (grey underline), ' + (toks.length - data.tokens.n_input) + ' generated (red underline). Model: ' + data.model.name + ' (' + data.model.family + ', ' + data.model.n_layers + ' layers).');
    strip(s, toks.length, null, null);
  }

  function attributionView(a, idx) {
    var s = section('v-attr-' + idx, 'Attribution: ' + a.method, 'Hover, focus or tap a generated token: the tokens it read are coloured by their share of the attribution.');
    s.dataset.view = 'attribution';
    var legend = el('div', 'legend');
    legend.appendChild(scaleBar('low', 'high'));
    s.appendChild(legend);
    var status = el('div', 'status');
    var spans;
    var detail = el('div', 'detail');
    function select(i) {
      var row = a.rows[i - a.first_target];
      if (!row) return;
      var m = new Map();
      row.forEach(function (w, j) { m.set(j, w); });
      paint(spans, m);
      mark(spans, i);
      status.textContent = 'Token ' + i + ' ' + JSON.stringify(toks[i].text) + ' read ' + row.length + ' tokens.';
      var order = row.map(function (w, j) { return j; }).sort(function (x, y) { return row[y] - row[x]; }).slice(0, 15);
      var table = el('table');
      var max = row[order[0]] || 1;
      order.forEach(function (j) {
        var tr = el('tr');
        tr.appendChild(el('td', null, j));
        tr.appendChild(el('td', null, JSON.stringify(toks[j].text)));
        tr.appendChild(el('td', null, fmt(row[j])));
        var bc = el('td', 'barcell'); var b = el('div', 'bar'); b.style.width = (100 * row[j] / max) + '%'; bc.appendChild(b);
        tr.appendChild(bc);
        table.appendChild(tr);
      });
      detail.replaceChildren(el('div', 'note', 'Detailed: the ' + order.length + ' largest of ' + row.length + ' values'), table);
    }
    spans = strip(s, toks.length, function (i) { return i >= a.first_target && i - a.first_target < a.rows.length; }, select);
    s.appendChild(status);
    s.appendChild(detail);
    if (a.rows.length) select(a.first_target);
  }

  function predictionsView(p) {
    var s = section('v-preds', 'Layer predictions', 'Per layer, the top ' + (p.predictions[0] || []).length + ' tokens the ' + p.lens + ' logit lens predicts for position ' + p.position + (toks[p.position] ? ' (actual: ' + JSON.stringify(toks[p.position].text) + ')' : '') + '.');
    var table = el('table', 'preds');
    p.predictions.forEach(function (row, li) {
      var tr = el('tr');
      tr.appendChild(el('td', null, 'layer ' + p.layers[li]));
      row.forEach(function (q) {
        var td = el('td', 'pred');
        td.appendChild(el('div', 't', shown(q.text)));
        var b = el('div', 'bar'); b.style.width = Math.max(1, 100 * q.prob) + '%'; td.appendChild(b);
        td.appendChild(el('div', 'note', (100 * q.prob).toFixed(1) + '%'));
        td.title = q.token + ' (id ' + q.token_id + ', rank ' + q.ranking + ')';
        tr.appendChild(td);
      });
      table.appendChild(tr);
    });
    s.appendChild(el('div', 'scroll')).appendChild(table);
  }

  // A heatmap table: rows x columns, colour by `colour(v)` in [0, 1], text in cells.
  function heat(parent, rowLabels, colLabels, values, colour, text) {
    var table = el('table', 'heat');
    var head = el('thead'), hr = el('tr');
    hr.appendChild(el('th'));
    colLabels.forEach(function (c) { hr.appendChild(el('th', null, c)); });
    head.appendChild(hr); table.appendChild(head);
    var body = el('tbody');
    values.forEach(function (row, r) {
      var tr = el('tr');
      tr.appendChild(el('th', null, rowLabels[r]));
      row.forEach(function (v, c) {
        var t = colour(v, r, c);
        var td = el('td', null, text ? text(v) : null);
        td.style.backgroundColor = viridis(t);
        td.style.color = ink(t);
        td.title = rowLabels[r] + ', ' + colLabels[c] + ': ' + v;
        tr.appendChild(td);
      });
      body.appendChild(tr);
    });
    table.appendChild(body);
    parent.appendChild(el('div', 'scroll')).appendChild(table);
  }
  function rankColour(vocab) {
    var top = Math.log(Math.max(2, vocab));
    return function (r) { return 1 - Math.log(Math.max(1, r)) / top; };
  }

  function rankingsView(r) {
    var s = section('v-rankings', 'Rankings', 'Rank of each generated token at every layer (' + r.lens + ' lens; 1 = top prediction; log colour scale).');
    s.appendChild(el('div', 'legend')).appendChild(scaleBar('rank ' + r.vocab_size, 'rank 1'));
    heat(s, r.layers.map(function (l) { return 'layer ' + l; }), r.tokens.map(shown), r.rankings, rankColour(r.vocab_size), String);
  }

  function watchView(r) {
    var s = section('v-watch', 'Rankings of watched tokens', 'Rank of each watched token at position ' + r.position + ', per layer (' + r.lens + ' lens).');
    s.appendChild(el('div', 'legend')).appendChild(scaleBar('rank ' + r.vocab_size, 'rank 1'));
    heat(s, r.layers.map(function (l) { return 'layer ' + l; }), r.tokens.map(shown), r.rankings, rankColour(r.vocab_size), String);
  }

  function nmfView(f) {
    var s = section('v-nmf', 'NMF factors', f.components.length + ' factors of the FFN activations of layers ' + f.layers.join(', ') + ' (reconstruction error ' + f.reconstruction_error.toFixed(3) + '). Tokens take the colour of their strongest enabled factor; toggle factors on and off.');
    var n = f.components.length ? f.components[0].length : 0;
    var on = f.components.map(function () { return true; });
    var maxes = f.components.map(function (c) { return Math.max.apply(null, c.concat([1e-12])); });
    var list = el('div');
    var spans;
    var status = el('div', 'status');
    function recolour() {
      for (var i = 0; i < spans.length; i++) {
        var best = -1, bv = 0;
        for (var k = 0; k < f.components.length; k++) {
          if (!on[k]) continue;
          var v = f.components[k][i] / maxes[k];
          if (v > bv) { bv = v; best = k; }
        }
        var sp = spans[i];
        sp.style.backgroundColor = best < 0 ? '' : PALETTE[best % PALETTE.length];
        sp.style.opacity = best < 0 ? '1' : String(0.25 + 0.75 * bv);
        sp.style.color = best < 0 ? '' : '#fff';
        sp.dataset.factor = best;
      }
    }
    f.components.forEach(function (c, k) {
      var row = el('label', 'factor');
      var box = el('input'); box.type = 'checkbox'; box.checked = true;
      box.addEventListener('change', function () { on[k] = box.checked; row.classList.toggle('off', !box.checked); recolour(); });
      var sw = el('span', 'swatch'); sw.style.backgroundColor = PALETTE[k % PALETTE.length];
      row.appendChild(box); row.appendChild(sw); row.appendChild(el('span', null, 'factor ' + k));
      var w = Math.max(200, Math.min(800, n * 3)), h = 28;
      var svg = svgEl('svg', { width: w, height: h, viewBox: '0 0 ' + w + ' ' + h, role: 'img' });
      var pts = c.map(function (v, i) { return (n > 1 ? i * (w - 2) / (n - 1) + 1 : w / 2).toFixed(1) + ',' + (h - 2 - (h - 4) * v / maxes[k]).toFixed(1); }).join(' ');
      svg.appendChild(svgEl('polyline', { points: pts, fill: 'none', stroke: PALETTE[k % PALETTE.length], 'stroke-width': '1.5' }));
      row.appendChild(svg);
      var top = (f.loadings[k] || []).slice(0, 3).map(function (q) { return 'L' + q.layer + ' N' + q.neuron; }).join(', ');
      if (top) row.appendChild(el('span', 'note', 'top neurons: ' + top));
      list.appendChild(row);
    });
    s.appendChild(list);
    spans = strip(s, Math.min(n, toks.length), function () { return true; }, function (i) {
      status.textContent = 'Token ' + i + ' ' + JSON.stringify(toks[i].text) + ': ' + f.components.map(function (c, k) { return 'f' + k + ' ' + fmt(c[i]); }).join(', ');
    });
    s.appendChild(status);
    recolour();
  }

  function attentionView(a) {
    var s = section('v-attention', 'Attention', 'Pick a layer and a head, then hover or focus a token: the tokens it attends to are coloured by weight (the ' + a.top_k + ' strongest keys per token are kept).');
    var controls = el('div', 'controls');
    var layerSel = el('select'), headSel = el('select');
    a.layers.forEach(function (l, i) { var o = el('option', null, 'layer ' + l); o.value = i; layerSel.appendChild(o); });
    var mo = el('option', null, 'mean of heads'); mo.value = -1; headSel.appendChild(mo);
    for (var h = 0; h < a.n_heads; h++) { var o = el('option', null, 'head ' + h); o.value = h; headSel.appendChild(o); }
    controls.appendChild(layerSel); controls.appendChild(headSel);
    controls.appendChild(scaleBar('0', 'max'));
    s.appendChild(controls);
    var current = 0, spans;
    function select(i) {
      current = i;
      var l = +layerSel.value, h = +headSel.value;
      var flat = h < 0 ? a.mean[l][i] : a.heads[l][h][i];
      var m = new Map();
      for (var j = 0; j + 1 < flat.length; j += 2) m.set(flat[j], flat[j + 1] / 255);
      paint(spans, m);
      mark(spans, i);
    }
    spans = strip(s, Math.min(a.n_positions, toks.length), function () { return true; }, select);
    layerSel.addEventListener('change', function () { select(current); });
    headSel.addEventListener('change', function () { select(current); });
    if (a.n_positions) select(a.n_positions - 1);
  }

  function neuronsView(nv) {
    var s = section('v-neurons', 'Neuron activations', 'Activation of each chosen neuron at every position (colour scaled per neuron to its largest magnitude).');
    var labels = nv.neurons.map(function (q) { return 'L' + q.layer + ' N' + q.neuron; });
    var n = nv.values.length ? nv.values[0].length : 0;
    var cols = toks.slice(0, n).map(function (t) { return shown(t.text); });
    var maxes = nv.values.map(function (row) { return row.reduce(function (m, v) { return Math.max(m, Math.abs(v)); }, 1e-12); });
    heat(s, labels, cols, nv.values, function (v, r) { return 0.5 + 0.5 * v / maxes[r]; }, null);
  }

  // One chart: the x axis is the fraction of tokens removed (or restored), the y axis the mean
  // probability of the predicted token; one line per method, the random ranking dashed.
  function curveChart(parent, title, grid, rows, pick) {
    var W = 360, H = 220, L = 40, R = 18, T = 22, B = 34;
    var svg = svgEl('svg', { width: W, height: H, viewBox: '0 0 ' + W + ' ' + H, role: 'img', 'aria-label': title, 'class': 'chart' });
    var ymax = 1e-9;
    rows.forEach(function (r) { pick(r).forEach(function (v) { if (v > ymax) ymax = v; }); });
    var x = function (f) { return L + (W - L - R) * f; };
    var y = function (v) { return H - B - (H - T - B) * v / ymax; };
    var t = svgEl('text', { x: L, y: 14, 'class': 'ct' }); t.textContent = title; svg.appendChild(t);
    svg.appendChild(svgEl('line', { x1: L, y1: H - B, x2: W - R, y2: H - B, stroke: '#999' }));
    svg.appendChild(svgEl('line', { x1: L, y1: T, x2: L, y2: H - B, stroke: '#999' }));
    [0, 0.5, 1].forEach(function (f) {
      var a = svgEl('text', { x: x(f), y: H - B + 14, 'text-anchor': 'middle', 'class': 'ax' }); a.textContent = Math.round(f * 100) + '%'; svg.appendChild(a);
      var b = svgEl('text', { x: L - 4, y: y(f * ymax) + 4, 'text-anchor': 'end', 'class': 'ax' }); b.textContent = fmt(f * ymax); svg.appendChild(b);
    });
    var xl = svgEl('text', { x: (L + W - R) / 2, y: H - 4, 'text-anchor': 'middle', 'class': 'ax' }); xl.textContent = 'tokens ' + (title.indexOf('Insertion') === 0 ? 'restored' : 'removed'); svg.appendChild(xl);
    rows.forEach(function (r, k) {
      var pts = pick(r).map(function (v, i) { return x(grid[i]).toFixed(1) + ',' + y(v).toFixed(1); }).join(' ');
      var attrs = { points: pts, fill: 'none', stroke: r.random ? '#555' : PALETTE[k % PALETTE.length], 'stroke-width': '1.8' };
      if (r.random) attrs['stroke-dasharray'] = '5,4';
      svg.appendChild(svgEl('polyline', attrs));
    });
    parent.appendChild(svg);
  }

  function evaluationView(e) {
    var s = section('v-evaluation', 'Faithfulness of the attributions',
      'The probability of each predicted token as the tokens a method ranks highest are removed (deletion: lower is better) or restored to an emptied input (insertion: higher is better), averaged over ' +
      e.n_predictions + ' prediction(s); removed tokens ' + (e.baseline === 'drop' ? 'dropped' : 'replaced by the ' + e.baseline + ' token') + '. Comprehensiveness (higher is better) and sufficiency (lower is better) are ERASER\'s AOPC over the top 1, 5, 10, 20 and 50 % of the tokens. The dashed line is a seeded random ranking.');
    var legend = el('div', 'legend');
    e.rows.forEach(function (r, k) {
      var item = el('span');
      var sw = el('span', 'swatch'); sw.style.background = r.random ? '#555' : PALETTE[k % PALETTE.length];
      item.appendChild(sw); item.appendChild(el('span', null, r.method)); legend.appendChild(item);
    });
    s.appendChild(legend);
    var charts = el('div', 'charts');
    curveChart(charts, 'Deletion', e.grid, e.rows, function (r) { return r.deletion; });
    curveChart(charts, 'Insertion', e.grid, e.rows, function (r) { return r.insertion; });
    s.appendChild(charts);
    var table = el('table', 'scores');
    var head = el('tr');
    ['method', 'deletion AUC \u2193', 'insertion AUC \u2191', 'comprehensiveness \u2191', 'sufficiency \u2193'].forEach(function (h) { head.appendChild(el('th', null, h)); });
    table.appendChild(head);
    e.rows.forEach(function (r) {
      var tr = el('tr', r.random ? 'random' : null);
      tr.appendChild(el('td', null, r.method));
      [r.deletion_auc, r.insertion_auc, r.comprehensiveness, r.sufficiency].forEach(function (v) { tr.appendChild(el('td', 'num', v.toFixed(3))); });
      table.appendChild(tr);
    });
    s.appendChild(table);
  }

  outputView();
  data.attributions.forEach(attributionView);
  if (data.layer_predictions) predictionsView(data.layer_predictions);
  if (data.rankings) rankingsView(data.rankings);
  if (data.rankings_watch) watchView(data.rankings_watch);
  if (data.nmf) nmfView(data.nmf);
  if (data.attention) attentionView(data.attention);
  if (data.neurons) neuronsView(data.neurons);
  if (data.evaluation) evaluationView(data.evaluation);
  window.eccoRenderMs = performance.now() - t0;
  document.documentElement.dataset.ready = 'true';
})();
