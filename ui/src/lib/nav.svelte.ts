/** Which screen is shown and which request is open; `open-request` from Rust drives it too. */
export type Screen = "inbox" | "history" | "eps" | "key";

class Nav {
  screen = $state<Screen>("inbox");
  /** The request whose detail is shown next to the inbox. */
  openId = $state<string | null>(null);
  /** The keyboard cursor in the inbox list; Enter opens it. */
  cursorId = $state<string | null>(null);
  /** Bumped on every explicit open so the detail pane takes focus even when reopening the same id. */
  focusTick = $state(0);

  openRequest(id: string): void {
    this.screen = "inbox";
    this.cursorId = id;
    this.openId = id;
    this.focusTick += 1;
  }
}

export const nav = new Nav();
