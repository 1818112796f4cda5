// Playground 1, Convolution: a kernel slides over a (padded) input, one position at a time.
// The server (POST /api/play/conv) computes the trace: padded input, per-position products and
// per-channel partial sums, the output and its size formula; this module only draws it.
import { api, showMessage } from "../app.js";
import { el, grid, play } from "./common.js";
import { labelled, num, numberInput, select } from "./form.js";
import { stepper } from "./stepper.js";

const state = {
  presets: null,   // GET /api/play/conv-presets: inputs, kernels, learned
  image: null,     // (C, H, W) nested lists: what the page sends
  kernel: null,    // (C, K, K)
  kernelKey: "vertical",
  trace: null,     // the server's latest answer
  requests: 0,
  painting: null,  // the input channel being painted while the mouse button is down, else null
};
const ui = {};

export async function init(section) {
  state.presets = await api("/api/play/conv-presets");
  ui.section = section;
  ui.stepper = stepper(showStep);
  section.append(
    el("h2", { text: "Convolution: watch the kernel slide" }),
    el("p", { class: "note", text: "Every number below comes from cnnlab's conv2d_forward on the server. Edit any input or kernel cell, or tick \"paint\" and drag over the input to draw; the grey hatched border is zero padding." }),
    controls(), ui.stepper.node, panels());
  setInput("edge");
  setKernel("vertical");
  document.addEventListener("pointerup", endPaint);
  await compute(0);
}

// ---- controls -------------------------------------------------------------------------------

function controls() {
  const inputs = Object.entries(state.presets.inputs).map(([k, p]) => [k, p.name]);
  ui.input = select("input-preset", [...inputs, ["typed", "blank grid to type into"]], (k) => { setInput(k); compute(0); });
  const kernels = Object.entries(state.presets.kernels).map(([k, p]) => [k, p.name]);
  if (state.presets.learned) kernels.push(["learned", `learned filter of ${state.presets.learned.model}`]);
  ui.kernel = select("kernel-preset", [...kernels, ["custom", "edited kernel"]], (k) => {
    if (k !== "learned") ui.bias.value = "0"; // a learned filter brings its own bias
    setKernel(k);
    compute();
  });
  ui.filter = numberInput("filter-index", 0, state.presets.learned ? state.presets.learned.filters.length - 1 : 0, 0,
    () => { setKernel("learned"); compute(); });
  ui.filterLabel = labelled("filter # ", ui.filter);
  ui.rows = numberInput("rows", 2, 32, 7, () => resize());
  ui.cols = numberInput("cols", 2, 32, 7, () => resize());
  ui.channels = numberInput("channels", 1, 3, 1, () => resize());
  ui.stride = numberInput("stride", 1, 3, 1, () => compute());
  ui.padding = numberInput("padding", 0, 3, 0, () => compute());
  ui.bias = numberInput("bias", -1000, 1000, 0, () => compute(), "any");
  ui.ksize = numberInput("kernel-size", 1, 7, 3, () => resizeKernel());
  ui.paint = el("input", { type: "checkbox", class: "paint-mode", onchange: () => render() });
  ui.brush = numberInput("brush", -1000, 1000, 1, () => {}, "any");
  return el("div", { class: "panel conv-controls" },
    el("div", { class: "controls wrap" }, labelled("input", ui.input), labelled("rows", ui.rows),
      labelled("columns", ui.cols), labelled("channels", ui.channels),
      labelled("paint (drag on the input)", ui.paint), labelled("paint value", ui.brush)),
    el("div", { class: "controls wrap" }, labelled("kernel", ui.kernel), ui.filterLabel, labelled("kernel size", ui.ksize),
      labelled("stride", ui.stride), labelled("padding", ui.padding), labelled("bias", ui.bias)));
}

function copy(value) {
  return JSON.parse(JSON.stringify(value));
}

function setInput(key) {
  if (key === "typed") {
    state.image = [Array.from({ length: 6 }, () => new Array(6).fill(0))];
  } else {
    state.image = copy(state.presets.inputs[key].image);
  }
  ui.input.value = key;
  syncSizeInputs();
  setKernel(state.kernelKey);
}

function syncSizeInputs() {
  ui.channels.value = state.image.length;
  ui.rows.value = state.image[0].length;
  ui.cols.value = state.image[0][0].length;
}

/** A number input's value as an integer within its min / max. */
function clamped(input) {
  const v = Math.round(Number(input.value));
  const lo = Number(input.min), hi = Number(input.max);
  return Number.isFinite(v) ? Math.max(lo, Math.min(hi, v)) : lo;
}

/** Crop or extend (with zeros) the input to the rows / columns / channels asked for. */
function resize() {
  const [C, H, W] = [ui.channels, ui.rows, ui.cols].map(clamped);
  const old = (c, r, k) => state.image[c]?.[r]?.[k] ?? 0;
  state.image = Array.from({ length: C }, (_, c) =>
    Array.from({ length: H }, (_, r) => Array.from({ length: W }, (_, k) => old(c, r, k))));
  ui.input.value = "typed";
  syncSizeInputs();
  if (state.kernel.length !== C) setKernel(state.kernelKey);
  compute();
}

/** The kernel preset `key`, one copy per input channel (each channel's copy is editable on its own). */
function setKernel(key) {
  const learned = state.presets.learned;
  let base, bias = null;
  if (key === "custom") {
    base = state.kernel[0];
  } else if (key === "learned" && learned) {
    const f = clamped(ui.filter);
    ui.filter.value = String(f);
    base = learned.filters[f][0]; // (KH, KW) of input channel 0: the lab's models read one channel
    bias = learned.biases[f];
  } else {
    if (!state.presets.kernels[key]) key = "vertical";
    base = state.presets.kernels[key].kernel;
  }
  state.kernelKey = key;
  state.kernel = state.image.map(() => copy(base));
  ui.kernel.value = key;
  ui.ksize.value = String(base.length);
  ui.filterLabel.hidden = key !== "learned";
  if (bias !== null) ui.bias.value = String(bias);
}

/** Kernel size changed: every channel's kernel cropped to, or zero-extended to, k x k around its centre. */
function resizeKernel() {
  const k = clamped(ui.ksize);
  ui.ksize.value = String(k);
  const K = state.kernel[0].length, off = Math.floor((K - k) / 2);
  state.kernel = state.kernel.map((ch) => Array.from({ length: k }, (_, r) =>
    Array.from({ length: k }, (_, c) => ch[r + off]?.[c + off] ?? 0)));
  state.kernelKey = "custom";
  ui.kernel.value = "custom";
  compute();
}

// ---- painting on the input -------------------------------------------------------------------

/** Paint mode: pressing and dragging over the input cells sets them to the paint value. */
function paintable(table, ch, p) {
  table.classList.toggle("painting", ui.paint.checked);
  if (!ui.paint.checked) return;
  for (const input of table.querySelectorAll("input")) input.readOnly = true;
  const paint = (event) => {
    const td = event.target.closest("td");
    if (!td || td.classList.contains("pad")) return;
    const r = Number(td.dataset.row) - p, c = Number(td.dataset.col) - p;
    const value = Number(ui.brush.value);
    if (!Number.isFinite(value)) return;
    state.image[ch][r][c] = value;
    td.querySelector("input").value = num(value); // the typed value itself; the server redraws on release
  };
  table.addEventListener("pointerdown", (event) => { event.preventDefault(); state.painting = ch; paint(event); });
  table.addEventListener("pointerover", (event) => { if (state.painting === ch) paint(event); });
}

function endPaint() {
  if (state.painting === null) return;
  state.painting = null;
  ui.input.value = "typed";
  compute();
}

// ---- the server call ------------------------------------------------------------------------

function settings() {
  return { image: state.image, kernel: state.kernel, stride: Number(ui.stride.value),
           padding: Number(ui.padding.value), bias: Number(ui.bias.value) };
}

/** Ask the server for the trace and draw it; `index` = the position to show (default: keep). */
async function compute(index = null) {
  const id = ++state.requests;
  let trace;
  try {
    trace = await play("conv", settings());
  } catch (err) {
    return; // play() has shown the server's message
  }
  if (id !== state.requests) return; // a newer request is on its way
  showMessage("");
  state.trace = trace;
  render();
  ui.stepper.set(trace.steps.length, index === null ? ui.stepper.index() : index);
  ui.section.dataset.updates = String(Number(ui.section.dataset.updates || 0) + 1);
}

// ---- drawing --------------------------------------------------------------------------------

function panels() {
  ui.inputs = el("div", { class: "channels" });
  ui.kernels = el("div", { class: "channels" });
  ui.products = el("div", { class: "channels" });
  ui.sum = el("div", { class: "sum" });
  ui.output = el("div", { class: "output-grid" });
  ui.size = el("div", { class: "size" });
  ui.kernelNote = el("p", { class: "note kernel-note" });
  return el("div", { class: "row conv-panels" },
    el("div", { class: "panel" }, el("h3", { text: "Input (padded), window in blue" }), ui.inputs),
    el("div", { class: "stack" },
      el("div", { class: "panel kernel-panel" }, el("h3", { text: "Kernel" }), ui.kernels, ui.kernelNote),
      el("div", { class: "panel" }, el("h3", { text: "Window × kernel, cell by cell" }), ui.products, ui.sum)),
    el("div", { class: "panel" }, el("h3", { text: "Output (filled in as the kernel slides)" }), ui.output, ui.size));
}

function channelName(c) {
  const C = state.image.length;
  if (C === 1) return "";
  return C === 3 && ui.input.value === "rgb" ? ["red", "green", "blue"][c] : `channel ${c}`;
}

function render() {
  const t = state.trace;
  const p = t.padding, [H, W] = t.input_size;
  const isPad = (r, c) => r < p || c < p || r >= p + H || c >= p + W;
  const top = Math.max(0, ...t.padded.flat(2)); // inputs are drawn as ink: 0 white, the largest value dark
  ui.inputs.replaceChildren(...t.padded.map((values, ch) => figure(channelName(ch), grid(values, {
    editable: true, format: num, label: `input channel ${ch}`, color: (v) => inkColor(v, top),
    cellClass: (r, c) => (isPad(r, c) ? "pad" : values[r][c] > top / 2 ? "ink" : ""),
    onEdit: (r, c, v) => { state.image[ch][r - p][c - p] = v; ui.input.value = "typed"; compute(); },
  }))));
  for (const td of ui.inputs.querySelectorAll("td.pad input")) td.readOnly = true;
  ui.inputs.querySelectorAll("table").forEach((table, ch) => paintable(table, ch, p));
  ui.kernels.replaceChildren(...state.kernel.map((values, ch) => figure(channelName(ch), grid(values, {
    editable: true, format: num, label: `kernel channel ${ch}`,
    onEdit: (r, c, v) => { state.kernel[ch][r][c] = v; state.kernelKey = "custom"; ui.kernel.value = "custom"; compute(); },
  }))));
  ui.output.replaceChildren(grid(t.output, { label: "output", format: num }));
  const learned = state.presets.learned;
  ui.kernelNote.textContent = state.kernelKey === "learned"
    ? `${learned.model}, layer ${learned.layer}, filter ${ui.filter.value} (its bias is in "bias")` : "";
  renderSize(t);
}

/** Ink on paper, as the lab's figures draw inputs: white at 0, dark grey at `top`; negatives light blue. */
function inkColor(v, top) {
  if (v < 0) return "#dbe4f7";
  const shade = Math.round(255 - (255 - 51) * (top > 0 ? Math.min(1, v / top) : 0));
  return `rgb(${shade}, ${shade}, ${Math.min(255, shade + 8)})`;
}

function figure(caption, node) {
  return el("figure", { class: "channel" }, node, caption ? el("figcaption", { text: caption }) : "");
}

function renderSize(t) {
  const words = { same: "same: the output keeps the input's size", valid: "valid: no padding, the output shrinks",
                  padded: "padded, but the output is not the input's size" };
  ui.size.replaceChildren(
    el("p", { class: "formula" }, "rows: H_out = ", el("code", { class: "formula-rows", text: t.formula })),
    el("p", { class: "formula" }, "columns: W_out = ", el("code", { class: "formula-cols", text: t.formula_width })),
    el("p", {}, el("span", { class: `badge ${t.label}`, text: t.label }), " ", words[t.label]));
}

/** Position `index`: the window on the input, the products and sums, the output filled so far. */
function showStep(index) {
  const t = state.trace;
  if (!t || !t.steps.length) return;
  const step = t.steps[index];
  const [r0, c0] = step.origin, [KH, KW] = t.kernel_size;
  for (const table of ui.inputs.querySelectorAll("table")) {
    for (const td of table.querySelectorAll("td")) {
      const r = Number(td.dataset.row), c = Number(td.dataset.col);
      td.classList.toggle("window", r >= r0 && r < r0 + KH && c >= c0 && c < c0 + KW);
    }
  }
  showProducts(step);
  showOutputSoFar(index);
}

function showProducts(step) {
  ui.products.replaceChildren(...step.products.map((values, ch) => figure(
    `${channelName(ch) || "sum"}${channelName(ch) ? " sum" : ""} = ${num(step.partial_sums[ch])}`,
    grid(values, { label: `products channel ${ch}`, format: num }))));
  const t = state.trace;
  const parts = step.partial_sums.map((s) => el("span", { class: "partial", text: num(s) }));
  const joined = parts.flatMap((node, i) => (i ? [" + ", node] : [node]));
  ui.sum.replaceChildren(el("p", { class: "equation" },
    parts.length > 1 ? "channel sums " : "sum ", ...joined, " + bias ", el("span", { class: "bias-value", text: num(t.bias) }), " = ",
    el("strong", { class: "value", text: num(step.value) })),
  el("p", { class: "note where-note", text: `output row ${step.out[0]}, column ${step.out[1]}; window at row ${step.origin[0]}, column ${step.origin[1]} of the padded input` }));
}

function showOutputSoFar(index) {
  const cells = ui.output.querySelectorAll("td");
  const W = state.trace.output[0].length;
  state.trace.steps.forEach((step, k) => {
    const td = cells[step.out[0] * W + step.out[1]];
    td.classList.toggle("unreached", k > index);
    td.classList.toggle("current", k === index);
  });
}
