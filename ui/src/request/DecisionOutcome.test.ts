import { render, screen } from "@testing-library/svelte";
import { describe, expect, it } from "vitest";
import DecisionOutcome from "./DecisionOutcome.svelte";

describe("DecisionOutcome", () => {
  it("shows the enforcement point's words as untrusted text: hidden characters are flagged", () => {
    render(DecisionOutcome, {
      props: { verdict: "approve", result: { outcome: "refused", message: "refused \u202Eedoc gnorw" } },
    });
    const box = screen.getByTestId("decision-result");
    expect(box.textContent).toContain("the enforcement point refused it");
    expect(screen.getAllByTestId("hidden-char").length).toBe(1);
  });
});
