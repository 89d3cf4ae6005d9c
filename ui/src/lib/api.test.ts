import { emit } from "@tauri-apps/api/event";
import { clearMocks, mockIPC } from "@tauri-apps/api/mocks";
import { afterEach, describe, expect, it } from "vitest";
import type { RequestRef } from "../bindings/RequestRef";
import { getRequest, onOpenRequest } from "./api";

describe("requests are addressed by enforcement point and id", () => {
  afterEach(() => clearMocks());

  it("asks Rust for a request with its enforcement point", async () => {
    const asked: unknown[] = [];
    mockIPC((cmd, payload) => {
      if (cmd === "get_request") asked.push(payload);
      return null;
    });
    await getRequest({ ep: "ep-reuser", id: "same" });
    expect(asked).toEqual([{ ep: "ep-reuser", id: "same" }]);
  });

  it("opens the request a notification names, with its enforcement point; anything else is ignored", async () => {
    mockIPC(() => null, { shouldMockEvents: true });
    const opened: RequestRef[] = [];
    const stop = await onOpenRequest((r) => opened.push(r));
    await emit("open-request", { ep: "ep-genuine", id: "same" });
    await emit("open-request", "same");
    await emit("open-request", { id: "same" });
    await emit("open-request", { ep: 1, id: "same" });
    expect(opened).toEqual([{ ep: "ep-genuine", id: "same" }]);
    stop();
  });
});
