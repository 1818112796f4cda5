// Drawing helpers: decode the server's arrays, colour scales with legends, heat maps and line charts.
// Every number drawn here was computed by cnnlab in Python; these functions only map them to pixels.

/** {shape, dtype: "float32", base64} -> {shape, data: Float32Array} */
export function decode(arr) {
  const bytes = Uint8Array.from(atob(arr.base64), (c) => c.charCodeAt(0));
  return { shape: arr.shape, data: new Float32Array(bytes.buffer) };
}

/** Colour of v on a scale: "diverging" (blue - white - red, symmetric about 0) or "sequential" (black - white). */
export function colour(v, scale, vmax) {
  const m = vmax > 0 ? vmax : 1;
  if (scale === "diverging") {
    const t = Math.max(-1, Math.min(1, v / m));
    if (t >= 0) return [255, Math.round(255 * (1 - t)), Math.round(255 * (1 - t))];
    return [Math.round(255 * (1 + t)), Math.round(255 * (1 + t)), 255];
  }
  const g = Math.round(255 * Math.max(0, Math.min(1, v / m)));
  return [g, g, g];
}

/** Draw an H x W block of `data` starting at `offset` into `canvas`, each value one cell of `cell` pixels. */
export function heatmap(canvas, data, offset, H, W, scale, vmax, cell = 1) {
  canvas.width = W * cell;
  canvas.height = H * cell;
  const ctx = canvas.getContext("2d");
  const img = ctx.createImageData(W, H);
  for (let k = 0; k < H * W; k++) {
    const [r, g, b] = colour(data[offset + k], scale, vmax);
    img.data.set([r, g, b, 255], 4 * k);
  }
  const tmp = new OffscreenCanvas(W, H);
  tmp.getContext("2d").putImageData(img, 0, 0);
  ctx.imageSmoothingEnabled = false;
  ctx.drawImage(tmp, 0, 0, W * cell, H * cell);
  return canvas;
}

/** A legend: a colour bar with its end values and a sentence saying what the colours mean. */
export function legend(scale, vmin, vmax, text) {
  const box = document.createElement("div");
  box.className = "legend";
  const bar = document.createElement("canvas");
  bar.width = 120;
  bar.height = 10;
  const ctx = bar.getContext("2d");
  for (let x = 0; x < 120; x++) {
    const v = vmin + ((vmax - vmin) * x) / 119;
    const [r, g, b] = colour(v, scale, Math.max(Math.abs(vmin), Math.abs(vmax)));
    ctx.fillStyle = `rgb(${r},${g},${b})`;
    ctx.fillRect(x, 0, 1, 10);
  }
  const lo = document.createElement("span");
  lo.textContent = fmt(vmin);
  const hi = document.createElement("span");
  hi.textContent = fmt(vmax);
  const words = document.createElement("span");
  words.textContent = text;
  box.append(lo, bar, hi, words);
  return box;
}

export function fmt(v, digits = 4) {
  if (v === null || v === undefined) return "–";
  return Number(v).toPrecision(digits).replace(/\.?0+(e|$)/, "$1");
}

/**
 * Line chart of series [{points: [[x, y]], colour, label, style: "line" | "dots" | "squares"}].
 * Axis ranges come from the points; y limited to [ylo, yhi] when given.
 */
export function lineChart(canvas, series, { xlabel = "", ylo = null, yhi = null } = {}) {
  const ctx = canvas.getContext("2d");
  const W = canvas.width, H = canvas.height, L = 48, R = 10, T = 26, B = 34;
  ctx.clearRect(0, 0, W, H);
  const pts = series.flatMap((s) => s.points.filter((p) => p[1] !== null));
  ctx.font = "11px system-ui, sans-serif";
  ctx.fillStyle = "#5b6475";
  if (!pts.length) { ctx.fillText("no points yet", L + 10, T + 20); return; }
  let x0 = Math.min(...pts.map((p) => p[0])), x1 = Math.max(...pts.map((p) => p[0]));
  let y0 = ylo ?? Math.min(...pts.map((p) => p[1])), y1 = yhi ?? Math.max(...pts.map((p) => p[1]));
  if (x1 === x0) x1 = x0 + 1;
  if (y1 === y0) { y1 = y0 + 1e-3; y0 -= 1e-3; }
  const X = (x) => L + ((x - x0) / (x1 - x0)) * (W - L - R);
  const Y = (y) => T + (1 - (y - y0) / (y1 - y0)) * (H - T - B);
  ctx.strokeStyle = "#d6dae3";
  ctx.strokeRect(L, T, W - L - R, H - T - B);
  for (let k = 0; k <= 4; k++) {
    const y = y0 + ((y1 - y0) * k) / 4;
    ctx.fillText(fmt(y, 3), 2, Y(y) + 4);
  }
  ctx.fillText(fmt(x0, 4), L, H - B + 14);
  ctx.fillText(fmt(x1, 4), W - R - 30, H - B + 14);
  ctx.fillText(xlabel, L + (W - L - R) / 2 - 20, H - 6);
  let lx = L;
  for (const s of series) {
    const p = s.points.filter((q) => q[1] !== null);
    if (!p.length) continue;  // no legend entry for a series without points (e.g. no validation set)
    ctx.strokeStyle = ctx.fillStyle = s.colour;
    if (s.style === "line") {
      ctx.lineWidth = 1.2;
      ctx.beginPath();
      p.forEach((q, k) => (k ? ctx.lineTo(X(q[0]), Y(q[1])) : ctx.moveTo(X(q[0]), Y(q[1]))));
      ctx.stroke();
    } else {
      for (const q of p) {
        if (s.style === "squares") ctx.fillRect(X(q[0]) - 3, Y(q[1]) - 3, 6, 6);
        else { ctx.beginPath(); ctx.arc(X(q[0]), Y(q[1]), 3.5, 0, 2 * Math.PI); ctx.fill(); }
      }
    }
    ctx.fillRect(lx, 8, 10, 3);
    ctx.fillText(s.label, lx + 14, 13);
    lx += 20 + ctx.measureText(s.label).width + 12;
  }
}

/** A grid of small heat maps (one per channel) of a (C, H, W) array, as one canvas per channel. */
export function mapGrid(container, arr, scale, vmax, cell, onclick = null) {
  const { shape, data } = decode(arr);
  const [C, H, W] = shape;
  container.replaceChildren();
  container.classList.add("maps");
  for (let c = 0; c < C; c++) {
    const cv = heatmap(document.createElement("canvas"), data, c * H * W, H, W, scale, vmax, cell);
    cv.dataset.channel = c;
    cv.title = `channel ${c}`;
    if (onclick) {
      cv.addEventListener("click", (ev) => {
        const r = cv.getBoundingClientRect();
        const row = Math.min(H - 1, Math.floor(((ev.clientY - r.top) / r.height) * H));
        const col = Math.min(W - 1, Math.floor(((ev.clientX - r.left) / r.width) * W));
        onclick(c, row, col);
      });
    }
    container.append(cv);
  }
}

/** Filters (F, C, KH, KW) as one mosaic canvas: a row per filter and a block per input channel
 * (single-channel filters: 16 filters per row). One symmetric colour scale for all of them. */
export function filterMosaic(arr, cell = 6) {
  const { shape, data } = decode(arr);
  const [F, C, KH, KW] = shape;
  let m = 0;
  for (const v of data) m = Math.max(m, Math.abs(v));
  const perRow = C === 1 ? Math.min(F, 16) : 1;
  const gap = C === 1 ? 3 : 1, bw = KW * cell + gap, bh = KH * cell + gap;
  const cv = document.createElement("canvas");
  cv.className = "mosaic";
  cv.width = perRow * C * bw;
  cv.height = Math.ceil(F / perRow) * bh;
  const ctx = cv.getContext("2d");
  ctx.fillStyle = C === 1 ? "#8a93a6" : "#d6dae3";  // a visible gap between single-channel filters
  ctx.fillRect(0, 0, cv.width, cv.height);
  for (let f = 0; f < F; f++) for (let c = 0; c < C; c++) for (let i = 0; i < KH; i++) for (let j = 0; j < KW; j++) {
    const [r, g, b] = colour(data[((f * C + c) * KH + i) * KW + j], "diverging", m);
    const x0 = ((f % perRow) * C + c) * bw, y0 = Math.floor(f / perRow) * bh;
    ctx.fillStyle = `rgb(${r},${g},${b})`;
    ctx.fillRect(x0 + j * cell, y0 + i * cell, cell, cell);
  }
  return { canvas: cv, max: m };
}
