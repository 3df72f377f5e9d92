// Herald web console, campaign pages: progressive enhancement only (every tab works without this file).
"use strict";

// Overview: refresh the status, buttons and counters from /campaigns/{id}/live without a reload: every 2 seconds
// while the campaign runs, every 10 while it waits for someone's action (pending, ready, finished), so that an open tab
// on a settled campaign costs little.
(() => {
  const live = document.querySelector("[data-live-url]");
  if (!live) return;
  const running = () => live.querySelector('[data-running="true"]') !== null;
  let busy = false;
  let last = 0;
  const refresh = async () => {
    const every = running() ? 2000 : 10000;
    if (busy || document.hidden || Date.now() - last < every - 100) return;
    busy = true;
    last = Date.now();
    try {
      const response = await fetch(live.dataset.liveUrl, { headers: { Accept: "text/html" }, credentials: "same-origin" });
      if (response.ok) {
        const html = await response.text();
        // Replace only when something changed, so a focused button is not swapped out for nothing.
        if (html.trim() !== live.innerHTML.trim()) {
          live.innerHTML = html;
          // The status in the page's heading is outside the live part: keep it the same as the one inside.
          const heading = document.querySelector("[data-campaign-status]");
          const status = live.querySelector("[data-live-status]");
          if (heading && status) heading.innerHTML = status.innerHTML;
        }
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
