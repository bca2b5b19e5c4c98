// The VirtualMCPServer component from a Pulumi Go program, through the Go SDK generated
// from the vmcp component provider's schema (sdk/go). The program runs inline through
// the Automation API: the Pulumi CLI runs it without pulumi-language-go, which the
// offline toolchain cannot build (docs/pulumi.md).
//
//	go run . up STACK      # prints the stack outputs as JSON
//	go run . destroy STACK # and removes the stack
//
// Environment: PULUMI_BACKEND_URL, PULUMI_CONFIG_PASSPHRASE, KUBECONFIG, and
// VMCP_NAMESPACE (default "default"), VMCP_PROVIDER_DIR (the directory holding
// pulumi-resource-vmcp, default ../../bin).
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/pulumi/pulumi/sdk/v3/go/auto"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optdestroy"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optup"
	"github.com/pulumi/pulumi/sdk/v3/go/common/workspace"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"vmcp-operator/sdk/go/vmcp/kubernetes"
)

// program is what a Pulumi Go program declares: a virtual MCP server in front of one
// backend. The spec and the objects are written as in their manifests.
func program(namespace string) pulumi.RunFunc {
	return func(ctx *pulumi.Context) error {
		server, err := kubernetes.NewVirtualMCPServer(ctx, "tools", &kubernetes.VirtualMCPServerArgs{
			Namespace: pulumi.String(namespace),
			Spec: pulumi.Any(map[string]any{
				"groupRef":     map[string]any{"name": "tools"},
				"incomingAuth": map[string]any{"type": "anonymous"},
			}),
			Objects: pulumi.Array{pulumi.Any(map[string]any{
				"kind":     "MCPServerEntry",
				"metadata": map[string]any{"name": "osv"},
				"spec": map[string]any{
					"groupRef":  map[string]any{"name": "tools"},
					"remoteUrl": fmt.Sprintf("http://osv.%s.svc.cluster.local:8080/mcp", namespace),
					"transport": "streamable-http",
				},
			})},
		})
		if err != nil {
			return err
		}
		ctx.Export("url", server.Url)
		ctx.Export("objects", server.Objects)
		return nil
	}
}

func main() {
	if len(os.Args) != 3 || (os.Args[1] != "up" && os.Args[1] != "destroy") {
		fmt.Fprintln(os.Stderr, "usage: go run . up|destroy STACK")
		os.Exit(2)
	}
	if err := run(context.Background(), os.Args[1], os.Args[2]); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func run(ctx context.Context, command, stackName string) error {
	namespace := envOr("VMCP_NAMESPACE", "default")
	providerDir, err := filepath.Abs(envOr("VMCP_PROVIDER_DIR", filepath.Join("..", "..", "bin")))
	if err != nil {
		return err
	}
	project := workspace.Project{
		Name:    "vmcp-example-go",
		Runtime: workspace.NewProjectRuntimeInfo("go", nil),
		// The component provider from this repository, not a download.
		Plugins: &workspace.Plugins{Providers: []workspace.PluginOptions{{Name: "vmcp", Path: providerDir}}},
	}
	stack, err := auto.UpsertStackInlineSource(ctx, stackName, project.Name.String(), program(namespace),
		auto.Project(project), auto.SecretsProvider("passphrase"))
	if err != nil {
		return err
	}
	if command == "destroy" {
		if _, err := stack.Destroy(ctx, optdestroy.ProgressStreams(os.Stderr)); err != nil {
			return err
		}
		return stack.Workspace().RemoveStack(ctx, stackName)
	}
	res, err := stack.Up(ctx, optup.ProgressStreams(os.Stderr))
	if err != nil {
		return err
	}
	outputs := map[string]any{}
	for k, v := range res.Outputs {
		outputs[k] = v.Value
	}
	return json.NewEncoder(os.Stdout).Encode(outputs)
}

func envOr(name, fallback string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return fallback
}
