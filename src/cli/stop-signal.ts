// The first SIGTERM or SIGINT, as a promise. Long-running commands take it before they open the store, so
// a signal that arrives while they start up still leads to a clean shutdown instead of the default kill.
// Only the first signal is taken: a second one (say, while start-up hangs on an unreachable database) gets
// the default action and ends the process at once.
export function stopSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const stop = (signal: NodeJS.Signals) => {
      process.off("SIGTERM", stop);
      process.off("SIGINT", stop);
      resolve(signal);
    };
    process.on("SIGTERM", stop);
    process.on("SIGINT", stop);
  });
}
