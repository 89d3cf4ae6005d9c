/**
 * A long list kept in Rust and paged into the UI as it scrolls into view: the inbox and the history both use it.
 * Only the pages in view and `margin` pages on either side are held: pages that scroll farther out are dropped
 * (and an answer for one that lands out there is not kept), and fetched again on return, so memory stays flat
 * however far the list is scrolled. A reset (a new filter, a refresh) drops them all, and answers to requests
 * made before the reset are ignored, so a slow answer never overwrites a newer one.
 */
import { SvelteMap, SvelteSet } from "svelte/reactivity";
import type { IpcError } from "../bindings/IpcError";

/** What Rust answers for one page. */
export interface Page<Row> {
  rows: Row[];
}

/** How a list gets its pages, and what it does with each answer beside storing its rows. */
export interface Source<Row, P extends Page<Row>> {
  load(offset: number, limit: number): Promise<P>;
  /** Each page that lands (its totals, counts…). */
  landed(page: P): void;
  failed(error: IpcError): void;
}

/** What a refresh came to: done, failed (the old pages stay), or overtaken by a newer reset. */
export type Refreshed = "done" | "stale" | IpcError;

export class PagedList<Row, P extends Page<Row>> {
  /** Page index → rows; rows re-render when their page lands. */
  #pages = new SvelteMap<number, Row[]>();
  #loading = new SvelteSet<number>();
  /** Bumped by every reset: answers to older requests are dropped. */
  #generation = 0;
  /** The pages kept, first and last (inclusive): those last shown, and `margin` more on either side. */
  #kept: [number, number] = [0, Infinity];

  constructor(
    readonly size: number,
    private readonly source: Source<Row, P>,
    /** Pages kept beyond those in view on either side. */
    readonly margin = 1,
  ) {}

  /** Row `i`, once its page is in. */
  row(i: number): Row | undefined {
    return this.#pages.get(Math.floor(i / this.size))?.[i % this.size];
  }

  /** The index of the first loaded row that `matches`, or -1. */
  indexWhere(matches: (r: Row) => boolean): number {
    for (const [p, rows] of this.#pages) {
      const i = rows.findIndex(matches);
      if (i >= 0) return p * this.size + i;
    }
    return -1;
  }

  /** The pages holding rows [start, end). */
  pagesOf(start: number, end: number): number[] {
    const out: number[] = [];
    for (let p = Math.floor(start / this.size); p <= Math.floor((end - 1) / this.size); p++) out.push(p);
    return out;
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
    const pages = this.pagesOf(start, end);
    this.#kept = [pages[0] - this.margin, pages[pages.length - 1] + this.margin];
    for (const p of [...this.#pages.keys()]) if (!this.#keeps(p)) this.#pages.delete(p);
    for (const p of pages) void this.#fetch(p);
  }

  /** Drop every page and ignore every answer in flight. */
  reset(): void {
    this.#generation += 1;
    this.#pages.clear();
    this.#loading.clear();
  }

  /**
   * Fetch `pages` afresh and swap them in together, dropping the rest: the list never shows half old, half new
   * rows. On failure the old pages stay.
   */
  async refresh(pages: number[]): Promise<Refreshed> {
    const generation = ++this.#generation;
    this.#loading.clear();
    const answers = await Promise.all(pages.map((p) => this.#get(p)));
    if (generation !== this.#generation) return "stale";
    const failed = answers.find((a): a is IpcError => !("rows" in a));
    if (failed) return failed;
    this.#pages.clear();
    pages.forEach((p, i) => this.#land(p, answers[i] as P));
    return "done";
  }

  async #get(p: number): Promise<P | IpcError> {
    try {
      return await this.source.load(p * this.size, this.size);
    } catch (e) {
      return e as IpcError;
    }
  }

  async #fetch(p: number): Promise<void> {
    if (this.#pages.has(p) || this.#loading.has(p)) return;
    const generation = this.#generation;
    this.#loading.add(p);
    const answer = await this.#get(p);
    if (generation !== this.#generation) return;
    this.#loading.delete(p);
    if (!("rows" in answer)) this.source.failed(answer);
    else if (this.#keeps(p)) this.#land(p, answer);
    // Scrolled far away while it was on its way: its totals still count, its rows are not kept.
    else this.source.landed(answer);
  }

  #keeps(p: number): boolean {
    return p >= this.#kept[0] && p <= this.#kept[1];
  }

  #land(p: number, page: P): void {
    this.#pages.set(p, page.rows);
    this.source.landed(page);
  }
}
