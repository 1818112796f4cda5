// Playground "equivariance": conv(shift x) beside shift(conv x), and what 2x2 max pooling keeps.
// The server (cnnlab/server/playgrounds/equivariance.py) computes every number; this file only draws.
import { divergingColor, el, fmt, grid, play } from "./common.js";

const settings = { preset: "edge", digit: 0, kernel: "vertical_edge", shift: 5, direction: "right" };
let view = null;
let asked = 0, answered = 0; // request counter: a slow answer to an old slider position is dropped

export async function init(section) {
  view = buildPage(section);
  await update();
}

function buildPage(section) {
  const parts = { section, readout: el("p", { class: "eq-readout", text: "Point at a cell to read its value." }),
    conv: el("div", { class: "eq-row" }), convText: el("div", { class: "eq-text" }),
    pool: el("div", { class: "eq-row" }), poolText: el("div", { class: "eq-text" }),
    inputs: el("div", { class: "eq-row" }), kernel: el("div", { class: "eq-kernel" }) };
  section.append(
    el("h2", { text: "Equivariance: shift, then convolve = convolve, then shift" }),
    el("p", { class: "eq-intro", text: "The same kernel is used at every position, so moving the input moves the " +
      "feature map by the same amount. The shift fills the uncovered strip with zeros; the convolution uses " +
      "\"same\" padding (1 pixel of zeros), so every map here is 28×28, the pooled ones 14×14." }),
    buildControls(), parts.readout,
    el("div", { class: "eq-top" }, parts.inputs, parts.kernel),
    el("h3", { text: "Convolution commutes with the shift" }), parts.conv, parts.convText,
    el("h3", { text: "Max pooling (ReLU, then 2×2, stride 2)" }), parts.pool, parts.poolText);
  section.addEventListener("mouseover", showValue);
  return parts;
}

// ----- controls --------------------------------------------------------------------------

function buildControls() {
  const shiftLabel = el("output", { id: "eq-shift-value", text: `${settings.shift} px` });
  const slider = el("input", { type: "range", id: "eq-shift", min: 0, max: 8, step: 1, value: settings.shift,
    "aria-label": "shift in pixels" });
  slider.addEventListener("input", () => { settings.shift = Number(slider.value); shiftLabel.textContent = `${slider.value} px`; update(); });
  const digit = el("input", { type: "number", id: "eq-digit", min: 0, max: 99, value: settings.digit, "aria-label": "MNIST test digit" });
  digit.addEventListener("change", () => { settings.digit = Number(digit.value); update(); });
  return el("div", { class: "eq-controls" },
    el("label", {}, "input ", select("eq-preset", [["edge", "edge (7×7 example, 4× larger)"], ["O", "O (6×6, 3× larger)"],
      ["X", "X (6×6, 3× larger)"], ["digit", "MNIST test digit"]], "preset")),
    el("label", {}, "digit # ", digit),
    el("label", {}, "kernel ", select("eq-kernel", [[settings.kernel, settings.kernel.replaceAll("_", " ")]], "kernel")),
    el("label", {}, "direction ", select("eq-direction", [["right", "right"], ["left", "left"], ["down", "down"], ["up", "up"], ["diagonal", "down-right"]], "direction")),
    el("label", { class: "eq-slider" }, "shift ", slider, shiftLabel));
}

function select(id, options, key) {
  const node = el("select", { id, onchange: (e) => { settings[key] = e.target.value; update(); } });
  for (const [value, text] of options) node.append(el("option", { value, text }));
  node.value = settings[key];
  return node;
}

async function update() {
  const mine = ++asked;
  const result = await play("equivariance", settings);
  if (mine < answered) return;
  answered = mine;
  draw(result);
  view.section.dataset.request = String(mine);
  view.section.dataset.shift = String(settings.shift);
}

// ----- drawing ---------------------------------------------------------------------------

function draw(result) {
  fillKernelChoices(result.kernels);
  view.inputs.replaceChildren(panel("x", inkMap(result.image, "x")), panel(`shift x: ${result.shift_words}`, inkMap(result.shifted, "shift x")));
  view.kernel.replaceChildren(el("div", { class: "eq-caption", text: `kernel: ${result.kernel_name.replaceAll("_", " ")}` }),
    grid(result.kernel, { label: "kernel" }));
  drawConv(result);
  drawPool(result);
}

function drawConv(r) {
  const color = sharedColor([r.conv, r.conv_of_shifted, r.shift_of_conv]);
  const band = (row, col) => (r.band[row][col] ? "band" : "");
  view.conv.replaceChildren(
    panel("conv(x)", map(r.conv, "conv x", color)),
    panel("conv(shift x)", map(r.conv_of_shifted, "conv of shifted", color)),
    panel("shift(conv x)", map(r.shift_of_conv, "shift of conv", color)),
    panel("conv(shift x) − shift(conv x)", map(r.difference, "difference", color, band)));
  const where = r.nonzero_cells === 0 ? "nowhere: the two maps are identical"
    : `${r.nonzero_cells} cells, in rows ${spans(r.nonzero_rows)} and columns ${spans(r.nonzero_cols)}`;
  view.convText.replaceChildren(
    line("max |difference|", fmt(r.max_abs_difference), "eq-max-diff"),
    line("nonzero at", where, "eq-where"),
    line("max |difference| outside the border band (outlined)", fmt(r.max_abs_difference_outside_band), "eq-max-outside"),
    el("p", { class: "eq-why", text: "Only the border can differ: there the zero fill erased pixels that conv(x) had seen " +
      "(near the strip the shift uncovered, and at the far edge where the content slid out)." }));
}

function drawPool(r) {
  const color = sharedColor([r.pooled, r.pooled_of_shifted, r.pooled_moved]);
  view.pool.replaceChildren(
    panel("pool(conv x)", map(r.pooled, "pooled", color, null, "small")),
    panel("pool(conv(shift x))", map(r.pooled_of_shifted, "pooled of shifted", color, null, "small")),
    panel(`pool(conv x) moved: ${r.pooled_shift_words}`, map(r.pooled_moved, "pooled moved", color, null, "small")),
    panel("difference", map(r.pooled_difference, "pooled difference", color, null, "small")));
  const verdict = r.shift_is_multiple_of_stride
    ? "The shift is a multiple of the pool stride (2): the pooled map just moves by shift/2 cells."
    : "The shift is not a multiple of the pool stride (2): pixels land in different windows, so the pooled map is not a shifted copy.";
  view.poolText.replaceChildren(
    el("p", { class: "eq-verdict", text: verdict }),
    line("max |difference| away from the borders", fmt(r.pooled_max_abs_difference_inside), "eq-pool-inside"),
    line("fraction of active values unchanged at the same position: after conv",
      `${fmt(r.conv_unchanged_fraction)}, after pooling ${fmt(r.pool_unchanged_fraction)}`, "eq-unchanged"),
    line("relative change at the same positions: after conv",
      `${fmt(r.conv_relative_change)}, after pooling ${fmt(r.pool_relative_change)}`, "eq-relative"));
}

/** The kernel menu lists cnnlab.lab.filters.KERNELS, as the server names them. */
function fillKernelChoices(names) {
  const menu = view.section.querySelector("#eq-kernel");
  if (menu.options.length === names.length) return;
  menu.replaceChildren(...names.map((k) => el("option", { value: k, text: k.replaceAll("_", " ") })));
  menu.value = settings.kernel;
}

function panel(title, content) {
  return el("figure", { class: "eq-panel" }, el("figcaption", { text: title }), content);
}

function line(label, value, id) {
  return el("p", { class: "eq-line" }, `${label}: `, el("strong", { id, text: value }));
}

/** "3-5, 9" for [3, 4, 5, 9] (already sorted, from the server). */
function spans(list) {
  if (list.length === 0) return "none";
  const parts = [];
  let start = list[0], prev = list[0];
  for (const v of list.slice(1).concat([null])) {
    if (v !== prev + 1) { parts.push(start === prev ? `${start}` : `${start}-${prev}`); start = v; }
    prev = v;
  }
  return parts.join(", ");
}

function sharedColor(maps) {
  const values = maps.flatMap((m) => m.flat());
  const lo = Math.min(...values), hi = Math.max(...values);
  return (v) => divergingColor(v, lo, hi);
}

/** A feature map as a small-celled table; the numbers are in the cells (hidden) and read on hover. */
function map(values, label, color, cellClass = null, size = "") {
  const table = grid(values, { label, color, ...(cellClass ? { cellClass } : {}) });
  table.classList.add("eq-map");
  if (size) table.classList.add(size);
  return table;
}

function inkMap(values, label) {
  return map(values, label, (v) => `rgb(${255 - 200 * v}, ${255 - 200 * v}, ${255 - 190 * v})`);
}

function showValue(event) {
  const cell = event.target.closest("table.eq-map td");
  if (!cell) return;
  const label = cell.closest("table").getAttribute("aria-label");
  view.readout.textContent = `${label}, row ${cell.dataset.row}, column ${cell.dataset.col}: ${cell.textContent}`;
}
