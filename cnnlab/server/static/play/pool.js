// Playground 2, Pooling and gradient routing: max / average windows forward, and where each
// upstream gradient goes backward. The server (POST /api/play/pool) computes the output, each
// window's chosen cell, ties and gradient routes, and the input gradient; this module draws them.
import { showMessage } from "../app.js";
import { el, grid, play } from "./common.js";
import { labelled, num, numberInput, select } from "./form.js";
import { stepper } from "./stepper.js";

const state = { presets: null, presetKey: "tutorial", image: null, upstream: null, trace: null, requests: 0 };
const ui = {};

export async function init(section) {
  state.presets = await play("pool-presets", {});
  ui.section = section;
  ui.stepper = stepper(showStep);
  section.append(
    el("h2", { text: "Pooling and gradient routing" }),
    el("p", { class: "note", text: "Every number below comes from cnnlab's maxpool2d / avgpool2d forward and backward on the server. Edit the input and the upstream gradient cells." }),
    controls(), ui.stepper.node, panels());
  setPreset("tutorial");
  await compute(0);
}

// ---- controls -------------------------------------------------------------------------------

function controls() {
  const presets = Object.entries(state.presets).map(([k, p]) => [k, p.name]);
  ui.preset = select("pool-preset", presets, (k) => { setPreset(k); compute(0); });
  ui.kind = select("kind", [["max", "max pooling"], ["avg", "average pooling"]], () => compute());
  // a new window size or stride changes the output's shape: the upstream gradient starts again as ones
  ui.size = numberInput("size", 1, 4, 2, () => { state.upstream = null; compute(0); });
  ui.stride = numberInput("stride", 1, 4, 2, () => { state.upstream = null; compute(0); });
  ui.mode = select("mode", [["forward", "forward: pool"], ["backward", "backward: route the gradient"]], () => {
    ui.section.classList.toggle("backward", ui.mode.value === "backward");
    showStep(ui.stepper.index());
  });
  return el("div", { class: "panel pool-controls" }, el("div", { class: "controls wrap" },
    labelled("input", ui.preset), labelled("pooling", ui.kind), labelled("window size", ui.size),
    labelled("stride", ui.stride), labelled("mode", ui.mode)));
}

function setPreset(key) {
  const preset = state.presets[key];
  state.presetKey = key;
  state.image = JSON.parse(JSON.stringify(preset.image));
  state.upstream = JSON.parse(JSON.stringify(preset.upstream));
  ui.preset.value = key;
  ui.size.value = "2";
  ui.stride.value = "2";
}

// ---- the server call ------------------------------------------------------------------------

async function compute(index = null) {
  const id = ++state.requests;
  const settings = { image: state.image, kind: ui.kind.value, size: Number(ui.size.value), stride: Number(ui.stride.value) };
  if (state.upstream) settings.upstream = state.upstream;
  let trace;
  try {
    trace = await play("pool", settings);
  } catch (err) {
    return; // play() has shown the server's message
  }
  if (id !== state.requests) return;
  showMessage("");
  state.trace = trace;
  state.upstream = trace.upstream;
  render();
  ui.stepper.set(trace.windows.length, index === null ? ui.stepper.index() : index);
  ui.section.dataset.updates = String(Number(ui.section.dataset.updates || 0) + 1);
}

// ---- drawing --------------------------------------------------------------------------------

function panels() {
  ui.input = el("div");
  ui.output = el("div");
  ui.window = el("div", { class: "window-note" });
  ui.erratum = el("p", { class: "erratum" });
  ui.upstream = el("div");
  ui.grad = el("div");
  ui.route = el("div", { class: "route-note" });
  ui.arrows = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  ui.arrows.classList.add("arrows");
  const forward = el("div", { class: "row" },
    el("div", { class: "panel" }, el("h3", { text: "Input x, window in blue" }), ui.input),
    el("div", { class: "panel" }, el("h3", { text: "Output (filled in window by window)" }), ui.output, ui.window),
    el("div", { class: "panel erratum-panel" }, el("h3", { text: "The tutorial's example" }), ui.erratum));
  const backward = el("div", { class: "row backward-row" },
    el("div", { class: "panel" }, el("h3", { text: "Upstream gradient dL/dout (editable)" }), ui.upstream),
    el("div", { class: "panel" }, el("h3", { text: "Input gradient dL/dx so far" }), ui.grad),
    el("div", { class: "panel grow" }, el("h3", { text: "Where this gradient goes" }), ui.route));
  return el("div", { class: "pool-panels" }, forward, backward, ui.arrows);
}

function render() {
  const t = state.trace;
  ui.input.replaceChildren(grid(state.image[0] ? state.image : [[0]], {
    editable: true, format: num, label: "input",
    onEdit: (r, c, v) => { state.image[r][c] = v; compute(); },
  }));
  ui.output.replaceChildren(grid(t.output, { label: "output", format: num }));
  ui.upstream.replaceChildren(grid(t.upstream, {
    editable: true, format: num, label: "upstream",
    onEdit: (r, c, v) => { state.upstream[r][c] = v; compute(); },
  }));
  renderErratum();
}

function renderErratum() {
  const erratum = state.presets.tutorial.erratum;
  const t = state.trace; // the note is about the tutorial's own settings: 2x2 max pool, stride 2
  const shown = state.presetKey === "tutorial" && t.kind === "max" && t.size === 2 && t.stride === 2;
  ui.erratum.closest(".panel").hidden = !shown;
  if (!shown) return;
  const asText = (g) => JSON.stringify(g).replaceAll(",", ", ");
  ui.erratum.replaceChildren(
    "Erratum: the tutorial prints ", el("code", { class: "printed", text: asText(erratum.printed) }),
    " as this 2x2 max pool's output; the windows' maxima are ", el("code", { class: "correct", text: asText(erratum.correct) }),
    " (the Output grid, from the server, with size 2 and stride 2). The corrected routing of the upstream gradient ",
    el("code", { text: asText(state.presets.tutorial.upstream) }), " is the Input gradient in backward mode.");
}

/** Window `index`: highlight it, mark its maximum, fill the output so far and route its gradient. */
function showStep(index) {
  const t = state.trace;
  if (!t || !t.windows.length) return;
  const w = t.windows[index];
  markInput(w, t.size);
  fillOutput(index);
  describeWindow(w);
  if (ui.mode.value === "backward") showRouting(index, w);
  else ui.arrows.replaceChildren();
}

function cellsOf(container) {
  return [...container.querySelectorAll("td")].map((td) => [td, Number(td.dataset.row), Number(td.dataset.col)]);
}

function markInput(w, size) {
  const [r0, c0] = w.origin;
  const has = (list, r, c) => (list || []).some(([a, b]) => a === r && b === c);
  for (const [td, r, c] of cellsOf(ui.input)) {
    td.classList.toggle("window", r >= r0 && r < r0 + size && c >= c0 && c < c0 + size);
    td.classList.toggle("chosen", Boolean(w.chosen) && w.chosen[0] === r && w.chosen[1] === c);
    td.classList.toggle("tie", w.ties > 1 && has(w.tied, r, c));
  }
}

function fillOutput(index) {
  const order = new Map(state.trace.windows.map((w, k) => [`${w.out[0]},${w.out[1]}`, k]));
  for (const [td, r, c] of cellsOf(ui.output)) {
    const k = order.get(`${r},${c}`);
    td.classList.toggle("unreached", k > index);
    td.classList.toggle("current", k === index);
  }
}

function describeWindow(w) {
  const what = state.trace.kind === "max" ? "maximum" : "mean";
  const lines = [el("p", {}, `window at row ${w.origin[0]}, column ${w.origin[1]}: its ${what} is `,
    el("strong", { class: "window-value", text: num(w.value) }))];
  if (w.chosen) {
    lines.push(el("p", { class: "ties", text: w.ties > 1
      ? `ties: ${w.ties} cells hold the maximum; the first in row-major order (row ${w.chosen[0]}, column ${w.chosen[1]}) is the one chosen`
      : `the maximum sits at row ${w.chosen[0]}, column ${w.chosen[1]} (red box)` }));
  }
  ui.window.replaceChildren(...lines);
}

function showRouting(index, w) {
  const t = state.trace;
  const grad = t.grad_steps ? t.grad_steps[index] : t.grad_input;
  const routed = new Set(w.routes.map(([r, c]) => `${r},${c}`));
  ui.grad.replaceChildren(grid(grad, { label: "input gradient", format: num,
    cellClass: (r, c) => (routed.has(`${r},${c}`) ? "routed" : "") }));
  for (const [td, r, c] of cellsOf(ui.upstream)) td.classList.toggle("current", r === w.out[0] && c === w.out[1]);
  ui.route.replaceChildren(...routeText(w), t.grad_steps ? "" : el("p", { class: "note",
    text: "This grid is large: the input gradient shown is the final one, after every window." }));
  drawArrows(w);
}

function routeText(w) {
  const amounts = state.trace.kind === "max" ? w.routes.map(([r, c, a]) => `row ${r}, column ${c} gets ${num(a)}`)
    : [`each of the ${w.routes.length} outlined cells gets ${num(w.routes[0][2])}`]; // avg: equal shares
  const lines = [el("p", {}, "upstream ", el("strong", { class: "upstream-value", text: num(w.upstream) }),
    ` of output (${w.out[0]}, ${w.out[1]}) → `, el("span", { class: "routes", text: amounts.join("; ") }))];
  if (state.trace.kind === "max") {
    lines.push(el("p", { class: "note", text: "Max pooling sends the whole gradient to the window's maximum; the other cells get 0 from this window." }));
    if (w.ties > 1) lines.push(el("p", { class: "tie-rule", text: `Tie: ${w.ties} equal maxima. cnnlab (like PyTorch) routes to the first in row-major order.` }));
  } else {
    lines.push(el("p", { class: "note", text: "Average pooling spreads the gradient evenly over the window's cells." }));
  }
  return lines;
}

/** An arrow from the current upstream cell to where it lands: the one cell (max), or the top
 * edge of the block of cells it is spread over (average). */
function drawArrows(w) {
  const box = ui.arrows.parentElement.getBoundingClientRect();
  const from = ui.upstream.querySelector(`td[data-row="${w.out[0]}"][data-col="${w.out[1]}"]`);
  const targets = w.routes.map(([r, c]) => ui.grad.querySelector(`td[data-row="${r}"][data-col="${c}"]`)).filter(Boolean);
  ui.arrows.setAttribute("width", box.width);
  ui.arrows.setAttribute("height", box.height);
  ui.arrows.innerHTML = '<defs><marker id="pool-arrowhead" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="#c0392b"/></marker></defs>';
  if (!from || !targets.length) return;
  const a = from.getBoundingClientRect();
  const [x1, y1] = [a.left + a.width / 2 - box.left, a.top - box.top];
  const rects = targets.map((td) => td.getBoundingClientRect());
  const left = Math.min(...rects.map((r) => r.left)), right = Math.max(...rects.map((r) => r.right));
  const [x2, y2] = [(left + right) / 2 - box.left, Math.min(...rects.map((r) => r.top)) - box.top];
  const line = document.createElementNS("http://www.w3.org/2000/svg", "path");
  line.setAttribute("d", `M${x1},${y1} C${x1},${y1 - 22} ${x2},${y2 - 22} ${x2},${y2}`); // stays below the headings
  line.setAttribute("marker-end", "url(#pool-arrowhead)");
  line.setAttribute("class", "route");
  ui.arrows.append(line);
}
