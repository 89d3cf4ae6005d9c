import { fireEvent, render, waitFor } from "@testing-library/svelte";
import { mockIPC } from "@tauri-apps/api/mocks";
import { describe, expect, it } from "vitest";
import type { HistoryFilter } from "../bindings/HistoryFilter";
import type { HistoryRow } from "../bindings/HistoryRow";
import History from "./History.svelte";

const TOTAL = 100_000;

function row(seq: number): HistoryRow {
  return { seq, at: 1_700_000_000 - seq, kind: "decision signed", ep: "ep-1", requestId: `r${seq}`, workload: "spiffe://w",
    tier: "high", dataClass: "internal", verdict: seq % 2 ? "approve" : "deny", summary: `<script>row ${seq}</script>` };
}

describe("History", () => {
  it("pages 100,000 rows in lazily and renders only a window", async () => {
    const asked: Array<{ offset: number; limit: number }> = [];
    mockIPC((cmd, payload) => {
      const p = payload as { offset: number; limit: number };
      if (cmd === "history_page") {
        asked.push({ offset: p.offset, limit: p.limit });
        return { rows: Array.from({ length: p.limit }, (_, i) => row(TOTAL - p.offset - i)), total: TOTAL };
      }
      if (cmd === "history_stats") {
        return { perDay: [{ day: "2026-01-01", approved: 3, denied: 1, expired: 0 }], byClass: [{ dataClass: "internal", count: 4 }],
          decisionSecondsP50: 42, decisionSecondsP90: 300, decisions: 4 };
      }
      if (cmd === "list_eps") return [];
      return null;
    });
    const { container } = render(History);
    await waitFor(() => expect(container.querySelectorAll("[data-testid=history-row]").length).toBeGreaterThan(0));
    const rows = container.querySelectorAll("[data-testid=history-row]");
    expect(rows.length).toBeLessThan(50);
    expect(rows[0].textContent).toContain("<script>row 100000</script>");
    expect(container.querySelector("script")).toBeNull();
    expect(asked.every((a) => a.limit <= 200)).toBe(true);
    expect(asked.length).toBeLessThan(3);
    expect(container.textContent).toContain("42 s");
  });

  it("asks Rust for the requests that expired when the outcome filter says expired", async () => {
    const asked: HistoryFilter[] = [];
    mockIPC((cmd, payload) => {
      const p = payload as { filter: HistoryFilter; limit: number };
      if (cmd === "history_page") {
        asked.push(p.filter);
        return p.filter.outcome === "expired" ? { rows: [row(7)], total: 1 } : { rows: [], total: 0 };
      }
      if (cmd === "history_stats") {
        return { perDay: [], byClass: [], decisionSecondsP50: null, decisionSecondsP90: null, decisions: 0 };
      }
      if (cmd === "list_eps") return [];
      return null;
    });
    const { container } = render(History);
    await waitFor(() => expect(asked.length).toBe(1));
    expect(asked[0].outcome).toBeNull();
    const select = container.querySelector("[data-testid=filter-outcome]") as HTMLSelectElement;
    expect(Array.from(select.options).map((o) => o.value)).toEqual(["", "approve", "deny", "expired", "withdrawn"]);
    await fireEvent.change(select, { target: { value: "expired" } });
    await waitFor(() => expect(container.querySelectorAll("[data-testid=history-row]").length).toBe(1));
    expect(asked[asked.length - 1].outcome).toBe("expired");
  });
});
