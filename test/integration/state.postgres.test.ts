// The shared-backend suite (state.suite.ts) on PostgreSQL: Debian's server, started by the
// test (test/support/postgres.ts), the backend Pulumi's DIY postgres:// (one table,
// pulumi_state, each file a row whose data is {"data": <base64 of its bytes>}). The
// password reaches the controller as PGPASSWORD only; the URL carries none.
import { startPostgres } from "../support/postgres.js";
import { stateBackendSuite } from "./state.suite.js";

stateBackendSuite("controller on a PostgreSQL state backend (real server)", async () => {
  const pg = await startPostgres({ name: "state" });
  const rows = async (sql: string) => await pg.query(sql);
  return {
    url: pg.url,
    env: pg.env,
    secrets: [pg.password],
    keys: async () => (await rows("SELECT key FROM pulumi_state ORDER BY key")).map((r) => r[0]!),
    read: async (key) => {
      const found = await rows(
        `SELECT data->>'data' FROM pulumi_state WHERE key = '${key.replace(/'/g, "''")}'`,
      );
      if (found.length !== 1) throw new Error(`no row ${key} in pulumi_state`);
      return Buffer.from(found[0]![0] ?? "", "base64").toString("utf8");
    },
    stop: () => pg.stop(),
  };
});
