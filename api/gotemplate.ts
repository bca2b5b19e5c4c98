// A syntax checker for the Go text/template strings in composite tools (arguments,
// conditions, messages, forEach collections, output values). It catches, offline, what
// `vmcp serve` would reject at startup or fail on at call time: unclosed actions,
// unbalanced if/range/with/end and unknown functions. Field names are not checked: a
// template reading a field the context lacks (`{{.timestamp}}`) renders "<no value>" in
// vmcp, it does not fail, so ToolHive accepts it and so do we.

/** Functions a composite-tool template may call: Go's builtins plus ToolHive's FuncMap. */
export const TEMPLATE_FUNCTIONS: ReadonlySet<string> = new Set([
  "and", "or", "not", "len", "index", "slice", "print", "printf", "println", "call",
  "eq", "ne", "lt", "le", "gt", "ge", "html", "js", "urlquery",
  "json", "quote", "fromJson",
]); // prettier-ignore

export interface TemplateCheck {
  /** The first syntax problem, phrased like Go's parser; undefined when the template parses. */
  error?: string;
  /** Field chains read from the workflow context (dot not rebound), e.g. ".steps.fetch.output.id". */
  refs: string[];
  /** Every field chain, also inside range/with: what vmcp's reference extraction sees. */
  fields: string[];
}

/** An open if/range/with/define/block, with the variables declared in its scope. */
type Block = { keyword: string; offset: number; vars: string[] };
const BLOCK_KEYWORDS = new Set(["if", "range", "with", "define", "block"]);
const IDENT = /^[A-Za-z_][A-Za-z0-9_]*$/;
const TOKEN =
  /\s+|"(?:[^"\\]|\\.)*"|`[^`]*`|'(?:[^'\\]|\\.)+'|:=|[=|(),]|\$[A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*|(?:\.[A-Za-z_][A-Za-z0-9_]*)+|\.|[-+]?[0-9][0-9a-fA-FxXoObB._+-]*|[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*/y;

/** Finds the `}}` closing an action that starts at `from`, skipping quoted strings. */
function findClose(src: string, from: number): number {
  for (let i = from; i < src.length; i++) {
    const c = src[i];
    if (c === '"' || c === "'") {
      for (i++; i < src.length && src[i] !== c; i++) if (src[i] === "\\") i++;
    } else if (c === "`") {
      i = src.indexOf("`", i + 1);
      if (i < 0) return -1;
    } else if (c === "}" && src[i + 1] === "}") return i;
  }
  return -1;
}

function tokenize(body: string): string[] | string {
  const tokens: string[] = [];
  TOKEN.lastIndex = 0;
  while (TOKEN.lastIndex < body.length) {
    const start = TOKEN.lastIndex;
    const m = TOKEN.exec(body);
    if (!m || m.index !== start) return `unexpected "${body[start]}" in command`;
    if (!/^\s+$/.test(m[0])) tokens.push(m[0]);
  }
  return tokens;
}

/** Checks one action's tokens; `dotRebound` is true inside range/with, where `.` is not the root. */
function checkPipeline(
  tokens: string[],
  dotRebound: boolean,
  seen: Pick<TemplateCheck, "refs" | "fields">,
  declared: (variable: string) => boolean,
): string | undefined {
  let depth = 0;
  let expectCommand = true;
  for (const tok of tokens) {
    if (tok === "(") depth++;
    else if (tok === ")") {
      if (--depth < 0) return "unexpected right paren";
    } else if (tok === "|") {
      if (expectCommand) return "missing command before |";
      expectCommand = true;
      continue;
    } else if (tok.startsWith(".") && tok.length > 1) {
      seen.fields.push(tok);
      if (!dotRebound) seen.refs.push(tok);
    } else if (tok.startsWith("$")) {
      const name = tok.split(".")[0] ?? "";
      if (!declared(name)) return `undefined variable "${name}"`;
    } else if (IDENT.test(tok.split(".")[0] ?? "") && !["true", "false", "nil"].includes(tok)) {
      const name = tok.split(".")[0] ?? "";
      if (BLOCK_KEYWORDS.has(name) || ["else", "end", "template", "break", "continue"].includes(name)) {
        return `unexpected keyword "${name}" in command`;
      }
      if (!TEMPLATE_FUNCTIONS.has(name)) return `function "${name}" not defined`;
    }
    expectCommand = false;
  }
  if (depth > 0) return "unclosed left paren";
  // Go's parser lets a pipeline end in "|" ({{.x | }}): only an empty action is an error.
  if (tokens.length === 0) return "missing value for command";
  return undefined;
}

/** Parses `src` as a Go text/template (with ToolHive's functions) without executing it. */
export function checkGoTemplate(src: string): TemplateCheck {
  const seen: Pick<TemplateCheck, "refs" | "fields"> = { refs: [], fields: [] };
  const stack: Block[] = [];
  const globals = ["$"];
  const fail = (error: string): TemplateCheck => ({ error, ...seen });
  let pos = 0;
  for (let open = src.indexOf("{{", pos); open >= 0; open = src.indexOf("{{", pos)) {
    const close = findClose(src, open + 2);
    if (close < 0) return fail(`unclosed action started at offset ${open}`);
    pos = close + 2;
    let body = src.slice(open + 2, close);
    if (body.startsWith("- ")) body = body.slice(2);
    if (body.endsWith(" -")) body = body.slice(0, -2);
    body = body.trim();
    if (body.startsWith("/*")) {
      if (!body.endsWith("*/")) return fail(`unclosed comment at offset ${open}`);
      continue;
    }
    const tokens = tokenize(body);
    if (typeof tokens === "string") return fail(tokens);
    const [first = "", ...rest] = tokens;
    const dotRebound = stack.some((b) => b.keyword === "range" || b.keyword === "with");
    // `scope` receives what the action declares ($x := …, range $i, $e := …); as in Go's
    // parser a variable lives until the {{end}} of the block it was declared in.
    const inner = (args: string[], rebound: boolean, scope: string[]) => {
      const assign = args.findIndex((t) => t === ":=" || t === "=");
      const declared = (v: string) =>
        globals.includes(v) || scope.includes(v) || stack.some((b) => b.vars.includes(v));
      if (assign >= 0) {
        const targets = args.slice(0, assign).filter((t) => t !== ",");
        if (!targets.length || !targets.every((t) => /^\$[A-Za-z0-9_]*$/.test(t)))
          return "unexpected := or = in command";
        if (args[assign] === ":=") scope.push(...targets);
        else {
          const undeclared = targets.find((t) => !declared(t));
          if (undeclared) return `undefined variable "${undeclared}"`;
        }
      }
      return checkPipeline(assign >= 0 ? args.slice(assign + 1) : args, rebound, seen, declared);
    };
    const top = stack[stack.length - 1];
    if (first === "end") {
      if (rest.length > 0) return fail(`unexpected "${rest[0]}" in end`);
      if (!stack.pop()) return fail(`unexpected {{end}} at offset ${open}`);
    } else if (first === "else") {
      if (!top || !["if", "range", "with"].includes(top.keyword))
        return fail(`unexpected {{else}} at offset ${open}`);
      if (rest.length > 0) {
        const [kw = "", ...args] = rest;
        if (kw !== "if" && kw !== "with") return fail(`unexpected "${kw}" in else`);
        if (args.length === 0) return fail(`missing value for ${kw}`);
        const err = inner(args, dotRebound, top.vars);
        if (err) return fail(err);
      }
    } else if (first === "if" || first === "range" || first === "with") {
      if (rest.length === 0) return fail(`missing value for ${first}`);
      const block: Block = { keyword: first, offset: open, vars: [] };
      const err = inner(rest, dotRebound, block.vars);
      if (err) return fail(err);
      stack.push(block);
    } else if (first === "define" || first === "block") {
      stack.push({ keyword: first, offset: open, vars: [] });
    } else if (first === "break" || first === "continue") {
      if (!stack.some((b) => b.keyword === "range")) return fail(`{{${first}}} outside {{range}}`);
    } else if (first !== "template") {
      const err = inner(tokens, dotRebound, top?.vars ?? globals);
      if (err) return fail(err);
    }
  }
  const unclosed = stack[stack.length - 1];
  if (unclosed)
    return fail(`unexpected EOF: {{${unclosed.keyword}}} at offset ${unclosed.offset} has no {{end}}`);
  return seen;
}
