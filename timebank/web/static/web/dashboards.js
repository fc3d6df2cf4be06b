/* Dashboard charts. Each chart's numbers come from a JSON block next to it (json_script) and are also in the
   table under it, so nothing is lost without this file or without colour: series differ by pattern too. */
(function () {
  "use strict";
  if (!window.echarts) {
    return;
  }
  var colours = ["#1f5f99", "#d97a00", "#2e7d32", "#7b3f98", "#b3261e"];

  function option(spec) {
    var axisKinds = spec.kind === "line" || spec.kind === "bar";
    var series = spec.series.map(function (s) {
      var one = { name: s.name, type: spec.kind, data: s.data, connectNulls: false };
      if (spec.stacked) {
        one.stack = "all";
      }
      if (spec.kind === "line") {
        one.symbolSize = 8;
      }
      return one;
    });
    var result = {
      color: colours,
      aria: { enabled: true, decal: { show: true } },
      animation: false,
      tooltip: { trigger: axisKinds ? "axis" : "item" },
      legend: { show: spec.series.length > 1, bottom: 0 },
      grid: { left: 8, right: 16, top: 16, bottom: spec.series.length > 1 ? 40 : 16, containLabel: true },
      series: series,
    };
    if (axisKinds) {
      result.xAxis = { type: "category", data: spec.labels, axisLabel: { hideOverlap: true } };
      result.yAxis = { type: "value", name: spec.unit || "", minInterval: 1 };
    }
    return result;
  }

  document.querySelectorAll("[data-chart]").forEach(function (el) {
    var source = document.getElementById(el.getAttribute("data-chart"));
    if (!source) {
      return;
    }
    var spec;
    try {
      spec = JSON.parse(source.textContent);
    } catch (e) {
      return;
    }
    if (!spec.labels || spec.labels.length === 0) {
      return;
    }
    el.hidden = false;
    // Canvas: it draws pixels and sets no style attributes, so the strict CSP (style-src 'self') holds.
    var chart = window.echarts.init(el, null, { renderer: "canvas" });
    chart.setOption(option(spec));
    window.addEventListener("resize", function () {
      chart.resize();
    });
  });
})();
