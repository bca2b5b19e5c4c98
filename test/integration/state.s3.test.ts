// The shared-backend suite (state.suite.ts) on an S3-compatible object store: MinIO, built
// from its Go module (scripts/toolchain.sh minio), started by the test
// (test/support/minio.ts), the backend Pulumi's s3:// with a custom endpoint and path-style
// addressing. The access key pair reaches the controller as AWS_ACCESS_KEY_ID /
// AWS_SECRET_ACCESS_KEY only; the URL carries none.
import { startMinio } from "../support/minio.js";
import { stateBackendSuite } from "./state.suite.js";

stateBackendSuite("controller on an S3 state backend (real MinIO server)", async () => {
  const s3 = await startMinio({ name: "state" });
  return {
    url: s3.url,
    env: s3.env,
    secrets: [s3.secretKey],
    keys: () => s3.keys(),
    read: (key) => s3.get(key),
    stop: () => s3.stop(),
  };
});
