/**
 * A long list kept in Rust and paged into the UI as it scrolls into view: the inbox and the history both use it.
 * Only the pages in view and `margin` pages on either side are held: pages that scroll farther out are dropped
 * (and an answer for one that lands out there is not kept), and fetched again on return, so memory stays flat
 * however far the list is scrolled. A reset (a new filter, a refresh) drops them all, and answers to requests
 * made before the reset are ignored, so a slow answer never overwrites a newer one.
 *
 * The rows on screen come from one version of the list. A page fetched again can come from a newer list than the
 * pages beside it (a row arrived or left between the two fetches): side by side they would show a row twice, or
 * skip one, at their seam. So each page comes with the row just before it and the list's total, and a page that
 * lands beside held pages of another version (their totals differ, or the row before one page is not the last of
 * the page before it) is not mixed in: pages of the other version out of view are dropped (fetched again on
 * return), and when both are in view, the pages in view are refreshed together in one request. What this cannot
 * see: a change that leaves the total and every seam as they were (a row gone and one new within one page, a row
 * changed in place); those show no row twice and skip none, and the owner's refresh on a change brings them.
 */
import { SvelteMap, SvelteSet } from "svelte/reactivity";
import type { IpcError } from "../bindings/IpcError";

/** What Rust answers for rows [offset, offset + limit) of the list. */
export interface Page<Row> {
  rows: Row[];
  /** Rows in the whole list. */
  total: number;
}

/** How a list gets its pages, and what it does with each answer beside storing its rows. */
export interface Source<Row, P extends Page<Row>> {
  load(offset: number, limit: number): Promise<P>;
  /** Whether two rows are the same item; an item keeps its place in the list's order while it is in it. */
  same(a: Row, b: Row): boolean;
  /**
   * Each answer whose rows are kept, or that lands for a page scrolled far away: its totals, counts… (its rows
   * begin with the row before the page, but for the first page).
   */
  landed(page: P): void;
  failed(error: IpcError): void;
}

/** What a refresh came to: done, failed (the old pages stay), or overtaken by a newer reset. */
export type Refreshed = "done" | "stale" | IpcError;

/** A held page and what places it in the version of the list it came from. */
interface Held<Row> {
  rows: Row[];
  /** The row just before the page then (none before the first page, or when the list ended before it). */
  before: Row | undefined;
  total: number;
}

export class PagedList<Row, P extends Page<Row>> {
  /** Page index → its rows; rows re-render when their page lands. */
  #pages = new SvelteMap<number, Held<Row>>();
  #loading = new SvelteSet<number>();
  /** Bumped by every reset: answers to older requests are dropped. */
  #generation = 0;
  /** The rows last shown, [start, end). */
  #shown: [number, number];
  /** A refresh of the current generation is on its way: it will replace every page. */
  #refreshing = false;

  constructor(
    readonly size: number,
    private readonly source: Source<Row, P>,
    /** Pages kept beyond those in view on either side. */
    readonly margin = 1,
  ) {
    this.#shown = [0, size];
  }

  /** Row `i`, once its page is in. */
  row(i: number): Row | undefined {
    return this.#pages.get(Math.floor(i / this.size))?.rows[i % this.size];
  }

  /** The index of the first loaded row that `matches`, or -1. */
  indexWhere(matches: (r: Row) => boolean): number {
    for (const [p, page] of this.#pages) {
      const i = page.rows.findIndex(matches);
      if (i >= 0) return p * this.size + i;
    }
    return -1;
  }

  /** The first and last page holding rows [start, end). */
  #pagesOf(start: number, end: number): [number, number] {
    const first = Math.floor(start / this.size);
    return [first, Math.max(first, Math.floor((end - 1) / this.size))];
  }

  /** How many pages are held (the bound the margin keeps). */
  get held(): number {
    return this.#pages.size;
  }

  /**
   * Rows [start, end) are on screen: fetch the pages they are on that are not in yet, and drop the pages more
   * than `margin` pages away from them.
   */
  show(start: number, end: number): void {
    if (end <= start) return;
    this.#shown = [start, end];
    for (const p of [...this.#pages.keys()]) if (!this.#keeps(p)) this.#pages.delete(p);
    const [first, last] = this.#pagesOf(start, end);
    for (let p = first; p <= last; p++) void this.#fetch(p);
  }

  /** Drop every page and ignore every answer in flight. */
  reset(): void {
    this.#generation += 1;
    this.#refreshing = false;
    this.#pages.clear();
    this.#loading.clear();
  }

  /**
   * Fetch the pages holding rows [start, end) afresh, in one request (so from one version of the list), and swap
   * them in together, dropping the rest: the list never shows half old, half new rows. On failure the old pages
   * stay.
   */
  async refresh(start: number, end: number): Promise<Refreshed> {
    const generation = ++this.#generation;
    this.#refreshing = true;
    this.#loading.clear();
    const [first, last] = this.#pagesOf(start, end);
    const answer = await this.#load(first, last);
    if (generation !== this.#generation) return "stale";
    this.#refreshing = false;
    if (!("pages" in answer)) return answer;
    this.#pages.clear();
    answer.pages.forEach((page, i) => this.#pages.set(first + i, page));
    this.source.landed(answer.page);
    return "done";
  }

  /** Pages `first` to `last` in one request, with the row before them to check the seam with the page before. */
  async #load(first: number, last: number): Promise<{ page: P; pages: Held<Row>[] } | IpcError> {
    const lead = first > 0 ? 1 : 0;
    try {
      const page = await this.source.load(first * this.size - lead, (last - first + 1) * this.size + lead);
      const pages = Array.from({ length: last - first + 1 }, (_, i) => {
        const at = lead + i * this.size;
        const before = at > 0 ? page.rows[at - 1] : undefined;
        return { rows: page.rows.slice(at, at + this.size), before, total: page.total };
      });
      return { page, pages };
    } catch (e) {
      return e as IpcError;
    }
  }

  async #fetch(p: number): Promise<void> {
    if (this.#pages.has(p) || this.#loading.has(p)) return;
    const generation = this.#generation;
    this.#loading.add(p);
    const answer = await this.#load(p, p);
    if (generation !== this.#generation) return;
    this.#loading.delete(p);
    if (!("pages" in answer)) this.source.failed(answer);
    else if (this.#keeps(p)) this.#place(p, answer.pages[0], answer.page);
    // Scrolled far away while it was on its way: its totals still count, its rows are not kept.
    else this.source.landed(answer.page);
  }

  /**
   * Keep page `p` unless that would show rows of two versions of the list together: held pages of another version
   * out of view are dropped; when one is in view, `p` is not kept, and if `p` is in view too, the view is
   * refreshed (unless a refresh is already on its way).
   */
  #place(p: number, page: Held<Row>, answer: P): void {
    const other = [...this.#pages].filter(([q, held]) => !this.#agree(p, page, q, held)).map(([q]) => q);
    if (other.some((q) => this.#inView(q))) {
      if (this.#inView(p)) void this.#resync();
      return;
    }
    for (const q of other) this.#pages.delete(q);
    this.#pages.set(p, page);
    this.source.landed(answer);
  }

  /** Whether held page `q` can come from the same version of the list as page `p`. */
  #agree(p: number, page: Held<Row>, q: number, held: Held<Row>): boolean {
    if (page.total !== held.total) return false;
    if (q === p - 1) return this.#same(held.rows[this.size - 1], page.before);
    if (q === p + 1) return this.#same(page.rows[this.size - 1], held.before);
    return true;
  }

  #same(a: Row | undefined, b: Row | undefined): boolean {
    return a === undefined || b === undefined ? a === b : this.source.same(a, b);
  }

  /** Refresh the pages in view, then fetch what the list shows by then. */
  async #resync(): Promise<void> {
    if (this.#refreshing) return;
    const outcome = await this.refresh(...this.#shown);
    if (outcome === "done") this.show(...this.#shown);
    else if (outcome !== "stale") this.source.failed(outcome);
  }

  #inView(p: number): boolean {
    const [first, last] = this.#pagesOf(...this.#shown);
    return p >= first && p <= last;
  }

  #keeps(p: number): boolean {
    const [first, last] = this.#pagesOf(...this.#shown);
    return p >= first - this.margin && p <= last + this.margin;
  }
}
