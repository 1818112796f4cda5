// "Why this value?": one unit of a feature map (or a logit), forward and backward, as computed
// by cnnlab.explain.explain_pixel / explain_dense on the server (the same code as `cnnlab explain`).
import { api, state } from "./app.js";
import { decode, fmt, heatmap, legend } from "./plots.js";

let whyCount = 0;

export function initWhy() {
  document.getElementById("why-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const v = (id) => Number(document.getElementById(id).value);
    explain(v("why-layer"), v("why-channel"), v("why-row"), v("why-col"));
  });
}

/** Fill the layer menu from the Model data: layers with a feature map, and Dense layers. */
export function fillLayers(model) {
  const select = document.getElementById("why-layer");
  select.replaceChildren();
  for (const layer of model.layers) {
    if (layer.output_shape.length !== 3 && layer.kind !== "Dense") continue;
    const option = document.createElement("option");
    option.value = layer.index;
    option.textContent = `${layer.index}: ${layer.name} (${layer.kind}) ${layer.output_shape.join("x")}`;
    select.append(option);
  }
}

export async function explain(layer, channel, row, col) {
  if (!state.draw) return;
  document.getElementById("why-layer").value = layer;
  document.getElementById("why-channel").value = channel;
  document.getElementById("why-row").value = row;
  document.getElementById("why-col").value = col;
  let e;
  try {
    e = await api("/api/explain", { method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ pixels: state.draw.pixels.data, layer, channel, row, col }) });
  } catch (err) { return; }
  state.why = e;
  render(e);
}

function render(e) {
  whyCount += 1;
  document.getElementById("why-empty").hidden = true;
  const box = document.getElementById("why-result");
  box.hidden = false;
  const [, H, W] = state.draw.pixels.shape;
  const cell = Math.max(1, Math.floor(224 / W));
  const title = document.getElementById("why-title");
  title.textContent = e.kind === "dense"
    ? `Layer ${e.layer} (${e.layer_name}), unit ${e.unit} = ${fmt(e.value, 6)}`
    : `Layer ${e.layer} (${e.layer_name}, ${e.layer_kind}), channel ${e.channel} at (${e.at[0]}, ${e.at[1]}) = ${fmt(e.value, 6)}`;
  title.dataset.count = whyCount;
  // input with the receptive field outlined
  const input = document.getElementById("why-input");
  heatmap(input, Float32Array.from(state.draw.pixels.data), 0, H, W, "sequential", 255, cell);
  const field = document.getElementById("why-field");
  if (e.field) {
    outline(input, e.field, cell);
    field.textContent = `The unit sees input rows ${e.field.rows[0]}..${e.field.rows[1]}, columns ${e.field.cols[0]}..${e.field.cols[1]} ` +
      `(a ${e.field.size[0]}x${e.field.size[1]} receptive field, cut at the border).`;
  } else {
    field.textContent = "A Dense unit sees the whole input.";
  }
  renderForward(e);
  // backward
  const g = decode(e.grad_input);
  let m = 0;
  for (const v of g.data) m = Math.max(m, Math.abs(v));
  const grad = document.getElementById("why-grad");
  heatmap(grad, g.data, 0, H, W, "diverging", m, cell);
  if (e.field) outline(grad, e.field, cell);
  document.getElementById("why-grad-legend").replaceChildren(
    legend("diverging", -m, m, "red: raising this pixel raises the value; blue: lowers it; white: no effect"));
  const steps = document.getElementById("why-steps");
  steps.replaceChildren();
  for (const s of e.steps) {
    const d = decode(s.map);
    const [h, w] = d.shape;
    let mx = 0;
    for (const v of d.data) mx = Math.max(mx, v);
    const fig = document.createElement("figure");
    const cv = heatmap(document.createElement("canvas"), d.data, 0, h, w, "sequential", mx, Math.max(1, Math.floor(112 / w)));
    const cap = document.createElement("figcaption");
    cap.textContent = `after ${s.after} (${s.kind}) backward: ${s.nonzero} non-zero`;
    fig.append(cv, cap);
    steps.append(fig);
  }
  document.getElementById("why-text").textContent = e.text;
}

function outline(canvas, f, cell) {
  const ctx = canvas.getContext("2d");
  ctx.strokeStyle = "#f39c12";
  ctx.lineWidth = 2;
  ctx.strokeRect(f.cols[0] * cell + 1, f.rows[0] * cell + 1, (f.cols[1] - f.cols[0] + 1) * cell - 2,
    (f.rows[1] - f.rows[0] + 1) * cell - 2);
}

function row(table, label, value, id = null) {
  const tr = document.createElement("tr");
  const th = document.createElement("th");
  th.textContent = label;
  const td = document.createElement("td");
  td.textContent = typeof value === "number" ? fmt(value, 7) : value;
  if (id) { td.id = id; if (typeof value === "number") td.dataset.value = value; }
  tr.append(th, td);
  table.append(tr);
}

function grid3(title, arr, digits = 3) {
  const d = decode(arr);
  const [h, w] = d.shape;
  const wrap = document.createElement("div");
  wrap.className = "grid3";
  wrap.style.gridTemplateColumns = `repeat(${w}, auto)`;
  const cap = document.createElement("strong");
  cap.textContent = title;
  cap.style.gridColumn = `1 / span ${w}`;
  wrap.append(cap);
  for (let k = 0; k < h * w; k++) {
    const s = document.createElement("span");
    s.textContent = fmt(d.data[k], digits);
    wrap.append(s);
  }
  return wrap;
}

function renderForward(e) {
  const table = document.getElementById("why-forward");
  table.replaceChildren();
  const win = document.getElementById("why-window");
  win.replaceChildren();
  const sums = document.getElementById("why-sums");
  const notes = document.getElementById("why-notes");
  notes.replaceChildren();
  if (e.kind === "dense") {
    sums.hidden = true;
    const terms = document.createElement("table");
    terms.className = "numbers";
    terms.innerHTML = "<tr><th>input</th><th>x</th><th>w</th><th>x * w</th></tr>";
    for (const t of e.top_terms) {
      const tr = document.createElement("tr");
      for (const v of [t.input, fmt(t.x), fmt(t.w), fmt(t.product)]) {
        const td = document.createElement("td");
        td.textContent = v;
        tr.append(td);
      }
      terms.append(tr);
    }
    const cap = document.createElement("p");
    cap.className = "note";
    cap.textContent = `The ${e.top_terms.length} largest of the ${e.n_terms} products input x weight:`;
    win.append(cap, terms);
    row(table, `sum of all ${e.n_terms} products`, e.terms_sum);
    row(table, "+ bias", e.bias);
    row(table, "= forward sum", e.pre_activation, "why-sum");
    row(table, "the model's own value", e.model_value, "why-value");
    return;
  }
  if (e.window) {
    win.append(grid3("input window", e.window.patch), grid3("filter", e.window.kernel), grid3("products", e.window.terms));
  }
  sums.hidden = e.channel_sums.length === 1;  // one channel: the window above shows every product
  drawSums(sums, e.channel_sums);
  row(table, `sum over ${e.channel_sums.length} input channel(s) of their partial sums`,
    e.channel_sums.reduce((a, b) => a + b, 0));
  row(table, "+ bias", e.bias);
  row(table, "= forward sum (pre-activation)", e.pre_activation, "why-sum");
  row(table, `the model's own ${e.conv.name} output`, e.model_pre_activation, "why-conv-value");
  if (e.activation_name) row(table, `after ${e.activation_name}`, e.activation);
  if (e.pool) {
    row(table, `max pool cell (${e.pool.cell.join(", ")})`,
      `window max ${fmt(e.pool.max, 6)} at (${e.pool.argmax.join(", ")}): ` +
      (e.pool.is_max ? "this unit is the max, the pool passes it on and routes the gradient back here"
        : "not this unit: the pool passes on another value and sends this unit no gradient"));
  }
  row(table, `value of the clicked unit (${e.layer_kind})`, e.value, "why-value");
  for (const n of e.notes) {
    const li = document.createElement("li");
    li.textContent = n;
    notes.append(li);
  }
}

function drawSums(canvas, values) {
  const ctx = canvas.getContext("2d");
  const W = canvas.width, H = canvas.height, mid = H / 2;
  ctx.clearRect(0, 0, W, H);
  const m = Math.max(1e-12, ...values.map(Math.abs));
  const bw = Math.max(2, Math.floor((W - 40) / values.length) - 1);
  ctx.font = "11px system-ui, sans-serif";
  ctx.fillStyle = "#5b6475";
  ctx.fillText(`partial sum per input channel (max |value| ${fmt(m, 3)})`, 4, 12);
  ctx.strokeStyle = "#999";
  ctx.beginPath(); ctx.moveTo(0, mid); ctx.lineTo(W, mid); ctx.stroke();
  values.forEach((v, k) => {
    ctx.fillStyle = v >= 0 ? "#d64545" : "#3b6fd6";
    const h = ((H / 2 - 16) * Math.abs(v)) / m;
    ctx.fillRect(30 + k * (bw + 1), v >= 0 ? mid - h : mid, bw, h);
  });
}
