import assert from "node:assert/strict";
import * as fs from "fs";
import { DisplayMessage, setDisplaySink } from "../../lib/show/display";
import {
  Figure,
  PLOTLY_MIME,
  barChart,
  describeFigure,
  figureBundle,
  heatmap,
  heatmapGrid,
  lineChart,
  liveLineChart,
  plotlyLoaderHtml,
  resetPlotlyLoader,
  scatter2d,
  scatter3d,
  showPlot,
} from "../../lib/show/plot";

function recordSink() {
  const sent: { message: DisplayMessage; update: boolean }[] = [];
  setDisplaySink((message, update) => sent.push({ message, update }));
  return sent;
}

const isLoader = (m: DisplayMessage) =>
  JSON.stringify(m.metadata) === JSON.stringify({ llm_course: { role: "plotly-loader" } });

/** The figure object embedded in the `text/html` script. */
function figureInHtml(html: string): unknown {
  const m = /var fig = (.*);\n/.exec(html);
  assert.ok(m, "the html embeds the figure as `var fig = …;`");
  return JSON.parse(m[1]);
}

describe("chart builders", () => {
  it("lineChart: one line trace per series, axis titles, log y", () => {
    const fig = lineChart(
      [
        { name: "train", x: [1, 2, 3], y: [3, 2, 1.5] },
        { name: "val", x: [3], y: [1.7] },
      ],
      { title: "Loss", xTitle: "step", yTitle: "loss", logY: true },
    );
    assert.deepEqual(fig, {
      data: [
        { type: "scatter", mode: "lines", name: "train", x: [1, 2, 3], y: [3, 2, 1.5] },
        { type: "scatter", mode: "lines", name: "val", x: [3], y: [1.7] },
      ],
      layout: {
        title: { text: "Loss" },
        xaxis: { title: { text: "step" } },
        yaxis: { title: { text: "loss" }, type: "log" },
      },
    });
  });

  it("lineChart copies its inputs, so later pushes do not change a built figure", () => {
    const s = { name: "a", x: [1], y: [1] };
    const fig = lineChart([s], { title: "t" });
    s.x.push(2);
    assert.deepEqual(fig.data[0].x, [1]);
  });

  it("heatmap: matrix with labels, row 0 on top, values written in cells", () => {
    const fig = heatmap(
      [
        [1, 0],
        [0.25, 0.75],
      ],
      { title: "Attention", x: ["the", "cat"], y: ["the", "cat"], colorscale: "Blues", reverseScale: true, showValues: true, zmin: 0, zmax: 1 },
    );
    assert.deepEqual(fig.data, [
      {
        type: "heatmap",
        z: [
          [1, 0],
          [0.25, 0.75],
        ],
        colorscale: "Blues",
        x: ["the", "cat"],
        y: ["the", "cat"],
        zmin: 0,
        zmax: 1,
        reversescale: true,
        texttemplate: "%{z:.2f}",
      },
    ]);
    assert.deepEqual(fig.layout?.yaxis, { type: "category", autorange: "reversed" });
    assert.equal(heatmap([[1]], { title: "t" }).data[0].texttemplate, undefined);
    assert.deepEqual(fig.layout?.xaxis, { type: "category" }, "x axis at the bottom, clear of the title");
  });

  it("heatmap: labels default to indices (a category axis without labels draws nothing)", () => {
    const fig = heatmap([[1, 2, 3], [4, 5, 6]], { title: "t" });
    assert.deepEqual(fig.data[0].x, [0, 1, 2]);
    assert.deepEqual(fig.data[0].y, [0, 1]);
  });

  it("scatter2d: one trace per group in order of appearance, labels as text", () => {
    const fig = scatter2d(
      [
        { x: 0, y: 1, label: "king", group: "royal" },
        { x: 2, y: 3, label: "apple", group: "fruit" },
        { x: 4, y: 5, label: "queen", group: "royal" },
      ],
      { title: "Embeddings" },
    );
    assert.deepEqual(fig.data, [
      {
        type: "scatter",
        mode: "markers+text",
        name: "royal",
        x: [0, 4],
        y: [1, 5],
        text: ["king", "queen"],
        textposition: "top center",
        cliponaxis: false,
      },
      { type: "scatter", mode: "markers+text", name: "fruit", x: [2], y: [3], text: ["apple"], textposition: "top center", cliponaxis: false },
    ]);
    // Unlabelled, ungrouped points: one nameless marker trace.
    assert.deepEqual(scatter2d([{ x: 1, y: 2 }], { title: "t" }).data, [{ type: "scatter", mode: "markers", x: [1], y: [2] }]);
  });

  it("scatter3d: x, y, z and labels, axis titles in the scene", () => {
    const fig = scatter3d(
      [
        { x: 1, y: 2, z: 3, label: "a" },
        { x: 4, y: 5, z: 6, label: "b" },
      ],
      { title: "3-D", xTitle: "pc1", yTitle: "pc2", zTitle: "pc3" },
    );
    assert.deepEqual(fig.data, [
      { type: "scatter3d", mode: "markers+text", x: [1, 4], y: [2, 5], z: [3, 6], text: ["a", "b"], textposition: "top center" },
    ]);
    assert.deepEqual(fig.layout?.scene, {
      xaxis: { title: { text: "pc1" } },
      yaxis: { title: { text: "pc2" } },
      zaxis: { title: { text: "pc3" } },
    });
  });

  it("barChart: vertical and horizontal bars", () => {
    const series = [{ name: "p", x: ["a", "b"], y: [0.7, 0.3] }];
    assert.deepEqual(barChart(series, { title: "t" }).data, [{ type: "bar", name: "p", x: ["a", "b"], y: [0.7, 0.3] }]);
    const h = barChart(series, { title: "t", horizontal: true });
    assert.deepEqual(h.data, [{ type: "bar", name: "p", orientation: "h", x: [0.7, 0.3], y: ["a", "b"] }]);
    assert.equal(h.layout?.barmode, "group");
  });
});

describe("figure representations", () => {
  const fig: Figure = lineChart(
    [
      { name: "train", x: [1, 2, 3], y: [3, 2, 1.23456] },
      { name: "val", x: [3], y: [1.7] },
    ],
    { title: "Loss </script> <!--" },
  );

  it("summarises charts in text", () => {
    assert.equal(
      describeFigure(fig),
      'line chart "Loss </script> <!--": train: 3 points, last (3, 1.235); val: 1 point, last (3, 1.7)',
    );
    assert.equal(describeFigure(heatmap([[1, 2, 3], [4, 5, 6]], { title: "H" })), 'heatmap chart "H": 2×3 cells');
    assert.equal(
      describeFigure(scatter3d([{ x: 1, y: 1, z: 1, group: "g" }], { title: "S" })),
      '3-D scatter chart "S": g: 1 point',
    );
    assert.equal(describeFigure({ data: [] }), "empty chart");
  });

  it("a bundle has the plotly JSON, html drawing that same figure, and the summary", () => {
    const b = figureBundle(fig);
    assert.deepEqual(Object.keys(b).sort(), [PLOTLY_MIME, "text/html", "text/plain"].sort());
    assert.deepEqual(b[PLOTLY_MIME], { data: fig.data, layout: fig.layout });
    const html = b["text/html"] as string;
    assert.deepEqual(figureInHtml(html), { data: fig.data, layout: fig.layout, config: { responsive: true, displaylogo: false } });
    assert.ok(html.includes("window.Plotly.newPlot"));
    // The title's "</script>" must not end the script element early.
    assert.equal((html.match(/<\/script/gi) ?? []).length, 1);
    assert.ok(!html.includes("<!--"));
    // No plotly.js in figure outputs: only the loader carries it.
    assert.ok(html.length < 5_000, `figure html is ${html.length} chars`);
    assert.equal(b["text/plain"], describeFigure(fig));
  });

  it("the loader inlines the installed plotly.js bundle, hiding module/define from it", () => {
    const html = plotlyLoaderHtml();
    const bundle = fs.readFileSync(require.resolve("plotly.js-dist-min"), "utf8");
    assert.ok(html.length > bundle.length);
    assert.ok(html.includes(bundle.slice(0, 2000)));
    assert.ok(html.includes("(function (module, exports, define) {"));
    assert.equal((html.match(/<\/script/gi) ?? []).length, 1);
  });
});

describe("showPlot", () => {
  afterEach(() => {
    setDisplaySink(undefined);
    resetPlotlyLoader();
  });

  it("sends the loader once per process, before the first figure", () => {
    resetPlotlyLoader();
    const sent = recordSink();
    const fig = lineChart([{ name: "a", x: [1], y: [1] }], { title: "t" });
    showPlot(fig, { displayId: "id1" });
    showPlot(fig);
    assert.equal(sent.length, 3);
    assert.ok(isLoader(sent[0].message));
    assert.equal(sent[0].message.data["text/html"], plotlyLoaderHtml());
    assert.match(sent[0].message.data["text/plain"] as string, /plotly\.js 4\.\d+\.\d+/);
    assert.deepEqual(
      sent.slice(1).map((s) => [isLoader(s.message), s.update, s.message.transient.display_id]),
      [
        [false, false, "id1"],
        [false, false, sent[2].message.transient.display_id],
      ],
    );
    // Every figure gets an id (so it could be updated), a fresh one unless given.
    assert.match(sent[2].message.transient.display_id ?? "", /^[0-9a-f]{16}$/);
    assert.equal(Object.keys(sent[1].message.data).length, 3);
  });

  it("sends the loader again to a new frontend session (a reloaded page lost its scripts)", () => {
    const sent: string[] = [];
    const fig = { data: [] };
    const showIn = (session: string | undefined) => {
      setDisplaySink((m) => sent.push(`${session}:${isLoader(m) ? "loader" : "figure"}`), session);
      showPlot(fig);
    };
    showIn(undefined); // the cell that imported the library: session not known yet
    showIn("page1"); // next cell of the same run: inherits that loader
    showIn("page1");
    showIn("page2"); // the page was reloaded
    showIn("page2");
    showIn("page1");
    assert.deepEqual(sent, [
      "undefined:loader",
      "undefined:figure",
      "page1:figure",
      "page1:figure",
      "page2:loader",
      "page2:figure",
      "page2:figure",
      "page1:figure",
    ]);
  });

  it("sends no loader and prints the summary outside a kernel", () => {
    setDisplaySink(null);
    const writes: string[] = [];
    const original = process.stdout.write;
    process.stdout.write = ((s: string) => (writes.push(s), true)) as typeof process.stdout.write;
    try {
      showPlot(lineChart([{ name: "a", x: [1], y: [2] }], { title: "t" }));
    } finally {
      process.stdout.write = original;
    }
    assert.deepEqual(writes, ['line chart "t": a: 1 point, last (1, 2)\n']);
    // The loader is still owed to the first figure shown in a kernel.
    const sent = recordSink();
    showPlot({ data: [] });
    assert.ok(isLoader(sent[0].message));
  });
});

describe("liveLineChart", () => {
  afterEach(() => {
    setDisplaySink(undefined);
    resetPlotlyLoader();
  });

  it("updates one output at most every minIntervalMs, then flushes on close", () => {
    const sent = recordSink();
    let t = 0;
    const chart = liveLineChart({ title: "Loss", xTitle: "step", minIntervalMs: 500, now: () => t });
    for (let step = 1; step <= 12; step++) {
      t = step * 100; // one push every 100 ms
      chart.push("train", step, 10 - step);
    }
    chart.push("val", 12, 2);
    chart.close();
    chart.push("train", 13, 0); // after close: recorded, not shown

    const figures = sent.filter((s) => !isLoader(s.message));
    assert.equal(sent.filter((s) => isLoader(s.message)).length, 1);
    // Sent at t=100 (first push), 600 and 1100 (500 ms later each), and by close().
    assert.deepEqual(
      figures.map((s) => (s.message.data[PLOTLY_MIME] as Figure).data.map((tr) => tr.x?.length)),
      [[1], [6], [11], [12, 1]],
    );
    assert.deepEqual(
      figures.map((s) => [s.update, s.message.transient.display_id]),
      [
        [false, chart.displayId],
        [true, chart.displayId],
        [true, chart.displayId],
        [true, chart.displayId],
      ],
    );
    const last = figures[figures.length - 1].message.data;
    assert.deepEqual(Object.keys(last).sort(), [PLOTLY_MIME, "text/html", "text/plain"].sort());
    assert.equal(last["text/plain"], 'line chart "Loss": train: 12 points, last (12, -2); val: 1 point, last (12, 2)');
    assert.deepEqual(chart.figure().data[0].x, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13]);
  });

  it("close() sends nothing when the last update already has every point", () => {
    const sent = recordSink();
    const chart = liveLineChart({ title: "t", now: () => 0 });
    chart.push("a", 1, 1);
    chart.close();
    assert.equal(sent.filter((s) => !isLoader(s.message)).length, 1);
  });

  it("outside a kernel records points silently", () => {
    setDisplaySink(null);
    const original = process.stdout.write;
    let printed = "";
    process.stdout.write = ((s: string) => ((printed += s), true)) as typeof process.stdout.write;
    try {
      const chart = liveLineChart({ title: "t" });
      for (let i = 0; i < 1000; i++) chart.push("train", i, 1 / (i + 1));
      chart.close();
      assert.equal(chart.figure().data[0].y?.length, 1000);
    } finally {
      process.stdout.write = original;
    }
    assert.equal(printed, "");
  });
});

describe("heatmapGrid", () => {
  it("lays panels out in rows of `columns`, one colour scale, the scale bar once, row 0 on top", () => {
    const z = [[1, 0], [0.5, 0.5]];
    const fig = heatmapGrid([0, 1, 2].map((i) => ({ name: `head ${i}`, z })), { title: "Heads", columns: 2, tickLabels: false });
    assert.equal(fig.data.length, 3);
    assert.deepEqual(fig.data.map((t) => [t.xaxis, t.yaxis, t.showscale, t.zmin, t.zmax]), [["x", "y", false, 0, 1], ["x2", "y2", false, 0, 1], ["x3", "y3", true, 0, 1]]);
    assert.deepEqual((fig.layout as any).grid, { rows: 2, columns: 2, pattern: "independent", xgap: 0.08, ygap: 0.3 });
    assert.equal((fig.layout as any).height, 720);
    assert.deepEqual((fig.layout as any).xaxis3, { type: "category", showticklabels: false });
    assert.deepEqual((fig.layout as any).annotations[2], { text: "head 2", showarrow: false, xref: "x3 domain", yref: "y3 domain", x: 0.5, y: 1, xanchor: "center", yanchor: "bottom" });
    assert.deepEqual((fig.layout as any).yaxis2, { type: "category", autorange: "reversed", showticklabels: false });
    assert.deepEqual(fig.data[0].x, [0, 1]);
    assert.throws(() => heatmapGrid([], { title: "none" }), /heatmapGrid: no panels/);
  });
});
