//! The README says what the code does, where a test can read it: its table of operations (method,
//! path, scope) is the spec's, its table of error codes is the catalogue's (every code, its
//! status), its sample send is the reference's, and its sample message has the fields the API
//! answers with.

use serde_json::Value;

use crate::tools::repo;

fn readme() -> String {
    std::fs::read_to_string(repo().join("README.md")).unwrap()
}

fn spec() -> Value {
    serde_json::from_str(&agentmessage::spec_json()).unwrap()
}

/// The table rows (`| a | b | c |`) after the line `header`, split into trimmed cells.
fn table_after(text: &str, header: &str) -> Vec<Vec<String>> {
    text.lines()
        .skip_while(|l| !l.starts_with(header))
        .skip(2)
        .take_while(|l| l.starts_with('|'))
        .map(|l| {
            l.trim_matches('|')
                .split(" | ")
                .map(|c| c.trim().to_owned())
                .collect()
        })
        .collect()
}

fn unquote(cell: &str) -> &str {
    cell.split('`').nth(1).unwrap_or(cell)
}

#[test]
fn the_readmes_operations_are_the_specs_with_their_scopes() {
    let spec = spec();
    let mut documented = std::collections::BTreeMap::new();
    for (path, item) in spec["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let id = op["operationId"].as_str().unwrap().to_owned();
            let scope = op["x-required-scopes"][0].as_str().map(str::to_owned);
            documented.insert(id, (format!("{} {path}", method.to_uppercase()), scope));
        }
    }
    let rows = table_after(&readme(), "| operation | method and path | scope |");
    let mut listed = std::collections::BTreeSet::new();
    for row in &rows {
        let id = unquote(&row[0]).to_owned();
        let (route, scope) = documented
            .get(&id)
            .unwrap_or_else(|| panic!("the README lists {id}, which the spec does not have"));
        assert_eq!(unquote(&row[1]), route, "{id}'s method and path");
        match scope {
            Some(scope) => assert!(
                row[2].starts_with(&format!("`{scope}`")),
                "{id}: the README says {}, the spec {scope}",
                row[2]
            ),
            None => assert!(
                !row[2].contains(':') || row[2].contains("carrier"),
                "{id} takes no API key scope: {}",
                row[2]
            ),
        }
        listed.insert(id);
    }
    let missing: Vec<&String> = documented
        .keys()
        .filter(|id| !listed.contains(*id))
        .collect();
    assert!(missing.is_empty(), "the README's table lacks {missing:?}");
}

#[test]
fn the_readmes_error_codes_are_the_catalogues_with_their_statuses() {
    use agentmessage::api::envelope::ErrorCode;
    let rows = table_after(&readme(), "| code | status | when |");
    let readme: std::collections::BTreeMap<String, String> = rows
        .iter()
        .map(|r| (unquote(&r[0]).to_owned(), r[1].clone()))
        .collect();
    let catalogue: std::collections::BTreeMap<String, String> = ErrorCode::ALL
        .iter()
        .map(|c| (c.as_str().to_owned(), c.status().to_string()))
        .collect();
    assert_eq!(readme, catalogue);
}

#[test]
fn the_readmes_send_sample_is_the_references_and_its_message_has_the_apis_fields() {
    let readme = readme();
    let spec = spec();
    let sample = spec["paths"]["/v1/messages"]["post"]["x-codeSamples"][0]["source"]
        .as_str()
        .unwrap();
    assert!(
        readme.contains(&format!("```sh\n{sample}\n```")),
        "the README's send is not the reference's:\n{sample}"
    );
    // The message answered to that send, as the README shows it: the fields the API answers.
    let start = readme
        .find("```json\n{\n  \"success\": true,")
        .expect("a sample answer");
    let json = &readme[start + "```json\n".len()..];
    let json = &json[..json.find("\n```").unwrap()];
    let sample: Value = serde_json::from_str(json).expect("the sample answer is JSON");
    let shown: Vec<&str> = sample["data"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let view = &spec["components"]["schemas"]["MessageView"]["properties"];
    let answered: Vec<&str> = view
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(shown, answered);
}
