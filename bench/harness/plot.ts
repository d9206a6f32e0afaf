/** vega-lite spec -> vega -> SVG (headless) -> PNG (resvg). No native build needed. */
import { Resvg } from '@resvg/resvg-js';
import * as vega from 'vega';
import { compile } from 'vega-lite';

export async function renderPlot(spec: Record<string, unknown>): Promise<{ svg: string; png: Buffer }> {
  const withDefaults = { $schema: 'https://vega.github.io/schema/vega-lite/v6.json', background: 'white', config: { font: 'DejaVu Sans' }, ...spec };
  const compiled = compile(withDefaults as Parameters<typeof compile>[0]).spec;
  const view = new vega.View(vega.parse(compiled), { renderer: 'none' });
  const svg = await view.toSVG();
  view.finalize();
  const png = new Resvg(svg, { font: { loadSystemFonts: true, defaultFontFamily: 'DejaVu Sans' }, fitTo: { mode: 'zoom', value: 2 } }).render().asPng();
  return { svg, png };
}
