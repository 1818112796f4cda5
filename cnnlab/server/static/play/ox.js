// Playground "ox": the tutorial's one-filter network on the 6x6 O and X, stage by stage.
// The server (cnnlab/server/playgrounds/ox.py) computes every number; this file only draws.
import { divergingColor, el, fmt, grid, play } from "./common.js";

const settings = { filter: null, bias: -2, steps: 100, shift: [0, 0], shift_mode: "zero" };
let view = null; // the DOM nodes the results go into
let requests = 0; // answered requests, as data-request on the section (the browser tests wait on it)

export async function init(section) {
  view = buildPage(section);
  await update();
}

function buildPage(section) {
  const controls = el("div", { class: "ox-controls" });
  const note = el("p", { class: "ox-note" });
  const pipeline = el("div", { class: "ox-pipeline" });
  const dense = el("div", { class: "ox-dense" });
  section.append(
    el("h2", { text: "Pipeline: O versus X" }),
    el("p", { class: "ox-intro", text: "One 3×3 filter with a bias, ReLU, 2×2 max pooling, flatten, then a dense layer " +
      "with two outputs (O, X) and softmax. Edit the filter until the two flattened vectors differ: " +
      "if they are equal, no dense layer can tell the letters apart." }),
    controls, note, pipeline, dense);
  return { section, controls, note, pipeline, dense };
}

async function update() {
  const body = { ...settings };
  if (body.filter === null) delete body.filter; // the server's default: the tutorial's ring filter
  const result = await play("ox", body);
  settings.filter = result.filter;
  settings.bias = result.bias;
  drawControls(result);
  drawNote(result);
  drawPipeline(result);
  drawDense(result);
  view.section.dataset.request = String(++requests);
}

// ----- controls --------------------------------------------------------------------------

function drawControls(result) {
  view.controls.replaceChildren(
    el("div", { class: "ox-box" }, el("h3", { text: "Filter (3×3, editable)" }),
      grid(result.filter, { editable: true, label: "filter", onEdit: editFilter }), presetButtons(result.filter_presets)),
    el("div", { class: "ox-box" }, el("h3", { text: "Bias" }), numberInput("bias", settings.bias, -10, 10, 0.5)),
    el("div", { class: "ox-box" }, el("h3", { text: "Shift the letters" }), shiftControls()),
    el("div", { class: "ox-box" }, el("h3", { text: "Dense fitting" }),
      el("label", {}, "gradient steps ", numberInput("steps", settings.steps, 0, 500, 10))));
}

function editFilter(r, c, value) {
  settings.filter = settings.filter.map((row) => row.slice());
  settings.filter[r][c] = value;
  update();
}

function presetButtons(presets) {
  const box = el("div", { class: "ox-presets" });
  for (const [name, kernel] of Object.entries(presets)) {
    box.append(el("button", { type: "button", text: name, onclick: () => { settings.filter = kernel; update(); } }));
  }
  return box;
}

function numberInput(key, value, min, max, step) {
  return el("input", { type: "number", id: `ox-${key}`, value, min, max, step, "aria-label": key,
    onchange: (e) => { settings[key] = Number(e.target.value); update(); } });
}

function shiftControls() {
  const axis = (i, name) => select(`ox-shift-${name}`, ["-1", "0", "1"], String(settings.shift[i]), (v) => {
    settings.shift = settings.shift.slice();
    settings.shift[i] = Number(v);
    update();
  });
  const mode = select("ox-shift-mode", ["zero", "roll"], settings.shift_mode, (v) => { settings.shift_mode = v; update(); });
  return el("div", { class: "ox-shift" }, el("label", {}, "rows ", axis(0, "rows")), el("label", {}, "cols ", axis(1, "cols")),
    el("label", {}, "edges ", mode));
}

function select(id, options, value, onChange) {
  const node = el("select", { id, onchange: (e) => onChange(e.target.value) });
  for (const option of options) node.append(el("option", { value: option, text: option }));
  node.value = value;
  return node;
}

// ----- results ---------------------------------------------------------------------------

function drawNote(result) {
  const [dy, dx] = result.shift;
  const moved = dy || dx ? ` Letters shifted by ${dy} row(s), ${dx} column(s) (${result.shift_mode === "roll" ? "rolled round the edges" : "zeros fill in"}); the dense layer was fitted on the unshifted letters.` : "";
  const verdict = result.flat_differ ? "The flattened vectors differ: the dense layer can separate O from X."
    : "The flattened vectors are equal: the network gives O and X the same scores.";
  view.note.replaceChildren(el("strong", { text: verdict }), document.createTextNode(moved));
  view.note.className = `ox-note ${result.flat_differ ? "ok" : "same"}`;
}

function drawPipeline(result) {
  const header = el("div", { class: "ox-row ox-head" }, el("span"),
    ...["input 6×6", `conv 4×4 (bias ${fmt(result.bias)})`, "ReLU", "max pool 2×2", "flattened (4)", "dense → softmax"]
      .map((t) => el("span", { text: t })));
  const rows = result.classes.map((c) => letterRow(c, result));
  view.pipeline.replaceChildren(header, ...rows);
}

function letterRow(letter, result) {
  const data = result.letters[letter];
  const color = sharedColor(result); // one colour scale for every map of both letters
  return el("div", { class: "ox-row", "data-letter": letter },
    el("span", { class: "ox-letter", text: letter }),
    grid(data.input, { label: `${letter} input`, color: inkColor, cellClass: (r, c) => (data.input[r][c] > 0 ? "ink" : "") }),
    grid(data.conv, { label: `${letter} conv`, color }),
    grid(data.relu, { label: `${letter} relu`, color }),
    grid(data.pooled, { label: `${letter} pooled`, color }),
    flatBars(letter, data.flat, result.unshifted_flat[letter], result),
    scoreTable(letter, data, result.classes));
}

const inkColor = (v) => (v > 0 ? "#333a48" : "#ffffff");

function sharedColor(result) {
  const values = result.classes.flatMap((c) => result.letters[c].conv.flat());
  const lo = Math.min(...values), hi = Math.max(...values);
  return (v) => divergingColor(v, lo, hi);
}

/** One bar per entry of the flattened vector (shared scale for both letters), with its number. */
function flatBars(letter, flat, unshifted, result) {
  const all = result.classes.flatMap((c) => result.letters[c].flat.concat(result.unshifted_flat[c]).map(Math.abs));
  const scale = Math.max(...all) || 1;
  const list = el("ol", { class: "ox-flat", "aria-label": `${letter} flattened` });
  flat.forEach((v, i) => {
    const bar = el("span", { class: `bar ${v < 0 ? "neg" : ""} ${v === 0 ? "zero" : ""}` });
    bar.style.width = `${(70 * Math.abs(v)) / scale}px`;
    const was = unshifted[i] !== v ? el("span", { class: "was", text: `(unshifted ${fmt(unshifted[i])})` }) : "";
    list.append(el("li", { "data-index": i }, el("span", { class: "idx", text: `[${i}]` }),
      el("span", { class: "num", text: fmt(v) }), bar, was));
  });
  return list;
}

function scoreTable(letter, data, classes) {
  const best = data.probabilities.indexOf(Math.max(...data.probabilities));
  const table = el("table", { class: "ox-scores", "aria-label": `${letter} scores` },
    el("tr", {}, el("th", { text: "" }), el("th", { text: "score" }), el("th", { text: "probability" })));
  classes.forEach((c, i) => {
    table.append(el("tr", { class: i === best && data.probabilities[i] > 0.5 ? "best" : "" },
      el("th", { text: c }), el("td", { class: "score", text: fmt(data.scores[i]) }),
      el("td", { class: "prob", text: fmt(data.probabilities[i]) })));
  });
  return table;
}

function drawDense(result) {
  const d = result.dense;
  const weights = d.weight.map((row, i) => [`flat[${i}]`, ...row]);
  const table = el("table", { class: "ox-weights", "aria-label": "dense weights" },
    el("tr", {}, el("th", { text: "" }), ...result.classes.map((c) => el("th", { text: `→ ${c}` }))),
    ...weights.map(([name, ...row]) => el("tr", {}, el("th", { text: name }), ...row.map((v) => el("td", { text: fmt(v) })))),
    el("tr", {}, el("th", { text: "bias" }), ...d.bias.map((v) => el("td", { text: fmt(v) }))));
  view.dense.replaceChildren(
    el("h3", { text: "The dense layer (4 → 2)" }),
    el("p", { text: `Its weights are not typed in: cnnlab fits them. A Dense(4, 2) starting from zeros takes ${d.steps} ` +
      `full-batch gradient-descent steps (SGD, learning rate ${fmt(d.learning_rate)}, cross-entropy) on the two ` +
      `unshifted letters, with the filter and bias above held fixed. Loss ${fmt(d.loss_start)} → ${fmt(d.loss_end)}.` }),
    table);
}
