//! The server's shape, read from its sources: one writer of `messages.status`, one door for
//! writes, no import cycle between the modules of a layer.

use regex::Regex;

/// Every file of `layer` (`store`, `domain`), `(name, text with runs of white space made one
/// space)`.
fn sources_of(layer: &str) -> Vec<(String, String)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("src")
        .join(layer);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("the layer's sources")
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "rs"))
        .collect();
    files.sort();
    assert!(files.len() > 5, "found only {files:?}");
    let space = Regex::new(r"\s+").unwrap();
    files
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p).expect("readable");
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, space.replace_all(&text, " ").into_owned())
        })
        .collect()
}

/// The places in `text` that match `pattern`.
fn found(pattern: &Regex, text: &str) -> Vec<String> {
    pattern
        .find_iter(text)
        .map(|m| m.as_str().to_owned())
        .collect()
}

#[test]
fn only_the_transition_writer_writes_a_message_status_or_a_part() {
    let writes = [
        // sea-query: a status column set in an update.
        Regex::new(r"col_expr\( ?(message::)?Col(umn)?::Status\b").unwrap(),
        // SQL written out: `SET status =` or `, status =` in an update of messages.
        Regex::new(r"(?i)UPDATE messages SET[^;]*\bstatus ?=").unwrap(),
        // A message row built by hand (its status with it).
        Regex::new(r"message::ActiveModel \{").unwrap(),
        // Parts have one writer too.
        Regex::new(r"message_part::ActiveModel \{").unwrap(),
        Regex::new(r"message_part::Entity::(update_many|insert|insert_many|delete_many)\b")
            .unwrap(),
    ];
    let mut offenders = Vec::new();
    let mut in_writer = 0;
    for (name, text) in sources_of("store") {
        for pattern in &writes {
            let hits = found(pattern, &text);
            if name == "transitions.rs" {
                in_writer += hits.len();
            } else if !hits.is_empty() {
                offenders.push((name.clone(), hits));
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "messages.status or a part is written outside store/transitions.rs: {offenders:?}"
    );
    // The patterns do find the writer's own writes (so they would find others').
    assert!(
        in_writer >= 3,
        "the patterns found {in_writer} writes in the writer"
    );
}

#[test]
fn every_write_goes_through_the_door() {
    let bare = [
            // A statement run on the pool, outside a transaction and without the turn.
            Regex::new(r"\.exec(_with_returning|_without_returning)?\( ?&self\.db ?\)").unwrap(),
            Regex::new(r"self ?\. ?db ?\. ?(execute_raw|execute_unprepared|begin|begin_with_options|transaction)\b").unwrap(),
            Regex::new(r"\.turn\(\)").unwrap(),
        ];
    let mut offenders = Vec::new();
    for (name, text) in sources_of("store") {
        if name == "door.rs" {
            continue;
        }
        for pattern in &bare {
            for hit in found(pattern, &text) {
                // Migrations run on one connection under PostgreSQL's advisory lock, before
                // the store serves anything.
                if name == "mod.rs" && hit.contains("begin") {
                    continue;
                }
                offenders.push((name.clone(), hit));
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "writes that bypass store::door: {offenders:?}"
    );
}

/// Every module of `layer` with its code, comments left out: `(module name, code)`.
fn code_of(layer: &str) -> Vec<(String, String)> {
    let comment = Regex::new(r"(?m)//.*$").unwrap();
    sources_raw(layer)
        .into_iter()
        .map(|(name, text)| {
            let module = name.trim_end_matches(".rs").to_owned();
            (module, comment.replace_all(&text, "").into_owned())
        })
        .collect()
}

/// Every file of `layer` as written.
fn sources_raw(layer: &str) -> Vec<(String, String)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("src")
        .join(layer);
    let mut out: Vec<(String, String)> = std::fs::read_dir(&dir)
        .expect("the layer's sources")
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "rs"))
        .map(|p| {
            let text = std::fs::read_to_string(&p).expect("readable");
            (p.file_name().unwrap().to_string_lossy().into_owned(), text)
        })
        .collect();
    out.sort();
    out
}

/// The modules of `layer` that `code` names: `super::m`, `crate::<layer>::m`, and the first
/// name of each item of a `super::{…}` or `crate::<layer>::{…}` group.
fn named_modules(code: &str, layer: &str, modules: &[String]) -> Vec<String> {
    let mut named = Vec::new();
    let prefixes = ["super::".to_owned(), format!("crate::{layer}::")];
    for prefix in &prefixes {
        let mut rest = code;
        while let Some(at) = rest.find(prefix.as_str()) {
            rest = &rest[at + prefix.len()..];
            if let Some(group) = rest.strip_prefix('{') {
                // The group up to its closing brace, split at its top-level commas.
                let (mut depth, mut item, mut end) = (0, String::new(), group.len());
                let mut items = Vec::new();
                for (i, c) in group.char_indices() {
                    match c {
                        '{' => depth += 1,
                        '}' if depth == 0 => {
                            end = i;
                            break;
                        }
                        '}' => depth -= 1,
                        ',' if depth == 0 => {
                            items.push(std::mem::take(&mut item));
                            continue;
                        }
                        _ => {}
                    }
                    item.push(c);
                }
                items.push(item);
                named.extend(items.iter().map(|i| {
                    i.trim()
                        .split(|c: char| !c.is_alphanumeric() && c != '_')
                        .next()
                        .unwrap_or_default()
                        .to_owned()
                }));
                rest = &group[end..];
            } else {
                let name: String = rest
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                named.push(name);
            }
        }
    }
    named.retain(|n| modules.contains(n));
    named.sort();
    named.dedup();
    named
}

/// A cycle among `edges` (module → modules it names), if there is one.
fn a_cycle(edges: &std::collections::BTreeMap<String, Vec<String>>) -> Option<Vec<String>> {
    fn visit(
        at: &str,
        edges: &std::collections::BTreeMap<String, Vec<String>>,
        path: &mut Vec<String>,
        done: &mut std::collections::BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(start) = path.iter().position(|m| m == at) {
            let mut cycle = path[start..].to_vec();
            cycle.push(at.to_owned());
            return Some(cycle);
        }
        if done.contains(at) {
            return None;
        }
        path.push(at.to_owned());
        for next in edges.get(at).into_iter().flatten() {
            if let Some(cycle) = visit(next, edges, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        done.insert(at.to_owned());
        None
    }
    let mut done = std::collections::BTreeSet::new();
    for start in edges.keys() {
        if let Some(cycle) = visit(start, edges, &mut Vec::new(), &mut done) {
            return Some(cycle);
        }
    }
    None
}

#[test]
fn no_module_of_the_store_or_the_domain_imports_itself_back() {
    for layer in ["store", "domain"] {
        let code = code_of(layer);
        let modules: Vec<String> = code
            .iter()
            .map(|(m, _)| m.clone())
            .filter(|m| m != "mod")
            .collect();
        let edges: std::collections::BTreeMap<String, Vec<String>> = code
            .iter()
            .filter(|(m, _)| m != "mod")
            .map(|(m, text)| {
                let mut named = named_modules(text, layer, &modules);
                named.retain(|n| n != m);
                (m.clone(), named)
            })
            .collect();
        let edge_count: usize = edges.values().map(Vec::len).sum();
        assert!(edge_count > 10, "{layer}: found only {edges:?}");
        assert_eq!(a_cycle(&edges), None, "{layer}: an import cycle");
    }
}

#[test]
fn the_cycle_finder_finds_a_cycle_and_the_module_reader_reads_groups() {
    let modules: Vec<String> = ["a", "b", "c"].map(String::from).to_vec();
    let named = named_modules(
        "use super::{a::X, b, c::{Y, Z}}; use crate::store::c; super::d::W",
        "store",
        &modules,
    );
    assert_eq!(named, modules);
    let mut edges = std::collections::BTreeMap::new();
    edges.insert("a".to_owned(), vec!["b".to_owned()]);
    edges.insert("b".to_owned(), vec!["c".to_owned()]);
    edges.insert("c".to_owned(), vec![]);
    assert_eq!(a_cycle(&edges), None);
    edges.insert("c".to_owned(), vec!["a".to_owned()]);
    assert!(a_cycle(&edges).is_some());
}
