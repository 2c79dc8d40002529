// @edge/proxy-wasm-sdk: proxy-wasm ABI 0.2.1 plugins for the edge gateway in
// AssemblyScript 0.28, standard library only. Same concepts and names as the Rust SDK.
export * from "./types";
export * from "./context";
export * from "./json";
export * from "./bytes";
// free functions over the raw ABI: import * as hostcalls from "@edge/proxy-wasm-sdk/assembly/hostcalls"
