// Plain SVG charts for the bench report (no chart library): grouped bars in one or more
// panels, and lines over a numeric x axis. Pure: data in, SVG text out. Missing values
// (null) are drawn as a small "n/a" mark, never as zero.
export const PALETTE = ['#4e79a7', '#f28e2b', '#59a14f', '#e15759', '#76b7b2', '#b07aa1', '#9c755f'];

const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
const fmt = (v: number): string => (Number.isInteger(v) ? String(v) : Math.abs(v) >= 100 ? v.toFixed(0) : Math.abs(v) >= 10 ? v.toFixed(1) : Math.abs(v) >= 1 ? v.toFixed(2) : v.toPrecision(2));

/** Round axis maximum and tick step: 1, 2 or 5 times a power of ten, about 5 ticks. */
export function niceScale(max: number, ticks = 5): { max: number; step: number } {
  if (!Number.isFinite(max) || max <= 0) return { max: 1, step: 0.2 };
  const raw = max / ticks;
  const pow = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * pow).find((s) => s >= raw)!;
  return { max: Math.ceil(max / step - 1e-9) * step, step };
}

/** A long group label goes on two lines, before and from its parenthesis. */
export function wrapLabel(label: string): string[] {
  const i = label.indexOf(' (');
  return i > 0 && label.length > 18 ? [label.slice(0, i), label.slice(i + 1)] : [label];
}

export interface BarPanel { title: string; groups: { label: string; values: (number | null)[] }[] }
export interface BarChart { title: string; subtitle?: string; yLabel: string; series: string[]; panels: BarPanel[] }

function header(w: number, h: number, title: string, subtitle?: string): string[] {
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}" viewBox="0 0 ${w} ${h}" font-family="DejaVu Sans, Arial, sans-serif">`,
    `<rect x="0" y="0" width="${w}" height="${h}" fill="#ffffff"/>`,
    `<text x="${w / 2}" y="26" font-size="18" font-weight="bold" text-anchor="middle">${esc(title)}</text>`,
    ...(subtitle ? [`<text x="${w / 2}" y="46" font-size="12" fill="#555" text-anchor="middle">${esc(subtitle)}</text>`] : []),
  ];
}

/** Width of the legend row (a box and the name per series). */
export const legendWidth = (series: readonly string[]): number => series.reduce((w, s) => w + 28 + s.length * 7, 0);

function legend(series: string[], x: number, y: number): string[] {
  const out: string[] = [];
  let cx = x;
  series.forEach((s, i) => {
    out.push(`<rect x="${cx}" y="${y - 10}" width="12" height="12" fill="${PALETTE[i % PALETTE.length]}"/>`);
    out.push(`<text x="${cx + 16}" y="${y}" font-size="12">${esc(s)}</text>`);
    cx += 28 + s.length * 7;
  });
  return out;
}

function yAxis(x: number, top: number, h: number, scale: { max: number; step: number }, width: number, label: string): string[] {
  const out: string[] = [];
  for (let v = 0; v <= scale.max + 1e-9; v += scale.step) {
    const y = top + h - (v / scale.max) * h;
    out.push(`<line x1="${x}" y1="${y.toFixed(1)}" x2="${x + width}" y2="${y.toFixed(1)}" stroke="#e5e5e5"/>`);
    out.push(`<text x="${x - 6}" y="${(y + 4).toFixed(1)}" font-size="11" text-anchor="end">${fmt(Math.round(v * 1e6) / 1e6)}</text>`);
  }
  out.push(`<line x1="${x}" y1="${top}" x2="${x}" y2="${top + h}" stroke="#333"/>`);
  out.push(`<line x1="${x}" y1="${top + h}" x2="${x + width}" y2="${top + h}" stroke="#333"/>`);
  out.push(`<text x="${x - 44}" y="${top + h / 2}" font-size="12" text-anchor="middle" transform="rotate(-90 ${x - 44} ${top + h / 2})">${esc(label)}</text>`);
  return out;
}

/** Grouped bars; panels side by side, each with its own y scale. */
export function barChartSvg(c: BarChart): string {
  // Wide enough for every group's bars and its (wrapped) label, and for the panel title.
  const groupW = Math.max(c.series.length * 18 + 24, ...c.panels.flatMap((p) => p.groups.flatMap((g) => wrapLabel(g.label).map((l) => l.length * 6.5 + 12))));
  const panelW = Math.max(280, ...c.panels.map((p) => Math.max(80 + p.groups.length * groupW, p.title.length * 7.5 + 100)));
  // Five modes' names make a long legend: the chart is at least as wide as it.
  const w = Math.max(640, c.panels.length * panelW + 40, legendWidth(c.series) + 100);
  const h = 440;
  const top = c.subtitle ? 104 : 88;
  const plotH = h - top - 60;
  const out = header(w, h, c.title, c.subtitle);
  out.push(...legend(c.series, 70, c.subtitle ? 68 : 56));
  c.panels.forEach((p, k) => {
    const x0 = 20 + k * panelW + 60;
    const plotW = panelW - 80;
    const max = Math.max(0, ...p.groups.flatMap((g) => g.values.filter((v): v is number => v !== null && Number.isFinite(v))));
    const scale = niceScale(max);
    out.push(...yAxis(x0, top, plotH, scale, plotW, k === 0 ? c.yLabel : ''));
    out.push(`<text x="${x0 + plotW / 2}" y="${top - 8}" font-size="13" font-weight="bold" text-anchor="middle">${esc(p.title)}</text>`);
    const gw = plotW / Math.max(1, p.groups.length);
    const bw = Math.max(4, Math.min(22, (gw - 12) / Math.max(1, c.series.length)));
    p.groups.forEach((g, gi) => {
      const gx = x0 + gi * gw + (gw - bw * c.series.length) / 2;
      g.values.forEach((v, si) => {
        const bx = gx + si * bw;
        if (v === null || !Number.isFinite(v)) {
          out.push(`<text x="${(bx + bw / 2).toFixed(1)}" y="${top + plotH - 4}" font-size="8" fill="#999" text-anchor="middle">n/a</text>`);
          return;
        }
        const bh = (v / scale.max) * plotH;
        out.push(`<rect x="${bx.toFixed(1)}" y="${(top + plotH - bh).toFixed(1)}" width="${(bw - 1).toFixed(1)}" height="${bh.toFixed(1)}" fill="${PALETTE[si % PALETTE.length]}"><title>${esc(`${c.series[si]} ${g.label}: ${fmt(v)}`)}</title></rect>`);
        if (bw >= 14) out.push(`<text x="${(bx + bw / 2).toFixed(1)}" y="${(top + plotH - bh - 3).toFixed(1)}" font-size="8" text-anchor="middle">${fmt(v)}</text>`);
      });
      wrapLabel(g.label).forEach((line, li) => {
        out.push(`<text x="${(x0 + gi * gw + gw / 2).toFixed(1)}" y="${top + plotH + 16 + li * 13}" font-size="11" text-anchor="middle">${esc(line)}</text>`);
      });
    });
  });
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}

export interface LineChart { title: string; subtitle?: string; xLabel: string; yLabel: string; series: { name: string; points: { x: number; y: number | null }[] }[] }

/** Lines over a numeric x axis (points at their x, labelled with their value). */
export function lineChartSvg(c: LineChart): string {
  const w = Math.max(760, legendWidth(c.series.map((s) => s.name)) + 100);
  const h = 440;
  const top = c.subtitle ? 104 : 88;
  const x0 = 80;
  const plotW = w - x0 - 40;
  const plotH = h - top - 60;
  const xs = [...new Set(c.series.flatMap((s) => s.points.map((p) => p.x)))].sort((a, b) => a - b);
  const xMax = Math.max(1, ...xs);
  const yScale = niceScale(Math.max(0, ...c.series.flatMap((s) => s.points.map((p) => p.y).filter((y): y is number => y !== null && Number.isFinite(y)))));
  const px = (x: number): number => x0 + (x / xMax) * plotW;
  const py = (y: number): number => top + plotH - (y / yScale.max) * plotH;
  const out = header(w, h, c.title, c.subtitle);
  out.push(...legend(c.series.map((s) => s.name), 70, c.subtitle ? 68 : 56));
  out.push(...yAxis(x0, top, plotH, yScale, plotW, c.yLabel));
  for (const x of xs) out.push(`<text x="${px(x).toFixed(1)}" y="${top + plotH + 16}" font-size="11" text-anchor="middle">${fmt(x)}</text>`);
  out.push(`<text x="${x0 + plotW / 2}" y="${top + plotH + 36}" font-size="12" text-anchor="middle">${esc(c.xLabel)}</text>`);
  c.series.forEach((s, i) => {
    const color = PALETTE[i % PALETTE.length];
    const pts = s.points.filter((p): p is { x: number; y: number } => p.y !== null && Number.isFinite(p.y)).sort((a, b) => a.x - b.x);
    if (pts.length > 1) out.push(`<polyline fill="none" stroke="${color}" stroke-width="2" points="${pts.map((p) => `${px(p.x).toFixed(1)},${py(p.y).toFixed(1)}`).join(' ')}"/>`);
    for (const p of pts) {
      out.push(`<circle cx="${px(p.x).toFixed(1)}" cy="${py(p.y).toFixed(1)}" r="3.5" fill="${color}"><title>${esc(`${s.name} at ${fmt(p.x)}: ${fmt(p.y)}`)}</title></circle>`);
      out.push(`<text x="${(px(p.x) + 5).toFixed(1)}" y="${(py(p.y) - 6).toFixed(1)}" font-size="9" fill="${color}">${fmt(p.y)}</text>`);
    }
  });
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}
