// The part of autocannon's API the bench uses (the package ships no types). Invariant: declarations only.
declare module "autocannon" {
  namespace autocannon {
    interface Request {
      method?: string;
      path?: string;
      body?: string;
      headers?: Record<string, string>;
      setupRequest?: (request: Request, context: Record<string, unknown>) => Request;
      onResponse?: (status: number, body: string, context: Record<string, unknown>) => void;
    }
    interface Options {
      url: string;
      connections?: number;
      duration?: number;
      pipelining?: number;
      headers?: Record<string, string>;
      requests?: Request[];
      /** Requests a second over all connections (latencies corrected for coordinated omission). */
      overallRate?: number;
    }
    interface Result {
      requests: { average: number; total: number };
      latency: { p50: number; p99: number; p99_9: number; average: number };
      statusCodeStats?: Record<string, { count: number | string }>;
      non2xx: number;
      errors: number;
      timeouts: number;
    }
  }
  function autocannon(options: autocannon.Options): Promise<autocannon.Result>;
  export = autocannon;
}
