//! Tidy's layering rule: the files of a crate form no import circle, so each file stands on
//! the files below it and a reader can learn a crate from the bottom up.
//!
//! How the graph is read (text, not a compiler; simple on purpose):
//! - A crate's files are the modules reached from each lib and bin target's root file by
//!   following `mod name;` (to `name.rs` or `name/mod.rs`).
//! - File A uses file B when A's code names a path into B: `crate::b::..` or `super::b::..`,
//!   in a `use` tree (groups included) or inline. A path lands on the deepest module file
//!   it names; a `pub use` re-export is not followed.
//! - Uses between a module and its ancestors are left out: a parent declares its children
//!   and may hold what they share, which makes a tree, not a circle.
//! - Comment lines and a file's trailing `#[cfg(test)] mod tests { .. }` are left out:
//!   tests stand above what they test.
//!
//! Crates that still have circles are listed in [`CIRCLES_ALLOWED`], each with why; the
//! list may only shrink: a listed crate without a circle is a violation too.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// Crates (package names) whose files still import each other in a circle, with the
/// circle and why it stays for now. Issue 13, item 7: whoever untangles one takes its line
/// out (tidy then insists on it).
pub(crate) const CIRCLES_ALLOWED: &[(&str, &str)] = &[];

/// A module's path inside its crate: `[]` for the root, `["gateway", "ops"]`, ...
type ModulePath = Vec<String>;

/// One crate target's modules: module path -> file.
type Modules = BTreeMap<ModulePath, PathBuf>;

/// For each module, the modules it uses and the names it takes from each.
type Uses = BTreeMap<ModulePath, BTreeMap<ModulePath, BTreeSet<String>>>;

/// Checks every package of `cargo metadata` (its lib and bin targets) for import circles.
pub(crate) fn check(
    root: &Path,
    metadata: &serde_json::Value,
    violations: &mut Vec<String>,
) -> Result<()> {
    let empty = Vec::new();
    let packages = metadata["packages"].as_array().unwrap_or(&empty);
    let names: BTreeSet<&str> = packages.iter().filter_map(|p| p["name"].as_str()).collect();
    for (allowed, _) in CIRCLES_ALLOWED {
        if !names.contains(allowed) {
            violations.push(format!("CIRCLES_ALLOWED names {allowed}, no such crate"));
        }
    }
    for package in packages {
        let name = package["name"].as_str().unwrap_or("?");
        let mut found = Vec::new();
        for target in package["targets"].as_array().unwrap_or(&empty) {
            let kinds = target["kind"].as_array().unwrap_or(&empty);
            let is_code = kinds.iter().any(|k| k == "lib" || k == "bin");
            let Some(src_path) = target["src_path"].as_str().filter(|_| is_code) else {
                continue;
            };
            let modules = modules(Path::new(src_path))?;
            let mut uses = Uses::new();
            for (module, file) in &modules {
                let text = fs::read_to_string(file).with_context(|| format!("reading {file:?}"))?;
                let taken = file_uses(module, &text, &modules);
                uses.insert(module.clone(), taken);
            }
            for circle in circles(&uses) {
                found.push(describe(root, &circle, &modules, &uses));
            }
        }
        let allowed = CIRCLES_ALLOWED.iter().any(|(allowed, _)| *allowed == name);
        if allowed && found.is_empty() {
            violations.push(format!(
                "{name} has no import circle any more: take it off CIRCLES_ALLOWED"
            ));
        }
        if !allowed {
            for circle in found {
                violations.push(format!("{name}: import circle: {circle}"));
            }
        }
    }
    Ok(())
}

/// The modules reached from a crate root by `mod name;` declarations.
fn modules(root_file: &Path) -> Result<Modules> {
    let mut modules = Modules::new();
    let root_dir = root_file.parent().unwrap_or(Path::new("."));
    let mut pending = vec![(
        ModulePath::new(),
        root_file.to_path_buf(),
        root_dir.to_path_buf(),
    )];
    while let Some((module, file, dir)) = pending.pop() {
        let text = fs::read_to_string(&file).with_context(|| format!("reading {file:?}"))?;
        for child in declared_modules(&text) {
            let flat = dir.join(format!("{child}.rs"));
            let nested = dir.join(&child).join("mod.rs");
            let (child_file, child_dir) = if flat.is_file() {
                (flat, dir.join(&child))
            } else if nested.is_file() {
                (nested, dir.join(&child))
            } else {
                continue; // An inline module with a body on the next line, or cfg'd away.
            };
            let mut child_module = module.clone();
            child_module.push(child);
            pending.push((child_module, child_file, child_dir));
        }
        modules.insert(module, file);
    }
    Ok(modules)
}

/// Names of the `mod name;` declarations (file modules) in a file's text.
fn declared_modules(text: &str) -> Vec<String> {
    let mut children = Vec::new();
    for line in code_lines(text) {
        let mut rest = line.trim();
        if let Some(after) = rest.strip_prefix("pub") {
            // `pub mod`, `pub(crate) mod`, `pub(super) mod`.
            rest = after
                .split_once(')')
                .map_or(after, |(_, tail)| tail)
                .trim_start();
        }
        let Some(declared) = rest.strip_prefix("mod ") else {
            continue;
        };
        if let Some(name) = declared.trim().strip_suffix(';') {
            children.push(name.trim().to_owned());
        }
    }
    children
}

/// A file's lines without comment lines, up to its trailing `#[cfg(test)] mod` block.
fn code_lines(text: &str) -> Vec<&str> {
    let lines: Vec<&str> = text.lines().collect();
    let mut code = Vec::new();
    for (index, line) in lines.iter().enumerate() {
        let trimmed = line.trim();
        if trimmed == "#[cfg(test)]" {
            let next = lines[index + 1..]
                .iter()
                .map(|l| l.trim())
                .find(|l| !l.is_empty() && !l.starts_with("#["));
            if next.is_some_and(|l| l.starts_with("mod ") && l.ends_with('{')) {
                break;
            }
        }
        if !trimmed.starts_with("//") {
            code.push(*line);
        }
    }
    code
}

/// The modules of `modules` that `module`'s text names, with the names it takes from each.
/// Ancestors and descendants of `module` are left out (see the module docs).
fn file_uses(
    module: &[String],
    text: &str,
    modules: &Modules,
) -> BTreeMap<ModulePath, BTreeSet<String>> {
    let code = code_lines(text).join("\n");
    let chars: Vec<char> = code.chars().collect();
    let mut paths = Vec::new();
    for start in 0..chars.len() {
        let before = start.checked_sub(1).map(|i| chars[i]);
        let at_boundary = before.is_none_or(|c| !(c.is_alphanumeric() || "_$:".contains(c)));
        let anchored = ["crate::", "super::"]
            .iter()
            .any(|anchor| starts_with(&chars, start, anchor));
        if at_boundary && anchored {
            parse_tree(&chars, start, Vec::new(), &mut paths);
        }
    }
    let mut taken: BTreeMap<ModulePath, BTreeSet<String>> = BTreeMap::new();
    for path in paths {
        let Some(absolute) = absolute(module, &path) else {
            continue;
        };
        let Some(depth) = (0..=absolute.len())
            .rev()
            .find(|depth| modules.contains_key(&absolute[..*depth]))
        else {
            continue;
        };
        let target = &absolute[..depth];
        let related = target.starts_with(module) || module.starts_with(target);
        if related {
            continue;
        }
        let name = absolute
            .get(depth)
            .or(target.last())
            .cloned()
            .unwrap_or_default();
        taken.entry(target.to_vec()).or_default().insert(name);
    }
    taken
}

fn starts_with(chars: &[char], start: usize, pattern: &str) -> bool {
    pattern
        .chars()
        .enumerate()
        .all(|(offset, c)| chars.get(start + offset) == Some(&c))
}

/// Parses the path (tree) at `position`: `a::b::C`, `a::{b, c::D}`, `a::*`; pushes each
/// whole path into `paths` and returns the position after it.
fn parse_tree(
    chars: &[char],
    mut position: usize,
    mut prefix: Vec<String>,
    paths: &mut Vec<Vec<String>>,
) -> usize {
    loop {
        position = skip_space(chars, position);
        if chars.get(position) == Some(&'{') {
            position += 1;
            loop {
                position = skip_space(chars, position);
                match chars.get(position) {
                    None => return position,
                    Some('}') => return position + 1,
                    Some(',') => position += 1,
                    Some(_) => {
                        let before = position;
                        position = parse_tree(chars, position, prefix.clone(), paths);
                        if position == before {
                            position += 1; // Not a path: step over it.
                        }
                    }
                }
            }
        }
        let ident_end = (position..chars.len())
            .find(|&i| !(chars[i].is_alphanumeric() || chars[i] == '_'))
            .unwrap_or(chars.len());
        if ident_end == position {
            if chars.get(position) == Some(&'*') {
                position += 1;
            }
            paths.push(prefix);
            return position;
        }
        let ident: String = chars[position..ident_end].iter().collect();
        if ident != "self" {
            prefix.push(ident);
        }
        position = skip_space(chars, ident_end);
        if !starts_with(chars, position, "::") {
            paths.push(prefix);
            return position;
        }
        position += 2;
    }
}

fn skip_space(chars: &[char], position: usize) -> usize {
    (position..chars.len())
        .find(|&i| !chars[i].is_whitespace())
        .unwrap_or(chars.len())
}

/// `path` (starting with `crate` or `super`) from the crate root, seen from `module`.
fn absolute(module: &[String], path: &[String]) -> Option<ModulePath> {
    let (anchor, rest) = path.split_first()?;
    if anchor == "crate" {
        return Some(rest.to_vec());
    }
    let supers = path.iter().take_while(|s| *s == "super").count();
    let base = module.get(..module.len().checked_sub(supers)?)?;
    let mut absolute = base.to_vec();
    absolute.extend(path[supers..].iter().cloned());
    Some(absolute)
}

/// The strongly connected components of more than one module (Tarjan), sorted.
fn circles(uses: &Uses) -> Vec<Vec<ModulePath>> {
    struct Search<'a> {
        uses: &'a Uses,
        next_index: usize,
        index: BTreeMap<&'a ModulePath, usize>,
        low: BTreeMap<&'a ModulePath, usize>,
        stack: Vec<&'a ModulePath>,
        on_stack: BTreeSet<&'a ModulePath>,
        found: Vec<Vec<ModulePath>>,
    }
    impl<'a> Search<'a> {
        fn visit(&mut self, node: &'a ModulePath) {
            self.index.insert(node, self.next_index);
            self.low.insert(node, self.next_index);
            self.next_index += 1;
            self.stack.push(node);
            self.on_stack.insert(node);
            let uses = self.uses;
            for target in uses.get(node).into_iter().flat_map(BTreeMap::keys) {
                if !self.index.contains_key(target) {
                    self.visit(target);
                    let low = self.low[node].min(self.low[target]);
                    self.low.insert(node, low);
                } else if self.on_stack.contains(target) {
                    let low = self.low[node].min(self.index[target]);
                    self.low.insert(node, low);
                }
            }
            if self.low[node] == self.index[node] {
                let mut component = Vec::new();
                while let Some(member) = self.stack.pop() {
                    self.on_stack.remove(member);
                    component.push(member.clone());
                    if member == node {
                        break;
                    }
                }
                if component.len() > 1 {
                    component.sort();
                    self.found.push(component);
                }
            }
        }
    }
    let mut search = Search {
        uses,
        next_index: 0,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        found: Vec::new(),
    };
    for node in uses.keys() {
        if !search.index.contains_key(node) {
            search.visit(node);
        }
    }
    search.found.sort();
    search.found
}

/// `a.rs -> b.rs (Name, ..); b.rs -> a.rs (..)` for the uses inside one circle.
fn describe(root: &Path, circle: &[ModulePath], modules: &Modules, uses: &Uses) -> String {
    let file = |module: &ModulePath| {
        modules.get(module).map_or_else(
            || module.join("::"),
            |path| {
                path.strip_prefix(root)
                    .unwrap_or(path)
                    .display()
                    .to_string()
            },
        )
    };
    let mut parts = Vec::new();
    for from in circle {
        for (to, names) in uses.get(from).into_iter().flatten() {
            if circle.contains(to) {
                let names: Vec<&str> = names.iter().map(String::as_str).collect();
                parts.push(format!(
                    "{} -> {} ({})",
                    file(from),
                    file(to),
                    names.join(", ")
                ));
            }
        }
    }
    parts.join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn module(path: &str) -> ModulePath {
        path.split("::")
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    }

    fn modules(paths: &[&str]) -> Modules {
        paths
            .iter()
            .map(|path| (module(path), PathBuf::from(format!("{path}.rs"))))
            .collect()
    }

    // Goal: a circle between two files is found whether the paths sit in grouped `use`
    // trees, behind `super::` or inline in code. Method: three files, two of which name
    // each other; the third is only used.
    #[test]
    fn finds_a_circle_through_use_groups_super_and_inline_paths() {
        let modules = modules(&["", "a", "b", "c"]);
        let mut uses = Uses::new();
        let texts = [
            ("a", "use crate::{b::{Thing, other}, c};\n"),
            ("b", "fn f() { super::a::helper(); }\n"),
            (
                "c",
                "// use crate::a::Nothing; (a comment)\npub struct C;\n",
            ),
        ];
        for (name, text) in texts {
            uses.insert(module(name), file_uses(&module(name), text, &modules));
        }
        assert_eq!(circles(&uses), vec![vec![module("a"), module("b")]]);
        let described = describe(Path::new(""), &circles(&uses)[0], &modules, &uses);
        assert_eq!(
            described,
            "a.rs -> b.rs (Thing, other); b.rs -> a.rs (helper)"
        );
    }

    // Goal: a parent and its children, and a file's own tests, are no circle. Method: a
    // parent that calls its child, a child that takes the parent's items, and a test module
    // that reaches a file above.
    #[test]
    fn parents_children_and_tests_are_no_circle() {
        let modules = modules(&["", "top", "net", "net::link"]);
        let mut uses = Uses::new();
        let texts = [
            ("top", "use crate::net::link::Link;\n"),
            (
                "net",
                "mod link;\nuse self::link::Link;\npub fn lock() {}\n",
            ),
            (
                "net::link",
                "use super::lock;\n#[cfg(test)]\nmod tests {\n    use crate::top::X;\n}\n",
            ),
        ];
        for (name, text) in texts {
            uses.insert(module(name), file_uses(&module(name), text, &modules));
        }
        assert!(circles(&uses).is_empty(), "{uses:?}");
        assert_eq!(uses[&module("top")].len(), 1, "{uses:?}");
    }

    // Goal: `mod` declarations are read in every visibility. Method: a few spellings.
    #[test]
    fn reads_module_declarations() {
        let text = "mod a;\npub mod b;\npub(crate) mod c;\nmod tests {\n// mod d;\n";
        assert_eq!(declared_modules(text), vec!["a", "b", "c"]);
    }
}
