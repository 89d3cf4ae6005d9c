import { describe, expect, it } from "vitest";
import { detail, summary } from "../test/fixtures";
import type { Warning } from "../bindings/Warning";
import { requestWarnings } from "./requestWarnings";

const RLO = "\u202E";

/** Rust's finding of hidden characters at `path`. */
const hidden = (path: string, ...codePoints: number[]): Warning => ({
  path,
  kind: "hidden",
  codePoints,
  scripts: [],
});

describe("requestWarnings", () => {
  it("reports a field Rust flagged once, in Rust's words", () => {
    const d = detail(summary({ purposeStatement: `Send the report${RLO}fdp.exe` }), {
      warnings: [hidden("request.purpose.statement", 0x202e)],
    });
    expect(requestWarnings(d)).toEqual([
      "request.purpose.statement contains hidden or bidirectional control characters: U+202E",
    ]);
  });

  it("matches Rust's paths inside a step's arguments", () => {
    const d = detail(summary(), {
      warnings: [hidden("request.actions[0].args.file", 0x202e)],
    });
    d.actions[0].argsJson = JSON.stringify({ file: `invoice${RLO}txt.exe` }, null, 2);
    expect(requestWarnings(d)).toHaveLength(1);
  });

  it("keeps a look-alike finding when Rust flagged only hidden characters, and ignores decoy paths", () => {
    const d = detail(summary({ environment: "prоd", purposeStatement: `Pay${RLO} now` }), {
      warnings: [hidden("request.target.environment x", 0x200b), hidden("request.purpose.statement", 0x202e)],
    });
    const w = requestWarnings(d);
    expect(w.some((x) => x.startsWith("environment:") && x.includes("Cyrillic"))).toBe(true);
    expect(w.filter((x) => x.includes("U+202E"))).toHaveLength(1);
  });

  it("words each kind of Rust's findings as the CLI does", () => {
    const d = detail(summary(), {
      warnings: [
        hidden("request.purpose.statement", 0x202e, 0x200b),
        { path: "request.actions[0].args", kind: "hiddenKey", codePoints: [], scripts: [] },
        { path: "request.target.system", kind: "mixedScript", codePoints: [], scripts: ["Cyrillic", "Latin"] },
      ],
    });
    expect(requestWarnings(d).slice(0, 3)).toEqual([
      "request.purpose.statement contains hidden or bidirectional control characters: U+202E, U+200B",
      "request.actions[0].args: a key contains invisible or bidirectional control characters",
      "request.target.system mixes Cyrillic and Latin letters (look-alike characters)",
    ]);
  });

  it("still flags what Rust did not, and text that is not from the request", () => {
    const d = detail(summary({ epName: `gate${RLO}way`, environment: "prоd" }));
    const w = requestWarnings(d);
    expect(w).toContain("enforcement point: contains U+202E RIGHT-TO-LEFT OVERRIDE");
    expect(w.some((x) => x.startsWith("environment:") && x.includes("Cyrillic"))).toBe(true);
  });
});
