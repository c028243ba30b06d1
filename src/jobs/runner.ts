// Runs the background jobs (rotation scheduler, webhook sender, purge) on an interval, one pass at a time, inside
// `serve` or on their own in `cardvault worker`. A failing pass is logged and retried on the next tick;
// stop() waits for the pass in hand to finish, then lets each job release what it holds.
import type { Logger } from "pino";

export interface Job {
  name: string;
  /** One pass. A job may leave work running after it (the webhook sender's attempts): stop() waits for it. */
  runOnce(): Promise<number>;
  stop?(): Promise<void>;
}

export function startJobs(jobs: Job[], logger: Logger, intervalMs = 1000) {
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> = Promise.resolve();
  let stopped = false;

  async function pass() {
    for (const job of jobs) {
      if (stopped) return;
      try {
        const done = await job.runOnce();
        if (done > 0) logger.info({ job: job.name, done }, "job pass");
      } catch (error) {
        logger.error({ job: job.name, err: error }, "job pass failed");
      }
    }
  }

  function schedule() {
    timer = setTimeout(() => {
      running = pass().finally(() => {
        if (!stopped) schedule();
      });
    }, intervalMs);
  }
  schedule();

  return {
    async stop(): Promise<void> {
      stopped = true;
      clearTimeout(timer);
      await running;
      for (const job of jobs) await job.stop?.();
    },
  };
}
