// Play / pause / step / scrub / speed over the positions of a playground's trace (conv, pool).
// It only moves an index: the pages redraw what the server computed for that position.
import { el } from "./common.js";

/**
 * stepper(onMove) -> { node, set(count, index), index() }.
 * onMove(index) is called whenever the position changes (button, slider, timer).
 */
export function stepper(onMove) {
  let count = 0, current = 0, timer = null;
  const playButton = el("button", { class: "play-toggle", text: "Play" });
  const stepButton = el("button", { class: "step", text: "Step ▶" });
  const backButton = el("button", { class: "step-back", text: "◀" , title: "previous position" });
  const scrub = el("input", { type: "range", class: "scrub", min: "0", max: "0", value: "0", "aria-label": "position" });
  const speed = el("input", { type: "range", class: "speed", min: "1", max: "20", value: "4", "aria-label": "steps per second" });
  const where = el("span", { class: "where" });

  function move(index) {
    current = Math.max(0, Math.min(count - 1, index));
    scrub.value = String(current);
    where.textContent = `position ${current + 1} of ${count}`;
    onMove(current);
  }
  function stop() {
    clearInterval(timer);
    timer = null;
    playButton.textContent = "Play";
  }
  function start() {
    if (current >= count - 1) move(0);
    playButton.textContent = "Pause";
    timer = setInterval(() => (current >= count - 1 ? stop() : move(current + 1)), 1000 / Number(speed.value));
  }
  playButton.addEventListener("click", () => (timer ? stop() : start()));
  stepButton.addEventListener("click", () => { stop(); move(current + 1); });
  backButton.addEventListener("click", () => { stop(); move(current - 1); });
  scrub.addEventListener("input", () => { stop(); move(Number(scrub.value)); });
  speed.addEventListener("change", () => { if (timer) { stop(); start(); } });

  const node = el("div", { class: "controls stepper" }, playButton, backButton, stepButton, scrub, where,
    el("label", {}, "speed (positions/s) ", speed));
  return {
    node,
    /** A new trace of `count` positions, shown at `index` (clamped). */
    set(newCount, index) {
      count = newCount;
      scrub.max = String(Math.max(0, count - 1));
      move(index);
    },
    index: () => current,
    stop,
  };
}
