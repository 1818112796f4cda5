// Draw page: a 280x280 canvas (mouse, touch, pen), a test example or an upload -> the server's
// preprocessed input, probabilities and every layer's feature maps.
import { api, state, askWhy, showMessage } from "./app.js";
import { heatmap, legend, mapGrid } from "./plots.js";
import { fillLayers } from "./why.js";

const DEBOUNCE_MS = 120;
let requestCount = 0;
let timer = null;
let inFlight = false;
let again = false;

export async function initDraw() {
  const canvas = document.getElementById("draw-canvas");
  const ctx = canvas.getContext("2d");
  clearCanvas();
  let drawing = false;
  let last = null;
  canvas.addEventListener("pointerdown", (ev) => {
    drawing = true;
    canvas.setPointerCapture(ev.pointerId);
    last = [ev.offsetX, ev.offsetY];
    stroke(ctx, last, last);
  });
  canvas.addEventListener("pointermove", (ev) => {
    if (!drawing) return;
    const p = [ev.offsetX, ev.offsetY];
    stroke(ctx, last, p);
    last = p;
    schedule();
  });
  const end = () => { if (drawing) { drawing = false; schedule(0); } };
  canvas.addEventListener("pointerup", end);
  canvas.addEventListener("pointercancel", end);
  document.getElementById("clear").addEventListener("click", () => { clearCanvas(); schedule(0); });
  document.getElementById("pick-example").addEventListener("click", () => pickExample());
  document.getElementById("upload").addEventListener("change", async (ev) => {
    const file = ev.target.files[0];
    if (file) await predictBody(file, file.type || "application/octet-stream");
  });
  await refreshModel();
  await pickExample();
}

/** Re-read the live model (after "Use this model") and show a test example through it. */
export async function refreshModel() {
  state.model = await api("/api/model");
  document.getElementById("model-label").textContent = state.model.label;
  fillLayers(state.model);
  const index = document.getElementById("example-index");
  index.max = Math.max(0, state.model.examples - 1);
  document.getElementById("pick-example").disabled = state.model.examples === 0;
}

function stroke(ctx, a, b) {
  ctx.strokeStyle = "#000";
  ctx.lineCap = ctx.lineJoin = "round";
  ctx.lineWidth = Number(document.getElementById("brush").value);
  ctx.beginPath();
  ctx.moveTo(a[0], a[1]);
  ctx.lineTo(b[0], b[1]);
  ctx.stroke();
}

function clearCanvas() {
  const canvas = document.getElementById("draw-canvas");
  const ctx = canvas.getContext("2d");
  ctx.fillStyle = "#fff";
  ctx.fillRect(0, 0, canvas.width, canvas.height);
}

function schedule(delay = DEBOUNCE_MS) {
  clearTimeout(timer);
  state.pending = true;  // a prediction is due (read by the browser tests)
  timer = setTimeout(() => { state.pending = false; predictCanvas(); }, delay);
}

async function predictCanvas() {
  if (inFlight) { again = true; return; }  // one request at a time; the latest drawing wins
  inFlight = state.busy = true;
  const canvas = document.getElementById("draw-canvas");
  const blob = await new Promise((resolve) => canvas.toBlob(resolve, "image/png"));
  await predictBody(blob, "image/png");
}

async function predictBody(body, type) {
  inFlight = state.busy = true;
  try {
    render(await api("/api/predict", { method: "POST", headers: { "Content-Type": type }, body }));
    showMessage("");
  } catch (err) {
    /* the message is shown */
  } finally {
    inFlight = state.busy = false;
    if (again) { again = false; schedule(0); }
  }
}

export async function pickExample() {
  const index = Number(document.getElementById("example-index").value);
  try {
    const result = await api("/api/predict", { method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ example: index }) });
    paintExample(result.pixels);
    render(result);
    showMessage("");
  } catch (err) { /* shown */ }
}

function paintExample(pixels) {
  // the example, dark on white, into the drawing area, so you can draw on top of it
  const [, H, W] = pixels.shape;
  const canvas = document.getElementById("draw-canvas");
  const ctx = canvas.getContext("2d");
  const cw = canvas.width / W, ch = canvas.height / H;
  for (let i = 0; i < H; i++) for (let j = 0; j < W; j++) {
    const g = 255 - pixels.data[i * W + j];
    ctx.fillStyle = `rgb(${g},${g},${g})`;
    ctx.fillRect(j * cw, i * ch, cw + 0.5, ch + 0.5);
  }
}

function render(result) {
  state.draw = result;
  requestCount += 1;
  const [, H, W] = result.pixels.shape;
  const input = document.getElementById("input-view");
  const data = Float32Array.from(result.pixels.data);
  heatmap(input, data, 0, H, W, "sequential", 255, Math.max(1, Math.floor(168 / W)));
  // probabilities
  const list = document.getElementById("probabilities");
  list.replaceChildren();
  result.probabilities.forEach((p, k) => {
    const li = document.createElement("li");
    li.tabIndex = 0;
    li.dataset.p = p;
    li.className = k === result.predicted ? "top" : "";
    li.title = `logit ${result.logits[k]}`;
    const name = document.createElement("span");
    name.textContent = k;
    const bar = document.createElement("div");
    bar.className = "bar";
    bar.style.width = `${(100 * p).toFixed(1)}%`;
    const pct = document.createElement("span");
    pct.className = "pct";
    pct.textContent = `${(100 * p).toFixed(2)}%`;
    li.append(name, document.createElement("div"), pct);
    li.children[1].append(bar);
    if (result.logit_layer !== null) {
      const why = () => askWhy(result.logit_layer, k);
      li.addEventListener("click", why);
      li.addEventListener("keydown", (ev) => { if (ev.key === "Enter") why(); });
    }
    list.append(li);
  });
  const predicted = document.getElementById("predicted");
  predicted.textContent = `${result.predicted}` + (result.label !== null ? ` (true label ${result.label})` : "");
  predicted.dataset.class = result.predicted;
  predicted.dataset.request = requestCount;
  // feature maps
  const box = document.getElementById("feature-maps");
  box.replaceChildren();
  for (const layer of result.layers) {
    const [C, h, w] = layer.maps.shape;
    const section = document.createElement("div");
    section.className = "layer";
    section.dataset.layer = layer.index;
    const title = document.createElement("h3");
    title.textContent = `layer ${layer.index}: ${layer.name} (${layer.kind}), ${C} channels of ${h}x${w}`;
    const grid = document.createElement("div");
    mapGrid(grid, layer.maps, layer.scale, layer.vmax, Math.max(1, Math.round(56 / h)),
      (c, row, col) => askWhy(layer.index, c, row, col));
    section.append(title, legend(layer.scale, layer.vmin, layer.vmax, layer.legend), grid);
    box.append(section);
  }
}
