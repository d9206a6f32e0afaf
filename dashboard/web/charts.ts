/**
 * The functions panel's two charts, drawn with uPlot (bundled with its CSS; nothing fetched):
 * calls per second and p99 latency over the last ~5 minutes, one line per function shown (the
 * busiest over the window) plus, for calls, the cluster's total. A chart is made again only when
 * its set of lines changes; otherwise its data is replaced.
 */
import uPlot from 'uplot';
import type { State } from './api.js';
import { byId } from './render.js';

const COLOURS = ['#2563eb', '#dc2626', '#16a34a', '#9333ea', '#ea580c', '#0891b2', '#ca8a04', '#db2777'];
const TOTAL_COLOUR = '#111827';

/** A function's colour, the same in both charts and from one update to the next (a hash of its name). */
function colourOf(name: string): string {
  let hash = 0;
  for (let index = 0; index < name.length; index++) hash = (hash * 31 + name.charCodeAt(index)) >>> 0;
  return COLOURS[hash % COLOURS.length]!;
}
const HEIGHT = 180;

interface Chart {
  plot: uPlot;
  readonly key: string;
}

const charts = new Map<string, Chart>();

/** `total`: the first line is the cluster's total (drawn dark and thicker). */
function draw(containerId: string, labels: readonly string[], data: uPlot.AlignedData, unit: string, total: boolean): void {
  const container = byId(containerId);
  const width = Math.max(240, Math.floor(container.clientWidth || 400));
  const key = `${labels.join('\u0000')}|${width}`;
  const existing = charts.get(containerId);
  if (existing !== undefined && existing.key === key) {
    existing.plot.setData(data);
    return;
  }
  existing?.plot.destroy();
  const options: uPlot.Options = {
    width,
    height: HEIGHT,
    legend: { show: true },
    cursor: { drag: { x: false, y: false } },
    scales: { x: { time: true }, y: { range: (_self, min, max) => [Math.min(0, min), Math.max(1, max * 1.1)] } },
    axes: [{}, { label: unit, size: 50 }],
    series: [{}, ...labels.map((label, index) => ({ label, stroke: index === 0 && total ? TOTAL_COLOUR : colourOf(label), width: index === 0 && total ? 2 : 1.5, spanGaps: false, points: { show: false } }))],
  };
  charts.set(containerId, { plot: new uPlot(options, data, container), key });
}

export function renderCharts(state: State): void {
  const { series } = state;
  const t = [...series.t];
  draw('chart-calls', ['all', ...series.functions.map((fn) => fn.name)], [t, [...series.calls], ...series.functions.map((fn) => [...fn.calls])], 'calls/s', true);
  const latency = series.functions.length === 0 ? [{ name: 'none', p99Ms: t.map(() => null) }] : series.functions;
  draw('chart-latency', latency.map((fn) => fn.name), [t, ...latency.map((fn) => [...fn.p99Ms])], 'ms', false);
}
