/**
 * The collector token, read from its file (a projected service-account token the kubelet
 * rotates, or a static one). Read again only when the file changed: its identity, size or times
 * (the kubelet swaps a symlink, an editor rewrites in place), or after the collector turned the
 * token down. One stat per request instead of open, fstat, read and close.
 */
import { promises as fsp } from 'node:fs';

export class TokenFile {
  private cached: { key: string; token: string } | null = null;
  /** Times the file was read (tests read it). */
  reads = 0;

  constructor(readonly path: string) {}

  async token(): Promise<string> {
    const st = await fsp.stat(this.path, { bigint: true });
    const key = `${st.dev}:${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`;
    if (this.cached?.key === key) return this.cached.token;
    this.reads += 1;
    const token = (await fsp.readFile(this.path, 'utf8')).trim();
    // Changed between the stat and the read: the next stat differs, and reads it again.
    this.cached = { key, token };
    return token;
  }

  /** The collector refused the token: read the file again next time, changed or not. */
  forget(): void {
    this.cached = null;
  }
}
