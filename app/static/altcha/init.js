// ALTCHA widget 3.2.2 (npm "altcha", dist/external: no inline styles or blob workers), served by
// this site. The external build registers no proof-of-work algorithm: register the one we use.
import "./altcha.min.js";

globalThis.$altcha.algorithms.set("PBKDF2/SHA-256", () => new Worker("/static/altcha/pbkdf2.js"));
