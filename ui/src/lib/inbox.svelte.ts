/**
 * The inbox as a window onto Rust's: Rust keeps the order (most urgent first) and the counts; the UI holds only
 * the pages of rows the list shows, so 10,000 pending requests cost what 100 do.
 *
 * `refresh()` (on `requests-changed`, and when the soonest expiry passes) refetches the pages in view and the
 * counts; a refresh that overlaps another is coalesced, so a burst of events costs at most one extra round
 * trip. Pages out of view are dropped then and fetched again when scrolled to; one fetched again from a changed
 * inbox is not shown beside pages of the old one (see `PagedList`).
 *
 * Each refresh is timed into the page's performance timeline as `inbox-refresh` (IPC, the DOM update and
 * layout; not the paint), with the IPC part in its `detail`; the benchmarks read these figures.
 */
import { tick } from "svelte";
import type { InboxPage } from "../bindings/InboxPage";
import type { IpcError } from "../bindings/IpcError";
import type { RequestRef } from "../bindings/RequestRef";
import type { RequestSummary } from "../bindings/RequestSummary";
import { listRequests } from "./api";
import { sameRequest } from "./nav.svelte";
import { PagedList } from "./pagedList.svelte";

/** Rows per page: a few screens' worth. */
export const PAGE = 100;

class Inbox {
  /** Lines in the whole inbox (awaiting a decision, or decided here and not yet delivered). */
  total = $state(0);
  /** Of those, the ones awaiting this approver's decision. */
  pending = $state(0);
  /** When the soonest request expires (Unix seconds): the inbox changes then. */
  nextExpiry = $state<number | null>(null);
  loaded = $state(false);
  error = $state<IpcError | null>(null);
  #rows = new PagedList<RequestSummary, InboxPage>(PAGE, {
    load: listRequests,
    same: sameRequest,
    landed: (a) => {
      this.total = a.total;
      this.pending = a.pending;
      this.nextExpiry = a.nextExpiry;
    },
    failed: (e) => {
      this.error = e;
    },
  });
  /** The rows the list last showed. */
  #view: [number, number] = [0, PAGE];
  #inFlight: Promise<void> | null = null;
  /** The last refresh's timing (ms): from asking Rust to the rows laid out, and the IPC part. */
  lastRefresh = { ms: 0, ipcMs: 0 };
  #again = false;

  /** The row at index `i`, when its page is loaded. */
  row(i: number): RequestSummary | undefined {
    return this.#rows.row(i);
  }

  /** How many pages of rows the UI holds: those in view and a page on either side, however far it scrolled. */
  get heldPages(): number {
    return this.#rows.held;
  }

  /** The index of a loaded row, or -1. */
  indexOf(request: RequestRef): number {
    return this.#rows.indexWhere((r) => sameRequest(r, request));
  }

  /** The list shows rows [start, end): load their pages. */
  show(start: number, end: number): void {
    this.#view = [start, Math.max(start + 1, end)];
    this.#rows.show(...this.#view);
  }

  refresh(): Promise<void> {
    if (this.#inFlight) {
      this.#again = true;
      return this.#inFlight;
    }
    this.#inFlight = (async () => {
      do {
        this.#again = false;
        const start = performance.now();
        const answer = this.#rows.refresh(...this.#view);
        // The first layout of a fresh web process (styles, fonts: most of the first render) runs while Rust
        // answers, not after; later refreshes find the layout clean and this read costs nothing.
        void document.documentElement.offsetHeight;
        const outcome = await answer;
        const ipcMs = performance.now() - start;
        if (outcome === "stale") continue;
        if (outcome === "done") {
          this.error = null;
          // The list may have scrolled while this refresh was in flight: load what it shows now.
          this.show(...this.#view);
        } else {
          this.error = outcome;
        }
        this.loaded = true;
        await tick();
        const updated = performance.now();
        // Reading a layout property makes the engine lay the new rows out now, inside the measure.
        void document.documentElement.offsetHeight;
        const end = performance.now();
        this.lastRefresh = { ms: end - start, ipcMs };
        try {
          // Where the time went: waiting for Rust, the DOM update, the layout; and when it began (ms since
          // the page started loading), which at start-up is the time to load and mount the UI.
          const detail = { ipcMs, domMs: updated - start - ipcMs, layoutMs: end - updated, rows: this.total, at: start };
          performance.measure("inbox-refresh", { start, end, detail });
        } catch {
          // A timeline without User Timing level 3: nothing to record.
        }
      } while (this.#again);
      this.#inFlight = null;
    })();
    return this.#inFlight;
  }
}

export const inbox = new Inbox();
