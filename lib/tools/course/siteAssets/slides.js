// Presenter mode: starts reveal.js on a deck written by lib/tools/course/slides.ts and draws each
// slide's plots when the slide is shown (a hidden slide has no size to draw a plot into).
// A slide's body still taller than the screen is shrunk to fit (CSS zoom), so no slide scrolls
// and nothing is cut off; courseSlides.fit(slide) does it again after plots or a solution change
// the height.
(function () {
  "use strict";
  var MIN_ZOOM = 0.35;
  function overflow(slide) {
    return slide ? slide.scrollHeight - slide.clientHeight : 0;
  }
  /** Shrink the slide's body to the largest zoom at which the slide no longer overflows (at least MIN_ZOOM). */
  function fit(slide) {
    var body = slide && slide.querySelector(".slide-body");
    if (!body) return 1;
    body.style.zoom = "";
    if (overflow(slide) <= 1) return 1;
    // Bisection: wrapping and plots do not scale linearly, so measure rather than compute.
    var lo = MIN_ZOOM, hi = 1;
    for (var i = 0; i < 8; i++) {
      var mid = (lo + hi) / 2;
      body.style.zoom = String(mid);
      if (overflow(slide) <= 1) lo = mid;
      else hi = mid;
    }
    body.style.zoom = String(lo);
    return lo;
  }
  function show(slide) {
    if (!slide) return;
    if (window.courseFigures) window.courseFigures.show(slide);
    fit(slide);
    // Plots and fonts may change the height after drawing.
    setTimeout(function () {
      fit(slide);
    }, 600);
  }
  window.courseSlides = { fit: fit };
  var plugins = typeof RevealNotes !== "undefined" ? [RevealNotes] : [];
  Reveal.initialize({
    width: 1280,
    height: 720,
    margin: 0.03,
    center: false,
    hash: true,
    // → and space step through every slide, the continued ones below a section included.
    navigationMode: "linear",
    transition: "none",
    backgroundTransition: "none",
    controls: true,
    progress: true,
    slideNumber: "c/t",
    plugins: plugins,
  }).then(function () {
    show(Reveal.getCurrentSlide());
  });
  Reveal.on("slidechanged", function (e) {
    show(e.currentSlide);
  });
  Reveal.on("overviewhidden", function () {
    show(Reveal.getCurrentSlide());
  });
  // A solution opened or closed changes the slide's height.
  document.addEventListener(
    "toggle",
    function () {
      fit(Reveal.getCurrentSlide());
    },
    true,
  );
})();
