// Starts Redoc on /docs with the hub's options (a file of its own, so the page's
// Content-Security-Policy needs no inline script).
const japanese = '"Hiragino Sans", "Hiragino Kaku Gothic ProN", "Noto Sans CJK JP", "Noto Sans JP", "Yu Gothic", Meiryo, "IPAexGothic", "IPAGothic", sans-serif';
Redoc.init("/openapi.json", {
  expandResponses: "200,201",
  requiredPropsFirst: true,
  pathInMiddlePanel: true,
  hideHostname: true,
  jsonSampleExpandLevel: 4,
  showObjectSchemaExamples: true,
  showExtensions: ["x-enum-labels", "x-basic-item"],
  nativeScrollbars: true,
  downloadFileName: "openapi.json",
  theme: {
    typography: {
      fontFamily: japanese,
      headings: { fontFamily: japanese },
      code: { fontFamily: 'ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace', wrap: true },
    },
  },
}, document.getElementById("redoc"), function () {
  document.getElementById("fallback").remove();
});
