// Draws the plotly figures of a course page or slide deck. The site builder writes each figure as
//   <div class="plotly-figure" id="figure-N"></div>
//   <script type="application/json" class="plotly-data" data-target="figure-N">{data, layout, config}</script>
// and loads plotly.js (assets/plotly.min.js) before this file, only when there are figures.
//
// A figure is drawn when it is visible: plotly sizes a plot from its container, and a container
// that is not laid out (a closed <details>, a slide not shown) has no size. So figures inside a
// collapsed solution are drawn when it is opened, and on slides when their slide is shown
// (assets/slides.js calls window.courseFigures.show). Reports what it drew on
// document.documentElement.dataset.figuresDrawn for the browser check.
(function () {
  "use strict";
  var slides = document.body.classList.contains("slides-page");
  // Plots on a 1280×720 slide must fit under the title.
  var SLIDE_MAX_HEIGHT = 520; // the slide's height below its title (lib/tools/course/slides.ts)

  function isShown(el) {
    return el.getClientRects().length > 0;
  }

  function figureData(div) {
    var block = document.querySelector('script.plotly-data[data-target="' + div.id + '"]');
    return block ? JSON.parse(block.textContent) : null;
  }

  function draw(div) {
    var fig = figureData(div);
    if (!fig || typeof Plotly === "undefined") return;
    var layout = fig.layout || {};
    // The page decides the width (a notebook's fixed width would overflow a narrow window).
    delete layout.width;
    layout.autosize = true;
    // Readable from the back of a room unless the figure chose its own size.
    layout.font = Object.assign({ size: slides ? 18 : 16 }, layout.font);
    if (slides) layout.height = Math.min(typeof layout.height === "number" ? layout.height : 450, SLIDE_MAX_HEIGHT);
    var config = Object.assign({ responsive: true, displaylogo: false }, fig.config);
    div.setAttribute("data-drawing", "1");
    Plotly.newPlot(div, fig.data, layout, config).then(function () {
      div.setAttribute("data-drawn", "1");
      div.removeAttribute("data-drawing");
    });
  }

  /** Draw the not yet drawn, visible figures under root; resize the drawn ones to their container. */
  function show(root) {
    if (typeof Plotly === "undefined") return;
    var divs = (root || document).querySelectorAll(".plotly-figure");
    for (var i = 0; i < divs.length; i++) {
      var div = divs[i];
      if (!isShown(div)) continue;
      if (!div.hasAttribute("data-drawn") && !div.hasAttribute("data-drawing")) draw(div);
      else if (div.hasAttribute("data-drawn")) Plotly.Plots.resize(div);
    }
  }

  window.courseFigures = { show: show };
  // A <details> (a worked solution) opened: draw or resize what it holds. "toggle" doesn't bubble.
  document.addEventListener(
    "toggle",
    function (e) {
      if (e.target && e.target.open) show(e.target);
    },
    true,
  );
  if (!slides) show(document);
})();
