// Playground "params": a dense layer on the flattened image versus a convolution. The server
// (POST /api/play/params) counts every parameter and writes the formulas; this page only draws them.
import { showMessage } from "../app.js";
import { el, fmt, play } from "./common.js";

const FIELDS = [ // [request field, label, min, max]
  ["height", "image height H", 1, 4096], ["width", "image width W", 1, 4096], ["channels", "channels C", 1, 4],
  ["hidden", "dense: hidden units", 1, 100000], ["kernel", "conv: kernel k", 1, 11], ["filters", "conv: filters", 1, 1024],
];

const state = { settings: { channels: 3, height: 224, width: 224, hidden: 1000, kernel: 3, filters: 64 }, scale: "linear", body: null };
let parts;

export async function init(section) {
  parts = buildPage(section);
  await request();
}

// ----- the page ---------------------------------------------------------------------------------
function buildPage(section) {
  const p = {
    presets: el("div", { class: "pp-presets" }),
    inputs: el("div", { class: "controls wrap pp-inputs" }),
    error: el("p", { class: "pp-error", role: "alert", hidden: "" }),
    results: el("div", { class: "pp-results" }),
    errata: el("div", { class: "pp-errata" }),
    scale: el("div", { class: "controls pp-scale", role: "radiogroup", "aria-label": "bar scale" }),
    chart: el("div", { class: "pp-chart" }),
  };
  section.append(
    el("h2", { text: "Parameter explosion" }),
    el("p", { class: "note", text: "A dense layer connects every input value to every hidden unit, so its weights grow with the "
      + "image. A convolution's filters slide over the image, so their count depends only on the channels, the kernel "
      + "size and the number of filters." }),
    p.errata,
    el("div", { class: "row" },
      el("div", { class: "panel pp-controls" }, el("h3", { text: "The tutorials' rows" }), p.presets,
        el("h3", { text: "Settings" }), p.inputs, p.error),
      el("div", { class: "panel grow" }, el("h3", { text: "Parameters of the first layer" }), p.results)),
    el("div", { class: "panel pp-chart-panel" }, el("h3", { text: "Parameter counts" }), p.scale, p.chart));
  buildInputs(p.inputs);
  buildScale(p.scale);
  return p;
}

function buildInputs(box) {
  for (const [field, label, min, max] of FIELDS) {
    const input = el("input", { type: "number", min, max, step: 1, class: `pp-${field}`, name: field });
    input.addEventListener("change", () => { state.settings[field] = Number(input.value); request(); });
    box.append(el("label", {}, label, input));
  }
}

function buildScale(box) {
  for (const scale of ["linear", "log"]) {
    const input = el("input", { type: "radio", name: "pp-scale", value: scale, class: `pp-scale-${scale}` });
    input.checked = scale === state.scale;
    input.addEventListener("change", () => { state.scale = scale; drawChart(state.body); });
    box.append(el("label", {}, input, scale === "linear" ? " linear scale" : " log scale"));
  }
}

// ----- talking to the server --------------------------------------------------------------------
async function request() {
  let body;
  try {
    body = await play("params", state.settings);
  } catch (err) { // the server's message, shown beside the settings (and not twice)
    showMessage("");
    showError(err.message);
    return;
  }
  showError("");
  state.body = body;
  render(body);
}

function showError(text) {
  parts.error.textContent = text;
  parts.error.hidden = !text;
  parts.results.classList.toggle("stale", Boolean(text));
}

function render(body) {
  for (const [field] of FIELDS) parts.inputs.querySelector(`.pp-${field}`).value = state.settings[field];
  renderPresets(body.presets);
  renderResults(body);
  parts.errata.replaceChildren(...body.errata.map((e) => el("p", { class: "pp-erratum", text: e.text })));
  drawChart(body);
}

function renderPresets(presets) {
  parts.presets.replaceChildren(...presets.map((preset, i) => el("button", {
    type: "button", "data-preset": i, text: preset.name, onclick: () => choosePreset(preset),
  })));
}

function choosePreset(preset) {
  const { channels, height, width, hidden } = preset;
  Object.assign(state.settings, { channels, height, width, hidden });
  if (preset.kernel !== null) Object.assign(state.settings, { kernel: preset.kernel, filters: preset.filters });
  request();
}

function renderResults(body) {
  const { channels: C, height: H, width: W, hidden, kernel: k, filters } = state.settings;
  parts.results.replaceChildren(
    resultLine("pp-dense", `Dense: ${C}×${H}×${W} inputs → ${fmt(hidden)} hidden units`, body.dense, body.dense_formula),
    resultLine("pp-conv", `Conv: ${filters} filters of ${C}×${k}×${k}`, body.conv, body.conv_formula),
    el("div", { class: "pp-ratio" }, el("span", { text: "dense / conv = " }), el("strong", { class: "value", text: body.ratio_text }),
      el("span", { class: "note", text: " times as many parameters in the dense layer" })));
}

function resultLine(cls, title, value, formula) {
  return el("div", { class: `pp-line ${cls}` }, el("div", { class: "title", text: title }),
    el("strong", { class: "value", text: fmt(value) }), el("code", { class: "formula", text: formula }));
}

// ----- the bar chart ----------------------------------------------------------------------------
/** Bars of the current setting and of every tutorial row, from the server's counts. */
function chartRows(body) {
  const rows = [{ group: "your setting", label: "dense", value: body.dense, mine: true },
    { group: `dense / conv = ${body.ratio_text}`, label: "conv", value: body.conv, mine: true }];
  for (const p of body.presets) {
    rows.push({ group: p.name, label: "dense", value: p.dense });
    if (p.conv !== null) rows.push({ group: `dense / conv = ${p.ratio_text}`, label: "conv", value: p.conv });
  }
  return rows;
}

/** Bar length as a fraction of the longest bar; on the log scale 1 parameter is length 0. */
function barFraction(value, max, scale) {
  if (scale === "log") return Math.log10(value) / Math.log10(max);
  return value / max;
}

function drawChart(body) {
  const rows = chartRows(body);
  const max = body.axis.max; // the longest bar, from the server
  parts.chart.dataset.scale = state.scale;
  parts.chart.replaceChildren(...rows.map((row) => el("div", { class: `pp-bar-row ${row.label}${row.mine ? " mine" : ""}` },
    el("span", { class: "group", text: row.group }), el("span", { class: "kind", text: row.label }),
    el("span", { class: "track" }, bar(row, max)))), axis(body.axis[state.scale], max));
  parts.chart.append(el("p", { class: "note", text: state.scale === "log"
    ? "Log scale: the bar's length grows with the number of digits; ten times the parameters adds the same length."
    : "Linear scale: bar length is proportional to the count; most bars are too short to see next to the largest." }));
}

/** The axis under the bars: the server's tick marks, placed where a bar of that count would end. */
function axis(ticks, max) {
  return el("div", { class: "pp-bar-row pp-axis" }, el("span", { class: "group" }), el("span", { class: "kind", text: "params" }),
    el("span", { class: "track pp-ticks" }, ...ticks.map((t) => el("span", {
      class: "pp-tick", "data-value": t.value, text: t.label,
      style: `left: calc(${barFraction(t.value, max, state.scale).toFixed(6)} * (100% - 130px))`,
    }))));
}

function bar(row, max) {
  const fraction = barFraction(row.value, max, state.scale);
  return el("span", { class: "bar-wrap" },
    // the label follows the bar's end, so the longest bar leaves room for it
    el("span", { class: "pp-bar", style: `width: calc(${fraction.toFixed(6)} * (100% - 130px))`, "data-value": row.value }),
    el("span", { class: "pp-bar-label", text: fmt(row.value) }));
}
