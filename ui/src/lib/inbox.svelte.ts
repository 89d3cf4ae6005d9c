/**
 * The inbox as a window onto Rust's: Rust keeps the order (most urgent first) and the counts; the UI holds only
 * the pages of rows the list shows, so 10,000 pending requests cost what 100 do.
 *
 * `refresh()` (on `requests-changed`, and when the soonest expiry passes) refetches the pages in view and the
 * counts; a refresh that overlaps another is coalesced, so a burst of events costs at most one extra round
 * trip. Pages out of view are dropped then and fetched again when scrolled to.
 *
 * Each refresh is timed into the page's performance timeline as `inbox-refresh` (IPC, the DOM update and
 * layout; not the paint), with the IPC part in its `detail`; the benchmarks read these figures.
 */
import { tick } from "svelte";
import { SvelteMap } from "svelte/reactivity";
import type { InboxPage } from "../bindings/InboxPage";
import type { IpcError } from "../bindings/IpcError";
import type { RequestRef } from "../bindings/RequestRef";
import type { RequestSummary } from "../bindings/RequestSummary";
import { listRequests } from "./api";
import { sameRequest } from "./nav.svelte";

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
  /** Page index → rows. */
  #pages = new SvelteMap<number, RequestSummary[]>();
  #loading = new Set<number>();
  /** Bumped by each refresh: answers to older requests are dropped. */
  #generation = 0;
  /** The rows the list last showed. */
  #view: [number, number] = [0, PAGE];
  #inFlight: Promise<void> | null = null;
  /** The last refresh's timing (ms): from asking Rust to the rows laid out, and the IPC part. */
  lastRefresh = { ms: 0, ipcMs: 0 };
  #again = false;

  /** The row at index `i`, when its page is loaded. */
  row(i: number): RequestSummary | undefined {
    return this.#pages.get(Math.floor(i / PAGE))?.[i % PAGE];
  }

  /** The index of a loaded row, or -1. */
  indexOf(request: RequestRef): number {
    for (const [p, rows] of this.#pages) {
      const i = rows.findIndex((r) => sameRequest(r, request));
      if (i >= 0) return p * PAGE + i;
    }
    return -1;
  }

  /** The list shows rows [start, end): load their pages. */
  show(start: number, end: number): void {
    this.#view = [start, Math.max(start + 1, end)];
    for (const p of this.#pagesOf(this.#view)) {
      if (!this.#pages.has(p)) void this.#fetch(p, this.#generation);
    }
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
        const generation = ++this.#generation;
        const wanted = this.#pagesOf(this.#view);
        this.#loading.clear();
        const answers = await Promise.all(wanted.map((p) => this.#get(p)));
        const ipcMs = performance.now() - start;
        if (generation !== this.#generation) continue;
        const failed = answers.find((a): a is IpcError => !("rows" in a));
        if (failed) {
          this.error = failed;
        } else {
          this.#pages.clear();
          for (const a of answers as InboxPage[]) this.#apply(a);
          this.error = null;
          // The list may have scrolled while this refresh was in flight: load what it shows now.
          this.show(...this.#view);
        }
        this.loaded = true;
        await tick();
        // Reading a layout property makes the engine lay the new rows out now, inside the measure.
        void document.documentElement.offsetHeight;
        this.lastRefresh = { ms: performance.now() - start, ipcMs };
        try {
          const detail = { ipcMs, rows: this.total };
          performance.measure("inbox-refresh", { start, end: performance.now(), detail });
        } catch {
          // A timeline without User Timing level 3: nothing to record.
        }
      } while (this.#again);
      this.#inFlight = null;
    })();
    return this.#inFlight;
  }

  #pagesOf([start, end]: [number, number]): number[] {
    const out: number[] = [];
    for (let p = Math.floor(start / PAGE); p <= Math.floor((end - 1) / PAGE); p++) out.push(p);
    return out;
  }

  async #get(p: number): Promise<InboxPage | IpcError> {
    try {
      return await listRequests(p * PAGE, PAGE);
    } catch (e) {
      return e as IpcError;
    }
  }

  async #fetch(p: number, generation: number): Promise<void> {
    if (this.#loading.has(p)) return;
    this.#loading.add(p);
    const answer = await this.#get(p);
    this.#loading.delete(p);
    if (generation !== this.#generation) return;
    if ("rows" in answer) this.#apply(answer);
    else this.error = answer;
  }

  #apply(a: InboxPage): void {
    this.#pages.set(Math.floor(a.offset / PAGE), a.rows);
    this.total = a.total;
    this.pending = a.pending;
    this.nextExpiry = a.nextExpiry;
  }
}

export const inbox = new Inbox();
