import { render, waitFor } from "@testing-library/svelte";
import { mockIPC } from "@tauri-apps/api/mocks";
import { beforeEach, describe, expect, it } from "vitest";
import type { RequestSummary } from "../bindings/RequestSummary";
import { inbox } from "../lib/inbox.svelte";
import { nav } from "../lib/nav.svelte";
import { nowSeconds } from "../lib/urgency";
import { detail, summary } from "../test/fixtures";
import Inbox from "./Inbox.svelte";

function serve(list: RequestSummary[]): string[] {
  const calls: string[] = [];
  mockIPC((cmd, payload) => {
    calls.push(cmd);
    if (cmd === "list_requests") return list;
    if (cmd === "get_request") {
      const id = (payload as { id: string }).id;
      return detail(list.find((r) => r.id === id) as RequestSummary);
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
    nav.openId = null;
    nav.cursorId = null;
  });

  it("sorts by tier, then by time left, and drops expired requests", async () => {
    const now = nowSeconds();
    serve([
      summary({ id: "low-soon", tier: "low", exp: now + 30 }),
      summary({ id: "crit-late", tier: "critical", exp: now + 900 }),
      summary({ id: "crit-soon", tier: "critical", exp: now + 100 }),
      summary({ id: "high", tier: "high", exp: now + 50 }),
      summary({ id: "gone", tier: "critical", exp: now - 1 }),
      summary({ id: "medium", tier: "medium", exp: now + 20 }),
    ]);
    await inbox.refresh();
    const { container } = render(Inbox);
    await waitFor(() => expect(rowIds(container)).toHaveLength(5));
    expect(rowIds(container)).toEqual(["crit-soon", "crit-late", "high", "medium", "low-soon"]);
    const first = container.querySelector("[data-testid=inbox-row]") as HTMLElement;
    expect(first.dataset.tier).toBe("critical");
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

  it("keeps 10,000 pending requests to a window of rows", async () => {
    const now = nowSeconds();
    const many = Array.from({ length: 10_000 }, (_, i) =>
      summary({ id: `r${i}`, tier: (["low", "medium", "high", "critical"] as const)[i % 4], exp: now + 60 + i }),
    );
    serve(many);
    await inbox.refresh();
    const t0 = performance.now();
    const { container } = render(Inbox);
    await waitFor(() => expect(rowIds(container).length).toBeGreaterThan(0));
    const elapsed = performance.now() - t0;
    expect(rowIds(container).length).toBeLessThan(40);
    expect(rowIds(container)[0]).toBe("r3");
    expect(elapsed).toBeLessThan(2000);
  });
});
