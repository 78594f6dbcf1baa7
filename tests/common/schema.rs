//! Validation of JSON values against the contracts in `schemas/`.
//!
//! Schemas are loaded from `schemas/<id>.json` in the crate root. Their relative
//! `$ref`s (`defs.json#/$defs/...`) resolve against the file's own location, and
//! only files in that directory are ever read: nothing is fetched over the network.

use jsonschema::{Retrieve, Uri, Validator};
use serde_json::Value;
use std::path::{Path, PathBuf};

/// The directory holding the schema files.
pub fn schemas_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas")
}

fn dir_uri() -> String {
    let dir = schemas_dir();
    let dir = dir.to_str().expect("schemas directory path is UTF-8");
    format!("file://{}/", dir.trim_end_matches('/'))
}

fn read_json(path: &Path) -> Result<Value, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// Serves `$ref`s to sibling files of the schemas directory, and nothing else.
struct SchemasDir;

impl Retrieve for SchemasDir {
    fn retrieve(&self, uri: &Uri<String>) -> Result<Value, Box<dyn std::error::Error + Send + Sync>> {
        let uri = uri.as_str();
        let name = uri
            .strip_prefix(&dir_uri())
            .filter(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b)))
            .ok_or_else(|| format!("refusing to resolve {uri:?}: only files in schemas/ are known"))?;
        Ok(read_json(&schemas_dir().join(name))?)
    }
}

fn compile(schema: &Value, base_name: &str) -> Validator {
    jsonschema::draft202012::options()
        .with_base_uri(format!("{}{base_name}", dir_uri()))
        .with_retriever(SchemasDir)
        .should_validate_formats(true)
        .build(schema)
        .unwrap_or_else(|e| panic!("schema {base_name} does not compile: {e}"))
}

fn describe(validator: &Validator, value: &Value) -> Vec<String> {
    validator
        .iter_errors(value)
        .map(|e| {
            let at = e.instance_path().to_string();
            let at = if at.is_empty() { "/".to_owned() } else { at };
            format!("at {at}: {e} (schema {})", e.schema_path())
        })
        .collect()
}

/// Loads `schemas/<schema_id>.json`, panicking if it is missing or not a valid
/// draft 2020-12 schema (with every `$ref` resolvable).
pub fn validator(schema_id: &str) -> Validator {
    let file = format!("{schema_id}.json");
    let schema =
        read_json(&schemas_dir().join(&file)).unwrap_or_else(|e| panic!("cannot load schema {schema_id}: {e}"));
    compile(&schema, &file)
}

/// Every way `value` violates schema `schema_id`; empty when it conforms.
pub fn errors(schema_id: &str, value: &Value) -> Vec<String> {
    describe(&validator(schema_id), value)
}

/// Panics, listing every violation, unless `value` conforms to schema `schema_id`
/// (e.g. `"offloader.job.v1"`, loaded from `schemas/offloader.job.v1.json`).
pub fn assert_valid(schema_id: &str, value: &serde_json::Value) {
    let errors = errors(schema_id, value);
    assert!(
        errors.is_empty(),
        "value does not conform to {schema_id}:\n  {}\nvalue: {}",
        errors.join("\n  "),
        serde_json::to_string_pretty(value).unwrap_or_default()
    );
}

/// Panics unless `value` violates schema `schema_id`; returns the violations so a
/// test can check that the expected one is among them.
pub fn assert_invalid(schema_id: &str, value: &Value) -> Vec<String> {
    let errors = errors(schema_id, value);
    assert!(
        !errors.is_empty(),
        "value unexpectedly conforms to {schema_id}: {}",
        serde_json::to_string_pretty(value).unwrap_or_default()
    );
    errors
}

/// Validates a message against the schema its own `schema` field names, as a
/// consumer of a mixed queue (e.g. the reply queue) would pick it.
pub fn assert_valid_message(value: &Value) {
    let id = value
        .get("schema")
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("message has no string `schema` field: {value}"));
    assert!(
        schemas_dir().join(format!("{id}.json")).is_file(),
        "message names schema {id:?}, which has no file in schemas/: {value}"
    );
    assert_valid(id, value);
}

/// Every way `value` violates the shared definition `defs.json#/$defs/<name>`.
pub fn def_errors(name: &str, value: &Value) -> Vec<String> {
    let schema = serde_json::json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$ref": format!("defs.json#/$defs/{name}"),
    });
    describe(&compile(&schema, &format!("defs-{name}.json")), value)
}
