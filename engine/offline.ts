// Environment for every Pulumi process we start: never reach the internet, never
// prompt, always the same file backend and passphrase, plugins from our cache.
export function pulumiEnv(opts: {
  passphrase: string;
  pulumiHome?: string;
  kubeconfig?: string;
}): Record<string, string> {
  const env: Record<string, string> = {
    PULUMI_SKIP_UPDATE_CHECK: "true",
    PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION: "true",
    PULUMI_CONFIG_PASSPHRASE: opts.passphrase,
    // Every update would also copy the whole checkpoint into backups/: history is enough.
    PULUMI_DIY_BACKEND_DISABLE_CHECKPOINT_BACKUPS: "true",
    PULUMI_AUTOMATION_API_SKIP_VERSION_CHECK: "false",
  };
  const home = opts.pulumiHome ?? process.env.PULUMI_HOME;
  if (home) env.PULUMI_HOME = home;
  // A path, never the file's content: the provider reads the credentials itself, so only
  // the path becomes a provider input (engine/stacks.ts passes it explicitly).
  if (opts.kubeconfig) env.KUBECONFIG = opts.kubeconfig;
  return env;
}
