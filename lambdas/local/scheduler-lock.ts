// One scheduler per data dir. `skiff up` keeps its scheduler's reservation records in memory
// (scheduler/reservation.ts, MemoryReservations): a store write per scheduled pod less, which was a
// fifth of the CPU of scheduling 10,000 pods (bench:vs-kube). That is only safe while no other
// scheduler places pods on the same store, and the SQLite store may be opened by a second process.
// So the scheduler schedules only while its process holds this lock, as kube-scheduler schedules only
// while it is the leader; a second `skiff up` on the same data dir waits as a standby and takes over
// when the first one exits.
//
// The lock is SQLite's own on a small file beside the store: a connection in exclusive locking mode
// keeps the file's lock from its first transaction until it is closed, and the operating system drops
// it when the process dies, however it dies. There is no lease to expire, so a crashed holder's
// successor does not wait (kube-scheduler's waits out the lease, 15 s).

import type Database from 'better-sqlite3';
import { createRequire } from 'node:module';

const loadDatabase = (): typeof Database => createRequire(import.meta.url)('better-sqlite3');

/** How often a standby tries the lock again (each try opens the file). */
const RETRY_MS = 1000;

export class SchedulerLock {
  private db: Database.Database | undefined;
  private triedAt = -Infinity;

  constructor(private readonly path: string) {}

  /** True while this process holds the lock; when it does not, tries to take it (at most once a second). */
  held(): boolean {
    if (this.db) return true;
    const now = performance.now();
    if (now - this.triedAt < RETRY_MS) return false;
    this.triedAt = now;
    const db = new (loadDatabase())(this.path, { timeout: 0 });
    try {
      db.pragma('journal_mode = DELETE');
      db.pragma('locking_mode = EXCLUSIVE');
      // The first write transaction takes the exclusive lock, which this locking mode never gives back.
      db.exec('CREATE TABLE IF NOT EXISTS holder (pid INTEGER); DELETE FROM holder;');
      db.prepare('INSERT INTO holder (pid) VALUES (?)').run(process.pid);
      this.db = db;
      return true;
    } catch (e) {
      db.close();
      if ((e as { code?: string }).code !== 'SQLITE_BUSY') throw e;
      return false;
    }
  }

  release(): void {
    this.db?.close();
    this.db = undefined;
    this.triedAt = -Infinity;
  }
}
