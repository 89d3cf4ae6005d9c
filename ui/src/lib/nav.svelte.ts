/** Which screen is shown and which request is open; `open-request` from Rust drives it too. */
import type { RequestRef } from "../bindings/RequestRef";

export type Screen = "inbox" | "history" | "eps" | "key";

/**
 * A request's address. Ids are unique only per enforcement point — another one may reuse an id, by mistake or
 * on purpose — so every request is addressed by its enforcement point and its id, never by the id alone.
 */
export function refOf(r: { ep: string; id: string }): RequestRef {
  return { ep: r.ep, id: r.id };
}

/** Whether `a` and `b` are the same request (same enforcement point and id). */
export function sameRequest(a: { ep: string; id: string } | null, b: { ep: string; id: string } | null): boolean {
  return a !== null && b !== null && a.ep === b.ep && a.id === b.id;
}

class Nav {
  screen = $state<Screen>("inbox");
  /** The request whose detail is shown next to the inbox. */
  open = $state<RequestRef | null>(null);
  /** The keyboard cursor in the inbox list; Enter opens it. */
  cursor = $state<RequestRef | null>(null);
  /** Bumped on every explicit open so the detail pane takes focus even when reopening the same request. */
  focusTick = $state(0);

  openRequest(r: RequestRef): void {
    this.screen = "inbox";
    this.cursor = refOf(r);
    this.open = refOf(r);
    this.focusTick += 1;
  }
}

export const nav = new Nav();
