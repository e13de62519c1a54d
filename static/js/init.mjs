// Starts the NHS.UK frontend components. Every page works without this; it only adds polish.
const script = document.querySelector("script[data-frontend]");
if (script) {
  import(script.dataset.frontend).then(({ initAll }) => initAll());
}
