import { render, waitFor } from "@testing-library/svelte";
import { mockIPC } from "@tauri-apps/api/mocks";
import { describe, expect, it } from "vitest";
import type { HistoryRow } from "../bindings/HistoryRow";
import History from "./History.svelte";

const TOTAL = 100_000;

function row(seq: number): HistoryRow {
  return { seq, at: 1_700_000_000 - seq, kind: "decision", ep: "ep-1", requestId: `r${seq}`, workload: "spiffe://w",
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
});
