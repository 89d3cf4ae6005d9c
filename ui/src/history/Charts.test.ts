import { render } from "@testing-library/svelte";
import { describe, expect, it } from "vitest";
import Charts from "./Charts.svelte";

const stats = (perDay: Array<{ day: string; approved: number; denied: number; expired: number }>) => ({
  perDay,
  byClass: [],
  decisionSecondsP50: null,
  decisionSecondsP90: null,
  decisions: 0,
});

describe("Charts", () => {
  it("draws decisions per day on a calendar of at least 14 days, empty days included", () => {
    const { container } = render(Charts, {
      stats: stats([
        { day: "2026-11-20", approved: 2, denied: 1, expired: 0 },
        { day: "2026-11-26", approved: 1, denied: 0, expired: 1 },
      ]),
    });
    const days = [...container.querySelectorAll("svg[aria-label='Decisions per day'] g title")].map((t) =>
      t.textContent?.slice(0, 10),
    );
    expect(days).toHaveLength(14);
    expect(days[0]).toBe("2026-11-13");
    expect(days[13]).toBe("2026-11-26");
    expect(container.textContent).toContain("busiest day: 3");
  });

  it("keeps at most the last 30 days", () => {
    const { container } = render(Charts, {
      stats: stats([
        { day: "2026-01-01", approved: 1, denied: 0, expired: 0 },
        { day: "2026-03-01", approved: 1, denied: 0, expired: 0 },
      ]),
    });
    expect(container.querySelectorAll("svg[aria-label='Decisions per day'] g")).toHaveLength(30);
  });
});
