// Presenter mode: starts reveal.js on a deck written by lib/tools/slides.ts and draws each
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
  /** Shrink the slide's body until the slide no longer overflows (or MIN_ZOOM is reached). */
  function fit(slide) {
    var body = slide && slide.querySelector(".slide-body");
    if (!body) return 1;
    body.style.zoom = "";
    var zoom = 1;
    if (overflow(slide) <= 1) return zoom;
    // First guess from the heights, then small steps: fonts, wrapping and plots do not scale linearly.
    zoom = Math.max(MIN_ZOOM, Math.min(0.97, slide.clientHeight / slide.scrollHeight));
    body.style.zoom = String(zoom);
    while (overflow(slide) > 1 && zoom > MIN_ZOOM) {
      zoom = Math.max(MIN_ZOOM, zoom * 0.95);
      body.style.zoom = String(zoom);
    }
    return zoom;
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
