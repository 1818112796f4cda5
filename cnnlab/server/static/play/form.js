// Small form controls and number text shared by the Convolution and Pooling pages.
import { el, fmt } from "./common.js";

/** <label>text control</label> (style.css stacks them in `.controls.wrap`). */
export function labelled(text, control) {
  return el("label", {}, text, control);
}

/** A <select class=cls> of [value, text] options; onChange(value). */
export function select(cls, options, onChange) {
  const node = el("select", { class: cls, onchange: () => onChange(node.value) },
    ...options.map(([value, text]) => el("option", { value, text })));
  return node;
}

/** An <input type=number class=cls>; onChange(number) after the user commits a value. */
export function numberInput(cls, min, max, value, onChange, step = "1") {
  const node = el("input", { type: "number", class: cls, min, max, step, value: String(value) });
  node.addEventListener("change", () => onChange(Number(node.value)));
  return node;
}

/** fmt, but a negative zero (10 x -0 weights) is written 0. */
export function num(v) {
  return fmt(v === 0 ? 0 : v);
}
