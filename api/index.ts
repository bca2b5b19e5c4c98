// Public surface of the API module: schemas, inferred types, the kind registry, CRD
// generation and validation. Everything here is pure (no I/O).
export * from "./common.js";
export * from "./auth.js";
export * from "./toolconfig.js";
export * from "./compositetool.js";
export * from "./vmcpconfig.js";
export * from "./virtualmcpserver.js";
export * from "./mcpgroup.js";
export * from "./workloads.js";
export * from "./externalauth.js";
export * from "./oidcconfig.js";
export * from "./authzconfig.js";
export * from "./telemetryconfig.js";
export * from "./embeddingserver.js";
export * from "./kinds.js";
export * from "./crd.js";
export * from "./gotemplate.js";
export * from "./validate.js";
