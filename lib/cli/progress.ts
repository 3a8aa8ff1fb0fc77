// A one-line progress display on stderr for long CLI work: count, rate and time left. Redraws in
// place on a terminal, prints a line every few seconds otherwise (CI logs).

export class Progress {
  private readonly start = performance.now();
  private last = 0;
  /** The first count reported (work resumed from a file), left out of the rate. */
  private first?: number;

  constructor(private readonly label: string, private readonly total: number) {}

  update(done: number, note = ""): void {
    this.first ??= done;
    const now = performance.now();
    const tty = process.stderr.isTTY;
    if (done < this.total && now - this.last < (tty ? 100 : 5000)) return;
    this.last = now;
    const secs = (now - this.start) / 1000;
    const rate = (done - this.first) / Math.max(secs, 1e-9);
    const eta = rate > 0 ? (this.total - done) / rate : 0;
    const width = 24;
    const filled = this.total ? Math.round((width * done) / this.total) : width;
    const line = `${this.label} [${"#".repeat(filled)}${" ".repeat(width - filled)}] ${done}/${this.total} ` +
      `${rate.toFixed(2)}/s, ${fmt(eta)} left ${note}`;
    process.stderr.write(tty ? `\r${line.padEnd(100)}` : `${line}\n`);
    if (done >= this.total && tty) process.stderr.write("\n");
  }
}

function fmt(s: number): string {
  return s >= 3600 ? `${(s / 3600).toFixed(1)} h` : s >= 60 ? `${(s / 60).toFixed(1)} min` : `${s.toFixed(0)} s`;
}
