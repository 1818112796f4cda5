// Playground "matrix": a convolution as one sparse, weight-shared matrix M with M @ x = conv(x).
// The server (cnnlab/server/playgrounds/matrix.py) computes every number; this file only draws.
import { el, fmt, grid, play } from "./common.js";

// One colour per kernel entry (index u*3 + v): the same weight has the same colour in every row.
const PALETTE = ["#f4a3a3", "#f7c68f", "#f3e38c", "#b9e29a", "#93d9c4", "#9cc9f0", "#b7aef0", "#e3a9e0", "#c9c1b4"];
const settings = { image: null, kernel: null, stride: 1, padding: 0 };
let view = null, result = null, requests = 0;

export async function init(section) {
  view = buildPage(section);
  await update();
}

function buildPage(section) {
  const parts = { section, top: el("div", { class: "mx-top" }), counts: el("p", { class: "mx-counts" }),
    hint: el("p", { class: "mx-hint" }), matrix: el("div", { class: "mx-scroll" }), check: el("div", { class: "mx-check" }) };
  section.append(
    el("h2", { text: "Convolution as a matrix" }),
    el("p", { class: "mx-intro", text: "Flatten the input into a column x; then the convolution is one matrix product " +
      "M @ x. Each row of M is one position of the kernel: its nine weights sit at the columns of the pixels that window " +
      "covers, every other entry is zero. Coloured cells show the weight sharing: each colour is one kernel weight." }),
    parts.top, parts.counts, parts.hint, parts.matrix, parts.check);
  return parts;
}

async function update() {
  const body = { stride: settings.stride, padding: settings.padding };
  if (settings.image) body.image = settings.image;
  if (settings.kernel) body.kernel = settings.kernel;
  result = await play("matrix", body);
  settings.image = result.image;
  settings.kernel = result.kernel;
  draw();
  view.section.dataset.request = String(++requests);
}

// ----- drawing ---------------------------------------------------------------------------

function draw() {
  const colorOf = (index) => (index >= 0 ? PALETTE[index % PALETTE.length] : "#ffffff");
  const kernelIndex = (r, c) => r * result.kernel[0].length + c;
  view.top.replaceChildren(
    box("kernel (editable)", grid(result.kernel, { editable: true, label: "kernel", onEdit: (r, c, v) => edit("kernel", r, c, v),
      color: (v, r, c) => colorOf(kernelIndex(r, c)) })),
    box(`input x (${result.image.length}×${result.image[0].length}, editable)`,
      grid(result.image, { editable: true, label: "input", onEdit: (r, c, v) => edit("image", r, c, v), color: () => "#fff" })),
    box(`conv(x) (${result.conv.length}×${result.conv[0].length})`, grid(result.conv, { label: "conv", color: () => "#fff" })),
    box("settings", settingsControls()));
  const c = result.counts;
  view.counts.replaceChildren(
    el("strong", { text: `${c.rows} × ${c.cols} = ${fmt(c.entries)} entries` }),
    `: ${fmt(c.slots)} hold a kernel weight (${fmt(c.per_row[0])} in the first row), ${fmt(c.empty)} are always zero; ` +
    `only ${c.distinct_weights} distinct weights (nonzero values now: ${fmt(c.nonzero)}).`);
  view.hint.textContent = "Point at a row (or focus it with Tab) to see its window on the input and the output cell it makes.";
  view.matrix.replaceChildren(matrixTable(colorOf));
  drawCheck();
}

function box(title, content) {
  return el("div", { class: "mx-box" }, el("h3", { text: title }), content);
}

function edit(key, r, c, value) {
  settings[key] = settings[key].map((row) => row.slice());
  settings[key][r][c] = value;
  update();
}

function settingsControls() {
  const choose = (key, options) => {
    const node = el("select", { id: `mx-${key}`, onchange: (e) => { settings[key] = Number(e.target.value); update(); } });
    for (const o of options) node.append(el("option", { value: o, text: o }));
    node.value = String(settings[key]);
    return node;
  };
  return el("div", { class: "mx-settings" }, el("label", {}, "stride ", choose("stride", [1, 2])),
    el("label", {}, "padding ", choose("padding", [0, 1])));
}

/** The matrix as a table: a header row with x's entries, then one row per output cell, M @ x at the end. */
function matrixTable(colorOf) {
  const width = result.image[0].length;
  const table = el("table", { class: "mx-matrix", "aria-label": "convolution matrix" });
  const head = el("tr", {}, el("th", { class: "mx-rowhead", text: "x →" }),
    ...result.image.flat().map((v, k) => el("th", { class: "mx-x", "data-col": k, title: `x[${k}] = input (${Math.floor(k / width)}, ${k % width})`, text: fmt(v) })),
    el("th", { class: "mx-out", text: "M @ x" }));
  table.append(head);
  result.matrix.forEach((row, r) => table.append(matrixRow(row, r, colorOf)));
  return table;
}

function matrixRow(row, r, colorOf) {
  const [oi, oj] = result.windows[r].out;
  const tr = el("tr", { tabindex: 0, "data-row": r, "aria-label": `row ${r}: output (${oi}, ${oj})` },
    el("th", { class: "mx-rowhead", text: `${r} → (${oi},${oj})` }));
  row.forEach((v, k) => {
    const index = result.index[r][k];
    const td = el("td", { "data-col": k, class: index >= 0 ? "slot" : "", text: index >= 0 ? fmt(v) : "" });
    if (index >= 0) td.style.background = colorOf(index);
    tr.append(td);
  });
  tr.append(el("td", { class: "mx-out", text: fmt(result.product[r]) }));
  const show = () => highlight(r);
  tr.addEventListener("mouseenter", show);
  tr.addEventListener("focus", show);
  tr.addEventListener("click", show);
  return tr;
}

/** Mark row r, the input cells its window covers, their x columns, and the output cell it makes. */
function highlight(r) {
  const root = view.section;
  root.querySelectorAll(".mx-on").forEach((n) => n.classList.remove("mx-on"));
  root.querySelectorAll("table.grid td.window, table.grid td.chosen").forEach((n) => n.classList.remove("window", "chosen"));
  const width = result.image[0].length;
  root.querySelector(`table.mx-matrix tr[data-row='${r}']`).classList.add("mx-on");
  for (const [i, j] of result.windows[r].cells) {
    root.querySelector(`table[aria-label='input'] td[data-row='${i}'][data-col='${j}']`).classList.add("window");
    root.querySelector(`table.mx-matrix th.mx-x[data-col='${i * width + j}']`).classList.add("mx-on");
  }
  const [oi, oj] = result.windows[r].out;
  root.querySelector(`table[aria-label='conv'] td[data-row='${oi}'][data-col='${oj}']`).classList.add("chosen");
  root.dataset.row = String(r);
}

function drawCheck() {
  const equal = result.max_abs_difference === 0;
  view.check.replaceChildren(
    el("h3", { text: "M @ x equals conv(x)" }),
    el("p", {}, "M @ x = ", el("code", { id: "mx-product", text: `[${result.product.map((v) => fmt(v)).join(", ")}]` })),
    el("p", {}, "conv(x), flattened row by row (cnnlab's conv2d_forward) = ",
      el("code", { id: "mx-conv", text: `[${result.conv_flat.map((v) => fmt(v)).join(", ")}]` })),
    el("p", { class: equal ? "mx-ok" : "mx-bad" }, `max |M @ x − conv(x)| = `,
      el("strong", { id: "mx-diff", text: fmt(result.max_abs_difference) }), equal ? ": the same numbers." : ""));
}
