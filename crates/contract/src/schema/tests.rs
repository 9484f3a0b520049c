//! The committed documents against the code, and the documents against the
//! JSON Schema meta-schema.

use super::documents;
use serde_json::Value;
use std::fs;
use std::path::{Path, PathBuf};

const UPDATE_VAR: &str = "CHANNELSHIFT_UPDATE_SCHEMA";

/// Pretty-printed with sorted keys and a trailing newline. Sorting makes the
/// file independent of serde_json's `preserve_order` feature, which any crate
/// built alongside this one could switch on.
fn render(document: &Value) -> String {
    let mut document = document.clone();
    document.sort_all_objects();
    let mut text = serde_json::to_string_pretty(&document).expect("a Value always serialises");
    text.push('\n');
    text
}

fn schema_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("schema")
}

#[test]
fn committed_schemas_match_the_code() {
    let update = std::env::var(UPDATE_VAR).is_ok_and(|value| value == "1");
    let mut stale = Vec::new();
    for (name, document) in documents() {
        let path = schema_dir().join(&name);
        let generated = render(&document);
        if update {
            fs::create_dir_all(schema_dir()).expect("the crate directory is writable");
            fs::write(&path, &generated)
                .unwrap_or_else(|error| panic!("cannot write {}: {error}", path.display()));
            continue;
        }
        match fs::read_to_string(&path) {
            // A checkout with CRLF line endings is not drift.
            Ok(committed) if committed.replace("\r\n", "\n") == generated => {}
            Ok(_) => stale.push(format!("{} differs from the code", path.display())),
            Err(error) => stale.push(format!("{} cannot be read: {error}", path.display())),
        }
    }
    assert!(
        stale.is_empty(),
        "{}\nThe published JSON Schema is out of date. Regenerate it with\n    \
         {UPDATE_VAR}=1 cargo test -p channelshift-contract committed_schemas_match_the_code\n\
         then review the diff and commit it.",
        stale.join("\n")
    );
}

#[test]
fn documents_are_valid_draft_2020_12_schemas() {
    for (name, document) in documents() {
        if let Err(error) = jsonschema::draft202012::meta::validate(&document) {
            panic!("{name} is not a valid draft 2020-12 schema: {error}");
        }
    }
}

#[test]
fn each_id_ends_with_its_file_name() {
    for (name, document) in documents() {
        let id = document["$id"].as_str().expect("$id is a string");
        assert!(id.ends_with(&format!("/{name}")), "{id} vs {name}");
    }
}
