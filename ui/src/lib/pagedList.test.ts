import { describe, expect, it } from "vitest";
import type { IpcError } from "../bindings/IpcError";
import { PagedList, type Page } from "./pagedList.svelte";

/** A source whose answers the test releases by hand, to order them. */
function manual() {
  const asked: { offset: number; resolve: (p: Page<number>) => void; reject: (e: IpcError) => void }[] = [];
  const landed: number[] = [];
  const failed: IpcError[] = [];
  const source = {
    load: (offset: number) =>
      new Promise<Page<number>>((resolve, reject) => asked.push({ offset, resolve, reject })),
    landed: (p: Page<number>) => landed.push(p.rows[0]),
    failed: (e: IpcError) => failed.push(e),
  };
  return { asked, landed, failed, source };
}
const rows = (from: number) => ({ rows: [from, from + 1] });
const flush = () => new Promise((r) => setTimeout(r, 0));

describe("PagedList", () => {
  it("fetches each page in view once and serves its rows", async () => {
    const m = manual();
    const list = new PagedList(2, m.source);
    list.show(0, 3);
    list.show(1, 4);
    expect(m.asked.map((a) => a.offset)).toEqual([0, 2]);
    m.asked[0].resolve(rows(10));
    m.asked[1].resolve(rows(20));
    await flush();
    expect([list.row(0), list.row(1), list.row(2), list.row(4)]).toEqual([10, 11, 20, undefined]);
    expect(list.indexWhere((r) => r === 21)).toBe(3);
  });

  it("drops an answer that arrives after a reset", async () => {
    const m = manual();
    const list = new PagedList(2, m.source);
    list.show(0, 1);
    list.reset();
    m.asked[0].resolve(rows(10));
    await flush();
    expect(list.row(0)).toBeUndefined();
    expect(m.landed).toEqual([]);
  });

  it("swaps a refresh in whole, keeps the old rows when it fails, and reports an overtaken one as stale", async () => {
    const m = manual();
    const list = new PagedList(2, m.source);
    list.show(0, 1);
    m.asked[0].resolve(rows(10));
    await flush();

    const failing = list.refresh([0]);
    m.asked[1].reject({ code: "internal", message: "down" });
    expect(await failing).toEqual({ code: "internal", message: "down" });
    expect(list.row(0)).toBe(10);

    const overtaken = list.refresh([0]);
    const newer = list.refresh([0]);
    m.asked[3].resolve(rows(30));
    m.asked[2].resolve(rows(20));
    expect(await overtaken).toBe("stale");
    expect(await newer).toBe("done");
    expect(list.row(0)).toBe(30);
  });

  it("drops pages far out of view, keeps the margin, and fetches a dropped page again on return", async () => {
    const m = manual();
    const list = new PagedList(2, m.source, 1);
    for (let p = 0; p < 6; p++) {
      list.show(p * 2, p * 2 + 2);
      m.asked[p].resolve(rows(p * 10));
      await flush();
    }
    // Page 5 in view, page 4 in the margin; pages 0–3 are gone, and memory is bounded by the view.
    expect(list.held).toBe(2);
    expect([list.row(0), list.row(7), list.row(8), list.row(10)]).toEqual([undefined, undefined, 40, 50]);
    expect(list.indexWhere((r) => r === 0)).toBe(-1);

    list.show(0, 2);
    expect(m.asked.map((a) => a.offset)).toEqual([0, 2, 4, 6, 8, 10, 0]);
    m.asked[6].resolve(rows(0));
    await flush();
    expect(list.row(0)).toBe(0);
    expect(list.held).toBe(1);
  });

  it("does not keep a page that lands after the list scrolled far from it", async () => {
    const m = manual();
    const list = new PagedList(2, m.source, 1);
    list.show(0, 2);
    list.show(20, 22);
    m.asked[0].resolve(rows(0));
    m.asked[1].resolve(rows(100));
    await flush();
    expect(list.row(0)).toBeUndefined();
    expect(list.row(20)).toBe(100);
    expect(list.held).toBe(1);
    // Its totals still count.
    expect(m.landed).toEqual([0, 100]);
  });
});
