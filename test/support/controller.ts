// A controller in this process with its own Pulumi state dir and engine: what most
// integration tests start in before() and stop in after().
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startController, type Controller, type ControllerOptions } from "../../controller/main.js";
import { createEngine, type Engine } from "../../engine/stacks.js";

export interface TestController {
  readonly controller: Controller;
  readonly engine: Engine;
  readonly stateDir: string;
  /** Stops the controller (30 s to finish its work), closes the engine, removes the state dir. */
  stop(): Promise<void>;
}

export async function startTestController(opts: {
  /** Names the state dir: vmcp-<name>-state-XXXXXX under the temp dir. */
  name: string;
  /** Kubeconfig file of the Pulumi Kubernetes provider. */
  kubeconfigPath: string;
  /** Of the Pulumi stacks' secrets; default "test". */
  passphrase?: string;
  /** The stacks' workspaces; default: the engine's own temp dir. */
  workDir?: string;
  controller: Omit<ControllerOptions, "engine">;
}): Promise<TestController> {
  const stateDir = mkdtempSync(join(tmpdir(), `vmcp-${opts.name}-state-`));
  const remove = () => rmSync(stateDir, { recursive: true, force: true });
  let engine: Engine | undefined;
  try {
    engine = await createEngine({
      stateDir,
      passphrase: opts.passphrase ?? "test",
      kubeconfig: opts.kubeconfigPath,
      ...(opts.workDir ? { workDir: opts.workDir } : {}),
    });
    const controller = await startController({ ...opts.controller, engine });
    const started = engine;
    return {
      controller,
      engine: started,
      stateDir,
      async stop() {
        await controller.stop(30_000);
        await started.close();
        remove();
      },
    };
  } catch (err) {
    await engine?.close();
    remove();
    throw err;
  }
}
