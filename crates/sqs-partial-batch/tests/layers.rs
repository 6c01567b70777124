//! The crate's structure check: its modules import one way only. Every file under `src/`
//! (test modules aside) is a node; `crate::x` and `super::x` paths are its edges (an item
//! re-exported at the root counts as an edge to the module it comes from). The check fails on
//! an import cycle among the files, naming it, and on a module that uses one on its own floor
//! or above: `src/lib.rs` declares the modules in floors (groups separated by a blank line),
//! lowest first.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

#[test]
fn the_crates_modules_import_one_way_with_no_cycle() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let lib = std::fs::read_to_string(src.join("lib.rs")).expect("src/lib.rs");
    let mut files = BTreeMap::new();
    for entry in std::fs::read_dir(&src).expect("src/") {
        let path = entry.expect("an entry").path();
        let name = path.file_name().and_then(|n| n.to_str()).expect("a UTF-8 name").to_owned();
        if path.is_dir() {
            // `src/tests/` holds the crate's unit tests; other directories would be nested
            // modules, which this check does not read yet.
            assert_eq!(name, "tests", "src/{name}/: nested modules are not covered by this check");
            continue;
        }
        if let Some(module) = name.strip_suffix(".rs").filter(|m| *m != "lib") {
            files.insert(module.to_owned(), std::fs::read_to_string(&path).expect("a source file"));
        }
    }
    let floors = check(&lib, &files).unwrap_or_else(|broken| panic!("{broken}"));
    for (i, floor) in floors.iter().enumerate() {
        println!("floor {i}: {}", floor.join(", "));
    }
}

#[test]
fn the_check_fails_on_a_cycle_and_names_it() {
    let lib = "mod a;\nmod b;\nmod c;\n";
    let files = BTreeMap::from([
        ("a".to_owned(), "use crate::b::X;\n".to_owned()),
        ("b".to_owned(), "pub(crate) fn f() { crate::c::g() }\n".to_owned()),
        ("c".to_owned(), "use super::{a::Y, b};\n// crate::nothing in a comment\n".to_owned()),
    ]);
    let err = check(lib, &files).unwrap_err();
    assert!(err.contains("import cycle: a -> b -> c -> a"), "{err}");
}

#[test]
fn the_check_fails_on_a_module_reaching_its_own_floor_or_above_even_through_a_root_re_export() {
    let lib = "mod a;\n\nmod b;\n\npub use a::Thing;\n";
    let files = BTreeMap::from([
        ("a".to_owned(), "pub struct Thing;\n".to_owned()),
        ("b".to_owned(), "use crate::Thing;\n#[cfg(test)]\nmod tests {\n    use crate::b;\n}\n".to_owned()),
    ]);
    assert!(check(lib, &files).is_ok(), "b above a is fine, and test modules do not count");
    let upward = BTreeMap::from([
        ("a".to_owned(), "pub struct Thing;\nfn f() { let _ = crate::b::g; }\n".to_owned()),
        ("b".to_owned(), "pub fn g() {}\n".to_owned()),
    ]);
    let err = check(lib, &upward).unwrap_err();
    assert!(err.contains("a (floor 0) uses b (floor 1)"), "{err}");
}

/// The floors of `lib`'s modules if `files` (module name → source) import one way.
fn check(lib: &str, files: &BTreeMap<String, String>) -> Result<Vec<Vec<String>>, String> {
    let floors = floors(lib);
    let floor_of: BTreeMap<&str, usize> =
        floors.iter().enumerate().flat_map(|(i, f)| f.iter().map(move |m| (m.as_str(), i))).collect();
    let exports = root_exports(lib);
    let mut edges: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    for (module, source) in files {
        if !floor_of.contains_key(module.as_str()) {
            return Err(format!("src/{module}.rs is not declared in src/lib.rs"));
        }
        let uses = edges.entry(module).or_default();
        for name in crate_paths(&without_tests(&code(source))) {
            let target = if files.contains_key(&name) { Some(name.clone()) } else { exports.get(&name).cloned() };
            match target {
                Some(target) if target != *module => {
                    uses.insert(target);
                }
                Some(_) => {}
                None => return Err(format!("src/{module}.rs: crate::{name} is neither a module nor a root re-export")),
            }
        }
    }
    if let Some(cycle) = find_cycle(&edges) {
        return Err(format!("import cycle: {}", cycle.join(" -> ")));
    }
    for (module, uses) in &edges {
        for used in uses {
            let (from, to) = (floor_of[module], floor_of.get(used.as_str()).copied().unwrap_or(usize::MAX));
            if to >= from {
                return Err(format!("{module} (floor {from}) uses {used} (floor {to}): a lower floor only"));
            }
        }
    }
    Ok(floors)
}

/// `mod` declarations of lib.rs, in groups separated by blank lines.
fn floors(lib: &str) -> Vec<Vec<String>> {
    let mut floors = vec![Vec::new()];
    for line in lib.lines().map(str::trim) {
        if line.is_empty() {
            if !floors.last().expect("a floor").is_empty() {
                floors.push(Vec::new());
            }
            continue;
        }
        let declared = line.strip_prefix("pub mod ").or_else(|| line.strip_prefix("mod "));
        if let Some(name) = declared.and_then(|d| d.strip_suffix(';')) {
            floors.last_mut().expect("a floor").push(name.to_owned());
        }
    }
    floors.retain(|f| !f.is_empty());
    // `mod tests;` (the crate's unit tests) is no floor of the product.
    floors.iter_mut().for_each(|f| f.retain(|m| m != "tests"));
    floors.retain(|f| !f.is_empty());
    floors
}

/// Names re-exported at the root (`pub use module::{A, B};`), to the module they come from.
fn root_exports(lib: &str) -> BTreeMap<String, String> {
    let mut exports = BTreeMap::new();
    for statement in code(lib).split(';') {
        let Some(at) = statement.find("pub use ") else { continue };
        let path = &statement[at + "pub use ".len()..];
        let Some((module, items)) = path.split_once("::") else { continue };
        let items = items.trim().trim_start_matches('{').trim_end_matches('}');
        for item in items.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            exports.insert(item.split("::").last().expect("a name").to_owned(), module.trim().to_owned());
        }
    }
    exports
}

/// The first segment of every `crate::…` and `super::…` path (in a file directly under
/// `src/`, `super` is the crate), a group's entries each.
fn crate_paths(code: &str) -> Vec<String> {
    let mut names = Vec::new();
    let bytes = code.as_bytes();
    for prefix in ["crate::", "super::"] {
        let mut from = 0;
        while let Some(found) = code[from..].find(prefix) {
            let at = from + found;
            from = at + prefix.len();
            let before = at.checked_sub(1).map(|i| bytes[i]);
            if before.is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_') {
                continue;
            }
            let rest = code[from..].trim_start();
            if let Some(group) = rest.strip_prefix('{') {
                let mut depth = 0;
                let mut entry_start = true;
                for (i, c) in group.char_indices() {
                    match c {
                        '{' => depth += 1,
                        '}' if depth == 0 => break,
                        '}' => depth -= 1,
                        ',' if depth == 0 => entry_start = true,
                        c if entry_start && (c.is_alphanumeric() || c == '_') => {
                            entry_start = false;
                            names.push(identifier(&group[i..]));
                        }
                        _ => {}
                    }
                }
            } else {
                names.push(identifier(rest));
            }
        }
    }
    names.retain(|n| !n.is_empty() && n != "self");
    names
}

fn identifier(text: &str) -> String {
    text.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect()
}

/// `source` without comments, and with the contents of string and character literals blanked:
/// what is left is code, so braces balance and paths in text are not read as imports.
fn code(source: &str) -> String {
    let chars: Vec<char> = source.chars().collect();
    let mut out = String::with_capacity(source.len());
    let mut i = 0;
    while i < chars.len() {
        let (c, next) = (chars[i], chars.get(i + 1).copied());
        match (c, next) {
            ('/', Some('/')) => {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
            }
            ('/', Some('*')) => {
                let mut depth = 0;
                while i < chars.len() {
                    if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                        depth += 1;
                        i += 2;
                    } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                        depth -= 1;
                        i += 2;
                        if depth == 0 {
                            break;
                        }
                    } else {
                        i += 1;
                    }
                }
            }
            ('r', Some('"' | '#')) if i == 0 || !(chars[i - 1].is_alphanumeric() || chars[i - 1] == '_') => {
                let hashes = chars[i + 1..].iter().take_while(|c| **c == '#').count();
                if chars.get(i + 1 + hashes) != Some(&'"') {
                    out.push(c);
                    i += 1;
                    continue;
                }
                i += 2 + hashes;
                while i < chars.len()
                    && !(chars[i] == '"' && chars[i + 1..].iter().take(hashes).filter(|c| **c == '#').count() == hashes)
                {
                    i += 1;
                }
                i += 1 + hashes;
                out.push_str("\"\"");
            }
            ('"', _) => {
                i += 1;
                while i < chars.len() && chars[i] != '"' {
                    i += if chars[i] == '\\' { 2 } else { 1 };
                }
                i += 1;
                out.push_str("\"\"");
            }
            ('\'', Some('\\')) => {
                i += 2;
                while i < chars.len() && chars[i] != '\'' {
                    i += 1;
                }
                i += 1;
                out.push_str("' '");
            }
            ('\'', Some(_)) if chars.get(i + 2) == Some(&'\'') => {
                i += 3;
                out.push_str("' '");
            }
            _ => {
                out.push(c);
                i += 1;
            }
        }
    }
    out
}

/// `code` without its `#[cfg(test)]` modules.
fn without_tests(code: &str) -> String {
    let mut out = String::with_capacity(code.len());
    let mut rest = code;
    while let Some(at) = rest.find("#[cfg(test)]") {
        out.push_str(&rest[..at]);
        let after = rest[at + "#[cfg(test)]".len()..].trim_start();
        let Some(item) = after.strip_prefix("mod ") else {
            out.push_str("#[cfg(test)]");
            rest = &rest[at + "#[cfg(test)]".len()..];
            continue;
        };
        let end = match (item.find(';'), item.find('{')) {
            (Some(semi), Some(brace)) if semi < brace => semi + 1,
            (Some(semi), None) => semi + 1,
            (_, Some(brace)) => {
                let mut depth = 0;
                let mut end = item.len();
                for (i, c) in item[brace..].char_indices() {
                    match c {
                        '{' => depth += 1,
                        '}' => {
                            depth -= 1;
                            if depth == 0 {
                                end = brace + i + 1;
                                break;
                            }
                        }
                        _ => {}
                    }
                }
                end
            }
            (None, None) => item.len(),
        };
        rest = &item[end..];
    }
    out.push_str(rest);
    out
}

/// A cycle in `edges`, as the modules on it with the first repeated at the end.
fn find_cycle(edges: &BTreeMap<&str, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit<'e>(
        module: &'e str,
        edges: &'e BTreeMap<&str, BTreeSet<String>>,
        path: &mut Vec<&'e str>,
        done: &mut BTreeSet<&'e str>,
    ) -> Option<Vec<String>> {
        if let Some(start) = path.iter().position(|m| *m == module) {
            let mut cycle: Vec<String> = path[start..].iter().map(|m| m.to_string()).collect();
            cycle.push(module.to_owned());
            return Some(cycle);
        }
        if !done.insert(module) {
            return None;
        }
        path.push(module);
        for next in edges.get(module).into_iter().flatten() {
            if let Some(cycle) = visit(next, edges, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        None
    }
    let mut done = BTreeSet::new();
    edges.keys().find_map(|module| visit(module, edges, &mut Vec::new(), &mut done))
}
