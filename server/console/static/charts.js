// Line charts as inline SVG: no library, no network. Charts.line(container, options) replaces the
// container's content. Series values may be null (a gap); a band draws an interval (low, high) behind
// its series; a threshold draws a dashed horizontal line.
"use strict";

const Charts = (() => {
  const NS = "http://www.w3.org/2000/svg";
  const WIDTH = 760, MARGIN = { left: 58, right: 16, top: 14, bottom: 44 };

  function node(tag, attrs, parent, text) {
    const element = document.createElementNS(NS, tag);
    for (const [key, value] of Object.entries(attrs || {})) element.setAttribute(key, String(value));
    if (text !== undefined) element.textContent = text;
    if (parent) parent.appendChild(element);
    return element;
  }

  function niceStep(span, ticks) {
    const raw = span / ticks, power = Math.pow(10, Math.floor(Math.log10(raw)));
    for (const factor of [1, 2, 2.5, 5, 10]) if (factor * power >= raw) return factor * power;
    return 10 * power;
  }

  function domain(options) {
    const values = [];
    for (const s of options.series) {
      for (const v of s.values) if (v !== null && v !== undefined) values.push(v);
      for (const b of s.band || []) if (b) values.push(b[0], b[1]);
    }
    if (options.threshold !== undefined) values.push(options.threshold);
    let low = options.min !== undefined ? options.min : Math.min(...values);
    let high = options.max !== undefined ? options.max : Math.max(...values);
    if (low === high) { low -= 1; high += 1; }
    const step = niceStep(high - low, 4);
    return { low: Math.floor(low / step) * step, high: Math.ceil(high / step) * step, step };
  }

  function line(container, options) {
    container.replaceChildren();
    const labels = options.labels || [];
    const hasData = options.series.some((s) => s.values.some((v) => v !== null && v !== undefined));
    if (!labels.length || !hasData) {
      const empty = document.createElement("p");
      empty.className = "muted";
      empty.textContent = options.empty || "No data yet.";
      container.appendChild(empty);
      return;
    }
    const height = options.height || 230;
    const format = options.format || ((v) => String(v));
    const { low, high, step } = domain(options);
    const plotW = WIDTH - MARGIN.left - MARGIN.right, plotH = height - MARGIN.top - MARGIN.bottom;
    const x = (i) => MARGIN.left + (labels.length === 1 ? plotW / 2 : (i * plotW) / (labels.length - 1));
    const y = (v) => MARGIN.top + plotH - ((v - low) / (high - low)) * plotH;
    const root = node("svg", { viewBox: `0 0 ${WIDTH} ${height}`, class: "svg-chart", role: "img",
                               "aria-label": options.title || "chart" }, container);
    for (let v = low; v <= high + step / 2; v += step) {
      node("line", { x1: MARGIN.left, x2: WIDTH - MARGIN.right, y1: y(v), y2: y(v), class: "grid" }, root);
      node("text", { x: MARGIN.left - 6, y: y(v) + 4, class: "axis", "text-anchor": "end" }, root, format(v));
    }
    const every = Math.max(1, Math.ceil(labels.length / 8));
    labels.forEach((label, i) => {
      if (i % every === 0 || i === labels.length - 1) {
        const anchor = labels.length > 1 && i === 0 ? "start" : labels.length > 1 && i === labels.length - 1 ? "end" : "middle";
        node("text", { x: x(i), y: height - MARGIN.bottom + 18, class: "axis", "text-anchor": anchor }, root, label);
      }
    });
    if (options.threshold !== undefined) {
      node("line", { x1: MARGIN.left, x2: WIDTH - MARGIN.right, y1: y(options.threshold), y2: y(options.threshold),
                     class: "threshold" }, root);
    }
    options.series.forEach((series, index) => {
      const css = series.className || `series-${index}`;
      if (series.band) {
        const upper = [], lower = [];
        series.band.forEach((b, i) => { if (b) { upper.push(`${x(i)},${y(b[1])}`); lower.unshift(`${x(i)},${y(b[0])}`); } });
        if (upper.length > 1) node("polygon", { points: upper.concat(lower).join(" "), class: `band ${css}` }, root);
      }
      let path = "", pen = false;
      series.values.forEach((v, i) => {
        if (v === null || v === undefined) { pen = false; return; }
        path += `${pen ? "L" : "M"}${x(i).toFixed(1)},${y(v).toFixed(1)} `;
        pen = true;
      });
      if (path) node("path", { d: path, class: `line ${css}` }, root);
      series.values.forEach((v, i) => {
        if (v === null || v === undefined) return;
        const dot = node("circle", { cx: x(i), cy: y(v), r: 3, class: `dot ${css}` }, root);
        node("title", {}, dot, `${series.name} ${labels[i]}: ${format(v)}`);
      });
    });
    const legend = node("g", { class: "legend" }, root);
    let offset = MARGIN.left;
    options.series.forEach((series, index) => {
      const css = series.className || `series-${index}`;
      node("rect", { x: offset, y: height - 16, width: 12, height: 4, class: `swatch ${css}` }, legend);
      const text = node("text", { x: offset + 16, y: height - 11, class: "axis" }, legend, series.name);
      offset += 28 + 7 * series.name.length;
      return text;
    });
  }

  return { line };
})();
