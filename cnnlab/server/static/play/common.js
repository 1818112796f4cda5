// Shared by the playgrounds: the server call, numbers as text, and number grids drawn as tables
// (a table keeps every value readable, selectable and testable; colour only adds to the text).
import { api } from "../app.js";

/** POST the settings to /api/play/<name>; the server computes every number the page shows. */
export function play(name, settings) {
  return api(`/api/play/${name}`, {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(settings),
  });
}

/** A number as the page writes it: integers exactly, others with up to `digits` decimals. */
export function fmt(value, digits = 3) {
  if (Object.is(value, -0)) return "0";
  if (Number.isInteger(value)) return value.toLocaleString("en-US");
  const text = value.toFixed(digits).replace(/0+$/, "").replace(/\.$/, "");
  return text === "-0" ? "0" : text;
}

/** document.createElement with attributes (`class`, `text`, `on<event>`, others) and children. */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value);
  }
  node.append(...children);
  return node;
}

/** A white-to-colour scale for values in [lo, hi]: blue for negative, orange for positive. */
export function divergingColor(value, lo, hi) {
  const span = Math.max(Math.abs(lo), Math.abs(hi)) || 1;
  const t = Math.min(1, Math.abs(value) / span);
  const [r, g, b] = value < 0 ? [36, 86, 201] : [230, 120, 20];
  const mix = (c) => Math.round(255 + (c - 255) * t * 0.85);
  return `rgb(${mix(r)}, ${mix(g)}, ${mix(b)})`;
}

/**
 * A grid of numbers (array of rows) as a <table class="grid">. Options:
 *   format(v)          text of a cell (default fmt)
 *   color(v, r, c)     background of a cell (default: diverging scale over the grid's range)
 *   cellClass(r, c)    extra class of a cell ("window", "chosen", "pad", ...) or ""
 *   editable           cells are <input>s; onEdit(r, c, value) after a valid change
 *   label              aria-label of the table
 * Cells carry data-row / data-col so tests and hover handlers can find them.
 */
export function grid(values, options = {}) {
  const flat = values.flat();
  const lo = Math.min(...flat), hi = Math.max(...flat);
  const format = options.format || ((v) => fmt(v));
  const color = options.color || ((v) => divergingColor(v, lo, hi));
  const table = el("table", { class: "grid", "aria-label": options.label || "grid" });
  values.forEach((row, r) => {
    const tr = el("tr");
    row.forEach((v, c) => {
      const td = el("td", { "data-row": r, "data-col": c });
      const extra = options.cellClass ? options.cellClass(r, c) : "";
      if (extra) td.className = extra;
      td.style.backgroundColor = color(v, r, c); // a colour only: class patterns (td.pad) stay
      if (options.editable) {
        const input = el("input", { type: "text", inputmode: "decimal", value: format(v), "aria-label": `row ${r}, column ${c}` });
        input.addEventListener("change", () => {
          const parsed = Number(input.value);
          if (input.value.trim() === "" || !Number.isFinite(parsed)) { input.value = format(v); return; }
          options.onEdit(r, c, parsed);
        });
        td.append(input);
      } else {
        td.textContent = format(v);
      }
      tr.append(td);
    });
    table.append(tr);
  });
  return table;
}
