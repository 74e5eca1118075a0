// Presenter mode: starts reveal.js on a deck written by lib/tools/slides.ts and draws each
// slide's plots when the slide is shown (a hidden slide has no size to draw a plot into).
// A slide taller than the screen scrolls: ↓/↑ scroll it first, then move on; a hint at its
// bottom says there is more.
(function () {
  "use strict";
  function overflow(slide) {
    return slide ? slide.scrollHeight - slide.clientHeight : 0;
  }
  function markScroll(slide) {
    if (!slide) return;
    var more = overflow(slide) > 1 && slide.scrollTop < overflow(slide) - 1;
    slide.classList.toggle("has-more", more);
  }
  function show(slide) {
    if (!slide) return;
    if (window.courseFigures) window.courseFigures.show(slide);
    markScroll(slide);
    // Plots and fonts may change the height after drawing.
    setTimeout(function () {
      markScroll(slide);
    }, 600);
  }
  /** ↓ / ↑: scroll a tall slide, or go to the next / previous slide once at its end. */
  function scrollOrStep(dir) {
    var slide = Reveal.getCurrentSlide();
    var max = overflow(slide);
    var canScroll = max > 1 && (dir > 0 ? slide.scrollTop < max - 1 : slide.scrollTop > 0);
    if (canScroll) slide.scrollBy({ top: dir * slide.clientHeight * 0.75, behavior: "smooth" });
    else if (dir > 0) Reveal.next();
    else Reveal.prev();
  }
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
    keyboard: {
      40: function () {
        scrollOrStep(1);
      },
      38: function () {
        scrollOrStep(-1);
      },
    },
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
  document.addEventListener(
    "scroll",
    function (e) {
      if (e.target && e.target.classList && e.target.classList.contains("slide")) markScroll(e.target);
    },
    true,
  );
  // A solution opened or closed changes the slide's height.
  document.addEventListener(
    "toggle",
    function () {
      markScroll(Reveal.getCurrentSlide());
    },
    true,
  );
})();
