// Draws the plotly figures of a course page. The site builder writes each figure as
//   <div class="plotly-figure" id="figure-N"></div>
//   <script type="application/json" class="plotly-data" data-target="figure-N">{data, layout, config}</script>
// and loads plotly.js (assets/plotly.min.js) before this file, only on pages that have figures.
(function () {
  "use strict";
  var blocks = document.querySelectorAll("script.plotly-data");
  for (var i = 0; i < blocks.length; i++) {
    var block = blocks[i];
    var target = document.getElementById(block.getAttribute("data-target"));
    var fig = JSON.parse(block.textContent);
    var layout = fig.layout || {};
    // The page decides the width (a notebook's fixed width would overflow a narrow window).
    delete layout.width;
    layout.autosize = true;
    // Readable from the back of a room unless the figure chose its own size.
    layout.font = Object.assign({ size: 16 }, layout.font);
    var config = Object.assign({ responsive: true, displaylogo: false }, fig.config);
    Plotly.newPlot(target, fig.data, layout, config);
  }
})();
