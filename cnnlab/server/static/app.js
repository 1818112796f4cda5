// The lab's shell: tabs, the shared state, and one fetch helper that shows the server's errors.
import { initDraw } from "./draw.js";
import { initWhy, explain } from "./why.js";
import { initTrain } from "./train.js";
import { initModel, loadModel } from "./model.js";

export const state = { draw: null, model: null, why: null, busy: false, pending: false };
window.labState = state; // read by the browser tests

export async function api(url, options = {}) {
  const response = await fetch(url, options);
  const body = await response.json();
  if (!response.ok) {
    showMessage(body.error || `request failed (${response.status})`);
    throw new Error(body.error);
  }
  return body;
}

export function showMessage(text) {
  const box = document.getElementById("message");
  box.textContent = text;
  box.hidden = !text;
}

export function showPage(name) {
  for (const tab of document.querySelectorAll("nav [role=tab]")) {
    const on = tab.id === `tab-${name}`;
    tab.setAttribute("aria-selected", on);
    document.getElementById(tab.getAttribute("aria-controls")).hidden = !on;
  }
  if (name === "model") loadModel();
  if (name.startsWith("play-")) openPlayground(name.slice(5));
}

const openedPlaygrounds = new Set();

/** A playground's page is built by its own module, static/play/<name>.js (export init(section)),
 * with its own static/play/<name>.css, both loaded the first time its tab is opened. */
async function openPlayground(name) {
  if (openedPlaygrounds.has(name)) return;
  openedPlaygrounds.add(name);
  const css = document.createElement("link");
  css.rel = "stylesheet";
  css.href = `/static/play/${name}.css`;
  document.head.append(css);
  const module = await import(`./play/${name}.js`);
  const section = document.getElementById(`page-play-${name}`);
  await module.init(section);
  section.dataset.ready = "1"; // the browser tests wait for this
}

/** Ask "why?" about a unit: switch to the Why page and explain it. */
export function askWhy(layer, channel, row = 0, col = 0) {
  showPage("why");
  explain(layer, channel, row, col);
}

window.addEventListener("DOMContentLoaded", async () => {
  for (const tab of document.querySelectorAll("nav [role=tab]")) {
    tab.addEventListener("click", () => showPage(tab.id.slice(4)));
  }
  initWhy();
  initTrain();
  initModel();
  await initDraw();
});
