// Three small, real MCP servers for the demo, speaking streamable HTTP on 127.0.0.1.
// Two of them expose a `search` tool, so the demo shows conflict resolution at work.
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { StreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/streamableHttp.js";
import { z } from "zod";

export interface Sample {
  name: string;
  url: string;
  tools: string[];
  stop(): Promise<void>;
}

type Tool = { name: string; description: string; answer: (args: { q: string }) => string };

const CATALOGUE: Record<string, Tool[]> = {
  weather: [
    {
      name: "forecast",
      description: "Three-day forecast for a city",
      answer: ({ q }) => `${q}: sunny, 21°C`,
    },
    {
      name: "alerts",
      description: "Active weather alerts for a region",
      answer: ({ q }) => `no alerts for ${q}`,
    },
  ],
  notes: [
    { name: "search", description: "Search the team's notes", answer: ({ q }) => `2 notes mention "${q}"` },
    { name: "create_note", description: "Write a note", answer: ({ q }) => `saved: ${q}` },
    { name: "list_notes", description: "List recent notes", answer: () => "standup, retro, roadmap" },
  ],
  tickets: [
    { name: "search", description: "Search open tickets", answer: ({ q }) => `3 tickets match "${q}"` },
    { name: "get_ticket", description: "Show one ticket", answer: ({ q }) => `ticket ${q}: open` },
  ],
  calendar: [
    {
      name: "next_meeting",
      description: "The next meeting on the calendar",
      answer: () => "standup at 09:30",
    },
  ],
};

/** Joins the group later in the demo: the change that rolls the vMCP pod. */
export const EXTRA_SAMPLE = "calendar";
/** The three servers the demo starts with. */
export const SAMPLE_NAMES = Object.keys(CATALOGUE).filter((n) => n !== EXTRA_SAMPLE);

function mcpFor(name: string): McpServer {
  const mcp = new McpServer({ name, version: "1.0.0" });
  for (const tool of CATALOGUE[name] ?? []) {
    mcp.registerTool(
      tool.name,
      { description: tool.description, inputSchema: { q: z.string().default("") } },
      async (args) => ({
        content: [{ type: "text", text: tool.answer(args as { q: string }) }],
      }),
    );
  }
  return mcp;
}

/** Starts one sample server; stateless streamable HTTP, a fresh MCP server per request. */
export async function startSample(name: string, host = "127.0.0.1"): Promise<Sample> {
  const http: Server = createServer(async (req, res) => {
    if (!req.url?.startsWith("/mcp")) {
      res.writeHead(404).end();
      return;
    }
    const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined });
    const mcp = mcpFor(name);
    res.on("close", () => {
      void transport.close();
      void mcp.close();
    });
    await mcp.connect(transport);
    await transport.handleRequest(req, res);
  });
  await new Promise<void>((resolve) => http.listen(0, host, resolve));
  const port = (http.address() as AddressInfo).port;
  return {
    name,
    url: `http://${host}:${port}/mcp`,
    tools: (CATALOGUE[name] ?? []).map((t) => t.name),
    stop: () =>
      new Promise((resolve) => {
        http.closeAllConnections();
        http.close(() => resolve());
      }),
  };
}
