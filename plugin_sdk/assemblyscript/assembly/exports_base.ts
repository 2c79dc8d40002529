// The callbacks every plugin needs. A plugin that implements only some of the optional
// ones exports this plus those, instead of `exports`:
//   export * from "@edge/proxy-wasm-sdk/assembly/exports_base";
//   export { proxy_on_request_headers } from "@edge/proxy-wasm-sdk/assembly/exports";
// The host skips a phase whose callback a module does not export, which is much cheaper
// than calling a default that does nothing; without proxy_on_response_body the gateway
// also keeps the upstream's response framing. A callback implemented but not exported
// is never called. Without proxy_on_done the host treats a context as done at once (the
// default answer); a plugin that overrides onDone exports it from "exports".
export {
  proxy_abi_version_0_2_1,
  malloc,
  proxy_on_context_create,
  proxy_on_vm_start,
  proxy_on_configure,
  proxy_on_delete,
} from "./runtime";
