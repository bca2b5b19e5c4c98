// Public surface of the local control plane used by tests, the demo and `vmcpctl cluster`.
export {
  startControlPlane,
  type ControlPlane,
  type ControlPlaneOptions,
  type ComponentProcess,
} from "./controlplane.js";
export { applyCrds, crdReady, installCrdsFromDir, readCrdFiles, waitForCrds } from "./crds.js";
export { ADMIN_USER, CONTROLLER_USER, type LocalUser } from "./auth.js";
export { FAKE_NODE_NAME } from "./fakenode.js";
export { consoleLogger, silentLogger, type Logger } from "./log.js";
export { isAlive, terminateGroups, type RecordedProcess } from "./processes.js";
export { rssBytes, formatMiB } from "./rss.js";
export { waitFor, waitForHttpOk } from "./readiness.js";
export {
  startProcessKubelet,
  type ProcessKubelet,
  type ProcessKubeletOptions,
  type ProcessPod,
} from "./kubelet.js";
export { vmcpImages } from "./images.js";
export { serviceProxy, type ServiceProxy } from "./serviceproxy.js";
