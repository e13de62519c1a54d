// Runs first in <body>: tells the NHS.UK frontend CSS that JavaScript is on (no inline script: see the CSP).
document.body.className += " js-enabled" + ("noModule" in HTMLScriptElement.prototype ? " nhsuk-frontend-supported" : "");
