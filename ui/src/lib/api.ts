/**
 * Every call from the web view into Rust goes through this module, typed against the generated bindings.
 * Each command rejects with an `IpcError`; `asIpcError` normalises anything else (a Tauri-level failure,
 * a missing command) into the same shape so screens only ever branch on `code`.
 */
import { invoke } from "@tauri-apps/api/core";
import { listen, type UnlistenFn } from "@tauri-apps/api/event";
import type { DecideArgs } from "../bindings/DecideArgs";
import type { DecisionResult } from "../bindings/DecisionResult";
import type { EpPreview } from "../bindings/EpPreview";
import type { EpStatus } from "../bindings/EpStatus";
import type { HistoryFilter } from "../bindings/HistoryFilter";
import type { HistoryPage } from "../bindings/HistoryPage";
import type { HistoryStats } from "../bindings/HistoryStats";
import type { InboxPage } from "../bindings/InboxPage";
import type { IpcError } from "../bindings/IpcError";
import type { KeyInfo } from "../bindings/KeyInfo";
import type { RequestDetail } from "../bindings/RequestDetail";
import type { RequestRef } from "../bindings/RequestRef";
import type { RotationReport } from "../bindings/RotationReport";
import type { Settings } from "../bindings/Settings";
import type { VerifyReport } from "../bindings/VerifyReport";

const CODES: ReadonlyArray<IpcError["code"]> = [
  "not_found",
  "invalid_input",
  "refused",
  "keyring",
  "network",
  "internal",
];

export function asIpcError(e: unknown): IpcError {
  if (typeof e === "object" && e !== null) {
    const o = e as Record<string, unknown>;
    if (typeof o.code === "string" && typeof o.message === "string") {
      const code = (CODES as ReadonlyArray<string>).includes(o.code) ? (o.code as IpcError["code"]) : "internal";
      return { code, message: o.message };
    }
  }
  return { code: "internal", message: typeof e === "string" ? e : String(e) };
}

async function call<T>(cmd: string, args?: Record<string, unknown>): Promise<T> {
  try {
    return await invoke<T>(cmd, args);
  } catch (e) {
    throw asIpcError(e);
  }
}

export const listRequests = (offset: number, limit: number) => call<InboxPage>("list_requests", { offset, limit });
/** The first inbox is on screen: Rust shows the (until then hidden) window. */
export const uiReady = (rows: number, renderMs: number, ipcMs: number) =>
  call<null>("ui_ready", { rows, renderMs, ipcMs });
/** Request `id` of enforcement point `ep`: an id alone may be several enforcement points'. */
export const getRequest = (request: RequestRef) =>
  call<RequestDetail>("get_request", { ep: request.ep, id: request.id });
export const decide = (args: DecideArgs) => call<DecisionResult>("decide", { args });
export const historyPage = (filter: HistoryFilter, offset: number, limit: number) =>
  call<HistoryPage>("history_page", { filter, offset, limit });
export const historyStats = (filter: HistoryFilter) => call<HistoryStats>("history_stats", { filter });
export const historyVerify = () => call<VerifyReport>("history_verify");
export const historyExport = (format: "jsonl" | "csv") => call<string>("history_export", { format });
export const listEps = () => call<EpStatus[]>("list_eps");
export const previewEp = (url: string) => call<EpPreview>("preview_ep", { url });
export const addEp = (url: string, kid: string) => call<EpStatus>("add_ep", { url, kid });
export const removeEp = (ep: string) => call<null>("remove_ep", { ep });
export const keyInfo = () => call<KeyInfo>("key_info");
/** Rotate the key; the new key and, per enforcement point, whether it took it or needs it enrolled by hand. */
export const rotateKey = () => call<RotationReport>("rotate_key");
export const getSettings = () => call<Settings>("get_settings");
export const setSettings = (settings: Settings) => call<Settings>("set_settings", { settings });

/** Events pushed by Rust. Registration failures (e.g. no Tauri runtime) resolve to a no-op unlisten. */
export type AppEvent = "requests-changed" | "eps-changed";

export async function onEvent(name: AppEvent, handler: () => void): Promise<UnlistenFn> {
  try {
    return await listen(name, () => handler());
  } catch {
    return () => {};
  }
}

/** Whether an event payload is a request's address (enforcement point and id). */
function isRequestRef(p: unknown): p is RequestRef {
  if (typeof p !== "object" || p === null) return false;
  const o = p as Record<string, unknown>;
  return typeof o.ep === "string" && typeof o.id === "string";
}

/** `open-request` (a notification click): open that request of that enforcement point. */
export async function onOpenRequest(handler: (request: RequestRef) => void): Promise<UnlistenFn> {
  try {
    return await listen<unknown>("open-request", (ev) => {
      if (isRequestRef(ev.payload)) handler({ ep: ev.payload.ep, id: ev.payload.id });
    });
  } catch {
    return () => {};
  }
}
