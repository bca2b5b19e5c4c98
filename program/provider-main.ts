// Process entry of bin/pulumi-resource-vmcp (the engine passes its address as argument).
import { serve } from "./provider.js";

await serve(process.argv.slice(2));
