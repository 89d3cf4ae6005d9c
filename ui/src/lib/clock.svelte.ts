/** One shared one-second tick for every countdown, instead of a timer per row. */
import { nowSeconds } from "./urgency";

class Clock {
  now = $state(nowSeconds());
  #timer: ReturnType<typeof setInterval> | null = null;
  #users = 0;

  /** Starts ticking while at least one user holds it; returns the release function. */
  hold(): () => void {
    this.#users += 1;
    if (this.#timer === null) {
      this.now = nowSeconds();
      this.#timer = setInterval(() => (this.now = nowSeconds()), 1000);
    }
    return () => {
      this.#users -= 1;
      if (this.#users === 0 && this.#timer !== null) {
        clearInterval(this.#timer);
        this.#timer = null;
      }
    };
  }
}

export const clock = new Clock();
