/**
 * The rows of one filtered history, paged in from Rust as they scroll into view (newest first), with
 * its total and charts; answers for an older filter are dropped.
 */
import type { HistoryFilter } from "../bindings/HistoryFilter";
import type { HistoryPage } from "../bindings/HistoryPage";
import type { HistoryRow } from "../bindings/HistoryRow";
import type { HistoryStats } from "../bindings/HistoryStats";
import type { IpcError } from "../bindings/IpcError";
import { historyPage, historyStats } from "../lib/api";
import { PagedList } from "../lib/pagedList.svelte";

/** Rows asked for at once. */
export const PAGE = 200;

export class HistoryPages {
  total = $state(0);
  stats = $state.raw<HistoryStats | null>(null);
  error = $state<IpcError | null>(null);
  #filter: HistoryFilter | null = null;
  /** Bumped by every new filter: the charts of an older one are dropped. */
  #generation = 0;
  #rows = new PagedList<HistoryRow, HistoryPage>(PAGE, {
    load: (offset, limit) => historyPage(this.#filter as HistoryFilter, offset, limit),
    // A row's seq is its identity and its place (newest first).
    same: (a, b) => a.seq === b.seq,
    landed: (page) => {
      this.total = page.total;
      this.error = null;
    },
    failed: (e) => {
      this.error = e;
    },
  });

  /** Start over with filter `f`: its first page and its charts. */
  reset(f: HistoryFilter): void {
    this.#generation += 1;
    this.#filter = f;
    this.#rows.reset();
    this.total = 0;
    this.#rows.show(0, 1);
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
    if (this.#filter) this.#rows.show(start, end);
  }

  /** Row `i`, once its page is in. */
  rowAt(i: number): HistoryRow | undefined {
    return this.#rows.row(i);
  }
}
