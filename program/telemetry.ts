// spec.telemetryConfigRef → the vmcp config's `telemetry` section, normalised as ToolHive's
// operator does (spectoconfig.NormalizeMCPTelemetryConfig), plus what the pod needs: the
// OTEL_RESOURCE_ATTRIBUTES env var, sensitive headers as Secret-backed env vars (never in
// the config), and the collector's CA bundle mounted from its ConfigMap.
import type { MCPTelemetryConfig } from "../api/index.js";
import type { ConfigMapMount } from "./incomingauth.js";
import type { VmcpInputs } from "./inputs.js";
import type { SecretEnv } from "./outgoingauth.js";

const CA_MOUNT_BASE = "/config/certs/otel";
const CA_VOLUME_PREFIX = "otel-ca-bundle-";
const DEFAULT_CA_KEY = "ca.crt";

export interface TelemetryBuild {
  /** The config's telemetry section; undefined when no MCPTelemetryConfig is referenced. */
  config: Record<string, unknown> | undefined;
  env: { name: string; value: string }[];
  secretEnv: SecretEnv[];
  mounts: ConfigMapMount[];
  problems: { condition: "TelemetryConfigRefValidated"; reason: string; message: string }[];
}

/** TOOLHIVE_OTEL_HEADER_<NAME>: ToolHive's env var for a sensitive OTLP header. */
export const otelHeaderEnv = (header: string): string =>
  `TOOLHIVE_OTEL_HEADER_${header.replaceAll("-", "_").toUpperCase()}`;

/** Why ToolHive's MCPTelemetryConfig.Validate would reject the spec, if it would. */
function invalid(cfg: MCPTelemetryConfig): string | undefined {
  const otel = cfg.spec.openTelemetry;
  if (!otel) return undefined;
  if (otel.endpoint && !otel.tracing?.enabled && !otel.metrics?.enabled)
    return "spec.openTelemetry.endpoint requires at least one of tracing or metrics to be enabled";
  for (const [i, h] of (otel.sensitiveHeaders ?? []).entries()) {
    if (!h.secretKeyRef.name || !h.secretKeyRef.key)
      return `spec.openTelemetry.sensitiveHeaders[${i}].secretKeyRef: name and key are required`;
    if (otel.headers && h.name in otel.headers)
      return `header "${h.name}" appears in both headers and sensitiveHeaders`;
  }
  const ca = otel.caBundleRef;
  if (ca && !ca.configMapRef?.name) return "spec.openTelemetry.caBundleRef.configMapRef.name is required";
  return undefined;
}

export function buildTelemetry(inputs: VmcpInputs): TelemetryBuild {
  const out: TelemetryBuild = { config: undefined, env: [], secretEnv: [], mounts: [], problems: [] };
  const ref = inputs.vmcp.spec.telemetryConfigRef;
  if (!ref) return out;
  const cfg = inputs.telemetryConfig;
  const problem = (reason: string, message: string) => {
    out.problems.push({
      condition: "TelemetryConfigRefValidated",
      reason,
      message: `MCPTelemetryConfig ${ref.name}: ${message}`,
    });
    return out;
  };
  if (!cfg) return problem("TelemetryConfigRefNotFound", "not found");
  const why = invalid(cfg);
  if (why) return problem("TelemetryConfigRefInvalid", why);

  const vmcpName = inputs.vmcp.metadata.name;
  const otel = cfg.spec.openTelemetry;
  const t: Record<string, unknown> = {
    tracingEnabled: false,
    metricsEnabled: false,
    useLegacyAttributes: false,
  };
  if (otel?.enabled) {
    // The exporter takes host:port; ToolHive strips the scheme (insecure says http).
    if (otel.endpoint) t.endpoint = otel.endpoint.replace(/^https:\/\//, "").replace(/^http:\/\//, "");
    if (otel.insecure) t.insecure = true;
    if (otel.headers && Object.keys(otel.headers).length) t.headers = { ...otel.headers };
    if (otel.resourceAttributes && Object.keys(otel.resourceAttributes).length)
      t.customAttributes = { ...otel.resourceAttributes };
    t.useLegacyAttributes = otel.useLegacyAttributes;
    if (otel.tracing) {
      t.tracingEnabled = otel.tracing.enabled;
      const rate = Number(otel.tracing.samplingRate);
      if (otel.tracing.samplingRate && Number.isFinite(rate))
        t.samplingRate = String(Math.min(1, Math.max(0, rate)));
    }
    if (otel.metrics) t.metricsEnabled = otel.metrics.enabled;
  }
  if (cfg.spec.prometheus?.enabled) t.enablePrometheusMetricsPath = true;
  const serviceName = ref.serviceName || vmcpName;
  t.serviceName = serviceName;

  const cm = otel?.caBundleRef?.configMapRef;
  if (cm?.name) {
    const key = cm.key || DEFAULT_CA_KEY;
    const mountPath = `${CA_MOUNT_BASE}/${cm.name}`;
    out.mounts.push({ volume: `${CA_VOLUME_PREFIX}${cm.name}`, configMap: cm.name, key, mountPath });
    // ToolHive mounts the bundle for a VirtualMCPServer but does not point the exporter at it.
    t.caCertPath = `${mountPath}/${key}`;
  }
  out.config = t;
  out.env.push({
    name: "OTEL_RESOURCE_ATTRIBUTES",
    value: `service.name=${serviceName},service.namespace=${inputs.vmcp.metadata.namespace ?? "default"}`,
  });
  for (const h of otel?.sensitiveHeaders ?? [])
    out.secretEnv.push({
      name: otelHeaderEnv(h.name),
      secretName: h.secretKeyRef.name,
      secretKey: h.secretKeyRef.key,
    });
  return out;
}
