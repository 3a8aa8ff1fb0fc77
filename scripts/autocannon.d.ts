// The part of autocannon's API that scripts/bench-serve.ts uses (the package ships no types).
declare module "autocannon" {
  interface Histogram { average: number; p50: number; p99: number; max: number }
  interface Options {
    url: string;
    connections?: number;
    duration?: number;
    /** Seconds before a request counts as an error. */
    timeout?: number;
    requests?: { method?: "GET" | "POST" | "DELETE"; path?: string; headers?: Record<string, string>; body?: string }[];
  }
  interface Result { requests: Histogram & { total: number }; latency: Histogram; errors: number; non2xx: number }
  function autocannon(options: Options): Promise<Result>;
  export default autocannon;
}
