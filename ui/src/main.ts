import { mount } from "svelte";
import App from "./App.svelte";
import "./app.css";

const target = document.getElementById("app");
if (!target) throw new Error("missing #app");

const app = mount(App, { target });

// Frozen prototypes: a script that got in anyway (it should not: strict CSP, text-only rendering) cannot
// poison built-in behaviour that Svelte or the IPC layer rely on. Frozen right after the synchronous first
// mount — before any IPC reply, so before any request data exists — because Svelte's one-time DOM setup
// (and, in dev builds, its Array.prototype warnings) writes to prototypes during that first mount.
Object.freeze(Object.prototype);
Object.freeze(Array.prototype);
Object.freeze(Function.prototype);

export default app;
