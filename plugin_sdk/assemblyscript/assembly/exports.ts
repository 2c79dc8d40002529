// Re-export this from a plugin's entry file so the host finds the callbacks (all of
// them; see exports_base.ts to export only the ones a plugin implements).
export * from "./exports_base";
export {
  proxy_on_tick,
  proxy_on_queue_ready,
  proxy_on_request_headers,
  proxy_on_request_body,
  proxy_on_request_trailers,
  proxy_on_response_headers,
  proxy_on_response_body,
  proxy_on_response_trailers,
  proxy_on_http_call_response,
  proxy_on_log,
  proxy_on_done,
} from "./runtime";
