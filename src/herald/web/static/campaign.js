// Herald web console, campaign pages: progressive enhancement only (every tab works without this file).
"use strict";

// Overview: refresh the status, buttons and counters every 2 seconds from /campaigns/{id}/live, without a reload.
(() => {
  const live = document.querySelector("[data-live-url]");
  if (!live) return;
  let busy = false;
  const refresh = async () => {
    if (busy || document.hidden) return;
    busy = true;
    try {
      const response = await fetch(live.dataset.liveUrl, { headers: { Accept: "text/html" }, credentials: "same-origin" });
      if (response.ok) {
        const html = await response.text();
        // Replace only when something changed, so a focused button is not swapped out for nothing.
        if (html.trim() !== live.innerHTML.trim()) live.innerHTML = html;
      }
    } catch (_) {
      // offline for a moment: the next tick tries again
    } finally {
      busy = false;
    }
  };
  setInterval(refresh, 2000);
})();

// Analytics: draw each chart from the figure JSON next to it (the tables beside them hold the same numbers).
(() => {
  const charts = document.querySelectorAll("[data-plotly]");
  if (!charts.length) return;
  const draw = () => {
    if (typeof Plotly === "undefined") return;
    const config = JSON.parse(document.getElementById("plotly-config").textContent);
    charts.forEach((element) => {
      const source = document.querySelector(`script[data-figure-for="${element.id}"]`);
      if (!source) return;
      const figure = JSON.parse(source.textContent);
      Plotly.newPlot(element, figure.data, figure.layout, config);
    });
  };
  if (typeof Plotly !== "undefined") draw();
  else window.addEventListener("load", draw);
})();
