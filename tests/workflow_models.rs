//! Workflow models against their contract, `schemas/offloader.workflow-model.v1.json`: the
//! built-ins (as the leader serves them and ships them in jobs) conform, and what the Rust
//! validation refuses the schema refuses too.

mod common;

use common::schema::{assert_invalid, assert_valid};
use offloader::protocol::workflow::{builtin_models, WORKFLOW_MODEL_SCHEMA};
use offloader::protocol::WorkflowModel;
use serde_json::{json, Value};

#[test]
fn builtin_models_conform() {
    let models = builtin_models();
    assert_eq!(models.len(), 2);
    for m in models {
        let v = serde_json::to_value(&m).unwrap();
        assert_valid(WORKFLOW_MODEL_SCHEMA, &v);
    }
}

#[test]
fn a_minimal_hand_written_model_conforms_and_parses() {
    let v = json!({"id": "acme/thumbs", "version": 1, "title": "Thumbs", "steps": [
        {"type": "renditions", "renditions": [{"name": "t.webp", "width": 10, "height": 10, "format": "webp"},
            {"name": "t.gif", "width": 10, "height": 10, "format": "gif"}]}
    ]});
    assert_valid(WORKFLOW_MODEL_SCHEMA, &v);
    WorkflowModel::from_json(v.to_string().as_bytes()).unwrap();
}

#[test]
fn what_the_code_refuses_the_schema_refuses() {
    let base = |step: Value| json!({"id": "a/b", "version": 1, "title": "t", "steps": [step]});
    let rendition = |r: Value| base(json!({"type": "renditions", "renditions": [r]}));
    let bad = [
        rendition(json!({"name": "..", "width": 1, "height": 1, "format": "png"})),
        rendition(json!({"name": "a/b", "width": 1, "height": 1, "format": "png"})),
        rendition(json!({"name": "x", "width": 0, "height": 1, "format": "png"})),
        rendition(json!({"name": "x", "width": 1, "height": 1, "format": "tiff"})),
        rendition(json!({"name": "x", "width": 1, "height": 1, "format": "png", "quality": 80})),
        rendition(json!({"name": "x", "width": 1, "height": 1, "format": "gif", "quality": 80})),
        rendition(json!({"name": "x", "width": 1, "height": 1, "format": "jpeg", "quality": 101})),
        base(json!({"type": "offload"})),
        base(json!({"type": "offload", "model": "dam/update_asset", "topic": "a/../b"})),
        base(json!({"type": "shell", "cmd": "rm"})),
        base(json!({"type": "metadata", "extra": 1})),
        json!({"id": "a/../b", "version": 1, "title": "t", "steps": [{"type": "metadata"}]}),
        json!({"id": "a", "version": 0, "title": "t", "steps": [{"type": "metadata"}]}),
        json!({"id": "a", "version": 1, "title": "t", "steps": []}),
        json!({"schema": "offloader.workflow-model.v2", "id": "a", "version": 1, "title": "t", "steps": [{"type": "metadata"}]}),
    ];
    for v in bad {
        assert_invalid(WORKFLOW_MODEL_SCHEMA, &v);
        assert!(WorkflowModel::from_json(v.to_string().as_bytes()).is_err(), "the code accepts {v}");
    }
}
