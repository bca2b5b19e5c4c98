// A syntax checker for the Go text/template strings in composite tools (arguments,
// conditions, messages, forEach collections, output values). It catches, offline, what
// `vmcp serve` would reject at startup or fail on at call time: unclosed actions,
// unbalanced if/range/with/end, unknown functions, and field refs outside the
// workflow context (.params, .steps, .vars, .workflow, .forEach).

/** Functions a composite-tool template may call: Go's builtins plus ToolHive's FuncMap. */
export const TEMPLATE_FUNCTIONS: ReadonlySet<string> = new Set([
  "and", "or", "not", "len", "index", "slice", "print", "printf", "println", "call",
  "eq", "ne", "lt", "le", "gt", "ge", "html", "js", "urlquery",
  "json", "quote", "fromJson",
]); // prettier-ignore

/** Roots of the data a composite-tool template is executed against. */
export const TEMPLATE_ROOTS: ReadonlySet<string> = new Set([
  "params",
  "steps",
  "vars",
  "workflow",
  "forEach",
]);

export interface TemplateCheck {
  /** The first syntax problem, phrased like Go's parser; undefined when the template parses. */
  error?: string;
  /** Field chains read from the workflow context, e.g. ".steps.fetch.output.id". */
  refs: string[];
}

type Block = { keyword: string; offset: number };
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
function checkPipeline(tokens: string[], dotRebound: boolean, refs: string[]): string | undefined {
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
      const root = tok.split(".")[1] ?? "";
      if (!dotRebound) {
        if (!TEMPLATE_ROOTS.has(root)) {
          return `unknown field ${tok}: expected it to start with .${[...TEMPLATE_ROOTS].join(", .")}`;
        }
        refs.push(tok);
      }
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
  if (expectCommand) return tokens.length === 0 ? "missing value for command" : "missing command after |";
  return undefined;
}

/** Parses `src` as a Go text/template (with ToolHive's functions) without executing it. */
export function checkGoTemplate(src: string): TemplateCheck {
  const refs: string[] = [];
  const stack: Block[] = [];
  const fail = (error: string): TemplateCheck => ({ error, refs });
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
    const inner = (args: string[], rebound: boolean) => {
      // Declarations ($x := …) only bind a variable; check the value pipeline.
      const assign = args.findIndex((t) => t === ":=" || t === "=");
      return checkPipeline(assign >= 0 ? args.slice(assign + 1) : args, rebound, refs);
    };
    if (first === "end") {
      if (rest.length > 0) return fail(`unexpected "${rest[0]}" in end`);
      if (!stack.pop()) return fail(`unexpected {{end}} at offset ${open}`);
    } else if (first === "else") {
      const top = stack[stack.length - 1];
      if (!top || !["if", "range", "with"].includes(top.keyword))
        return fail(`unexpected {{else}} at offset ${open}`);
      if (rest.length > 0) {
        const [kw = "", ...args] = rest;
        if (kw !== "if" && kw !== "with") return fail(`unexpected "${kw}" in else`);
        if (args.length === 0) return fail(`missing value for ${kw}`);
        const err = inner(args, dotRebound);
        if (err) return fail(err);
      }
    } else if (first === "if" || first === "range" || first === "with") {
      if (rest.length === 0) return fail(`missing value for ${first}`);
      const err = inner(rest, dotRebound);
      if (err) return fail(err);
      stack.push({ keyword: first, offset: open });
    } else if (first === "define" || first === "block") {
      stack.push({ keyword: first, offset: open });
    } else if (first === "break" || first === "continue") {
      if (!stack.some((b) => b.keyword === "range")) return fail(`{{${first}}} outside {{range}}`);
    } else if (first !== "template") {
      const err = inner(tokens, dotRebound);
      if (err) return fail(err);
    }
  }
  const unclosed = stack[stack.length - 1];
  if (unclosed)
    return fail(`unexpected EOF: {{${unclosed.keyword}}} at offset ${unclosed.offset} has no {{end}}`);
  return { refs };
}
