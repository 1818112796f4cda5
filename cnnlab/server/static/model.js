// Model page: the summary table, the per-layer explanation, receptive fields, output sizes,
// parameter counts and the filters of every conv layer.
import { api, state } from "./app.js";
import { filterMosaic, legend } from "./plots.js";

export function initModel() {}

export async function loadModel() {
  const m = await api("/api/model");
  state.model = m;
  document.getElementById("m-title").textContent =
    `${m.label}: ${m.name}, input ${m.input_shape.join("x")}, ${m.parameters.toLocaleString("en")} parameters`;
  const table = document.getElementById("m-layers");
  table.innerHTML = "<tr><th>#</th><th>layer</th><th>output size</th><th>parameters</th><th>receptive field</th><th>jump</th></tr>";
  for (const l of m.layers) {
    const tr = document.createElement("tr");
    for (const v of [l.index, l.repr, l.output_shape.join("x"), l.parameters.toLocaleString("en"),
      l.receptive_field ? l.receptive_field.join("x") : "–", l.jump ? l.jump.join("x") : "–"]) {
      const td = document.createElement("td");
      td.textContent = v;
      tr.append(td);
    }
    table.append(tr);
  }
  document.getElementById("m-summary").textContent = m.summary;
  document.getElementById("m-explain").textContent = m.explanation;
  const box = document.getElementById("m-filters");
  box.replaceChildren();
  for (const l of m.layers.filter((x) => x.filters)) {
    const [F, C, KH, KW] = l.filters.shape;
    const h = document.createElement("h3");
    h.textContent = `layer ${l.index}: ${l.name}, ${F} filters of ${C}x${KH}x${KW}`;
    const { canvas, max } = filterMosaic(l.filters, C > 8 ? 4 : 12);
    box.append(h, legend("diverging", -max, max, "blue = negative weight, white = 0, red = positive"), canvas);
  }
}
