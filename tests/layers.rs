//! Architecture check: the crate's own import graph, read from its source files.
//!
//! `cargo test --all-features --test layers` (add `-- --nocapture` for the one-line summary)
//! reads every `.rs` file under `src/` and `ARCHITECTURE.md`, and fails on:
//!
//! 1. **An import circle.** A source file that imports, through other files, itself
//!    (`a.rs` → `b.rs` → `a.rs`); the same between top-level modules (`bot` → `dispatch` →
//!    `bot`, whichever files carry the imports), and between the direct children of
//!    `src/runtime/` (files or folders) when that folder exists. Code on a circle cannot be
//!    read, tested or moved one piece at a time; the report lists every import on the circle
//!    (file, line, path) so it is clear what to move.
//! 2. **An import that breaks the module layers.** `ARCHITECTURE.md` holds a table under the
//!    heading `## Module layers`:
//!
//!    ```text
//!    | layer    | modules                        | may import  |
//!    |----------|--------------------------------|-------------|
//!    | base     | `sync`                         | —           |
//!    | model    | `protocol`, `types`, `error`   | base        |
//!    | binaries | `bin`                          | everything  |
//!    ```
//!
//!    A module is a top-level module of the crate: `src/<name>.rs` or `src/<name>/`
//!    (`src/bin/` is `bin`; `src/lib.rs` is exempt, it wires everything). A file of module A
//!    may import module B only if B is in A's own layer or in a layer listed under "may
//!    import" ("everything" or "all": no limit; "—": only its own layer). Every module under
//!    `src/` must be in the table and every module in the table must exist, so the table
//!    stays true. Text in parentheses in the modules column is a remark and is ignored.
//!
//! The layers keep the dependencies pointing one way (the model knows no sockets, the runtime
//! knows no handlers); a test keeps that true on every change, not only in reviewers' heads.
//! The check reads the table and the tree, so moving or renaming modules needs no edit here.
//!
//! What counts as an import of a file: `use` declarations (`pub`/`pub(crate)` too, brace
//! groups, several lines) starting with `crate::`, `super::`, `self::` or a child module's
//! name; paths in code (`crate::transfer::observe(..)`, `super::input::CHUNK`); a path in a
//! string inside an attribute (`#[serde(with = "super::ms")]`). A path names the file of its
//! longest prefix that is a module (`crate::dispatch::Router` is `src/dispatch/mod.rs` even
//! when that only re-exports it); a name `src/lib.rs` re-exports (`crate::Error`) names the
//! file it comes from. Ignored: comments, doc comments, string literals (so rustdoc examples),
//! and `#[cfg(test)]` items (test modules, inline or in their own file).
//!
//! For circles (not for layers), a parent module file's `pub use` of its own descendants is
//! not an edge: a facade re-exporting its children does not depend on them in the sense that
//! matters here. `mod` declarations are never edges. A plain `use child::Thing` in a parent is.
//!
//! The analysis is a lexer and a few patterns, not a compiler. It does not follow names
//! brought in by `use` (after `use crate::types;`, `types::message::X` counts as the
//! `use` itself: `src/types/mod.rs`), glob imports beyond the module they name, `#[path]`,
//! or what macros expand to (`$crate::` paths count for the file that defines the macro).
//!
//! The unit tests at the end run the same analysis on small in-memory trees to show that each
//! rule can fail.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::Path;

/// Source files by path relative to the crate root (`src/bot/core.rs`), with their text.
type Files = BTreeMap<String, String>;

/// A module path from the crate root: `["bot", "core"]`; the root is empty.
type ModPath = Vec<String>;

/// Children of these top-level modules must not import each other in a circle.
const NESTED_CIRCLE_CHECK: &[&str] = &["runtime"];

/// At most this many imports are listed per edge of a module-level circle.
const MAX_LISTED: usize = 10;

// ---------------------------------------------------------------------------------------------
// The check on the real tree
// ---------------------------------------------------------------------------------------------

#[test]
fn source_tree_has_no_import_circles_and_respects_module_layers() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Files::new();
    read_sources(root, &root.join("src"), &mut files);
    let architecture = std::fs::read_to_string(root.join("ARCHITECTURE.md"))
        .unwrap_or_else(|e| panic!("ARCHITECTURE.md: {e}"));
    let report = analyze(&files, &architecture);
    if report.findings.is_empty() {
        println!("{}", report.summary());
    } else {
        panic!("{report}");
    }
}

/// Reads every `.rs` file under `dir` into `files`, keyed by its path relative to `root`.
fn read_sources(root: &Path, dir: &Path, files: &mut Files) {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    for entry in entries {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            read_sources(root, &path, files);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let text = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let rel = path.strip_prefix(root).expect("under the crate root");
            let key: Vec<String> = rel
                .iter()
                .map(|c| c.to_string_lossy().into_owned())
                .collect();
            files.insert(key.join("/"), text);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The analysis: files and the architecture text in, a report out
// ---------------------------------------------------------------------------------------------

/// Which rule a finding breaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Rule {
    /// The layer table cannot be read, or does not match the modules under `src/`.
    Table,
    /// Rule 1 between source files.
    FileCircle,
    /// Rule 1 between top-level modules.
    ModuleCircle,
    /// Rule 1 between the children of one top-level module (`runtime`).
    NestedCircle,
    /// Rule 2: an import across layers that the table does not allow.
    Layer,
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Rule::Table => "layer table",
            Rule::FileCircle => "rule 1: import circle between files",
            Rule::ModuleCircle => "rule 1: import circle between top-level modules",
            Rule::NestedCircle => "rule 1: import circle inside a module",
            Rule::Layer => "rule 2: module layers",
        })
    }
}

#[derive(Debug)]
struct Finding {
    rule: Rule,
    message: String,
}

#[derive(Debug)]
struct Report {
    files: usize,
    /// Distinct file → file import edges (test code excluded).
    edges: usize,
    layers: usize,
    findings: Vec<Finding>,
}

impl Report {
    fn summary(&self) -> String {
        format!(
            "architecture check: {} files scanned, {} file-to-file import edges, {} layers \
             checked, {} findings",
            self.files,
            self.edges,
            self.layers,
            self.findings.len()
        )
    }

    fn count(&self, rule: Rule) -> usize {
        self.findings.iter().filter(|f| f.rule == rule).count()
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}", self.summary())?;
        let mut rules: Vec<Rule> = self.findings.iter().map(|x| x.rule).collect();
        rules.dedup();
        for rule in rules {
            writeln!(f, "\n=== {rule} ({} findings) ===", self.count(rule))?;
            for finding in self.findings.iter().filter(|x| x.rule == rule) {
                writeln!(f, "{}", finding.message)?;
            }
        }
        Ok(())
    }
}

fn analyze(files: &Files, architecture: &str) -> Report {
    let mut findings = Vec::new();
    let graph = ImportGraph::build(files);

    // Rule 1, between files.
    let file_edges = graph.edges(|i| !i.reexports_descendant(), |file| Some(file.to_string()));
    for circle in circles(&file_edges) {
        findings.push(Finding {
            rule: Rule::FileCircle,
            message: describe_circle("files", &circle, &file_edges, usize::MAX),
        });
    }

    // Rule 1, between top-level modules.
    let module_edges = graph.edges(|_| true, |file| top_module(file).map(str::to_string));
    for circle in circles(&module_edges) {
        findings.push(Finding {
            rule: Rule::ModuleCircle,
            message: describe_circle("top-level modules", &circle, &module_edges, MAX_LISTED),
        });
    }

    // Rule 1, between the children of selected modules.
    for &parent in NESTED_CIRCLE_CHECK {
        let child_of = |file: &str| {
            let path = module_path(file)?;
            (path.len() >= 2 && path[0] == parent).then(|| format!("{parent}::{}", path[1]))
        };
        let nested = graph.edges(|_| true, child_of);
        for circle in circles(&nested) {
            findings.push(Finding {
                rule: Rule::NestedCircle,
                message: describe_circle(
                    &format!("children of `{parent}`"),
                    &circle,
                    &nested,
                    MAX_LISTED,
                ),
            });
        }
    }

    // Rule 2.
    let layers = match LayerTable::parse(architecture) {
        Ok(table) => table,
        Err(message) => {
            findings.push(Finding {
                rule: Rule::Table,
                message,
            });
            LayerTable::default()
        }
    };
    for message in &layers.errors {
        findings.push(Finding {
            rule: Rule::Table,
            message: message.clone(),
        });
    }
    let mut present: BTreeMap<String, String> = BTreeMap::new();
    for file in &graph.files {
        if let Some(module) = top_module(file) {
            present
                .entry(module.to_string())
                .or_insert_with(|| file.clone());
        }
    }
    for (module, example) in &present {
        if !layers.layer_of.contains_key(module) {
            findings.push(Finding {
                rule: Rule::Table,
                message: format!(
                    "module `{module}` ({example}) is not in the table under `## Module layers` \
                     in ARCHITECTURE.md: add it to the layer it belongs to"
                ),
            });
        }
    }
    for (module, layer) in &layers.layer_of {
        if !present.contains_key(module) {
            findings.push(Finding {
                rule: Rule::Table,
                message: format!(
                    "module `{module}` (layer {layer}) is in the table in ARCHITECTURE.md but \
                     there is no src/{module}.rs or src/{module}/: remove or rename it"
                ),
            });
        }
    }
    for import in graph.imports.iter() {
        let (Some(from), Some(to)) = (top_module(&import.from), top_module(&import.to)) else {
            continue;
        };
        if from == to {
            continue;
        }
        let (Some(from_layer), Some(to_layer)) =
            (layers.layer_of.get(from), layers.layer_of.get(to))
        else {
            continue; // already reported: module missing from the table
        };
        if !layers.allows(from_layer, to_layer) {
            findings.push(Finding {
                rule: Rule::Layer,
                message: format!(
                    "{}:{}: {}\n    `{from}` (layer {from_layer}) may not import `{to}` (layer \
                     {to_layer}); {from_layer} may import: {}",
                    import.from,
                    import.line,
                    import.describe(),
                    layers.describe_allowed(from_layer)
                ),
            });
        }
    }

    findings.sort_by_key(|f| f.rule); // stable: each rule's findings keep their order
    Report {
        files: graph.files.len(),
        edges: graph.edges(|_| true, |f| Some(f.to_string())).len(),
        layers: layers.layers.len(),
        findings,
    }
}

/// The top-level module a file belongs to; `None` for the crate root (`src/lib.rs`).
fn top_module(file: &str) -> Option<&str> {
    let rest = file.strip_prefix("src/")?;
    let first = rest.split('/').next()?;
    let name = first.strip_suffix(".rs").unwrap_or(first);
    (name != "lib").then_some(name)
}

/// `src/a/b.rs` and `src/a/b/mod.rs` are `a::b`; `src/lib.rs` is the root; `src/bin/x.rs` and
/// `src/bin/x/main.rs` are `bin::x` (the root of their own crate).
fn module_path(file: &str) -> Option<ModPath> {
    let rest = file.strip_prefix("src/")?.strip_suffix(".rs")?;
    let mut path: ModPath = rest.split('/').map(str::to_string).collect();
    if path == ["lib"] {
        return Some(Vec::new());
    }
    let mod_rs = path.len() > 1 && path.last().is_some_and(|l| l == "mod");
    let bin_main = path.len() == 3 && path[0] == "bin" && path[2] == "main";
    if mod_rs || bin_main {
        path.pop();
    }
    Some(path)
}

/// The module `crate::` means in `path`: the library root, or a binary's own root.
fn crate_root(path: &[String]) -> ModPath {
    if path.first().is_some_and(|p| p == "bin") && path.len() >= 2 {
        path[..2].to_vec()
    } else {
        Vec::new()
    }
}

/// The library's name in paths (`trueconf_bot::…`), as binaries import it.
fn lib_name() -> String {
    env!("CARGO_PKG_NAME").replace('-', "_")
}

// ---------------------------------------------------------------------------------------------
// The layer table
// ---------------------------------------------------------------------------------------------

#[derive(Debug)]
enum MayImport {
    Everything,
    Layers(Vec<String>),
}

#[derive(Debug)]
struct Layer {
    name: String,
    may_import: MayImport,
}

#[derive(Debug, Default)]
struct LayerTable {
    layers: Vec<Layer>,
    /// Module name → layer name.
    layer_of: BTreeMap<String, String>,
    /// Rows that could not be read fully; the rest of the table is still used.
    errors: Vec<String>,
}

impl LayerTable {
    /// Reads the first markdown table under `## Module layers`; `Err` if there is none.
    fn parse(markdown: &str) -> Result<Self, String> {
        let mut lines = markdown.lines().enumerate();
        lines
            .by_ref()
            .find(|(_, l)| {
                l.trim()
                    .strip_prefix("## ")
                    .is_some_and(|h| h.trim().eq_ignore_ascii_case("module layers"))
            })
            .ok_or("ARCHITECTURE.md has no `## Module layers` heading")?;
        let rows: Vec<(usize, Vec<String>)> = lines
            .take_while(|(_, l)| !l.starts_with("# ") && !l.starts_with("## "))
            .skip_while(|(_, l)| !l.trim_start().starts_with('|'))
            .take_while(|(_, l)| l.trim_start().starts_with('|'))
            .map(|(n, l)| (n + 1, split_row(l)))
            .collect();
        let Some(((header_line, header), body)) = rows.split_first() else {
            return Err("no table under `## Module layers` in ARCHITECTURE.md".into());
        };
        let column = |name: &str| {
            header
                .iter()
                .position(|c| c.eq_ignore_ascii_case(name))
                .ok_or_else(|| {
                    format!(
                        "ARCHITECTURE.md:{header_line}: the layer table needs the columns \
                         `| layer | modules | may import |`, found {header:?}"
                    )
                })
        };
        let (layer_col, modules_col, may_col) =
            (column("layer")?, column("modules")?, column("may import")?);

        let mut table = LayerTable::default();
        let mut raw_may = Vec::new();
        for (line, cells) in body {
            if cells
                .iter()
                .all(|c| c.chars().all(|ch| matches!(ch, '-' | ':' | ' ')))
            {
                continue; // the |---|---| separator
            }
            let cell = |i: usize| cells.get(i).map(String::as_str).unwrap_or("");
            let name = unquote(cell(layer_col));
            if name.is_empty() {
                table.errors.push(format!(
                    "ARCHITECTURE.md:{line}: a layer row without a name"
                ));
                continue;
            }
            if table.layers.iter().any(|l| l.name == name) {
                table
                    .errors
                    .push(format!("ARCHITECTURE.md:{line}: layer `{name}` twice"));
                continue;
            }
            for module in without_remarks(cell(modules_col)).split(',') {
                let module = unquote(module);
                if module.is_empty() {
                    continue;
                }
                if !module
                    .chars()
                    .all(|c| c.is_alphanumeric() || c == '_' || c == '-')
                {
                    table.errors.push(format!(
                        "ARCHITECTURE.md:{line}: `{module}` in layer {name} is not a module name"
                    ));
                } else if let Some(other) = table.layer_of.get(&module) {
                    table.errors.push(format!(
                        "ARCHITECTURE.md:{line}: module `{module}` is in layers {other} and {name}"
                    ));
                } else {
                    table.layer_of.insert(module, name.clone());
                }
            }
            raw_may.push((*line, name.clone(), cell(may_col).to_string()));
            table.layers.push(Layer {
                name,
                may_import: MayImport::Layers(Vec::new()),
            });
        }

        for (line, name, raw) in raw_may {
            let mut allowed = Vec::new();
            let mut everything = false;
            for entry in without_remarks(&raw).split(',') {
                let entry = unquote(entry);
                match entry.to_ascii_lowercase().as_str() {
                    "" | "—" | "–" | "-" | "none" => {}
                    "everything" | "all" => everything = true,
                    _ if table.layers.iter().any(|l| l.name == entry) => allowed.push(entry),
                    _ => table.errors.push(format!(
                        "ARCHITECTURE.md:{line}: layer {name} may import `{entry}`, which is not \
                         a layer (layers: {}; or \"everything\", or \"—\" for none)",
                        table
                            .layers
                            .iter()
                            .map(|l| l.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )),
                }
            }
            let layer = table
                .layers
                .iter_mut()
                .find(|l| l.name == name)
                .expect("pushed above");
            layer.may_import = if everything {
                MayImport::Everything
            } else {
                MayImport::Layers(allowed)
            };
        }
        Ok(table)
    }

    fn allows(&self, from: &str, to: &str) -> bool {
        from == to
            || self.layers.iter().any(|l| {
                l.name == from
                    && match &l.may_import {
                        MayImport::Everything => true,
                        MayImport::Layers(names) => names.iter().any(|n| n == to),
                    }
            })
    }

    fn describe_allowed(&self, layer: &str) -> String {
        match self
            .layers
            .iter()
            .find(|l| l.name == layer)
            .map(|l| &l.may_import)
        {
            Some(MayImport::Layers(names)) if !names.is_empty() => {
                format!("{} (and its own layer)", names.join(", "))
            }
            _ => "only its own layer".into(),
        }
    }
}

fn split_row(line: &str) -> Vec<String> {
    let line = line.trim();
    let line = line.strip_prefix('|').unwrap_or(line);
    let line = line.strip_suffix('|').unwrap_or(line);
    line.split('|').map(|c| c.trim().to_string()).collect()
}

fn unquote(s: &str) -> String {
    s.trim().trim_matches('`').trim().to_string()
}

/// Drops `(…)` remarks: "`testkit` (feature `testkit`)" is the module `testkit`.
fn without_remarks(s: &str) -> String {
    let mut out = String::new();
    let mut depth = 0usize;
    for c in s.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            _ if depth == 0 => out.push(c),
            _ => {}
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// The import graph
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum ImportKind {
    Use,
    /// `pub use`, `pub(crate) use`, `pub(super) use`…: a re-export.
    PubUse,
    /// A path in code.
    Path,
    /// A path in a string in an attribute: `#[serde(with = "super::ms")]`.
    Attribute,
}

/// One import of one file by another, as written.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Import {
    from: String,
    line: usize,
    text: String,
    kind: ImportKind,
    to: String,
}

impl Import {
    fn describe(&self) -> String {
        match self.kind {
            ImportKind::Use => format!("use {}", self.text),
            ImportKind::PubUse => format!("pub use {}", self.text),
            ImportKind::Path => format!("{} (path in code)", self.text),
            ImportKind::Attribute => format!("\"{}\" (path in an attribute)", self.text),
        }
    }

    /// A parent module file re-exporting one of its own descendants.
    fn reexports_descendant(&self) -> bool {
        let (Some(from), Some(to)) = (module_path(&self.from), module_path(&self.to)) else {
            return false;
        };
        self.kind == ImportKind::PubUse && to.len() > from.len() && to.starts_with(&from)
    }
}

struct ImportGraph {
    /// Files analysed (test-only files excluded).
    files: BTreeSet<String>,
    /// Every import between two different files, outside test code.
    imports: BTreeSet<Import>,
}

/// Edges between nodes (files, modules…) with the imports that make each one.
type Edges<'a> = BTreeMap<(String, String), Vec<&'a Import>>;

impl ImportGraph {
    fn build(files: &Files) -> Self {
        let lib = lib_name();
        let scanned: BTreeMap<&str, Scanned> = files
            .iter()
            .filter(|(path, _)| module_path(path).is_some())
            .map(|(path, text)| {
                let base = module_path(path).expect("filtered");
                (path.as_str(), scan(&lex(text), &lib, base))
            })
            .collect();

        // Modules compiled only for tests: `#[cfg(test)] mod x;` and `#![cfg(test)]` files.
        let mut test_only: Vec<ModPath> = Vec::new();
        for (file, s) in &scanned {
            let path = module_path(file).expect("filtered above");
            if s.test_only {
                test_only.push(path.clone());
            }
            for child in &s.test_children {
                let mut p = path.clone();
                p.push(child.clone());
                test_only.push(p);
            }
        }
        let is_test = |p: &ModPath| test_only.iter().any(|t| p.starts_with(t));

        // Module path → the file that holds it (inline modules map to their file).
        let mut modules: BTreeMap<ModPath, &str> = BTreeMap::new();
        for (file, s) in &scanned {
            let path = module_path(file).expect("filtered above");
            if is_test(&path) {
                continue;
            }
            for inline in &s.inline_modules {
                modules.insert(inline.clone(), file);
            }
            modules.insert(path, file);
        }

        let resolver = Resolver {
            modules: &modules,
            lib: &lib,
            reexports: BTreeMap::new(),
        };
        // Names `src/lib.rs` re-exports (`pub use error::{Error, Result}`), to see through them.
        let mut reexports = BTreeMap::new();
        if let Some(root) = scanned.get("src/lib.rs") {
            for r in root.refs.iter().filter(|r| r.kind == ImportKind::PubUse) {
                let name = r.alias.clone().or_else(|| r.segments.last().cloned());
                if let (Some(name), Some(path)) = (name, resolver.absolute(r, &[])) {
                    reexports.insert(name, path);
                }
            }
        }
        let resolver = Resolver {
            reexports,
            ..resolver
        };

        let mut graph = ImportGraph {
            files: BTreeSet::new(),
            imports: BTreeSet::new(),
        };
        for (file, s) in &scanned {
            let path = module_path(file).expect("filtered above");
            if is_test(&path) {
                continue;
            }
            graph.files.insert(file.to_string());
            for r in &s.refs {
                let Some(to) = resolver.file_of(r, &path) else {
                    continue;
                };
                if to != *file {
                    graph.imports.insert(Import {
                        from: file.to_string(),
                        line: r.line,
                        text: r.segments.join("::"),
                        kind: r.kind,
                        to: to.to_string(),
                    });
                }
            }
        }
        graph
    }

    /// The graph between the nodes `node_of` puts files in (files without a node and imports
    /// within one node drop out), keeping only the imports `keep` accepts.
    fn edges(
        &self,
        keep: impl Fn(&Import) -> bool,
        node_of: impl Fn(&str) -> Option<String>,
    ) -> Edges<'_> {
        let mut edges: Edges<'_> = BTreeMap::new();
        for import in self.imports.iter().filter(|i| keep(i)) {
            if let (Some(a), Some(b)) = (node_of(&import.from), node_of(&import.to))
                && a != b
            {
                edges.entry((a, b)).or_default().push(import);
            }
        }
        edges
    }
}

struct Resolver<'a> {
    modules: &'a BTreeMap<ModPath, &'a str>,
    lib: &'a str,
    reexports: BTreeMap<String, ModPath>,
}

impl Resolver<'_> {
    /// The absolute path a reference names, or `None` if it leaves the crate (`std::…`).
    fn absolute(&self, r: &RawRef, file_path: &[String]) -> Option<ModPath> {
        let segs = &r.segments;
        let first = segs.first()?.as_str();
        let (mut base, rest) = match first {
            "crate" | "$crate" => (crate_root(file_path), &segs[1..]),
            "self" => (r.scope.clone(), &segs[1..]),
            "super" => {
                let mut base = r.scope.clone();
                let ups = segs.iter().take_while(|s| *s == "super").count();
                for _ in 0..ups {
                    base.pop()?;
                }
                (base, &segs[ups..])
            }
            _ if first == self.lib => (Vec::new(), &segs[1..]),
            _ => {
                // A name in scope: a child module of the current one, or an outside crate.
                let mut child = r.scope.clone();
                child.push(first.to_string());
                if !self.modules.contains_key(&child) {
                    return None;
                }
                (r.scope.clone(), &segs[..])
            }
        };
        base.extend(rest.iter().cloned());
        Some(base)
    }

    /// The file a reference imports: that of the longest prefix of its path that is a module.
    fn file_of(&self, r: &RawRef, file_path: &[String]) -> Option<&str> {
        let path = self.absolute(r, file_path)?;
        let (file, item) = self.longest_module(&path)?;
        if file == "src/lib.rs"
            && let Some(target) = item.and_then(|name| self.reexports.get(name))
        {
            return self.longest_module(target).map(|(f, _)| f);
        }
        Some(file)
    }

    fn longest_module<'p>(&self, path: &'p [String]) -> Option<(&str, Option<&'p String>)> {
        (0..=path.len())
            .rev()
            .find_map(|n| self.modules.get(&path[..n]).map(|f| (*f, path.get(n))))
    }
}

// ---------------------------------------------------------------------------------------------
// Circles (strongly connected components, Tarjan)
// ---------------------------------------------------------------------------------------------

/// The strongly connected components with more than one node, each sorted, in node order.
fn circles(edges: &Edges<'_>) -> Vec<Vec<String>> {
    let mut adjacent: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (a, b) in edges.keys() {
        adjacent.entry(a).or_default().push(b);
        adjacent.entry(b).or_default();
    }

    struct Tarjan<'g> {
        adjacent: &'g BTreeMap<&'g str, Vec<&'g str>>,
        index: BTreeMap<&'g str, usize>,
        low: BTreeMap<&'g str, usize>,
        stack: Vec<&'g str>,
        on_stack: BTreeSet<&'g str>,
        components: Vec<Vec<String>>,
    }

    impl<'g> Tarjan<'g> {
        fn visit(&mut self, v: &'g str) {
            let n = self.index.len();
            self.index.insert(v, n);
            self.low.insert(v, n);
            self.stack.push(v);
            self.on_stack.insert(v);
            let adjacent = self.adjacent;
            for &w in &adjacent[v] {
                if !self.index.contains_key(w) {
                    self.visit(w);
                    let low = self.low[v].min(self.low[w]);
                    self.low.insert(v, low);
                } else if self.on_stack.contains(w) {
                    let low = self.low[v].min(self.index[w]);
                    self.low.insert(v, low);
                }
            }
            if self.low[v] == self.index[v] {
                let mut component = Vec::new();
                while let Some(w) = self.stack.pop() {
                    self.on_stack.remove(w);
                    component.push(w.to_string());
                    if w == v {
                        break;
                    }
                }
                if component.len() > 1 {
                    component.sort();
                    self.components.push(component);
                }
            }
        }
    }

    let mut tarjan = Tarjan {
        adjacent: &adjacent,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        components: Vec::new(),
    };
    for &v in adjacent.keys() {
        if !tarjan.index.contains_key(v) {
            tarjan.visit(v);
        }
    }
    tarjan.components.sort();
    tarjan.components
}

fn describe_circle(what: &str, nodes: &[String], edges: &Edges<'_>, max: usize) -> String {
    let mut out = format!(
        "circle between {} {what}: {}",
        nodes.len(),
        nodes.join(", ")
    );
    for ((a, b), imports) in edges {
        if !nodes.contains(a) || !nodes.contains(b) {
            continue;
        }
        out.push_str(&format!("\n    {a} -> {b}"));
        let mut listed = BTreeSet::new();
        for i in imports.iter() {
            if listed.insert((&i.from, i.line, &i.text)) && listed.len() <= max {
                out.push_str(&format!(
                    "\n        {}:{}  {}",
                    i.from,
                    i.line,
                    i.describe()
                ));
            }
        }
        if listed.len() > max {
            out.push_str(&format!("\n        … and {} more", listed.len() - max));
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Reading one file: a lexer that drops comments and literals, then the references in it
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum TokKind {
    Ident,
    Punct,
    /// A string literal; `text` is its content.
    Str,
    /// Numbers, characters, lifetimes.
    Other,
}

#[derive(Clone, Debug)]
struct Tok {
    kind: TokKind,
    text: String,
    line: usize,
}

fn lex(src: &str) -> Vec<Tok> {
    let c: Vec<char> = src.chars().collect();
    let at = |i: usize| c.get(i).copied().unwrap_or('\0');
    let is_ident = |ch: char| ch.is_alphanumeric() || ch == '_';
    let mut toks = Vec::new();
    let mut line = 1;
    let mut i = 0;
    // Skips a quoted literal that starts at `c[i]` (the quote), counting lines; returns the
    // index after it and its content.
    let quoted = |mut i: usize, line: &mut usize| {
        let quote = c[i];
        let start = i + 1;
        i += 1;
        while i < c.len() && c[i] != quote {
            if c[i] == '\\' {
                i += 1;
            }
            if at(i) == '\n' {
                *line += 1;
            }
            i += 1;
        }
        (i + 1, c[start..i.min(c.len())].iter().collect::<String>())
    };
    while i < c.len() {
        let ch = c[i];
        let start_line = line;
        let push = |toks: &mut Vec<Tok>, kind, text: String| {
            toks.push(Tok {
                kind,
                text,
                line: start_line,
            })
        };
        if ch == '\n' {
            line += 1;
            i += 1;
        } else if ch.is_whitespace() {
            i += 1;
        } else if ch == '/' && at(i + 1) == '/' {
            while i < c.len() && c[i] != '\n' {
                i += 1;
            }
        } else if ch == '/' && at(i + 1) == '*' {
            let mut depth = 0;
            while i < c.len() {
                if c[i] == '/' && at(i + 1) == '*' {
                    depth += 1;
                    i += 2;
                } else if c[i] == '*' && at(i + 1) == '/' {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    if c[i] == '\n' {
                        line += 1;
                    }
                    i += 1;
                }
            }
        } else if ch == '"' {
            let (next, text) = quoted(i, &mut line);
            push(&mut toks, TokKind::Str, text);
            i = next;
        } else if ch == '\'' {
            if at(i + 1) == '\\' || (at(i + 2) == '\'' && at(i + 1) != '\n') {
                let (next, _) = quoted(i, &mut line); // a character
                i = next;
            } else {
                i += 1; // a lifetime or a label
                while i < c.len() && is_ident(c[i]) {
                    i += 1;
                }
            }
            push(&mut toks, TokKind::Other, String::new());
        } else if is_ident(ch) && !ch.is_ascii_digit() {
            let start = i;
            while i < c.len() && is_ident(c[i]) {
                i += 1;
            }
            let word: String = c[start..i].iter().collect();
            let hashes = c[i..].iter().take_while(|&&h| h == '#').count();
            if matches!(word.as_str(), "r" | "br" | "cr") && at(i + hashes) == '"' {
                // A raw string: ends at `"` followed by as many `#`.
                let body = i + hashes + 1;
                let mut j = body;
                while j < c.len() && !(c[j] == '"' && (1..=hashes).all(|k| at(j + k) == '#')) {
                    if c[j] == '\n' {
                        line += 1;
                    }
                    j += 1;
                }
                push(
                    &mut toks,
                    TokKind::Str,
                    c[body..j.min(c.len())].iter().collect(),
                );
                i = j + 1 + hashes;
            } else if word == "r" && hashes == 1 && is_ident(at(i + 1)) {
                let start = i + 1; // a raw identifier: r#type
                i += 1;
                while i < c.len() && is_ident(c[i]) {
                    i += 1;
                }
                push(&mut toks, TokKind::Ident, c[start..i].iter().collect());
            } else if matches!(word.as_str(), "b" | "c") && at(i) == '"' {
                let (next, text) = quoted(i, &mut line);
                push(&mut toks, TokKind::Str, text);
                i = next;
            } else if word == "b" && at(i) == '\'' {
                let (next, _) = quoted(i, &mut line);
                push(&mut toks, TokKind::Other, String::new());
                i = next;
            } else {
                push(&mut toks, TokKind::Ident, word);
            }
        } else if ch.is_ascii_digit() {
            while i < c.len() && is_ident(c[i]) {
                i += 1;
            }
            push(&mut toks, TokKind::Other, String::new());
        } else {
            let pair: String = [ch, at(i + 1)].iter().collect();
            if matches!(pair.as_str(), "::" | "->" | "=>") {
                push(&mut toks, TokKind::Punct, pair);
                i += 2;
            } else {
                push(&mut toks, TokKind::Punct, ch.to_string());
                i += 1;
            }
        }
    }
    toks
}

/// A path one file mentions, not yet resolved.
#[derive(Debug)]
struct RawRef {
    /// The module it appears in (the file's, or an inline module's in it).
    scope: ModPath,
    /// As written: `["super", "scan", "Kind"]`.
    segments: Vec<String>,
    /// `use a::B as C` → `C`.
    alias: Option<String>,
    kind: ImportKind,
    line: usize,
}

#[derive(Debug, Default)]
struct Scanned {
    refs: Vec<RawRef>,
    /// Absolute paths of `mod x { … }` blocks in the file.
    inline_modules: Vec<ModPath>,
    /// `#[cfg(test)] mod x;`: modules in their own file that only tests compile.
    test_children: Vec<String>,
    /// `#![cfg(test)]` at the top of the file.
    test_only: bool,
}

/// Finds the references in the tokens of the file of module `base`.
fn scan(toks: &[Tok], lib: &str, base: ModPath) -> Scanned {
    Scanner {
        toks,
        lib,
        base,
        out: Scanned::default(),
        scope: Vec::new(),
        depth: 0,
    }
    .run()
}

struct Scanner<'t> {
    toks: &'t [Tok],
    lib: &'t str,
    /// The file's module path.
    base: ModPath,
    out: Scanned,
    /// Inline modules entered so far, each with the brace depth of its body.
    scope: Vec<(String, usize)>,
    depth: usize,
}

impl Scanner<'_> {
    fn tok(&self, i: usize) -> &str {
        self.toks
            .get(i)
            .filter(|t| t.kind != TokKind::Str)
            .map_or("", |t| t.text.as_str())
    }

    fn ident(&self, i: usize) -> Option<&str> {
        self.toks
            .get(i)
            .filter(|t| t.kind == TokKind::Ident)
            .map(|t| t.text.as_str())
    }

    /// The module the scanner is in: the file's, or an inline module's in it.
    fn scope(&self) -> ModPath {
        let inline = self.scope.iter().map(|(name, _)| name.clone());
        self.base.iter().cloned().chain(inline).collect()
    }

    fn run(mut self) -> Scanned {
        let mut i = 0;
        let mut test_item = false;
        let mut attribute_refs = Vec::new();
        while i < self.toks.len() {
            // Attributes: `#[…]` or `#![…]`.
            if self.tok(i) == "#" {
                let inner = self.tok(i + 1) == "!";
                let open = if inner { i + 2 } else { i + 1 };
                if self.tok(open) == "[" {
                    let close = self.matching(open);
                    let body = &self.toks[open + 1..close.min(self.toks.len())];
                    if is_cfg_test(body) {
                        if inner && self.scope.is_empty() && self.depth == 0 {
                            self.out.test_only = true;
                            return self.out;
                        } else if inner {
                            i = self.end_of_block(close);
                            continue;
                        }
                        test_item = true;
                    }
                    for t in body.iter().filter(|t| t.kind == TokKind::Str) {
                        if let Some(r) = self.path_in_string(t) {
                            attribute_refs.push(r);
                        }
                    }
                    i = close + 1;
                    continue;
                }
            }
            if test_item {
                // The item under `#[cfg(test)]`: skip it, remembering `mod x;`.
                test_item = false;
                attribute_refs.clear();
                let mut j = i;
                while matches!(self.tok(j), "pub" | "crate" | "(" | ")" | "super" | "in") {
                    j += 1;
                }
                if self.tok(j) == "mod"
                    && self.tok(j + 2) == ";"
                    && let Some(name) = self.ident(j + 1)
                {
                    self.out.test_children.push(name.to_string());
                }
                i = self.end_of_item(i);
                continue;
            }
            self.out.refs.append(&mut attribute_refs);

            match self.tok(i) {
                "{" => {
                    self.depth += 1;
                    i += 1;
                }
                "}" => {
                    if self.scope.last().is_some_and(|(_, d)| *d == self.depth) {
                        self.scope.pop();
                    }
                    self.depth = self.depth.saturating_sub(1);
                    i += 1;
                }
                "mod" if self.ident(i + 1).is_some() && self.tok(i + 2) == "{" => {
                    self.depth += 1;
                    let name = self.toks[i + 1].text.clone();
                    self.scope.push((name, self.depth));
                    self.out.inline_modules.push(self.scope());
                    i += 3;
                }
                "use" => i = self.use_declaration(i),
                _ if self.starts_path(i) => i = self.code_path(i),
                _ => i += 1,
            }
        }
        self.out
    }

    /// The index of the bracket that closes the one at `open`.
    fn matching(&self, open: usize) -> usize {
        let mut depth = 0usize;
        for j in open..self.toks.len() {
            match self.tok(j) {
                "(" | "[" | "{" => depth += 1,
                ")" | "]" | "}" => {
                    depth -= 1;
                    if depth == 0 {
                        return j;
                    }
                }
                _ => {}
            }
        }
        self.toks.len()
    }

    /// The index of the `}` that closes the block the token at `i` is in.
    fn end_of_block(&self, i: usize) -> usize {
        let mut depth = 0usize;
        for j in i + 1..self.toks.len() {
            match self.tok(j) {
                "(" | "[" | "{" => depth += 1,
                ")" | "]" | "}" if depth == 0 => return j,
                ")" | "]" | "}" => depth -= 1,
                _ => {}
            }
        }
        self.toks.len()
    }

    /// The index after the item (or field, statement, match arm) starting at `i`: after its
    /// `;`, its `,`, or its `{ … }` body, or at a bracket that closes what encloses it.
    fn end_of_item(&self, i: usize) -> usize {
        let (mut depth, mut angle) = (0usize, 0usize);
        for j in i..self.toks.len() {
            match self.tok(j) {
                "(" | "[" | "{" => depth += 1,
                ")" | "]" | "}" if depth == 0 => return j,
                "}" if depth == 1 => return j + 1,
                ")" | "]" | "}" => depth -= 1,
                ";" if depth == 0 => return j + 1,
                "," if depth == 0 && angle == 0 => return j + 1,
                "<" if depth == 0 => angle += 1,
                ">" if depth == 0 => angle = angle.saturating_sub(1),
                _ => {}
            }
        }
        self.toks.len()
    }

    /// Whether a path that can name this crate's modules starts at `i`: `crate::`,
    /// `super::`, `self::`, `$crate::`, `<lib>::`, or `name::` (a child module, perhaps).
    fn starts_path(&self, i: usize) -> bool {
        let Some(word) = self.ident(i) else {
            return false;
        };
        if self.tok(i + 1) != "::" || matches!(self.tok(i.wrapping_sub(1)), "::" | ".") {
            return false;
        }
        // `pub(in crate::a)` is a visibility, not an import.
        let in_visibility =
            i >= 3 && self.tok(i - 1) == "in" && self.tok(i - 2) == "(" && self.tok(i - 3) == "pub";
        !in_visibility && !word.starts_with(char::is_uppercase)
    }

    /// Records the path starting at `i` (in code); returns the index after it.
    fn code_path(&mut self, i: usize) -> usize {
        let mut segments = Vec::new();
        if self.tok(i.wrapping_sub(1)) == "$" && self.tok(i) == "crate" {
            segments.push("$crate".to_string());
        } else {
            segments.push(self.toks[i].text.clone());
        }
        let mut j = i + 1;
        while self.tok(j) == "::" {
            let Some(next) = self.ident(j + 1) else { break };
            segments.push(next.to_string());
            j += 2;
        }
        // `name::…` may be a child module (`html::escape`) or not (`std::…`): resolution
        // keeps only what names a module of the crate.
        let line = self.toks[j - 1].line;
        self.push_ref(segments, None, ImportKind::Path, line);
        j
    }

    fn push_ref(
        &mut self,
        segments: Vec<String>,
        alias: Option<String>,
        kind: ImportKind,
        line: usize,
    ) {
        let scope = self.scope();
        self.out.refs.push(RawRef {
            scope,
            segments,
            alias,
            kind,
            line,
        });
    }

    /// `#[serde(with = "super::ms")]`: a string that is a path into the crate.
    fn path_in_string(&self, t: &Tok) -> Option<RawRef> {
        let segments: Vec<String> = t.text.split("::").map(str::to_string).collect();
        let first = segments.first()?.as_str();
        let rooted = matches!(first, "crate" | "super" | "self") || first == self.lib;
        let well_formed = segments.len() > 1
            && segments
                .iter()
                .all(|s| !s.is_empty() && s.chars().all(|c| c.is_alphanumeric() || c == '_'));
        (rooted && well_formed).then(|| RawRef {
            scope: self.scope(),
            segments,
            alias: None,
            kind: ImportKind::Attribute,
            line: t.line,
        })
    }

    /// Records the leaves of the `use` tree at `i`; returns the index after its `;`.
    fn use_declaration(&mut self, i: usize) -> usize {
        let public = match self.tok(i.wrapping_sub(1)) {
            "pub" => true,
            ")" => (0..i)
                .rev()
                .find(|&j| self.tok(j) == "(")
                .is_some_and(|j| self.tok(j.wrapping_sub(1)) == "pub"),
            _ => false,
        };
        let kind = if public {
            ImportKind::PubUse
        } else {
            ImportKind::Use
        };
        let mut leaves = Vec::new();
        let mut j = i + 1;
        self.use_tree(&mut j, Vec::new(), &mut leaves);
        for (mut segments, alias, line) in leaves {
            if segments.last().is_some_and(|s| s == "self") {
                segments.pop(); // `use a::{self, B}`: the module `a`
            }
            if segments.first().is_some_and(|s| s == "::") || segments.is_empty() {
                continue; // `use ::outside_crate::…`
            }
            self.push_ref(segments, alias, kind, line);
        }
        while j < self.toks.len() && self.tok(j) != ";" {
            j += 1;
        }
        j + 1
    }

    /// Parses one use tree at `*j` under `prefix`, pushing `(path, alias, line)` leaves.
    fn use_tree(
        &self,
        j: &mut usize,
        mut prefix: Vec<String>,
        leaves: &mut Vec<(Vec<String>, Option<String>, usize)>,
    ) {
        if self.tok(*j) == "::" {
            *j += 1;
            if prefix.is_empty() {
                prefix.push("::".into());
            }
        }
        loop {
            if self.tok(*j) == "$" && self.tok(*j + 1) == "crate" {
                prefix.push("$crate".into());
                *j += 2;
            } else if let Some(word) = self.ident(*j) {
                prefix.push(word.to_string());
                *j += 1;
            } else if self.tok(*j) == "*" {
                let line = self.toks[*j].line;
                *j += 1;
                leaves.push((prefix, None, line));
                return;
            } else if self.tok(*j) == "{" {
                *j += 1;
                while *j < self.toks.len() && self.tok(*j) != "}" {
                    let before = *j;
                    self.use_tree(j, prefix.clone(), leaves);
                    if self.tok(*j) == "," {
                        *j += 1;
                    } else if *j == before {
                        break; // not a use tree: give up on this group
                    }
                }
                *j += 1;
                return;
            } else {
                return; // not a use tree
            }
            if self.tok(*j) == "::" {
                *j += 1;
                continue;
            }
            let line = self.toks[*j - 1].line;
            let mut alias = None;
            if self.tok(*j) == "as" {
                alias = self.ident(*j + 1).map(str::to_string);
                *j += 2;
            }
            leaves.push((prefix, alias, line));
            return;
        }
    }
}

/// `cfg(test)` or `cfg(all(test, …))`: code only tests compile.
fn is_cfg_test(attribute: &[Tok]) -> bool {
    let words: Vec<&str> = attribute.iter().map(|t| t.text.as_str()).collect();
    matches!(words.as_slice(), ["cfg", "(", "test", ")"])
        || (words.starts_with(&["cfg", "(", "all", "("])
            && words
                .iter()
                .skip(4)
                .take_while(|w| **w != ")")
                .any(|w| *w == "test")
            && !words.contains(&"not"))
}

// ---------------------------------------------------------------------------------------------
// The analysis on small in-memory trees: each rule can fail
// ---------------------------------------------------------------------------------------------

/// A layer table in the format ARCHITECTURE.md uses.
const TABLE: &str = "\
# Architecture

## Module layers

Dependencies point one way.

| layer | modules | may import |
|---|---|---|
| base | `sync` | — |
| model | `types`, `error` | base |
| runtime | `runtime` (actors) | base, model |
| binaries | `bin` | everything |

## The life of an event
";

fn tree(files: &[(&str, &str)]) -> Files {
    files
        .iter()
        .map(|(path, text)| (path.to_string(), text.to_string()))
        .collect()
}

/// A crate with one file per module of [`TABLE`], then `changes` (added or replaced).
fn crate_with(changes: &[(&str, &str)]) -> Files {
    let mut files = tree(&[
        (
            "src/lib.rs",
            "pub mod error;\nmod sync;\npub mod types;\npub mod runtime;\npub use error::Error;\n",
        ),
        ("src/sync.rs", "pub fn lock() {}\n"),
        ("src/error.rs", "pub struct Error;\n"),
        ("src/types/mod.rs", "pub struct Message;\n"),
        ("src/runtime/mod.rs", "pub struct Engine;\n"),
        (
            "src/bin/tool.rs",
            "use trueconf_bot::runtime::Engine;\nfn main() {}\n",
        ),
    ]);
    files.extend(tree(changes));
    files
}

fn messages(report: &Report, rule: Rule) -> Vec<&str> {
    report
        .findings
        .iter()
        .filter(|f| f.rule == rule)
        .map(|f| f.message.as_str())
        .collect()
}

fn imports(files: &Files) -> Vec<String> {
    let graph = ImportGraph::build(files);
    graph
        .imports
        .iter()
        .map(|i| format!("{}:{} {} -> {}", i.from, i.line, i.text, i.to))
        .collect()
}

#[test]
fn a_clean_tree_passes() {
    let report = analyze(&crate_with(&[]), TABLE);
    assert!(report.findings.is_empty(), "{report}");
    assert_eq!(
        (report.files, report.edges, report.layers),
        (6, 2, 4),
        "{report}"
    );
}

#[test]
fn a_circle_between_two_files_is_reported_with_its_imports() {
    let files = crate_with(&[
        ("src/types/mod.rs", "pub mod a;\npub mod b;\n"),
        ("src/types/a.rs", "use super::b::B;\npub struct A;\n"),
        ("src/types/b.rs", "pub struct B(pub crate::types::a::A);\n"),
    ]);
    let report = analyze(&files, TABLE);
    let circles = messages(&report, Rule::FileCircle);
    assert_eq!(circles.len(), 1, "{report}");
    assert!(circles[0].starts_with("circle between 2 files: src/types/a.rs, src/types/b.rs"));
    assert!(
        circles[0].contains("src/types/a.rs:1  use super::b::B"),
        "{report}"
    );
    assert!(circles[0].contains("src/types/b.rs:1  crate::types::a::A (path in code)"));
    assert_eq!(report.findings.len(), 1, "{report}");
}

#[test]
fn a_circle_between_top_level_modules_is_reported_even_without_a_file_circle() {
    // types/a.rs → error.rs → types/b.rs: no file is on a circle, the modules are.
    let files = crate_with(&[
        ("src/types/mod.rs", "pub mod a;\npub mod b;\n"),
        (
            "src/types/a.rs",
            "pub fn f() -> crate::error::Error { todo!() }\n",
        ),
        ("src/types/b.rs", "pub struct B;\n"),
        ("src/error.rs", "pub struct Error(crate::types::b::B);\n"),
    ]);
    let report = analyze(&files, TABLE);
    assert_eq!(report.count(Rule::FileCircle), 0, "{report}");
    let circles = messages(&report, Rule::ModuleCircle);
    assert_eq!(circles.len(), 1, "{report}");
    assert!(circles[0].contains("error -> types"), "{report}");
    assert!(circles[0].contains("types -> error"), "{report}");
    assert_eq!(report.findings.len(), 1, "{report}");
}

#[test]
fn a_circle_between_children_of_runtime_is_reported() {
    // connection/socket.rs → requests.rs → connection/mod.rs: files fine, folders not.
    let files = crate_with(&[
        (
            "src/runtime/mod.rs",
            "pub mod connection;\npub mod requests;\n",
        ),
        (
            "src/runtime/connection/mod.rs",
            "pub mod socket;\npub struct Epoch;\n",
        ),
        (
            "src/runtime/connection/socket.rs",
            "use crate::runtime::requests::Pending;\n",
        ),
        (
            "src/runtime/requests.rs",
            "pub struct Pending(super::connection::Epoch);\n",
        ),
    ]);
    let report = analyze(&files, TABLE);
    assert_eq!(report.count(Rule::FileCircle), 0, "{report}");
    let circles = messages(&report, Rule::NestedCircle);
    assert_eq!(circles.len(), 1, "{report}");
    assert!(
        circles[0].contains("runtime::connection -> runtime::requests"),
        "{report}"
    );
    assert!(circles[0].contains("src/runtime/requests.rs:1  super::connection::Epoch"));
}

#[test]
fn a_model_module_importing_the_runtime_is_a_layer_violation() {
    let files = crate_with(&[(
        "src/types/mod.rs",
        "pub struct Message;\n\nuse crate::runtime::Engine;\n",
    )]);
    let report = analyze(&files, TABLE);
    let violations = messages(&report, Rule::Layer);
    assert_eq!(violations.len(), 1, "{report}");
    assert!(violations[0].starts_with("src/types/mod.rs:3: use crate::runtime::Engine"));
    assert!(
        violations[0].contains("`types` (layer model) may not import `runtime` (layer runtime)")
    );
    assert_eq!(report.findings.len(), 1, "{report}");
}

#[test]
fn imports_the_table_allows_pass_and_lib_re_exports_count_for_their_module() {
    let allowed = crate_with(&[
        (
            "src/runtime/mod.rs",
            "use crate::{sync::lock, types::Message};\npub struct Engine;\n",
        ),
        (
            "src/types/mod.rs",
            "use crate::sync;\npub struct Message(crate::Error);\n",
        ),
    ]);
    let report = analyze(&allowed, TABLE);
    assert!(report.findings.is_empty(), "{report}");
    assert!(imports(&allowed).contains(&"src/types/mod.rs:2 crate::Error -> src/error.rs".into()));

    // `crate::Error` is `error`'s, though `src/lib.rs` re-exports it: base may not import it.
    let report = analyze(
        &crate_with(&[("src/sync.rs", "pub fn lock() -> crate::Error { todo!() }\n")]),
        TABLE,
    );
    let violations = messages(&report, Rule::Layer);
    assert_eq!(violations.len(), 1, "{report}");
    assert!(violations[0].contains("`sync` (layer base) may not import `error` (layer model)"));
}

#[test]
fn a_parent_re_exporting_its_child_is_not_a_circle_but_a_plain_use_is() {
    let reexport = crate_with(&[
        (
            "src/types/mod.rs",
            "mod inner;\nmod other;\npub use inner::Inner;\npub(crate) use self::other::Other as Renamed;\npub struct Outer;\n",
        ),
        (
            "src/types/inner.rs",
            "use super::Outer;\npub struct Inner(Outer);\n",
        ),
        ("src/types/other.rs", "pub struct Other(super::Outer);\n"),
    ]);
    let report = analyze(&reexport, TABLE);
    assert!(report.findings.is_empty(), "{report}");

    let plain = crate_with(&[
        (
            "src/types/mod.rs",
            "mod inner;\nuse inner::Inner;\npub struct Outer;\n",
        ),
        (
            "src/types/inner.rs",
            "use super::Outer;\npub struct Inner(Outer);\n",
        ),
    ]);
    let report = analyze(&plain, TABLE);
    let circles = messages(&report, Rule::FileCircle);
    assert_eq!(circles.len(), 1, "{report}");
    assert!(
        circles[0].contains("src/types/mod.rs:2  use inner::Inner"),
        "{report}"
    );
}

#[test]
fn test_code_comments_and_literals_are_not_imports() {
    let source = r####"//! Module docs: `crate::runtime::Engine` in prose.

/// ```
/// use crate::runtime::Engine;
/// ```
pub struct Message;

// use crate::runtime::Engine;
/* crate::runtime::Engine /* nested */ crate::runtime::Engine */
pub const S: &str = "crate::runtime::Engine \" still
    a string, on two lines";
pub const R: &str = r#"use crate::runtime::Engine; "quoted" "#;
pub const Q: char = '"';
pub const B: &[u8] = b"crate::runtime::Engine";

#[cfg(test)]
mod tests {
    use crate::runtime::Engine;

    #[test]
    fn f() {
        let _ = crate::runtime::Engine;
    }
}

#[cfg(test)]
use crate::runtime::Engine;

#[cfg(test)]
mod more_tests;

pub fn after<'a>(s: &'a str) -> &'a str {
    crate::sync::lock();
    s
}
"####;
    let files = crate_with(&[
        ("src/types/mod.rs", source),
        ("src/types/more_tests.rs", "use crate::runtime::Engine;\n"),
    ]);
    let report = analyze(&files, TABLE);
    assert!(report.findings.is_empty(), "{report}");
    // Code after all of it is still read.
    let found = imports(&files);
    assert!(
        found.contains(&"src/types/mod.rs:33 crate::sync::lock -> src/sync.rs".into()),
        "{found:?}"
    );
    let from_types = found.iter().filter(|i| i.starts_with("src/types"));
    assert_eq!(from_types.count(), 1, "{found:?}");
}

#[test]
fn use_trees_relative_paths_and_inline_modules_resolve_to_files() {
    let files = crate_with(&[
        (
            "src/runtime/mod.rs",
            "pub mod conn;\nuse crate::{\n    error::Error,\n    types::{self, Message},\n};\nmod inner {\n    pub(crate) use super::super::sync::lock;\n}\n",
        ),
        (
            "src/runtime/conn.rs",
            "use super::inner::lock;\n#[serde(with = \"crate::types::wire\")]\npub struct Conn;\n",
        ),
    ]);
    let found = imports(&files);
    for expected in [
        "src/runtime/mod.rs:3 crate::error::Error -> src/error.rs",
        "src/runtime/mod.rs:4 crate::types -> src/types/mod.rs",
        "src/runtime/mod.rs:4 crate::types::Message -> src/types/mod.rs",
        "src/runtime/mod.rs:7 super::super::sync::lock -> src/sync.rs",
        "src/runtime/conn.rs:1 super::inner::lock -> src/runtime/mod.rs",
        "src/runtime/conn.rs:2 crate::types::wire -> src/types/mod.rs",
    ] {
        assert!(
            found.contains(&expected.to_string()),
            "{expected} not in {found:#?}"
        );
    }
}

#[test]
fn a_module_missing_from_the_table_or_a_table_module_missing_from_src_is_reported() {
    let mut files = crate_with(&[("src/extra.rs", "pub fn f() {}\n")]);
    files.remove("src/runtime/mod.rs");
    let report = analyze(&files, TABLE);
    let table = messages(&report, Rule::Table);
    assert_eq!(table.len(), 2, "{report}");
    assert!(
        table
            .iter()
            .any(|m| m.starts_with("module `extra` (src/extra.rs) is not in the table"))
    );
    assert!(
        table
            .iter()
            .any(|m| m.starts_with("module `runtime` (layer runtime) is in the table"))
    );
}

#[test]
fn the_layer_table_format() {
    let target = "## Module layers\n\n\
        | layer | modules | may import |\n\
        |---|---|---|\n\
        | base | `sync` | — |\n\
        | model | `protocol`, `types`, `methods`, `error`, `format` | base |\n\
        | runtime | `runtime` | base, model |\n\
        | facade | `bot` | base, model, runtime |\n\
        | dispatch | `dispatch`, `conversation`, `fsm` | base, model, facade |\n\
        | tests | `testkit` | base, model |\n\
        | binaries | `bin` | everything |\n";
    let table = LayerTable::parse(target).expect("a table");
    assert!(table.errors.is_empty(), "{:?}", table.errors);
    assert_eq!(table.layers.len(), 7);
    assert_eq!(table.layer_of.len(), 13);
    assert_eq!(table.layer_of["fsm"], "dispatch");
    assert!(table.allows("dispatch", "facade") && table.allows("dispatch", "dispatch"));
    assert!(!table.allows("dispatch", "runtime") && !table.allows("base", "model"));
    assert!(table.allows("binaries", "tests"));

    let wrong = "## Module layers\n\n| layer | modules | may import |\n|---|---|---|\n| model | `types` | serde |\n";
    let table = LayerTable::parse(wrong).expect("a table");
    assert_eq!(table.errors.len(), 1);
    assert!(table.errors[0].contains("may import `serde`, which is not a layer"));

    assert!(LayerTable::parse("# Architecture\n\nNo table here.\n").is_err());
    assert!(LayerTable::parse("## Module layers\n\nProse only.\n\n## Next\n| a | b |\n").is_err());
}
