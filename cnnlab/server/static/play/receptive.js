// Playground "receptive": a stack of conv/pool layers on an input. The server (POST /api/play/receptive)
// computes every output size, receptive field, jump, coverage and box; this page only draws them.
import { showMessage } from "../app.js";
import { el, play } from "./common.js";

const COLORS = ["#1d2330", "#2456c9", "#d35400", "#16a085", "#8e44ad", "#c0392b", "#7f8c8d", "#b7950b"];
const VIEW_PX = 440; // the input drawing's largest side
const UNITS_PX = 220; // the last layer's drawing

const state = { height: 7, width: 7, layers: [], unit: null, body: null };
let parts; // the page's containers, built once

export async function init(section) {
  parts = buildPage(section);
  await request();
}

// ----- the page ---------------------------------------------------------------------------------
function buildPage(section) {
  const p = {
    presets: el("div", { class: "controls rf-presets" }),
    size: el("div", { class: "controls wrap" }),
    stack: el("ol", { class: "rf-stack" }),
    error: el("p", { class: "rf-error", role: "alert", hidden: "" }),
    erratum: el("p", { class: "rf-erratum" }),
    table: el("div", { class: "rf-table" }),
    unitControls: el("div", { class: "controls wrap" }),
    input: el("canvas", { class: "rf-input", "aria-label": "input grid with the chosen unit's receptive fields" }),
    units: el("canvas", { class: "rf-units", "aria-label": "last layer's output: click a unit" }),
    legend: el("ol", { class: "rf-legend" }),
  };
  const addButtons = el("div", { class: "controls" },
    el("button", { type: "button", class: "rf-add-conv", text: "+ conv 3x3", onclick: () => addLayer("conv") }),
    el("button", { type: "button", class: "rf-add-pool", text: "+ pool 2x2", onclick: () => addLayer("pool") }));
  section.append(
    el("h2", { text: "Receptive field and output size" }),
    el("p", { class: "note", text: "Stack convolution and pooling layers on an input. Each row gives the layer's output "
      + "size, its receptive field r (how many input pixels one output unit sees, per side), its jump j (how far apart, "
      + "in input pixels, neighbouring units' fields are) and how much of the input the field covers." }),
    p.erratum,
    el("div", { class: "row" },
      el("div", { class: "panel rf-controls" }, el("h3", { text: "Presets" }), p.presets, el("h3", { text: "Input" }),
        p.size, el("h3", { text: "Layers" }), p.stack, addButtons, p.error),
      el("div", { class: "panel grow" }, el("h3", { text: "Per layer" }), p.table)),
    el("div", { class: "row" },
      el("div", { class: "panel" }, el("h3", { text: "The chosen unit's fields on the input" }), p.input,
        el("p", { class: "note", text: "Each box is the field of one unit: the chosen unit of the last layer, and in "
          + "every earlier layer the unit at the centre of the window that leads to it. Hatched cells are padding." })),
      el("div", { class: "panel" }, el("h3", { text: "Last layer's output" }), p.unitControls, p.units,
        el("p", { class: "note", text: "Click a unit to choose it." })),
      el("div", { class: "panel grow" }, el("h3", { text: "Boxes, innermost first" }), p.legend)));
  p.units.addEventListener("click", onUnitClick);
  return p;
}

// ----- talking to the server --------------------------------------------------------------------
async function request(keepUnit = false) {
  const settings = { height: state.height, width: state.width };
  if (state.layers.length) settings.layers = state.layers;
  if (keepUnit && state.unit) settings.unit = state.unit;
  let body;
  try {
    body = await play("receptive", settings);
  } catch (err) { // the server's message, shown beside the stack (and not twice), with the refused stack
    showMessage("");
    showError(err.message);
    renderSize();
    renderStack();
    return;
  }
  showError("");
  showMessage("");
  Object.assign(state, { body, height: body.height, width: body.width, unit: body.unit,
    layers: body.layers.slice(1).map(({ kind, kernel, stride, padding, label }) => ({ kind, kernel, stride, padding, label })) });
  render(body);
}

/** The server's refusal beside the stack; the results below stay those of the last valid stack, dimmed. */
function showError(text) {
  parts.error.textContent = text;
  parts.error.hidden = !text;
  parts.table.classList.toggle("stale", Boolean(text));
}

function render(body) {
  renderPresets(body.presets);
  renderSize();
  renderStack();
  parts.erratum.textContent = body.erratum.text;
  parts.table.replaceChildren(layerTable(body));
  renderUnitControls(body);
  drawInput(body);
  drawUnits(body);
  renderLegend(body);
}

// ----- controls ---------------------------------------------------------------------------------
function renderPresets(presets) {
  parts.presets.replaceChildren(...presets.map((preset) => el("button", {
    type: "button", "data-preset": preset.name, text: `${preset.name} (${preset.height}x${preset.width})`,
    onclick: () => {
      Object.assign(state, { height: preset.height, width: preset.width, layers: preset.layers.map((l) => ({ ...l })) });
      request();
    },
  })));
}

function numberInput(label, value, min, max, onChange, cls = "") {
  const input = el("input", { type: "number", min, max, step: 1, value, class: cls });
  input.addEventListener("change", () => onChange(Number(input.value)));
  return el("label", {}, label, input);
}

function renderSize() {
  parts.size.replaceChildren(
    numberInput("height H", state.height, 1, 1024, (v) => { state.height = v; request(); }, "rf-height"),
    numberInput("width W", state.width, 1, 1024, (v) => { state.width = v; request(); }, "rf-width"));
}

function renderStack() {
  parts.stack.replaceChildren(...state.layers.map((layer, i) => el("li", { "data-layer": i + 1 },
    kindSelect(layer, i),
    numberInput("kernel", layer.kernel, 1, 11, (v) => editLayer(i, { kernel: v }), "rf-kernel"),
    numberInput("stride", layer.stride, 1, 5, (v) => editLayer(i, { stride: v }), "rf-stride"),
    numberInput("padding", layer.padding, 0, 5, (v) => editLayer(i, { padding: v }), "rf-padding"),
    el("button", { type: "button", class: "rf-remove", title: "remove this layer", "aria-label": `remove layer ${i + 1}`,
      text: "×", onclick: () => removeLayer(i) }))));
}

function kindSelect(layer, i) {
  const select = el("select", { class: "rf-kind", "aria-label": "layer kind" },
    el("option", { value: "conv", text: "conv" }), el("option", { value: "pool", text: "pool" }));
  select.value = layer.kind;
  select.addEventListener("change", () => {
    editLayer(i, { kind: select.value, label: select.value === "conv" ? "Conv2d" : "MaxPool2d" });
  });
  return el("label", {}, "kind", select);
}

function editLayer(i, change) {
  state.layers[i] = { ...state.layers[i], ...change };
  request();
}

function addLayer(kind) {
  const layer = kind === "conv" ? { kind, kernel: 3, stride: 1, padding: 0, label: "Conv2d" }
    : { kind, kernel: 2, stride: 2, padding: 0, label: "MaxPool2d" };
  state.layers.push(layer);
  request();
}

function removeLayer(i) {
  if (state.layers.length === 1) { showError("The stack needs at least one layer."); return; }
  state.layers.splice(i, 1);
  request();
}

function renderUnitControls(body) {
  const [h, w] = body.layers[body.layers.length - 1].out;
  const choose = (axis) => (v) => { state.unit[axis] = v; request(true); };
  parts.unitControls.replaceChildren(
    numberInput(`row (0-${h - 1})`, body.unit[0], 0, h - 1, choose(0), "rf-unit-row"),
    numberInput(`col (0-${w - 1})`, body.unit[1], 0, w - 1, choose(1), "rf-unit-col"));
}

// ----- the table --------------------------------------------------------------------------------
function layerTable(body) {
  const square = body.height === body.width;
  const head = el("tr", {}, ...["#", "layer", "k / s / p", "output size  ⌊(n + 2p − k) / s⌋ + 1",
    "receptive field r = r′ + (k − 1)·j′", "jump j = j′·s", "covers (r×r on the input)"]
    .map((text) => el("th", { text })));
  const rows = body.layers.map((layer) => el("tr", { "data-layer": layer.index, style: `--c: ${color(layer.index)}` },
    el("td", { class: "swatch", text: String(layer.index) }),
    el("td", { class: "label", text: layer.label }),
    el("td", { class: "ksp", text: layer.kind === "input" ? "" : `${layer.kernel} / ${layer.stride} / ${layer.padding}` }),
    valueCell("out", pair(layer.out), outputFormulas(layer, square)),
    valueCell("rf", pair(layer.rf), layer.rf_formula ? [layer.rf_formula] : []),
    valueCell("jump", String(layer.jump[0]), layer.jump_formula ? [layer.jump_formula] : []),
    valueCell("cover", `${layer.coverage.clipped[0]}×${layer.coverage.clipped[1]}`, [layer.coverage.text])));
  return el("table", { class: "numbers rf-layers" }, el("thead", {}, head), el("tbody", {}, ...rows));
}

/** A cell: the value in bold, the arithmetic that gives it underneath. */
function valueCell(cls, value, lines) {
  return el("td", { class: cls }, el("strong", { class: "value", text: value }),
    ...lines.map((text) => el("div", { class: "formula", text })));
}

function outputFormulas(layer, square) {
  if (layer.kind === "input") return [];
  return square ? [layer.formula[0]] : [`H: ${layer.formula[0]}`, `W: ${layer.formula[1]}`];
}

const pair = ([a, b]) => `${a}×${b}`;
const color = (i) => COLORS[i % COLORS.length];

// ----- drawings ---------------------------------------------------------------------------------
function drawInput(body) {
  const [top, left, bottom, right] = body.view;
  const rows = bottom - top + 1, cols = right - left + 1;
  const cell = Math.max(1, Math.min(40, Math.floor(VIEW_PX / Math.max(rows, cols))));
  const canvas = sizeCanvas(parts.input, cols * cell, rows * cell);
  const ctx = canvas.getContext("2d");
  const at = (r, c) => [(c - left) * cell, (r - top) * cell];
  drawPadding(ctx, canvas, at(0, 0), body.width * cell, body.height * cell);
  if (cell >= 6) drawGridLines(ctx, at, body.height, body.width, cell);
  const deepest = body.chain.length - 1;
  body.chain.forEach((link) => drawBox(ctx, at, link, cell, deepest));
}

function sizeCanvas(canvas, width, height) {
  const ratio = window.devicePixelRatio || 1;
  canvas.width = width * ratio;
  canvas.height = height * ratio;
  canvas.style.width = `${width}px`;
  canvas.style.height = `${height}px`;
  canvas.getContext("2d").setTransform(ratio, 0, 0, ratio, 0, 0);
  return canvas;
}

function drawPadding(ctx, canvas, [x0, y0], w, h) {
  ctx.fillStyle = "#eceef3";
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  ctx.strokeStyle = "#c9ced9";
  ctx.lineWidth = 1;
  for (let d = -canvas.height; d < canvas.width; d += 8) { // hatching: the padding region
    ctx.beginPath(); ctx.moveTo(d, canvas.height); ctx.lineTo(d + canvas.height, 0); ctx.stroke();
  }
  ctx.fillStyle = "#fff";
  ctx.fillRect(x0, y0, w, h);
  ctx.strokeStyle = "#5b6475";
  ctx.strokeRect(x0 + 0.5, y0 + 0.5, w - 1, h - 1);
}

function drawGridLines(ctx, at, H, W, cell) {
  const [x0, y0] = at(0, 0);
  ctx.strokeStyle = "#e1e4ea";
  ctx.beginPath();
  for (let r = 1; r < H; r++) { ctx.moveTo(x0, y0 + r * cell + 0.5); ctx.lineTo(x0 + W * cell, y0 + r * cell + 0.5); }
  for (let c = 1; c < W; c++) { ctx.moveTo(x0 + c * cell + 0.5, y0); ctx.lineTo(x0 + c * cell + 0.5, y0 + H * cell); }
  ctx.stroke();
}

/** One unit's field: its cells tinted where they lie on the input, its outline over the padding too.
 * Inner boxes are outlined further inside their cells, so shared edges stay visible. */
function drawBox(ctx, at, link, cell, deepest) {
  const [t, l, b, r] = link.box, [ct, cl, cb, cr] = link.clipped;
  const [x, y] = at(t, l);
  ctx.globalAlpha = 0.12;
  ctx.fillStyle = color(link.layer);
  const [cx, cy] = at(ct, cl);
  if (link.pixels > 0) ctx.fillRect(cx, cy, (cr - cl + 1) * cell, (cb - ct + 1) * cell);
  ctx.globalAlpha = 1;
  ctx.strokeStyle = color(link.layer);
  ctx.lineWidth = link.layer === 0 ? 2 : 2.5;
  const inset = 1.5 + Math.min(cell * 0.2, 2 * (deepest - link.layer));
  ctx.strokeRect(x + inset, y + inset, (r - l + 1) * cell - 2 * inset, (b - t + 1) * cell - 2 * inset);
  if (link.layer === 0) { ctx.fillStyle = color(0); ctx.fillRect(x + 2, y + 2, cell - 4, cell - 4); }
}

function drawUnits(body) {
  const [h, w] = body.layers[body.layers.length - 1].out;
  const cell = Math.max(2, Math.min(28, Math.floor(UNITS_PX / Math.max(h, w))));
  const canvas = sizeCanvas(parts.units, w * cell, h * cell);
  canvas.dataset.cell = cell;
  const ctx = canvas.getContext("2d");
  ctx.fillStyle = "#fff";
  ctx.fillRect(0, 0, w * cell, h * cell);
  if (cell >= 6) drawGridLines(ctx, (r, c) => [c * cell, r * cell], h, w, cell);
  ctx.strokeStyle = "#5b6475";
  ctx.strokeRect(0.5, 0.5, w * cell - 1, h * cell - 1);
  const last = body.chain[body.chain.length - 1];
  ctx.fillStyle = color(last.layer);
  ctx.fillRect(body.unit[1] * cell, body.unit[0] * cell, cell, cell);
}

function onUnitClick(event) {
  const cell = Number(parts.units.dataset.cell);
  const rect = parts.units.getBoundingClientRect();
  state.unit = [Math.floor((event.clientY - rect.top) / cell), Math.floor((event.clientX - rect.left) / cell)];
  request(true);
}

function renderLegend(body) {
  parts.legend.replaceChildren(...body.chain.map((link) => {
    const name = link.layer === 0 ? "input pixel" : `layer ${link.layer} (${body.layers[link.layer].label})`;
    const [t, l, b, r] = link.box;
    return el("li", { "data-layer": link.layer, style: `--c: ${color(link.layer)}` },
      el("span", { class: "swatch-box" }),
      `${name}, unit (${link.unit[0]}, ${link.unit[1]}): rows ${t}…${b}, cols ${l}…${r}; on the input ${link.text}`);
  }));
}
