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
