import { mount } from "svelte";
import App from "./App.svelte";
import "./app.css";

// Frozen prototypes: a script that got in (it should not: strict CSP, text-only rendering) cannot poison
// built-in behaviour that the IPC layer or Svelte rely on.
Object.freeze(Object.prototype);
Object.freeze(Array.prototype);
Object.freeze(Function.prototype);

const target = document.getElementById("app");
if (!target) throw new Error("missing #app");

export default mount(App, { target });
