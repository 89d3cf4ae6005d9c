import { render } from "@testing-library/svelte";
import { createRawSnippet } from "svelte";
import { describe, expect, it } from "vitest";
import VirtualList from "./VirtualList.svelte";

const row = createRawSnippet((i: () => number) => ({
  render: () => `<span class="r">row ${i()}</span>`,
}));

describe("VirtualList", () => {
  it("renders only a window of 10,000 rows", () => {
    const { container } = render(VirtualList, { count: 10_000, rowHeight: 40, row, fallbackHeight: 600 });
    const rows = container.querySelectorAll(".r");
    // 600 px / 40 px = 15 visible, plus overscan below; nowhere near 10,000.
    expect(rows.length).toBeGreaterThan(10);
    expect(rows.length).toBeLessThan(40);
    expect(rows[0].textContent).toBe("row 0");
    const spacer = container.querySelector(".spacer") as HTMLElement;
    expect(spacer.style.height).toBe(`${10_000 * 40}px`);
  });

  it("moves the window when scrolled", async () => {
    const { container } = render(VirtualList, { count: 10_000, rowHeight: 40, row, fallbackHeight: 600 });
    const vp = container.querySelector(".viewport") as HTMLElement;
    vp.scrollTop = 200_000;
    vp.dispatchEvent(new Event("scroll"));
    await Promise.resolve();
    await new Promise((r) => setTimeout(r, 0));
    const texts = Array.from(container.querySelectorAll(".r")).map((e) => e.textContent);
    expect(texts).toContain("row 5000");
    expect(texts).not.toContain("row 0");
    expect(texts.length).toBeLessThan(40);
  });
});
