import { fireEvent, render, screen } from "@testing-library/svelte";
import { mockIPC } from "@tauri-apps/api/mocks";
import { describe, expect, it } from "vitest";
import type { DecideArgs } from "../bindings/DecideArgs";
import { detail, summary } from "../test/fixtures";
import DecidePanel from "./DecidePanel.svelte";

function serveDecide(result: unknown = { outcome: "accepted", message: "" }, reject = false) {
  const sent: DecideArgs[] = [];
  mockIPC((cmd, payload) => {
    if (cmd === "decide") {
      sent.push((payload as { args: DecideArgs }).args);
      if (reject) throw result;
      return result;
    }
    return null;
  });
  return sent;
}

const tick = () => new Promise((r) => setTimeout(r, 0));

describe("DecidePanel", () => {
  it("sends the request's enforcement point with its id (an id alone may be another EP's too)", async () => {
    const sent = serveDecide({ outcome: "accepted", message: "" });
    render(DecidePanel, { detail: detail(summary({ ep: "ep-reuser", id: "same", tier: "low" })) });
    await fireEvent.click(screen.getByTestId("deny-button"));
    await fireEvent.input(screen.getByTestId("reason-input"), { target: { value: "unknown EP" } });
    await fireEvent.click(screen.getByTestId("confirm-button"));
    await tick();
    await tick();
    expect(sent).toHaveLength(1);
    expect(sent[0]).toMatchObject({ ep: "ep-reuser", id: "same", verdict: "deny", reason: "unknown EP" });
  });

  it("refuses to send a deny without a reason and says why", async () => {
    const sent = serveDecide();
    render(DecidePanel, { detail: detail(summary()) });
    await fireEvent.click(screen.getByTestId("deny-button"));
    await fireEvent.click(screen.getByTestId("confirm-button"));
    await tick();
    expect(sent).toEqual([]);
    expect(screen.getByTestId("decision-error").textContent).toContain("reason is required to deny");
  });

  it("denies with a reason in one confirm and shows the result", async () => {
    const sent = serveDecide({ outcome: "queued", message: "queued" });
    render(DecidePanel, { detail: detail(summary({ tier: "critical" })) });
    window.dispatchEvent(new KeyboardEvent("keydown", { key: "d" }));
    await tick();
    await fireEvent.input(screen.getByTestId("reason-input"), { target: { value: "not expected" } });
    window.dispatchEvent(new KeyboardEvent("keydown", { key: "Enter", ctrlKey: true }));
    await tick();
    await tick();
    expect(sent).toHaveLength(1);
    expect(sent[0]).toMatchObject({
      ep: "ep-1",
      id: "req-1",
      verdict: "deny",
      reason: "not expected",
      ttlS: null,
      bindingCode: null,
    });
    expect(screen.getByTestId("decision-result").textContent).toContain("waiting to deliver");
  });

  it("approves a low-tier request with one confirm", async () => {
    const sent = serveDecide();
    render(DecidePanel, { detail: detail(summary({ tier: "low" })) });
    await fireEvent.click(screen.getByTestId("approve-button"));
    await fireEvent.input(screen.getByTestId("ttl-input"), { target: { value: "120" } });
    await fireEvent.click(screen.getByTestId("confirm-button"));
    await tick();
    expect(sent).toHaveLength(1);
    expect(sent[0]).toMatchObject({ verdict: "approve", ttlS: 120, maxUses: null });
    expect(screen.getByTestId("decision-result").textContent).toContain("delivered");
  });

  for (const tier of ["high", "critical"] as const) {
    it(`requires a second explicit confirm to approve a ${tier} request`, async () => {
      const sent = serveDecide();
      render(DecidePanel, { detail: detail(summary({ tier })) });
      window.dispatchEvent(new KeyboardEvent("keydown", { key: "a" }));
      await tick();
      await fireEvent.input(screen.getByTestId("reason-input"), { target: { value: "ok" } });
      window.dispatchEvent(new KeyboardEvent("keydown", { key: "Enter", ctrlKey: true }));
      await tick();
      expect(sent).toEqual([]);
      expect(screen.getByTestId("confirm-button").textContent).toContain("Yes, approve");
      await fireEvent.click(screen.getByTestId("confirm-button"));
      await tick();
      expect(sent).toHaveLength(1);
    });
  }

  it("requires a reason to approve when the policy says so", async () => {
    const sent = serveDecide();
    render(DecidePanel, { detail: detail(summary({ tier: "low" }), { reasonRequiredToApprove: true }) });
    await fireEvent.click(screen.getByTestId("approve-button"));
    await fireEvent.click(screen.getByTestId("confirm-button"));
    await tick();
    expect(sent).toEqual([]);
    expect(screen.getByTestId("decision-error").textContent).toContain("requires a reason");
  });

  it("requires and sends the binding code", async () => {
    const sent = serveDecide();
    render(DecidePanel, { detail: detail(summary({ tier: "critical", bindingRequired: true })) });
    await fireEvent.click(screen.getByTestId("approve-button"));
    await fireEvent.input(screen.getByTestId("reason-input"), { target: { value: "verified by phone" } });
    await fireEvent.click(screen.getByTestId("confirm-button"));
    await tick();
    expect(screen.getByTestId("decision-error").textContent).toContain("binding code");
    await fireEvent.input(screen.getByTestId("binding-code-input"), { target: { value: " 4711 " } });
    await fireEvent.click(screen.getByTestId("confirm-button"));
    await fireEvent.click(screen.getByTestId("confirm-button"));
    await tick();
    expect(sent).toHaveLength(1);
    expect(sent[0].bindingCode).toBe("4711");
  });

  it("shows the IpcError message when Rust refuses", async () => {
    serveDecide({ code: "refused", message: "request already decided" }, true);
    render(DecidePanel, { detail: detail(summary({ tier: "low" })) });
    await fireEvent.click(screen.getByTestId("approve-button"));
    await fireEvent.click(screen.getByTestId("confirm-button"));
    await tick();
    await tick();
    expect(screen.getByTestId("decision-error").textContent).toContain("request already decided");
    expect(screen.queryByTestId("decision-result")).toBeNull();
  });

  it("disables the buttons while the call is in flight", async () => {
    let release: (v: unknown) => void = () => {};
    mockIPC((cmd) => (cmd === "decide" ? new Promise((r) => (release = r)) : null));
    render(DecidePanel, { detail: detail(summary({ tier: "low" })) });
    await fireEvent.click(screen.getByTestId("approve-button"));
    await fireEvent.click(screen.getByTestId("confirm-button"));
    expect((screen.getByTestId("confirm-button") as HTMLButtonElement).disabled).toBe(true);
    expect((screen.getByTestId("approve-button") as HTMLButtonElement).disabled).toBe(true);
    release({ outcome: "accepted", message: "" });
    await tick();
    await tick();
    expect(screen.getByTestId("decision-result")).toBeTruthy();
  });

  it("says so when the enforcement point refused a delivered decision, never plain 'delivered'", async () => {
    serveDecide({ outcome: "refused", message: "The enforcement point refused the decision (409)." });
    render(DecidePanel, { detail: detail(summary({ id: "req-1", tier: "low" })) });
    await fireEvent.click(screen.getByTestId("deny-button"));
    await fireEvent.input(screen.getByTestId("reason-input"), { target: { value: "no" } });
    await fireEvent.click(screen.getByTestId("confirm-button"));
    const box = await screen.findByTestId("decision-result");
    expect(box.textContent).toContain("the enforcement point refused it");
    expect(box.classList.contains("refused")).toBe(true);
    expect(box.classList.contains("delivered")).toBe(false);
  });
});
