// Train page: choose a zoo model, data and settings; Start / Stop / Resume; live curves, filters,
// one example's maps and the training doctor's findings, streamed by the server (Server-Sent Events).
import { api, showPage } from "./app.js";
import { refreshModel, pickExample } from "./draw.js";
import { lineChart, mapGrid, legend } from "./plots.js";

let options = null;
let events = null;
const $ = (id) => document.getElementById(id);
const ACTIVE = ["running", "stopping", "finishing"];

export async function initTrain() {
  options = await api("/api/train/options");
  const select = $("t-model");
  for (const name of Object.keys(options.models)) {
    const o = document.createElement("option");
    o.value = o.textContent = name;
    select.append(o);
  }
  select.value = options.defaults.model;
  select.addEventListener("change", () => applyDefaults(select.value));
  applyDefaults(select.value);
  $("t-start").addEventListener("click", start);
  $("t-stop").addEventListener("click", () => command("/api/train/stop"));
  $("t-resume").addEventListener("click", async () => { await command("/api/train/resume"); listen(); });
  $("t-use").addEventListener("click", use);
  const snap = await api("/api/train/status");
  render(snap);
  if (ACTIVE.includes(snap.state)) listen();
}

function applyDefaults(model) {
  const data = options.models[model];
  const d = options.toy_defaults[data];
  $("t-data").value = data;
  $("t-epochs").value = d.epochs;
  $("t-batch").value = d.batch_size;
  $("t-lr").value = d.lr;
  $("t-limit").disabled = data !== "mnist";
}

function settings() {
  const n = (id) => Number($(id).value);
  return { model: $("t-model").value, data: $("t-data").value, limit: n("t-limit"), epochs: n("t-epochs"),
    batch_size: n("t-batch"), optimizer: $("t-optimizer").value, lr: n("t-lr"), schedule: $("t-schedule").value,
    augment: $("t-augment").checked, seed: n("t-seed") };
}

async function start() {
  try {
    render(await api("/api/train/start", { method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify(settings()) }));
    listen();
  } catch (err) { /* shown */ }
}

async function command(url) {
  try {
    render(await api(url, { method: "POST", headers: { "Content-Type": "application/json" }, body: "{}" }));
  } catch (err) { /* shown */ }
}

async function use() {
  try {
    await api("/api/train/use", { method: "POST", headers: { "Content-Type": "application/json" }, body: "{}" });
    await refreshModel();
    await pickExample();
    showPage("draw");
  } catch (err) { /* shown */ }
}

function listen() {
  if (events) events.close();
  events = new EventSource("/api/train/events");
  events.onmessage = (ev) => {
    const snap = JSON.parse(ev.data);
    render(snap);
    if (!ACTIVE.includes(snap.state)) { events.close(); events = null; }
  };
}

function render(s) {
  const status = $("t-status");
  status.dataset.state = s.state;
  const progress = s.settings ? `epoch ${s.epoch}/${s.epochs}, batch ${s.batch}/${s.steps}` : "";
  const rate = s.images_per_s ? `, ${Math.round(s.images_per_s).toLocaleString("en")} images/s` : "";
  let text = `${s.state}${progress ? ": " + progress : ""}${rate}`;
  if (s.result && s.result.test) text += ` | test accuracy ${(100 * s.result.test.accuracy).toFixed(2)}% on ${s.result.test.images} images`;
  if (s.error) text += ` | ${s.error}`;
  status.textContent = text;
  $("t-start").disabled = ACTIVE.includes(s.state);
  $("t-stop").disabled = s.state !== "running";
  $("t-resume").disabled = !s.can_resume;
  $("t-use").disabled = !s.can_use;
  $("t-window").textContent = s.window === 1 ? "1 batch (every batch)" : `${s.window} batches`;
  const bp = s.batch_points, ep = s.epoch_points, steps = Math.max(1, s.steps);
  const epochX = (e) => e.epoch * steps;
  lineChart($("t-loss"), [
    { label: "train (batch window)", colour: "#2456c9", style: "line", points: bp.map((p) => [p[0], p[1]]) },
    { label: "train (epoch)", colour: "#2456c9", style: "dots", points: ep.map((e) => [epochX(e), e.loss]) },
    { label: "validation", colour: "#d64545", style: "squares", points: ep.map((e) => [epochX(e), e.val_loss ?? null]) },
  ], { xlabel: "batch" });
  lineChart($("t-acc"), [
    { label: "train (batch window)", colour: "#2456c9", style: "line", points: bp.map((p) => [p[0], p[2]]) },
    { label: "train (epoch)", colour: "#2456c9", style: "dots", points: ep.map((e) => [epochX(e), e.accuracy]) },
    { label: "validation", colour: "#d64545", style: "squares", points: ep.map((e) => [epochX(e), e.val_accuracy ?? null]) },
  ], { xlabel: "batch", ylo: 0, yhi: 1 });
  $("t-loss").dataset.points = bp.length + ep.length;
  $("t-acc").dataset.points = bp.length + ep.length;
  if (s.views && s.views.filters) {
    const f = s.views.filters;
    const [F, C, KH, KW] = f.shape;
    // the first layer's filters as (F*C) small maps of KH x KW
    const flat = { ...f, shape: [F * C, KH, KW] };
    const fbox = $("t-filters");
    const grid = document.createElement("div");
    mapGrid(grid, flat, "diverging", s.views.filters_max, Math.max(4, Math.floor(48 / KW)));
    fbox.replaceChildren(legend("diverging", -s.views.filters_max, s.views.filters_max, "weights: blue < 0 < red"), grid);
    const mbox = $("t-maps");
    const maps = document.createElement("div");
    const [, h] = s.views.maps.shape;
    const signed = s.views.maps_layer.includes("Conv2d") || s.views.maps_layer.includes("Tanh");
    mapGrid(maps, s.views.maps, signed ? "diverging" : "sequential", s.views.maps_max, Math.max(2, Math.floor(56 / h)));
    mbox.replaceChildren(legend(signed ? "diverging" : "sequential", signed ? -s.views.maps_max : 0, s.views.maps_max,
      signed ? "blue < 0 < red" : "black = 0, white = largest"), maps);
    $("t-maps-layer").textContent = s.views.maps_layer;
  }
  const diag = $("t-diagnoses");
  diag.replaceChildren();
  for (const d of s.diagnoses.length ? s.diagnoses : [{ message: "No findings yet." }]) {
    const li = document.createElement("li");
    li.textContent = d.kind ? `${d.kind}${d.epoch ? ` (epoch ${d.epoch}${d.batch ? `, batch ${d.batch}` : ""})` : ""}: ${d.message}` : d.message;
    diag.append(li);
  }
  $("t-run").textContent = s.run ? `runs/…/${s.run}: ${s.files.join(", ") || "(empty)"}` : "–";
}
