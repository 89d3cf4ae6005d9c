import { fireEvent, render, waitFor } from "@testing-library/svelte";
import { mockIPC } from "@tauri-apps/api/mocks";
import { beforeEach, describe, expect, it } from "vitest";
import type { RequestRef } from "../bindings/RequestRef";
import type { RequestSummary } from "../bindings/RequestSummary";
import { inbox } from "../lib/inbox.svelte";
import { nav } from "../lib/nav.svelte";
import { nowSeconds } from "../lib/urgency";
import { detail, summary } from "../test/fixtures";
import Inbox from "./Inbox.svelte";

/** Rust's side: `list` is the inbox in Rust's order (most urgent first); pages of it are served. */
function serve(list: RequestSummary[], opened: RequestRef[] = []): string[] {
  const calls: string[] = [];
  mockIPC((cmd, payload) => {
    calls.push(cmd);
    if (cmd === "list_requests") {
      const { offset, limit } = payload as { offset: number; limit: number };
      return {
        rows: list.slice(offset, offset + limit),
        offset,
        total: list.length,
        pending: list.filter((r) => r.state === "pending").length,
        nextExpiry: list.length ? Math.min(...list.map((r) => r.exp)) : null,
      };
    }
    if (cmd === "get_request") {
      const { ep, id } = payload as RequestRef;
      opened.push({ ep, id });
      const found = list.find((r) => r.ep === ep && r.id === id);
      if (!found) throw { code: "not_found", message: `no request ${id} at ${ep}` };
      return detail(found);
    }
    return null;
  });
  return calls;
}

function rowIds(container: HTMLElement): string[] {
  return Array.from(container.querySelectorAll("[data-testid=inbox-row]")).map((e) => e.getAttribute("data-id") ?? "");
}

describe("Inbox", () => {
  beforeEach(() => {
    nav.open = null;
    nav.cursor = null;
  });

  it("opens a request with its enforcement point when another one reuses its id", async () => {
    const now = nowSeconds();
    const opened: RequestRef[] = [];
    serve(
      [
        summary({ ep: "ep-genuine", epName: "Payments", id: "same", tier: "high", purposeCode: "genuine", exp: now + 100 }),
        summary({ ep: "ep-reuser", epName: "Other", id: "same", tier: "high", purposeCode: "reused", exp: now + 200 }),
      ],
      opened,
    );
    await inbox.refresh();
    const { container } = render(Inbox);
    await waitFor(() => expect(rowIds(container)).toEqual(["same", "same"]));
    const rows = Array.from(container.querySelectorAll<HTMLElement>("[data-testid=inbox-row]"));
    expect(rows.map((r) => r.dataset.ep)).toEqual(["ep-genuine", "ep-reuser"]);

    await fireEvent.click(rows[1]);
    await waitFor(() => expect(container.querySelector("[data-testid=request-detail] h2")?.textContent).toBe("reused"));
    expect(opened.at(-1)).toEqual({ ep: "ep-reuser", id: "same" });
    const pane = container.querySelector("[data-testid=request-detail]") as HTMLElement;
    expect(pane.dataset.ep).toBe("ep-reuser");
    // Only the row of that enforcement point is marked open, not every row with that id.
    await waitFor(() => expect(rows.map((r) => r.classList.contains("open"))).toEqual([false, true]));

    // The keyboard path too: k moves to the first row, Enter opens it with its own EP.
    window.dispatchEvent(new KeyboardEvent("keydown", { key: "k" }));
    window.dispatchEvent(new KeyboardEvent("keydown", { key: "Enter" }));
    await waitFor(() => expect(container.querySelector("[data-testid=request-detail] h2")?.textContent).toBe("genuine"));
    expect(opened.at(-1)).toEqual({ ep: "ep-genuine", id: "same" });
  });

  it("shows rows in Rust's order and greys one whose time ran out until the refresh takes it away", async () => {
    const now = nowSeconds();
    const list = [
      summary({ id: "crit-soon", tier: "critical", exp: now + 100 }),
      summary({ id: "high", tier: "high", exp: now + 50 }),
      summary({ id: "gone", tier: "medium", exp: now - 1 }),
      summary({ id: "low-soon", tier: "low", exp: now + 30 }),
    ];
    const calls = serve(list);
    await inbox.refresh();
    const { container } = render(Inbox);
    await waitFor(() => expect(rowIds(container)).toEqual(["crit-soon", "high", "gone", "low-soon"]));
    const first = container.querySelector("[data-testid=inbox-row]") as HTMLElement;
    expect(first.dataset.tier).toBe("critical");
    const gone = container.querySelector("[data-id=gone]") as HTMLElement;
    expect(gone.classList.contains("expired")).toBe(true);
    expect(first.classList.contains("expired")).toBe(false);
    expect(container.textContent).toContain("4 waiting");
    // The soonest expiry has passed, so the inbox asks Rust again (App does so when the clock reaches
    // `nextExpiry`); Rust's inbox no longer holds the expired request, and the row leaves.
    expect(inbox.nextExpiry).toBe(now - 1);
    list.splice(2, 1);
    const asked = calls.filter((c) => c === "list_requests").length;
    await inbox.refresh();
    expect(calls.filter((c) => c === "list_requests").length).toBeGreaterThan(asked);
    await waitFor(() => expect(rowIds(container)).toEqual(["crit-soon", "high", "low-soon"]));
    expect(container.querySelector("[data-id=gone]")).toBeNull();
    expect(container.textContent).toContain("3 waiting");
  });

  it("renders markup in request strings as literal text", async () => {
    const img = "<img src=x onerror=alert(1)>";
    const script = "<script>alert(2)</script>";
    serve([summary({ id: "evil", agent: img, purposeStatement: script, epName: "<b>ep</b>" })]);
    await inbox.refresh();
    const { container } = render(Inbox);
    await waitFor(() => expect(rowIds(container)).toEqual(["evil"]));
    const row = container.querySelector("[data-testid=inbox-row]") as HTMLElement;
    expect(row.textContent).toContain(img);
    expect(row.textContent).toContain(script);
    expect(container.querySelector("img")).toBeNull();
    expect(container.querySelector("script")).toBeNull();
    expect(container.querySelector("b")).toBeNull();
  });

  it("shows bidi controls as markers, never raw", async () => {
    serve([summary({ id: "bidi", agent: "admin\u202Etxt.exe", warningCount: 1 })]);
    await inbox.refresh();
    const { container } = render(Inbox);
    await waitFor(() => expect(rowIds(container)).toEqual(["bidi"]));
    expect(container.textContent).toContain("⟦U+202E⟧");
    expect(container.textContent).not.toContain("\u202E");
  });

  it("moves with j/k and opens with Enter", async () => {
    const now = nowSeconds();
    const calls = serve([
      summary({ id: "a", tier: "critical", exp: now + 100 }),
      summary({ id: "b", tier: "high", exp: now + 100 }),
    ]);
    await inbox.refresh();
    const { container } = render(Inbox);
    await waitFor(() => expect(rowIds(container)).toEqual(["a", "b"]));
    window.dispatchEvent(new KeyboardEvent("keydown", { key: "j" }));
    window.dispatchEvent(new KeyboardEvent("keydown", { key: "Enter" }));
    await waitFor(() => expect(container.querySelector("[data-testid=request-detail]")?.getAttribute("data-id")).toBe("b"));
    expect(calls).toContain("get_request");
    await waitFor(() => expect(container.querySelector("[data-testid=action-args]")?.textContent).toContain("12.00"));
  });

  it("keeps 10,000 pending requests to a window of rows, fetching only the pages in view", async () => {
    const now = nowSeconds();
    const many = Array.from({ length: 10_000 }, (_, i) => summary({ id: `r${i}`, exp: now + 60 + i }));
    const calls = serve(many);
    await inbox.refresh();
    const { container } = render(Inbox);
    await waitFor(() => expect(rowIds(container).length).toBeGreaterThan(0));
    expect(rowIds(container).length).toBeLessThan(40);
    expect(rowIds(container)[0]).toBe("r0");
    expect(container.textContent).toContain("10000 waiting");
    expect(calls.filter((c) => c === "list_requests").length).toBeLessThanOrEqual(2);
  });

  it("drops pages scrolled far out of view and fetches them again on the way back", async () => {
    const now = nowSeconds();
    const many = Array.from({ length: 10_000 }, (_, i) => summary({ id: `r${i}`, exp: now + 60 + i }));
    const offsets: number[] = [];
    mockIPC((cmd, payload) => {
      if (cmd !== "list_requests") return null;
      const { offset, limit } = payload as { offset: number; limit: number };
      offsets.push(offset);
      return { rows: many.slice(offset, offset + limit), offset, total: many.length, pending: many.length, nextExpiry: now + 60 };
    });
    await inbox.refresh();
    const { container } = render(Inbox);
    await waitFor(() => expect(rowIds(container)[0]).toBe("r0"));
    const viewport = container.querySelector(".viewport") as HTMLElement;
    const scrollTo = async (row: number) => {
      viewport.scrollTop = row * 62;
      viewport.dispatchEvent(new Event("scroll"));
      await waitFor(() => expect(rowIds(container)).toContain(`r${row}`));
    };

    await scrollTo(5_000);
    expect(inbox.row(0)).toBeUndefined();
    expect(inbox.heldPages).toBeLessThanOrEqual(3);
    const asked = offsets.length;
    await scrollTo(0);
    expect(offsets.slice(asked)).toContain(0);
    expect(inbox.row(0)?.id).toBe("r0");
    expect(inbox.row(5_000)).toBeUndefined();
  });

  it("shows each request once, none skipped, across a page seam when a request arrived while a page was away", async () => {
    const now = nowSeconds();
    const many = Array.from({ length: 1_000 }, (_, i) => summary({ id: `r${i}`, exp: now + 600 + i }));
    serve(many);
    await inbox.refresh();
    const { container } = render(Inbox);
    await waitFor(() => expect(rowIds(container)).toContain("r0"));
    const viewport = container.querySelector(".viewport") as HTMLElement;
    const scrollTo = (row: number) => {
      viewport.scrollTop = row * 62;
      viewport.dispatchEvent(new Event("scroll"));
    };
    scrollTo(250);
    await waitFor(() => expect(rowIds(container)).toContain("r250"));

    // A request arrives at the top before the inbox hears of it; back up across the seam of pages 1 and 2:
    // page 1 comes from the longer inbox, page 2 was held from the shorter one.
    many.unshift(summary({ id: "new", tier: "critical", exp: now + 60 }));
    scrollTo(195);
    await waitFor(() => {
      const ids = rowIds(container);
      const first = many.findIndex((r) => r.id === ids[0]);
      expect(ids.length).toBeGreaterThan(10);
      expect(ids).toEqual(many.slice(first, first + ids.length).map((r) => r.id));
      expect(ids).toContain("r199");
    });
  });
});
