import { describe, expect, it } from "vitest";
import type { IpcError } from "../bindings/IpcError";
import { PagedList, type Page } from "./pagedList.svelte";

/**
 * A source over `list`, which the test changes between requests and answers: each request waits until the test
 * answers it (`answer(i)`, from the list as it is then, or `fail(i)`), so the test orders the answers.
 */
function manual(list: number[]) {
  const asked: { offset: number; limit: number; resolve: (p: Page<number>) => void; reject: (e: IpcError) => void }[] =
    [];
  const landed: number[] = [];
  const failed: IpcError[] = [];
  const source = {
    load: (offset: number, limit: number) =>
      new Promise<Page<number>>((resolve, reject) => asked.push({ offset, limit, resolve, reject })),
    same: (a: number, b: number) => a === b,
    landed: (p: Page<number>) => landed.push(p.total),
    failed: (e: IpcError) => failed.push(e),
  };
  const answer = (i: number) => {
    const { offset, limit, resolve } = asked[i];
    resolve({ rows: list.slice(offset, offset + limit), total: list.length });
  };
  const fail = (i: number) => asked[i].reject({ code: "internal", message: "down" });
  /** Answer every request not answered yet, in the order asked, and those their answers lead to. */
  let answered = 0;
  const answerAll = async () => {
    do {
      while (answered < asked.length) answer(answered++);
      await flush();
    } while (answered < asked.length);
  };
  return { asked, landed, failed, source, answer, fail, answerAll };
}
/** 0, 10, 20, … : room to insert rows between any two. */
const tens = (n: number) => Array.from({ length: n }, (_, i) => i * 10);
const flush = () => new Promise((r) => setTimeout(r, 0));
const onScreen = (list: PagedList<number, Page<number>>, start: number, end: number) =>
  Array.from({ length: end - start }, (_, k) => list.row(start + k));

describe("PagedList", () => {
  it("fetches each page in view once and serves its rows", async () => {
    const m = manual(tens(20));
    const list = new PagedList(2, m.source);
    list.show(0, 3);
    list.show(1, 4);
    expect(m.asked.length).toBe(2);
    await m.answerAll();
    expect(onScreen(list, 0, 5)).toEqual([0, 10, 20, 30, undefined]);
    expect(list.indexWhere((r) => r === 30)).toBe(3);
  });

  it("drops an answer that arrives after a reset", async () => {
    const m = manual(tens(20));
    const list = new PagedList(2, m.source);
    list.show(0, 1);
    list.reset();
    await m.answerAll();
    expect(list.row(0)).toBeUndefined();
    expect(m.landed).toEqual([]);
  });

  it("swaps a refresh in whole, keeps the old rows when it fails, and reports an overtaken one as stale", async () => {
    const rows = tens(20);
    const m = manual(rows);
    const list = new PagedList(2, m.source);
    list.show(0, 4);
    await m.answerAll();

    const failing = list.refresh(0, 4);
    m.fail(2);
    expect(await failing).toEqual({ code: "internal", message: "down" });
    expect(onScreen(list, 0, 4)).toEqual([0, 10, 20, 30]);

    const overtaken = list.refresh(0, 4);
    const newer = list.refresh(0, 4);
    rows.unshift(-10);
    m.answer(4);
    rows.unshift(-20);
    m.answer(3);
    expect(await overtaken).toBe("stale");
    expect(await newer).toBe("done");
    expect(onScreen(list, 0, 4)).toEqual([-10, 0, 10, 20]);
    // The pages in view come in one request, so from one version of the list.
    expect(m.asked.slice(2).map((a) => [a.offset, a.limit])).toEqual([[0, 4], [0, 4], [0, 4]]);
  });

  it("drops pages far out of view, keeps the margin, and fetches a dropped page again on return", async () => {
    const m = manual(tens(20));
    const list = new PagedList(2, m.source, 1);
    for (let p = 0; p < 6; p++) {
      list.show(p * 2, p * 2 + 2);
      await m.answerAll();
    }
    // Page 5 in view, page 4 in the margin; pages 0–3 are gone, and memory is bounded by the view.
    expect(list.held).toBe(2);
    expect(onScreen(list, 7, 11)).toEqual([undefined, 80, 90, 100]);
    expect(list.row(0)).toBeUndefined();
    expect(list.indexWhere((r) => r === 0)).toBe(-1);

    list.show(0, 2);
    expect(m.asked.length).toBe(7);
    await m.answerAll();
    expect(list.row(0)).toBe(0);
    expect(list.held).toBe(1);
  });

  it("does not keep a page that lands after the list scrolled far from it", async () => {
    const m = manual(tens(200));
    const list = new PagedList(2, m.source, 1);
    list.show(0, 2);
    list.show(20, 22);
    await m.answerAll();
    expect(list.row(0)).toBeUndefined();
    expect(list.row(20)).toBe(200);
    expect(list.held).toBe(1);
    // Its totals still count.
    expect(m.landed).toEqual([200, 200]);
  });

  it("asks no more when the list did not change: one request per page, the row before it included", async () => {
    const m = manual(tens(30));
    const list = new PagedList(3, m.source, 1);
    for (const [start, end] of [[0, 6], [6, 9], [9, 12], [3, 9]]) {
      list.show(start, end);
      await m.answerAll();
    }
    expect(m.asked.map((a) => a.offset)).toEqual([0, 2, 5, 8, 2]);
    expect(onScreen(list, 3, 9)).toEqual([30, 40, 50, 60, 70, 80]);
  });
});

describe("PagedList shows one version of a list that changes between fetches", () => {
  /** The rows on screen once every answer landed: all in, each once, none skipped, in the list's order now. */
  const expectOneVersion = (list: PagedList<number, Page<number>>, rows: number[], start: number, end: number) => {
    const shown = onScreen(list, start, end);
    expect(new Set(shown).size).toBe(shown.length);
    expect(shown).toEqual(rows.slice(start, end));
  };

  it("a row that arrives at the top between the fetch of page 0 and the refetch of page 1: one refresh", async () => {
    const rows = tens(20);
    const m = manual(rows);
    const list = new PagedList(3, m.source, 1);
    list.show(0, 6);
    await m.answerAll();
    list.show(9, 12);
    await m.answerAll();
    expect(list.row(0)).toBeUndefined();

    // Back up: pages 0 and 1 again; page 0 answers, a request arrives, page 1 answers from the longer list.
    list.show(0, 6);
    const asked = m.asked.length;
    m.answer(asked - 2);
    rows.unshift(-10);
    m.answer(asked - 1);
    await m.answerAll();
    expectOneVersion(list, rows, 0, 6);
    // The two pages in view, refreshed together in one request.
    expect(m.asked.slice(asked).map((a) => [a.offset, a.limit])).toEqual([[0, 6]]);
  });

  it("a row that arrives above a held page skips no row at its seam", async () => {
    const rows = tens(20);
    const m = manual(rows);
    const list = new PagedList(3, m.source, 1);
    for (const [start, end] of [[0, 6], [6, 9], [9, 12]]) {
      list.show(start, end);
      await m.answerAll();
    }
    // Page 2 is held (the margin of page 3), page 1 was dropped; a request arrives at the top.
    rows.unshift(-10);
    list.show(3, 9);
    await m.answerAll();
    expectOneVersion(list, rows, 3, 9);
  });

  it("the same total with rows shifted (one gone at the top, one new below the seam): the seam row tells", async () => {
    const rows = tens(20);
    const m = manual(rows);
    const list = new PagedList(3, m.source, 1);
    for (const [start, end] of [[0, 6], [6, 9], [9, 12]]) {
      list.show(start, end);
      await m.answerAll();
    }
    rows.shift();
    rows.splice(rows.indexOf(60) + 1, 0, 65);
    list.show(3, 9);
    await m.answerAll();
    expectOneVersion(list, rows, 3, 9);
  });

  it("a margin page of an older version is dropped, without a refresh, and fetched again when in view", async () => {
    const rows = tens(20);
    const m = manual(rows);
    const list = new PagedList(3, m.source, 1);
    list.show(3, 6);
    await m.answerAll();
    list.show(6, 9);
    await m.answerAll();
    // Page 2 in view, page 1 in the margin; a request arrives; page 3 comes into view alone.
    rows.unshift(-10);
    list.show(9, 12);
    await m.answerAll();
    expect(m.asked.length).toBe(3);
    expect(list.held).toBe(1);
    expectOneVersion(list, rows, 9, 12);

    list.show(6, 12);
    await m.answerAll();
    expect(m.asked.length).toBe(4);
    expectOneVersion(list, rows, 6, 12);
  });

  it("pages of a newer version landing together cost one refresh; a refresh in flight takes them in", async () => {
    const rows = tens(30);
    const m = manual(rows);
    const list = new PagedList(3, m.source, 1);
    list.show(3, 9);
    await m.answerAll();
    rows.unshift(-10);
    list.show(0, 12);
    await m.answerAll();
    expectOneVersion(list, rows, 0, 12);
    expect(m.asked.slice(2).map((a) => [a.offset, a.limit])).toEqual([[0, 3], [8, 4], [0, 12]]);

    // An owner's refresh is on its way when a page of a newer version lands: no second refresh.
    const refreshed = list.refresh(0, 12);
    rows.unshift(-20);
    list.show(0, 15);
    m.answer(m.asked.length - 1);
    await flush();
    expect(list.row(12)).toBeUndefined();
    m.answer(m.asked.length - 2);
    expect(await refreshed).toBe("done");
    list.show(0, 15);
    await m.answerAll();
    expectOneVersion(list, rows, 0, 15);
    expect(m.asked.length).toBe(8);
  });
});
