// The passphrase that encrypts the secrets in Pulumi state. An empty one would "encrypt"
// them with a key anyone can derive, so there is no default: every entry point asks here.
import { readFileSync } from "node:fs";

export const PASSPHRASE_HELP =
  "set PULUMI_CONFIG_PASSPHRASE or PULUMI_CONFIG_PASSPHRASE_FILE (in a cluster: the chart's state.passphrase or state.existingSecret)";

/** The passphrase from the environment; throws, saying how to set one, when there is none. */
export function passphraseFromEnv(env: NodeJS.ProcessEnv = process.env): string {
  const file = env.PULUMI_CONFIG_PASSPHRASE_FILE;
  const value = env.PULUMI_CONFIG_PASSPHRASE ?? (file ? readFileSync(file, "utf8").trimEnd() : undefined);
  if (!value) throw new Error(`no (or an empty) Pulumi state passphrase: ${PASSPHRASE_HELP}`);
  return value;
}
