/**
 * Plotly figures in notebooks: chart builders (pure functions returning a figure) and
 * `show…` functions that display a figure as one output with three representations:
 *
 * - `application/vnd.plotly.v1+json`: the figure itself; JupyterLab (with plotly's extension)
 *   and VS Code draw it natively, and the course site renders it.
 * - `text/html`: a `<div>` and a small script that draws with `window.Plotly`, for classic
 *   Notebook and nbconvert's HTML export. plotly.js must work offline, so the first figure of a
 *   kernel process (and of each new browser page talking to it) is preceded by one "loader"
 *   output that carries the whole plotly.js bundle inline (metadata
 *   `{"llm_course": {"role": "plotly-loader"}}`, so the site can skip it). Figure scripts wait
 *   for `window.Plotly`, since the loader may still be running.
 * - `text/plain`: a one-line summary (chart type, title, traces, point counts) for terminals,
 *   text diffs and the CLI notebook runner.
 *
 * This module is independent of TensorFlow.js: pass plain arrays (`await t.array()`).
 */
import * as fs from "fs";
import { displayBundle, frontendSession, inKernel, newDisplayId, MimeBundle } from "./display";

/** One plotly trace. Only the fields the summaries read are typed; anything plotly accepts goes. */
export interface Trace {
  type?: string;
  name?: string;
  mode?: string;
  x?: unknown[];
  y?: unknown[];
  z?: unknown[];
  [key: string]: unknown;
}

export interface Figure {
  data: Trace[];
  layout?: Record<string, unknown>;
  config?: Record<string, unknown>;
}

export const PLOTLY_MIME = "application/vnd.plotly.v1+json";

/** Metadata of the loader output; renderers that bring their own plotly.js skip it. */
export const PLOTLY_LOADER_METADATA = { llm_course: { role: "plotly-loader" } } as const;

// ---------------------------------------------------------------------------------------
// Chart builders

export interface AxisTitles {
  title: string;
  xTitle?: string;
  yTitle?: string;
  /** Plot height in pixels (default: plotly's 450). */
  height?: number;
}

export interface LineSeries {
  name: string;
  x: number[];
  y: number[];
}

export interface LineChartOptions extends AxisTitles {
  logY?: boolean;
}

function baseLayout(opts: AxisTitles): Record<string, unknown> {
  const layout: Record<string, unknown> = { title: { text: opts.title } };
  if (opts.xTitle !== undefined) layout.xaxis = { title: { text: opts.xTitle } };
  if (opts.yTitle !== undefined) layout.yaxis = { title: { text: opts.yTitle } };
  if (opts.height !== undefined) layout.height = opts.height;
  return layout;
}

/** Curves, e.g. training and validation loss against the step. */
export function lineChart(series: LineSeries[], opts: LineChartOptions): Figure {
  const layout = baseLayout(opts);
  if (opts.logY) layout.yaxis = { ...(layout.yaxis as object | undefined), type: "log" };
  return {
    data: series.map((s) => ({ type: "scatter", mode: "lines", name: s.name, x: [...s.x], y: [...s.y] })),
    layout,
  };
}

export interface BarSeries {
  name: string;
  x: (string | number)[];
  y: number[];
}

export interface BarChartOptions extends AxisTitles {
  /** Bars grow to the right; categories go on the y axis. */
  horizontal?: boolean;
  /** How several series share a category (default "group"). */
  barmode?: "group" | "stack" | "overlay" | "relative";
}

/** Bars, e.g. next-token probabilities. With `horizontal`, `x` are still the categories. */
export function barChart(series: BarSeries[], opts: BarChartOptions): Figure {
  const layout = baseLayout(opts);
  layout.barmode = opts.barmode ?? "group";
  if (opts.horizontal) {
    // Categories read top to bottom, like a list.
    layout.yaxis = { ...(layout.yaxis as object | undefined), autorange: "reversed" };
  }
  return {
    data: series.map((s) =>
      opts.horizontal
        ? { type: "bar", name: s.name, orientation: "h", x: [...s.y], y: [...s.x] }
        : { type: "bar", name: s.name, x: [...s.x], y: [...s.y] },
    ),
    layout,
  };
}

export interface HeatmapOptions extends AxisTitles {
  /** Column labels (default 0, 1, …). */
  x?: (string | number)[];
  /** Row labels (default 0, 1, …). */
  y?: (string | number)[];
  /** A plotly colorscale name such as "Viridis", "Blues", "RdBu" (default "Viridis"). */
  colorscale?: string;
  /** Flip the colorscale (plotly's "Blues", "Greens"… run from dark to light). */
  reverseScale?: boolean;
  /** Write each cell's value in it (use for small matrices). */
  showValues?: boolean;
  /** d3 format of the written values (default ".2f"). */
  valueFormat?: string;
  zmin?: number;
  zmax?: number;
}

/**
 * A matrix as colored cells, row 0 at the top as when a matrix is printed (attention weights:
 * rows = queries, columns = keys).
 */
export function heatmap(z: number[][], opts: HeatmapOptions): Figure {
  const trace: Trace = { type: "heatmap", z: z.map((row) => [...row]), colorscale: opts.colorscale ?? "Viridis" };
  // Category axes need explicit labels: without them plotly draws an empty plot.
  trace.x = opts.x ? [...opts.x] : (z[0] ?? []).map((_, i) => i);
  trace.y = opts.y ? [...opts.y] : z.map((_, i) => i);
  if (opts.zmin !== undefined) trace.zmin = opts.zmin;
  if (opts.zmax !== undefined) trace.zmax = opts.zmax;
  if (opts.reverseScale) trace.reversescale = true;
  if (opts.showValues) trace.texttemplate = `%{z:${opts.valueFormat ?? ".2f"}}`;
  const layout = baseLayout(opts);
  // Category labels must not be reordered or turned into numbers; row 0 goes on top.
  // (x axis at the bottom: on top, its title would collide with the chart title)
  layout.xaxis = { ...(layout.xaxis as object | undefined), type: "category" };
  layout.yaxis = { ...(layout.yaxis as object | undefined), type: "category", autorange: "reversed" };
  return { data: [trace], layout };
}

export interface HeatmapPanel {
  /** Written under the panel, e.g. "layer 2, head 3". */
  name: string;
  z: number[][];
  x?: (string | number)[];
  y?: (string | number)[];
}

export interface HeatmapGridOptions {
  title: string;
  /** Panels per row (default: all in one row). */
  columns?: number;
  /** Figure height in pixels (default 360 per row). */
  height?: number;
  /** One colour scale for every panel, so the panels can be compared (default 0 to 1: attention weights). */
  zmin?: number;
  zmax?: number;
  colorscale?: string;
  reverseScale?: boolean;
  /** Write the x and y labels of every panel (default true; off for a grid of many small panels). */
  tickLabels?: boolean;
}

/**
 * Several matrices side by side on one colour scale, in a grid of panels, row 0 of each on top:
 * the heads of one attention layer, or every layer × head of a model.
 */
export function heatmapGrid(panels: HeatmapPanel[], opts: HeatmapGridOptions): Figure {
  if (panels.length === 0) throw new Error("heatmapGrid: no panels");
  const columns = Math.max(1, Math.min(opts.columns ?? panels.length, panels.length));
  const rows = Math.ceil(panels.length / columns);
  const suffix = (i: number) => (i === 0 ? "" : String(i + 1)); // plotly's axes: x, x2, x3…
  const ticks = opts.tickLabels ?? true;
  const data: Trace[] = panels.map((p, i) => ({
    type: "heatmap",
    z: p.z.map((row) => [...row]),
    x: p.x ? [...p.x] : (p.z[0] ?? []).map((_, j) => j),
    y: p.y ? [...p.y] : p.z.map((_, j) => j),
    zmin: opts.zmin ?? 0,
    zmax: opts.zmax ?? 1,
    colorscale: opts.colorscale ?? "Blues",
    reversescale: opts.reverseScale ?? (opts.colorscale === undefined), // plotly's "Blues" runs dark to light
    xaxis: `x${suffix(i)}`,
    yaxis: `y${suffix(i)}`,
    showscale: i === panels.length - 1,
  }));
  // Panel names as titles above the panels (axis titles below would collide with the next row).
  const layout: Record<string, unknown> = {
    title: { text: opts.title },
    height: opts.height ?? 360 * rows,
    grid: { rows, columns, pattern: "independent", xgap: 0.08, ygap: rows > 1 ? 0.3 : 0.1 },
    margin: { t: 80, b: 40, l: 40, r: 20 },
    annotations: panels.map((p, i) => ({
      text: p.name, showarrow: false, xref: `x${suffix(i)} domain`, yref: `y${suffix(i)} domain`, x: 0.5, y: 1, xanchor: "center", yanchor: "bottom",
    })),
  };
  panels.forEach((_, i) => {
    layout[`xaxis${suffix(i)}`] = { type: "category", showticklabels: ticks, ...(ticks ? { tickangle: -45 } : {}) };
    layout[`yaxis${suffix(i)}`] = { type: "category", autorange: "reversed", showticklabels: ticks };
  });
  return { data, layout };
}

export interface Point2 {
  x: number;
  y: number;
  label?: string;
  group?: string;
}

export interface Point3 extends Point2 {
  z: number;
}

export interface ScatterOptions extends AxisTitles {
  zTitle?: string;
  /** Write labels next to the points (default: when any point has a label). */
  showLabels?: boolean;
  /** Marker size in pixels. */
  markerSize?: number;
}

/** Points split into traces by `group`, in order of first appearance (one legend entry each). */
function groupPoints<P extends Point2>(points: P[]): { name: string | undefined; points: P[] }[] {
  const groups = new Map<string | undefined, P[]>();
  for (const p of points) {
    const g = groups.get(p.group);
    if (g) g.push(p);
    else groups.set(p.group, [p]);
  }
  return [...groups].map(([name, pts]) => ({ name, points: pts }));
}

function scatterTraces<P extends Point2>(points: P[], opts: ScatterOptions, type: string, dims: (keyof P)[]): Trace[] {
  const labels = opts.showLabels ?? points.some((p) => p.label !== undefined);
  return groupPoints(points).map(({ name, points: pts }) => {
    const trace: Trace = { type, mode: labels ? "markers+text" : "markers" };
    if (name !== undefined) trace.name = name;
    for (const d of dims) trace[d as string] = pts.map((p) => p[d]);
    if (labels) {
      trace.text = pts.map((p) => p.label ?? "");
      trace.textposition = "top center";
      // Autorange leaves no room for text: keep labels of edge points visible.
      if (type === "scatter") trace.cliponaxis = false;
    }
    if (opts.markerSize !== undefined) trace.marker = { size: opts.markerSize };
    return trace;
  });
}

/** Labelled points in the plane, e.g. token embeddings after PCA. */
export function scatter2d(points: Point2[], opts: ScatterOptions): Figure {
  return { data: scatterTraces(points, opts, "scatter", ["x", "y"]), layout: baseLayout(opts) };
}

/** Labelled points in 3-D (rotatable), e.g. token embeddings projected on 3 components. */
export function scatter3d(points: Point3[], opts: ScatterOptions): Figure {
  const axis = (t: string | undefined) => (t === undefined ? {} : { title: { text: t } });
  const layout: Record<string, unknown> = {
    title: { text: opts.title },
    scene: { xaxis: axis(opts.xTitle), yaxis: axis(opts.yTitle), zaxis: axis(opts.zTitle) },
  };
  if (opts.height !== undefined) layout.height = opts.height;
  return { data: scatterTraces(points, opts, "scatter3d", ["x", "y", "z"]), layout };
}

// ---------------------------------------------------------------------------------------
// Representations

function titleOf(fig: Figure): string | undefined {
  const t = fig.layout?.title;
  if (typeof t === "string") return t;
  if (t && typeof t === "object" && typeof (t as { text?: unknown }).text === "string") return (t as { text: string }).text;
  return undefined;
}

function kindOf(trace: Trace): string {
  const type = trace.type ?? "scatter";
  if (type === "scatter") return String(trace.mode ?? "").includes("lines") ? "line" : "scatter";
  if (type === "scatter3d") return "3-D scatter";
  return type;
}

function formatValue(v: unknown): string {
  return typeof v === "number" && !Number.isInteger(v) ? String(Number(v.toPrecision(4))) : String(v);
}

function describeTrace(trace: Trace, i: number): string {
  const name = trace.name ?? `trace ${i + 1}`;
  if (trace.type === "heatmap" && Array.isArray(trace.z)) {
    const rows = trace.z.length;
    const cols = Array.isArray(trace.z[0]) ? (trace.z[0] as unknown[]).length : 0;
    return `${rows}×${cols} cells`;
  }
  const n = Math.max(trace.x?.length ?? 0, trace.y?.length ?? 0);
  let s = `${name}: ${n} point${n === 1 ? "" : "s"}`;
  // For curves the last value is the news (the current loss), so say it.
  if (kindOf(trace) === "line" && n > 0 && trace.x && trace.y) {
    s += `, last (${formatValue(trace.x[n - 1])}, ${formatValue(trace.y[n - 1])})`;
  }
  return s;
}

/**
 * A one-line summary of a figure, e.g.
 * `line chart "Loss": train: 200 points, last (200, 1.89); val: 10 points, last (200, 1.95)`.
 */
export function describeFigure(fig: Figure): string {
  const kinds = [...new Set(fig.data.map(kindOf))];
  const title = titleOf(fig);
  const head = `${kinds.length ? kinds.join(" + ") : "empty"} chart${title ? ` "${title}"` : ""}`;
  return fig.data.length ? `${head}: ${fig.data.map(describeTrace).join("; ")}` : head;
}

/** JSON that is safe inside a `<script>` element: no `</script>`, no `<!--`, no line separators. */
function scriptJson(value: unknown): string {
  return JSON.stringify(value)
    .replace(/</g, "\\u003c")
    .replace(/\u2028/g, "\\u2028")
    .replace(/\u2029/g, "\\u2029");
}

/** How long figure scripts wait for the loader to define `window.Plotly`. */
const PLOTLY_WAIT_MS = 20_000;

/**
 * The `text/html` of a figure: a div and a script that draws into it once `window.Plotly`
 * exists. No plotly.js here: the loader output brings it once per page.
 */
export function figureHtml(fig: Figure, divId: string = `llm-plot-${newDisplayId()}`): string {
  const height = typeof fig.layout?.height === "number" ? fig.layout.height : 450;
  const config = { responsive: true, displaylogo: false, ...fig.config };
  return `<div id="${divId}" class="llm-course-plot" style="width:100%;min-height:${height}px"></div>
<script type="text/javascript">
(function () {
  var fig = ${scriptJson({ data: fig.data, layout: fig.layout ?? {}, config })};
  var waited = 0;
  function draw() {
    var el = document.getElementById(${JSON.stringify(divId)});
    if (!el) return;
    if (window.Plotly && window.Plotly.newPlot) {
      window.Plotly.newPlot(el, fig.data, fig.layout, fig.config);
    } else if (waited < ${PLOTLY_WAIT_MS}) {
      waited += 100;
      setTimeout(draw, 100);
    } else {
      el.textContent = "plotly.js is not loaded on this page: it comes with the first figure shown in a kernel session. Run the notebook from the top (Kernel > Restart & Run All), or run resetPlotlyLoader() and show the figure again.";
    }
  }
  draw();
})();
</script>`;
}

/** The three representations of a figure, in one MIME bundle. */
export function figureBundle(fig: Figure): MimeBundle {
  const layout = fig.layout ?? {};
  return {
    [PLOTLY_MIME]: { data: fig.data, layout, ...(fig.config ? { config: fig.config } : {}) },
    "text/html": figureHtml(fig),
    "text/plain": describeFigure(fig),
  };
}

// ---------------------------------------------------------------------------------------
// The plotly.js loader

/** Frontend sessions that were sent the loader; `undefined` stands for "session unknown". */
const loaderSentTo = new Set<string | undefined>();
/** Whether a known session has taken over the loader sent to an unknown one. */
let unknownClaimed = false;
let loaderHtmlCache: string | undefined;

/** plotly.js's version, from the installed plotly.js-dist-min. */
export function plotlyVersion(): string {
  const pkg = JSON.parse(fs.readFileSync(require.resolve("plotly.js-dist-min/package.json"), "utf8"));
  return String(pkg.version);
}

/**
 * The loader's `text/html`: the plotly.js bundle inline, read as text (requiring it in Node
 * would touch `window`). It runs inside a function whose `module`, `exports` and `define` are
 * undefined, so the bundle takes its browser-global path and sets `window.Plotly` even where
 * require.js (classic Notebook) or a CommonJS shim is on the page; it is skipped when plotly.js
 * is already there (a notebook re-run in the same page).
 */
export function plotlyLoaderHtml(): string {
  if (loaderHtmlCache === undefined) {
    const bundle = fs.readFileSync(require.resolve("plotly.js-dist-min"), "utf8").replace(/<\/script/gi, "<\\/script");
    loaderHtmlCache =
      `<script type="text/javascript">/* plotly.js ${plotlyVersion()} for the figures of this notebook */\n` +
      `if (!(window.Plotly && window.Plotly.newPlot)) (function (module, exports, define) {\n${bundle}\n}).call(window);\n</script>`;
  }
  return loaderHtmlCache;
}

/** Forget that the loader was sent: the next figure sends it again (e.g. after clearing outputs). */
export function resetPlotlyLoader(): void {
  loaderSentTo.clear();
  unknownClaimed = false;
}

/**
 * Send the loader output unless this frontend session already got it: once per kernel process
 * and browser page (a reloaded page lost the scripts the old one ran; see `frontendSession`).
 */
export function ensurePlotlyLoader(): void {
  if (!inKernel()) return;
  const session = frontendSession();
  if (loaderSentTo.has(session)) return;
  // The cell that loaded this library arrived before the kernel hook existed, so its session is
  // unknown. The first session learnt afterwards is nearly always the same frontend (the next
  // cell of the same run): it inherits that loader, so a notebook holds one copy of plotly.js.
  // (The price: a page reloaded right after a fresh-kernel "Run All" sees no plotly.js until
  // `resetPlotlyLoader()`; the figure says so.)
  if (session !== undefined && loaderSentTo.has(undefined) && !unknownClaimed) {
    unknownClaimed = true;
    loaderSentTo.add(session);
    return;
  }
  displayBundle(
    { "text/html": plotlyLoaderHtml(), "text/plain": `(plotly.js ${plotlyVersion()} loaded for the figures below)` },
    { metadata: structuredClone(PLOTLY_LOADER_METADATA) },
  );
  loaderSentTo.add(session);
}

// ---------------------------------------------------------------------------------------
// Showing

export interface ShowPlotOptions {
  /** Give the output this id (to update it later with `update: true`). */
  displayId?: string;
  /** Replace the output that has `displayId`. */
  update?: boolean;
  /** Outside a kernel: print the summary (default) or nothing. */
  fallback?: "text" | "none";
}

/**
 * Display a figure. Outside a kernel, prints its summary. To replace the figure later, pass
 * `displayId: newDisplayId()` and show the new figure with the same id and `update: true`.
 * (Nothing is returned: tslab would print it under the chart.)
 */
export function showPlot(fig: Figure, opts: ShowPlotOptions = {}): void {
  ensurePlotlyLoader();
  displayBundle(figureBundle(fig), { displayId: opts.displayId ?? newDisplayId(), update: opts.update, fallback: opts.fallback });
}

export const showLineChart = (series: LineSeries[], opts: LineChartOptions & ShowPlotOptions): void =>
  showPlot(lineChart(series, opts), opts);
export const showBarChart = (series: BarSeries[], opts: BarChartOptions & ShowPlotOptions): void =>
  showPlot(barChart(series, opts), opts);
export const showHeatmap = (z: number[][], opts: HeatmapOptions & ShowPlotOptions): void => showPlot(heatmap(z, opts), opts);
export const showHeatmapGrid = (panels: HeatmapPanel[], opts: HeatmapGridOptions & ShowPlotOptions): void => showPlot(heatmapGrid(panels, opts), opts);
export const showScatter2d = (points: Point2[], opts: ScatterOptions & ShowPlotOptions): void =>
  showPlot(scatter2d(points, opts), opts);
export const showScatter3d = (points: Point3[], opts: ScatterOptions & ShowPlotOptions): void =>
  showPlot(scatter3d(points, opts), opts);

// ---------------------------------------------------------------------------------------
// Live charts

export interface LiveLineChartOptions extends LineChartOptions {
  /** Least time between two updates of the output (default 500 ms: at most ~2 per second). */
  minIntervalMs?: number;
  /** Milliseconds clock; tests inject a fake one. */
  now?: () => number;
}

export interface LiveLineChart {
  /** Add a point to a series (created on first use) and update the output if it is time. */
  push(series: string, x: number, y: number): void;
  /** Update the output now if points arrived since the last update. */
  flush(): void;
  /** Final update; later pushes still record points but no longer update the output. */
  close(): void;
  /** The chart with every point so far. */
  figure(): Figure;
  readonly displayId: string;
}

/**
 * A line chart that redraws in place while training runs: `chart.push("train", step, loss)`.
 * Every update replaces the same output (same display_id) with the full figure, so the saved
 * notebook holds one output with the final curves. Updates are throttled; call `close()` at the
 * end for the last points. Outside a kernel it only records points (CLIs show a progress bar).
 */
export function liveLineChart(opts: LiveLineChartOptions): LiveLineChart {
  const minInterval = opts.minIntervalMs ?? 500;
  const now = opts.now ?? Date.now;
  const displayId = newDisplayId();
  const series = new Map<string, LineSeries>();
  // Decided once: outside a kernel pushes must cost no more than two array appends.
  const live = inKernel();
  let shown = false;
  let closed = false;
  let dirty = false;
  let lastSent = -Infinity;

  const figure = (): Figure => lineChart([...series.values()], opts);
  const send = () => {
    showPlot(figure(), { displayId, update: shown, fallback: "none" });
    shown = true;
    dirty = false;
    lastSent = now();
  };
  const flush = () => {
    if (live && !closed && dirty) send();
  };

  return {
    displayId,
    push(name, x, y) {
      let s = series.get(name);
      if (!s) series.set(name, (s = { name, x: [], y: [] }));
      s.x.push(x);
      s.y.push(y);
      if (!live || closed) return;
      dirty = true;
      if (now() - lastSent >= minInterval) send();
    },
    flush,
    close() {
      flush();
      closed = true;
    },
    figure,
  };
}
