#!/usr/bin/env python3
"""The crate's public API, one item a line, from rustdoc's JSON, and the
rules the surface keeps.

    public_api.py RUSTDOC_JSON            print the API
    public_api.py RUSTDOC_JSON --check    also check the rules (exit 1 if broken)

Every public item is listed by the path a user writes, with its signature:
modules, types and their public fields and variants, functions, methods of
inherent impls, trait items and the traits each type implements (auto
traits and blanket impls are left out: they follow from the rest).
"""

import json
import re
import sys

WAYS_IN = {
    # The ways to obtain a live WebSocket, as the docs front page lists them.
    "rfc6455::rt::WebSocketStream::accept",
    "rfc6455::rt::WebSocketStream::client",
    "rfc6455::rt::WebSocketStream::new",
    "rfc6455::rt::WebSocketStream::connect",  # on WebSocketStream<MaybeTlsStream, Tokio>
    "rfc6455::rt::tokio::connect_async",
    "rfc6455::blocking::WebSocket::accept",
    "rfc6455::blocking::WebSocket::client",
    "rfc6455::blocking::WebSocket::connect",
    "rfc6455::blocking::WebSocket::new",
    "rfc6455::rt::hyper::upgrade",
    "rfc6455::rt::axum::WebSocketUpgrade::on_upgrade",
    "rfc6455::rt::reconnect::Reconnect::connect",
    "rfc6455::rt::h2::H2Client::connect",
}
# Functions that hand back a WebSocket that already lived.
NOT_WAYS_IN = {"rfc6455::rt::ReadHalf::reunite", "rfc6455::rt::drain::Drain::attach"}
MAX_WAYS_IN = 13
# One per domain: the crate's, protocol, handshake, config, send, admission,
# hub, and connection snapshots (freeze and thaw).
MAX_ERROR_TYPES = 8
# What a live WebSocket's type is called in a signature.
WEBSOCKET = re.compile(r"(WebSocketStream|blocking::WebSocket|rt::(hyper|axum)::WebSocket|rt::hyper::Upgrade)(?![A-Za-z_])")


class Api:
    def __init__(self, doc):
        self.index = doc["index"]
        self.paths = doc["paths"]
        self.lines = []
        self.functions = {}  # path -> (inputs, output), rendered
        self.error_types = {}  # id -> path
        self.seen_modules = set()
        # The path a user writes for each item: the first the walk from the
        # root reaches (filled by a first pass).
        self.public = {}
        self.self_type = None
        self.aliases = set()

    # ---- types ---------------------------------------------------------

    def path_of(self, ref):
        """The path a resolved reference names: the item's canonical path
        when rustdoc knows it, else the path as written."""
        public = self.public.get(ref.get("id"))
        if public:
            return public
        summary = self.paths.get(str(ref.get("id")))
        if summary:
            return "::".join(summary["path"])
        return ref.get("path") or ref.get("name", "?")

    def args(self, args):
        if not args:
            return ""
        if "angle_bracketed" in args:
            parts = []
            for arg in args["angle_bracketed"]["args"]:
                if "type" in arg:
                    parts.append(self.ty(arg["type"]))
                elif "lifetime" in arg:
                    parts.append(arg["lifetime"])
                elif "const" in arg:
                    parts.append(str(arg["const"].get("expr", "?")))
                else:
                    parts.append("_")
            for c in args["angle_bracketed"].get("constraints", []):
                binding = c.get("binding", {})
                if "equality" in binding:
                    value = binding["equality"]
                    value = self.ty(value["type"]) if "type" in value else str(value)
                    parts.append(f"{c['name']} = {value}")
                elif "constraint" in binding:
                    parts.append(f"{c['name']}: " + self.bounds(binding["constraint"]))
            return "<" + ", ".join(parts) + ">" if parts else ""
        if "parenthesized" in args:
            p = args["parenthesized"]
            inputs = ", ".join(self.ty(t) for t in p["inputs"])
            out = f" -> {self.ty(p['output'])}" if p.get("output") else ""
            return f"({inputs}){out}"
        return ""

    def bounds(self, bounds):
        parts = []
        for b in bounds:
            if "trait_bound" in b:
                tb = b["trait_bound"]
                modifier = "?" if tb.get("modifier") == "maybe" else ""
                parts.append(modifier + self.path_of(tb["trait"]) + self.args(tb["trait"].get("args")))
            elif "outlives" in b:
                parts.append(b["outlives"])
            elif "use" in b:
                parts.append("use<..>")
        return " + ".join(parts)

    def ty(self, t):
        if t is None:
            return "()"
        (kind, v), = t.items()
        if kind == "resolved_path":
            return self.path_of(v) + self.args(v.get("args"))
        if kind == "generic":
            return self.self_type if v == "Self" and self.self_type else v
        if kind == "primitive":
            return v
        if kind == "tuple":
            return "(" + ", ".join(self.ty(x) for x in v) + ("," if len(v) == 1 else "") + ")"
        if kind == "slice":
            return f"[{self.ty(v)}]"
        if kind == "array":
            return f"[{self.ty(v['type'])}; {v['len']}]"
        if kind == "borrowed_ref":
            life = f"{v['lifetime']} " if v.get("lifetime") else ""
            mut = "mut " if v.get("is_mutable") or v.get("mutable") else ""
            return f"&{life}{mut}{self.ty(v['type'])}"
        if kind == "raw_pointer":
            return ("*mut " if v.get("is_mutable") else "*const ") + self.ty(v["type"])
        if kind == "impl_trait":
            return "impl " + self.bounds(v)
        if kind == "dyn_trait":
            traits = [self.path_of(p["trait"]) + self.args(p["trait"].get("args")) for p in v["traits"]]
            if v.get("lifetime"):
                traits.append(v["lifetime"])
            return "dyn " + " + ".join(traits)
        if kind == "qualified_path":
            trait = self.path_of(v["trait"]) if v.get("trait") else "?"
            return f"<{self.ty(v['self_type'])} as {trait}>::{v['name']}"
        if kind == "function_pointer":
            sig = v.get("sig") or v.get("decl")
            return "fn(" + ", ".join(self.ty(x[1]) for x in sig["inputs"]) + ")" + (
                f" -> {self.ty(sig['output'])}" if sig.get("output") else "")
        if kind == "infer":
            return "_"
        return kind

    def generics(self, g):
        params = []
        for p in g.get("params", []):
            kind = p["kind"]
            if "lifetime" in kind:
                params.append(p["name"])
            elif "type" in kind:
                if kind["type"].get("is_synthetic") or kind["type"].get("synthetic"):
                    continue
                b = self.bounds(kind["type"].get("bounds", []))
                default = kind["type"].get("default")
                text = p["name"] + (f": {b}" if b else "")
                if default:
                    text += f" = {self.ty(default)}"
                params.append(text)
            elif "const" in kind:
                params.append(f"const {p['name']}: {self.ty(kind['const']['type'])}")
        where = []
        for w in g.get("where_predicates", []):
            if "bound_predicate" in w:
                bp = w["bound_predicate"]
                where.append(f"{self.ty(bp['type'])}: {self.bounds(bp['bounds'])}")
        text = "<" + ", ".join(params) + ">" if params else ""
        return text, (" where " + ", ".join(where) if where else "")

    def signature(self, name, f):
        sig = f.get("sig") or f.get("decl")
        header = f.get("header", {})
        inputs = []
        for arg_name, t in sig["inputs"]:
            if arg_name == "self":
                saved, self.self_type = self.self_type, None
                rendered = self.ty(t)
                self.self_type = saved
                short = {"Self": "self", "&Self": "&self", "&mut Self": "&mut self"}
                inputs.append(short.get(rendered, f"self: {rendered}"))
            else:
                inputs.append(f"{arg_name}: {self.ty(t)}")
        params, where = self.generics(f["generics"])
        output = self.ty(sig["output"]) if sig.get("output") else ""
        self.functions[self.current] = (f"{params}({', '.join(inputs)}){where}", output)
        out = f" -> {output}" if output else ""
        asyncness = "async " if header.get("is_async") or header.get("async") else ""
        const = "const " if header.get("is_const") or header.get("const") else ""
        return f"{const}{asyncness}fn {name}{params}({', '.join(inputs)}){out}{where}"

    # ---- items ---------------------------------------------------------

    def emit(self, line):
        self.lines.append(line)

    def item(self, item_id, path):
        item = self.index.get(str(item_id))
        if item is None:
            return
        known = self.public.get(item_id)
        if known is None or len(known) > len(path):
            self.public[item_id] = path
        (kind, inner), = item["inner"].items()
        if kind == "module":
            if item_id in self.seen_modules:
                return
            self.seen_modules.add(item_id)
            self.emit(f"pub mod {path}")
            for child in inner["items"]:
                self.child(child, path)
        elif kind == "struct":
            params, where = self.generics(inner["generics"])
            self.emit(f"pub struct {path}{params}{where}")
            fields = inner["kind"]
            if "plain" in fields:
                for fid in fields["plain"]["fields"]:
                    f = self.index.get(str(fid))
                    if f and f["visibility"] == "public":
                        self.emit(f"pub {path}::{f['name']}: {self.ty(f['inner']['struct_field'])}")
            elif "tuple" in fields:
                for n, fid in enumerate(fields["tuple"]):
                    f = self.index.get(str(fid)) if fid is not None else None
                    if f and f["visibility"] == "public":
                        self.emit(f"pub {path}::{n}: {self.ty(f['inner']['struct_field'])}")
            self.impls(inner["impls"], path)
        elif kind == "enum":
            params, where = self.generics(inner["generics"])
            self.emit(f"pub enum {path}{params}{where}")
            for vid in inner["variants"]:
                v = self.index[str(vid)]
                vk = v["inner"]["variant"]["kind"]
                if vk == "plain":
                    shape = ""
                elif "tuple" in vk:
                    shape = "(" + ", ".join(
                        self.ty(self.index[str(f)]["inner"]["struct_field"]) if f is not None else "_"
                        for f in vk["tuple"]) + ")"
                else:
                    shape = " { " + ", ".join(
                        f"{self.index[str(f)]['name']}: {self.ty(self.index[str(f)]['inner']['struct_field'])}"
                        for f in vk["struct"]["fields"]) + " }"
                self.emit(f"pub {path}::{v['name']}{shape}")
            self.impls(inner["impls"], path)
        elif kind == "function":
            self.current = path
            self.emit("pub " + self.signature(path, inner))
        elif kind == "trait":
            params, where = self.generics(inner["generics"])
            supers = self.bounds(inner.get("bounds", []))
            self.emit(f"pub trait {path}{params}{': ' + supers if supers else ''}{where}")
            for tid in inner["items"]:
                self.assoc(tid, path)
        elif kind == "type_alias":
            self.aliases.add(path)
            params, _ = self.generics(inner["generics"])
            self.emit(f"pub type {path}{params} = {self.ty(inner['type'])}")
            target = inner["type"].get("resolved_path")
            if target:
                # The alias's own methods are its target's, under the alias's name.
                t = self.index.get(str(target["id"]))
                if t:
                    (tk, ti), = t["inner"].items()
                    if tk in ("struct", "enum"):
                        self.impls(ti["impls"], path, only_inherent=True, for_args=target.get("args"))
        elif kind == "constant":
            self.emit(f"pub const {path}: {self.ty(inner['type'])}")
        elif kind == "static":
            self.emit(f"pub static {path}: {self.ty(inner['type'])}")
        elif kind == "macro":
            self.emit(f"pub macro {path}!")

    def child(self, child_id, parent):
        item = self.index.get(str(child_id))
        if item is None:
            return
        (kind, inner), = item["inner"].items()
        if kind == "use":
            target = inner.get("id")
            if inner.get("is_glob") or inner.get("glob"):
                t = self.index.get(str(target))
                if t and "module" in t["inner"]:
                    for c in t["inner"]["module"]["items"]:
                        self.child(c, parent)
                return
            if target is not None and str(target) in self.index:
                self.item(target, f"{parent}::{inner['name']}")
            else:
                self.emit(f"pub use {parent}::{inner['name']} = {inner['source']}")
            return
        if item.get("visibility") != "public" or item.get("name") is None:
            return
        self.item(child_id, f"{parent}::{item['name']}")

    def assoc(self, tid, path):
        t = self.index[str(tid)]
        (kind, inner), = t["inner"].items()
        if kind == "function":
            self.current = f"{path}::{t['name']}"
            self.emit("pub " + self.signature(self.current, inner))
        elif kind == "assoc_type":
            b = self.bounds(inner.get("bounds", []))
            default = inner.get("type")
            self.emit(f"pub type {path}::{t['name']}{': ' + b if b else ''}"
                      f"{' = ' + self.ty(default) if default else ''}")
        elif kind == "assoc_const":
            self.emit(f"pub const {path}::{t['name']}: {self.ty(inner['type'])}")

    def impls(self, impl_ids, path, only_inherent=False, for_args=None):
        for iid in impl_ids:
            imp = self.index.get(str(iid))
            if imp is None:
                continue
            inner = imp["inner"]["impl"]
            if inner.get("is_synthetic") or inner.get("synthetic") or inner.get("blanket_impl"):
                continue
            trait = inner.get("trait")
            if trait is None:
                self.self_type = self.ty(inner["for"])
                for mid in inner["items"]:
                    m = self.index.get(str(mid))
                    if m and m["visibility"] == "public":
                        self.assoc(mid, path)
                self.self_type = None
            elif not only_inherent:
                trait_path = self.path_of(trait)
                params, where = self.generics(inner["generics"])
                self.emit(f"impl{params} {trait_path}{self.args(trait.get('args'))} for "
                          f"{self.ty(inner['for'])}{where}")
                if trait_path in ("core::error::Error", "std::error::Error"):
                    self.error_types[inner["for"].get("resolved_path", {}).get("id")] = path


def check(api):
    broken = []
    candidates = {
        path for path, (inputs, output) in api.functions.items()
        if WEBSOCKET.search(output)
        or ("FnOnce(" in inputs and WEBSOCKET.search(inputs.split("FnOnce(", 1)[1]))
    } - NOT_WAYS_IN
    # A method listed under a type alias repeats its target's.
    candidates = {p for p in candidates if p.rsplit("::", 1)[0] not in api.aliases}
    if candidates != WAYS_IN:
        broken.append("ways to a live WebSocket differ from the front page's list:\n"
                      f"  new: {sorted(candidates - WAYS_IN)}\n  gone: {sorted(WAYS_IN - candidates)}")
    if len(WAYS_IN) > MAX_WAYS_IN:
        broken.append(f"{len(WAYS_IN)} ways to a live WebSocket (at most {MAX_WAYS_IN})")
    errors = sorted(api.public.get(i, p) for i, p in api.error_types.items())
    if len(errors) > MAX_ERROR_TYPES:
        broken.append(f"{len(errors)} public error types (at most {MAX_ERROR_TYPES}): {errors}")
    print(f"ways to a live WebSocket: {len(candidates)}; public error types: "
          f"{len(errors)} ({', '.join(errors)})")
    return broken


def main():
    doc = json.load(open(sys.argv[1]))
    api = Api(doc)
    root = doc["root"]
    name = doc["index"][str(root)]["name"]
    # The first pass finds each item's public path; the second renders.
    api.item(root, name)
    api.lines, api.functions, api.error_types, api.seen_modules = [], {}, {}, set()
    api.item(root, name)
    lines = sorted(set(api.lines))
    if "--check" in sys.argv:
        broken = check(api)
        for b in broken:
            print("BROKEN:", b, file=sys.stderr)
        sys.exit(1 if broken else 0)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
