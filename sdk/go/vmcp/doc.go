// A ToolHive VirtualMCPServer on Kubernetes, as a Pulumi component (vmcp-operator)
package vmcp
