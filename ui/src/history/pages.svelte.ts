/**
 * The rows of one filtered history, paged in from Rust as they scroll into view (newest first), with
 * its total and charts; answers for an older filter are dropped.
 */
import { SvelteMap, SvelteSet } from "svelte/reactivity";
import type { HistoryFilter } from "../bindings/HistoryFilter";
import type { HistoryRow } from "../bindings/HistoryRow";
import type { HistoryStats } from "../bindings/HistoryStats";
import type { IpcError } from "../bindings/IpcError";
import { historyPage, historyStats } from "../lib/api";

/** Rows asked for at once. */
export const PAGE = 200;

export class HistoryPages {
  total = $state(0);
  stats = $state.raw<HistoryStats | null>(null);
  error = $state<IpcError | null>(null);
  /** Pages of rows by page number; rows re-render when their page lands. */
  #pages = new SvelteMap<number, HistoryRow[]>();
  #loading = new SvelteSet<number>();
  #filter: HistoryFilter | null = null;
  /** Bumped by every new filter: responses for an older one are dropped. */
  #generation = 0;

  /** Start over with filter `f`: its first page and its charts. */
  reset(f: HistoryFilter): void {
    this.#generation += 1;
    this.#filter = f;
    this.#pages.clear();
    this.#loading.clear();
    this.total = 0;
    void this.#fetch(0);
    const g = this.#generation;
    historyStats(f)
      .then((s) => {
        if (g === this.#generation) this.stats = s;
      })
      .catch((e) => {
        if (g === this.#generation) this.error = e as IpcError;
      });
  }

  /** Rows `start` (inclusive) to `end` (exclusive) are on screen: fetch the pages they are on. */
  show(start: number, end: number): void {
    if (!this.#filter || end <= start) return;
    for (let p = Math.floor(start / PAGE); p <= Math.floor((end - 1) / PAGE); p++) void this.#fetch(p);
  }

  /** Row `i`, once its page is in. */
  rowAt(i: number): HistoryRow | undefined {
    return this.#pages.get(Math.floor(i / PAGE))?.[i % PAGE];
  }

  async #fetch(p: number): Promise<void> {
    const f = this.#filter;
    if (!f || this.#pages.has(p) || this.#loading.has(p)) return;
    const g = this.#generation;
    this.#loading.add(p);
    try {
      const page = await historyPage(f, p * PAGE, PAGE);
      if (g !== this.#generation) return;
      this.#pages.set(p, page.rows);
      this.total = page.total;
      this.error = null;
    } catch (e) {
      if (g === this.#generation) this.error = e as IpcError;
    } finally {
      if (g === this.#generation) this.#loading.delete(p);
    }
  }
}
