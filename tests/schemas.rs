//! The JSON Schemas in `schemas/` against what the code really emits: messages
//! built through the public protocol API and serialized with serde_json must
//! conform, and broken variants of them must not.

mod common;

use chrono::{DateTime, TimeZone, Utc};
use common::schema::{assert_invalid, assert_valid, assert_valid_message, def_errors, errors, schemas_dir};
use offloader::protocol::message::{
    decode_announcement, decode_control, decode_job, decode_job_stop, decode_reply, Announcement, Completion,
    ControlAction, ControlCommand, JobMessage, JobProgress, JobStarted, JobStop, Reply, ANNOUNCEMENT_SCHEMA,
    COMPLETION_SCHEMA, CONTROL_SCHEMA, JOB_PROGRESS_SCHEMA, JOB_SCHEMA, JOB_STARTED_SCHEMA, JOB_STOP_SCHEMA,
};
use offloader::protocol::Progress;
use offloader::protocol::{
    BlobRef, Enablement, EnablementChange, InstanceId, InstanceInfo, Job, JobId, JobResult, JobState, PayloadEntry,
    Properties, Role, Sha256Hex, TopicPattern, TopicState,
};
use serde_json::{json, Value};

const MESSAGE_SCHEMAS: [&str; 7] = [
    JOB_SCHEMA,
    JOB_STARTED_SCHEMA,
    COMPLETION_SCHEMA,
    ANNOUNCEMENT_SCHEMA,
    CONTROL_SCHEMA,
    JOB_PROGRESS_SCHEMA,
    JOB_STOP_SCHEMA,
];

// ---------------------------------------------------------------- fixtures

fn blob(byte: u8, size: u64) -> BlobRef {
    BlobRef { sha256: Sha256Hex::from_digest(&[byte; 32]), size }
}

fn entry(path: &str, mime_type: Option<&str>) -> PayloadEntry {
    PayloadEntry { path: path.into(), blob: blob(0xab, 1234), mime_type: mime_type.map(Into::into) }
}

fn pattern(s: &str) -> TopicPattern {
    s.parse().unwrap()
}

/// A timestamp with a whole number of seconds (serialized without a fraction).
fn whole_second() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 5, 1, 12, 0, 0).unwrap()
}

fn job(inputs: Vec<PayloadEntry>, properties: Properties) -> Job {
    Job {
        id: JobId::new(),
        topic: "com/adobe/granite/workflow/offloading".parse().unwrap(),
        properties,
        inputs,
        attempt: 1,
        max_attempts: 3,
        timeout_ms: None,
    }
}

fn job_message() -> Value {
    let mut properties = Properties::new();
    properties.insert("offloading.input.payload".into(), "/content/dam/a.jpg".into());
    properties.insert("preset".into(), json!({"width": 320, "formats": ["webp", "png"]}));
    let inputs = vec![entry("/content/dam/a.jpg", Some("image/jpeg")), entry("/content/dam/a.xmp", None)];
    let msg = JobMessage::new(job(inputs, properties), "ns.replies.default".into(), Utc::now());
    serde_json::to_value(&msg).unwrap()
}

fn started() -> Reply {
    Reply::Started(JobStarted {
        job_id: JobId::new(),
        attempt: 2,
        worker: InstanceId::random(),
        worker_name: "worker-1".into(),
        redeliveries: 1,
        started_at: Utc::now(),
        detached: true,
    })
}

fn completion(result: JobResult, outputs: Vec<PayloadEntry>) -> Reply {
    let mut properties = Properties::new();
    properties.insert("ms".into(), 25.into());
    Reply::Completion(Completion {
        job_id: JobId::new(),
        attempt: 1,
        worker: InstanceId::random(),
        worker_name: "worker-1".into(),
        result,
        outputs,
        properties,
        started_at: whole_second(),
        finished_at: Utc::now(),
        redeliveries: 0,
    })
}

fn completion_value() -> Value {
    let outputs = vec![entry("/content/dam/a.jpg/jcr:content/renditions/web.png", Some("image/png"))];
    serde_json::to_value(completion(JobResult::Ok, outputs)).unwrap()
}

fn instance(role: Role) -> InstanceInfo {
    InstanceInfo {
        id: InstanceId::random(),
        name: format!("{role}-a"),
        role,
        cluster: "default".into(),
        endpoints: vec!["http://10.0.0.5:8080/".into(), "http://10.0.0.5:9090/metrics".into()],
        version: env!("CARGO_PKG_VERSION").into(),
        host: "node-a".into(),
        pid: 4242,
    }
}

fn announcement(role: Role, enablement: Enablement) -> Announcement {
    Announcement {
        schema: ANNOUNCEMENT_SCHEMA.into(),
        instance: instance(role),
        consumers: vec![pattern("acme/video/*"), pattern("acme/image/**"), pattern("acme/pdf")],
        enablement,
        topics: vec!["acme/video/transcode".parse().unwrap(), "acme/pdf".parse().unwrap()],
        ordered: if role == Role::Leader { vec!["acme/pdf".parse().unwrap()] } else { vec![] },
        max_parallel: if role == Role::Leader {
            [("acme/pdf".parse().unwrap(), 1), ("acme/video/transcode".parse().unwrap(), 2)].into()
        } else {
            Default::default()
        },
        interval_ms: 5000,
        sequence: 17,
        draining: false,
        leader: role == Role::Leader,
        ledger: (role == Role::Leader).then(|| "5f0c7c2e-1111-4a4a-9b9b-2c2c2c2c2c2c".into()),
        sent_at: Utc::now(),
    }
}

fn announcement_value() -> Value {
    serde_json::to_value(announcement(Role::Worker, Enablement::default())).unwrap()
}

fn control(action: ControlAction) -> ControlCommand {
    ControlCommand {
        schema: CONTROL_SCHEMA.into(),
        id: uuid::Uuid::new_v4(),
        target: InstanceId::random(),
        action,
        issued_at: Utc::now(),
    }
}

fn control_value(action: ControlAction) -> Value {
    serde_json::to_value(control(action)).unwrap()
}

/// Asserts that some violation mentions `needle` (an instance path, usually).
fn assert_mentions(errors: &[String], needle: &str) {
    assert!(
        errors.iter().any(|e| e.contains(needle)),
        "expected a violation mentioning {needle:?}, got:\n  {}",
        errors.join("\n  ")
    );
}

// ---------------------------------------------------------------- the files

/// Schemas of the leader's HTTP answers, which carry no `schema` field.
const API_ANSWERS: [&str; 2] = ["offloader.asset.v1", "offloader.ingest-outcome.v1"];

#[test]
fn every_schema_file_compiles_and_is_named_by_its_id() {
    let mut seen = Vec::new();
    for dirent in std::fs::read_dir(schemas_dir()).unwrap() {
        let path = dirent.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("json") {
            continue;
        }
        let id = path.file_stem().unwrap().to_str().unwrap().to_owned();
        let schema: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(schema["$schema"], "https://json-schema.org/draft/2020-12/schema", "{id}");
        if id == "defs" {
            continue;
        }
        // Compiling resolves every $ref into defs.json.
        common::schema::validator(&id);
        assert_eq!(schema["title"], id.as_str(), "title of {id}");
        // Messages and model files name their schema inside; HTTP answers are named by the URL.
        if !API_ANSWERS.contains(&id.as_str()) {
            assert_eq!(schema["properties"]["schema"]["const"], id.as_str(), "schema const of {id}");
        }
        assert_eq!(schema["additionalProperties"], false, "{id}");
        seen.push(id);
    }
    for id in MESSAGE_SCHEMAS {
        assert!(seen.iter().any(|s| s == id), "no schema file for {id}");
    }
}

#[test]
fn every_shared_definition_compiles() {
    let defs: Value = serde_json::from_str(&std::fs::read_to_string(schemas_dir().join("defs.json")).unwrap()).unwrap();
    for name in defs["$defs"].as_object().unwrap().keys() {
        // Compiling fails on a dangling or malformed $ref; the value is irrelevant.
        def_errors(name, &Value::Null);
    }
}

// ---------------------------------------------------------------- what the code emits

#[test]
fn job_messages_conform() {
    let v = job_message();
    assert_valid(JOB_SCHEMA, &v);
    assert_valid_message(&v);
    assert!(v["inputs"][1].get("mime_type").is_none(), "None is omitted, not null");

    // The smallest job: no properties, no inputs, a whole-second timestamp.
    let bare = JobMessage::new(job(vec![], Properties::new()), "q".into(), whole_second());
    assert_valid(JOB_SCHEMA, &serde_json::to_value(&bare).unwrap());
}

#[test]
fn job_progress_conforms_and_its_log_is_bounded() {
    let mut progress =
        Progress { steps: Some(10), done: 3, eta: Some(Utc::now()), updated_at: Utc::now(), log: vec![] };
    for i in 0..30 {
        progress.push_log(&format!("item {i} {}", "x".repeat(600)));
    }
    let reply = Reply::Progress(JobProgress {
        job_id: JobId::new(),
        attempt: 1,
        worker: InstanceId::random(),
        worker_name: "worker-1".into(),
        progress,
    });
    let v = serde_json::to_value(&reply).unwrap();
    assert_eq!(v["schema"], JOB_PROGRESS_SCHEMA);
    assert_valid(JOB_PROGRESS_SCHEMA, &v);
    assert_valid_message(&v);
    assert_eq!(decode_reply(&serde_json::to_vec(&v).unwrap()).unwrap(), reply);
    // Only the time is required: a consumer that only logs, or only counts.
    let mut bare = v.clone();
    bare["progress"] = json!({"updated_at": v["progress"]["updated_at"]});
    assert_valid(JOB_PROGRESS_SCHEMA, &bare);
    assert!(decode_reply(&serde_json::to_vec(&bare).unwrap()).is_ok());
    let mut long = v.clone();
    long["progress"]["log"][0] = "x".repeat(501).into();
    assert_mentions(&assert_invalid(JOB_PROGRESS_SCHEMA, &long), "/progress/log/0");
}

#[test]
fn job_stops_conform() {
    let v = serde_json::to_value(JobStop::new(JobId::new(), 2)).unwrap();
    assert_valid(JOB_STOP_SCHEMA, &v);
    assert_valid_message(&v);
    assert!(decode_job_stop(&serde_json::to_vec(&v).unwrap()).is_ok());
    let mut other = v.clone();
    other["schema"] = CONTROL_SCHEMA.into();
    assert!(decode_job_stop(&serde_json::to_vec(&other).unwrap()).is_err(), "a control command is not a stop");
    let mut bare = v;
    bare.as_object_mut().unwrap().remove("attempt");
    assert_mentions(&assert_invalid(JOB_STOP_SCHEMA, &bare), "attempt");
}

#[test]
fn job_started_conforms() {
    let v = serde_json::to_value(started()).unwrap();
    assert_eq!(v["schema"], JOB_STARTED_SCHEMA);
    assert_valid(JOB_STARTED_SCHEMA, &v);
    assert_valid_message(&v);
}

#[test]
fn completions_conform_for_every_result() {
    let results = [
        JobResult::Ok,
        JobResult::failed("disk full"),
        JobResult::Failed { reason: "corrupt input".into(), retry: false },
        JobResult::cancel("unknown preset"),
    ];
    for result in results {
        let outputs = vec![entry("/out/a.png", Some("image/png")), entry("/out/a.json", None)];
        let v = serde_json::to_value(completion(result.clone(), outputs)).unwrap();
        assert_eq!(v["schema"], COMPLETION_SCHEMA);
        assert_valid(COMPLETION_SCHEMA, &v);
        assert_valid_message(&v);
        assert!(def_errors("job_result", &serde_json::to_value(&result).unwrap()).is_empty());
    }
    let empty = serde_json::to_value(completion(JobResult::Ok, vec![])).unwrap();
    assert_valid(COMPLETION_SCHEMA, &empty);
}

#[test]
fn announcements_conform() {
    let mut exclusive = Enablement::new(vec![pattern("acme/**")], vec![pattern("acme/video/*")]);
    exclusive.apply(EnablementChange::Exclusive, &pattern("acme/indesign"));
    let cases = [
        announcement(Role::Worker, Enablement::default()),
        announcement(Role::Leader, Enablement::new(vec![], vec![])),
        announcement(Role::Worker, exclusive),
    ];
    for a in cases {
        let v = serde_json::to_value(&a).unwrap();
        assert_valid(ANNOUNCEMENT_SCHEMA, &v);
        assert_valid_message(&v);
    }
    let mut quiet = announcement(Role::Worker, Enablement::default());
    quiet.consumers.clear();
    quiet.topics.clear();
    quiet.instance.endpoints.clear();
    quiet.draining = true;
    assert_valid(ANNOUNCEMENT_SCHEMA, &serde_json::to_value(&quiet).unwrap());
}

#[test]
fn control_commands_conform_for_every_action() {
    let actions = [
        ControlAction::Enable { topic: pattern("acme/video/transcode") },
        ControlAction::Disable { topic: pattern("acme/video/*") },
        ControlAction::Exclusive { topic: pattern("acme/**") },
        ControlAction::Enable { topic: pattern("**") },
        ControlAction::Disable { topic: pattern("*") },
        ControlAction::Drain,
    ];
    for action in actions {
        let v = control_value(action);
        assert_valid(CONTROL_SCHEMA, &v);
        assert_valid_message(&v);
    }
}

#[test]
fn shared_enums_match_the_code() {
    for state in JobState::ALL {
        let v = serde_json::to_value(state).unwrap();
        assert!(def_errors("job_state", &v).is_empty(), "{v}");
    }
    assert!(!def_errors("job_state", &json!("DONE")).is_empty());
    for state in [TopicState::Enabled, TopicState::Disabled, TopicState::Exclusive] {
        let v = serde_json::to_value(state).unwrap();
        assert!(def_errors("topic_state", &v).is_empty(), "{v}");
    }
    for role in [Role::Leader, Role::Worker] {
        let v = serde_json::to_value(role).unwrap();
        assert!(def_errors("role", &v).is_empty(), "{v}");
    }
}

// ---------------------------------------------------------------- what must be rejected

#[test]
fn bad_digests_are_rejected_like_the_decoder_does() {
    for bad in ["A".repeat(64), "a".repeat(63), "a".repeat(65), format!("../{}", "a".repeat(61)), String::new()] {
        let mut v = job_message();
        v["inputs"][0]["blob"]["sha256"] = bad.clone().into();
        assert_mentions(&assert_invalid(JOB_SCHEMA, &v), "/inputs/0/blob/sha256");
        assert!(decode_job(&serde_json::to_vec(&v).unwrap()).is_err(), "decoder accepted {bad:?}");

        let mut c = completion_value();
        c["outputs"][0]["blob"]["sha256"] = bad.into();
        assert_mentions(&assert_invalid(COMPLETION_SCHEMA, &c), "/outputs/0/blob/sha256");
    }
}

#[test]
fn bad_topics_are_rejected_like_the_decoder_does() {
    let bad = [
        String::new(),
        "a.b".into(),
        "a//b".into(),
        "/a".into(),
        "a/".into(),
        "a/b-c".into(),
        "a/*".into(),
        "**".into(),
        "a/b\n".into(),
        "ä".into(),
        "x".repeat(201),
    ];
    for topic in bad {
        let mut v = job_message();
        v["topic"] = topic.clone().into();
        assert_mentions(&assert_invalid(JOB_SCHEMA, &v), "/topic");
        assert!(decode_job(&serde_json::to_vec(&v).unwrap()).is_err(), "decoder accepted {topic:?}");
    }
    let mut v = job_message();
    v["topic"] = "x".repeat(200).into();
    assert_valid(JOB_SCHEMA, &v);
}

#[test]
fn bad_patterns_are_rejected_like_the_decoder_does() {
    for good in ["*", "**", "a", "a/b_C9", "a/*", "a/**"] {
        let mut v = control_value(ControlAction::Enable { topic: pattern("a") });
        v["topic"] = good.into();
        assert_valid(CONTROL_SCHEMA, &v);
        assert!(decode_control(&serde_json::to_vec(&v).unwrap()).is_ok(), "{good}");
    }
    let long = format!("{}/**", "x".repeat(198));
    for bad in ["", "***", "a/*/b", "a/b*", "*/a", "/*", "a/***", "a.b", "a//*", long.as_str()] {
        let mut v = control_value(ControlAction::Enable { topic: pattern("a") });
        v["topic"] = bad.into();
        assert_mentions(&assert_invalid(CONTROL_SCHEMA, &v), "/topic");
        assert!(decode_control(&serde_json::to_vec(&v).unwrap()).is_err(), "decoder accepted {bad:?}");

        let mut a = announcement_value();
        a["enablement"]["deny"] = json!([bad]);
        assert_mentions(&assert_invalid(ANNOUNCEMENT_SCHEMA, &a), "/enablement/deny/0");
        assert!(decode_announcement(&serde_json::to_vec(&a).unwrap()).is_err(), "decoder accepted {bad:?}");
    }
}

#[test]
fn wrong_schema_constants_are_rejected() {
    let mut v = job_message();
    v["schema"] = "offloader.job.v2".into();
    assert_mentions(&assert_invalid(JOB_SCHEMA, &v), "/schema");
    assert!(decode_job(&serde_json::to_vec(&v).unwrap()).is_err());

    // Each message validates against its own schema only.
    let samples = [
        (JOB_SCHEMA, job_message()),
        (JOB_STARTED_SCHEMA, serde_json::to_value(started()).unwrap()),
        (COMPLETION_SCHEMA, completion_value()),
        (ANNOUNCEMENT_SCHEMA, announcement_value()),
        (CONTROL_SCHEMA, control_value(ControlAction::Drain)),
    ];
    for (own, value) in &samples {
        for other in MESSAGE_SCHEMAS {
            if other != *own {
                assert_invalid(other, value);
            }
        }
    }

    let mut c = completion_value();
    c["schema"] = "offloader.completion.v2".into();
    assert_invalid(COMPLETION_SCHEMA, &c);
    assert!(decode_reply(&serde_json::to_vec(&c).unwrap()).is_err());
    let mut a = announcement_value();
    a.as_object_mut().unwrap().remove("schema");
    assert_mentions(&assert_invalid(ANNOUNCEMENT_SCHEMA, &a), "schema");
}

#[test]
fn missing_required_fields_are_rejected_like_the_decoder_does() {
    let cases: [(&str, Value, &str); 9] = [
        (JOB_SCHEMA, job_message(), "reply_to"),
        (JOB_SCHEMA, job_message(), "id"),
        (JOB_SCHEMA, job_message(), "max_attempts"),
        (JOB_STARTED_SCHEMA, serde_json::to_value(started()).unwrap(), "redeliveries"),
        (COMPLETION_SCHEMA, completion_value(), "result"),
        (COMPLETION_SCHEMA, completion_value(), "finished_at"),
        (ANNOUNCEMENT_SCHEMA, announcement_value(), "enablement"),
        (ANNOUNCEMENT_SCHEMA, announcement_value(), "interval_ms"),
        (CONTROL_SCHEMA, control_value(ControlAction::Drain), "target"),
    ];
    for (schema_id, mut v, field) in cases {
        v.as_object_mut().unwrap().remove(field);
        assert_mentions(&assert_invalid(schema_id, &v), field);
        let bytes = serde_json::to_vec(&v).unwrap();
        let decoded = match schema_id {
            JOB_SCHEMA => decode_job(&bytes).is_ok(),
            JOB_STARTED_SCHEMA | COMPLETION_SCHEMA => decode_reply(&bytes).is_ok(),
            ANNOUNCEMENT_SCHEMA => decode_announcement(&bytes).is_ok(),
            _ => decode_control(&bytes).is_ok(),
        };
        assert!(!decoded, "decoder accepted {schema_id} without {field}");
    }

    // Nested required fields.
    let mut v = job_message();
    v["inputs"][0]["blob"].as_object_mut().unwrap().remove("size");
    assert_mentions(&assert_invalid(JOB_SCHEMA, &v), "/inputs/0/blob");
    let mut a = announcement_value();
    a["enablement"].as_object_mut().unwrap().remove("allow");
    assert_mentions(&assert_invalid(ANNOUNCEMENT_SCHEMA, &a), "/enablement");
    assert!(decode_announcement(&serde_json::to_vec(&a).unwrap()).is_err());
    let mut a = announcement_value();
    a["instance"].as_object_mut().unwrap().remove("pid");
    assert_mentions(&assert_invalid(ANNOUNCEMENT_SCHEMA, &a), "/instance");
}

#[test]
fn fields_the_reader_defaults_may_be_omitted() {
    // A v1 reader fills these in, so a v1 writer may leave them out.
    let mut v = job_message();
    let m = v.as_object_mut().unwrap();
    m.remove("properties");
    m.remove("inputs");
    assert_valid(JOB_SCHEMA, &v);
    assert!(decode_job(&serde_json::to_vec(&v).unwrap()).is_ok());

    let mut c = completion_value();
    c.as_object_mut().unwrap().remove("outputs");
    c.as_object_mut().unwrap().remove("properties");
    assert_valid(COMPLETION_SCHEMA, &c);
    assert!(decode_reply(&serde_json::to_vec(&c).unwrap()).is_ok());

    let mut a = announcement_value();
    for field in ["consumers", "topics", "draining"] {
        a.as_object_mut().unwrap().remove(field);
    }
    a["enablement"].as_object_mut().unwrap().remove("deny");
    a["enablement"].as_object_mut().unwrap().remove("exclusive");
    a["instance"].as_object_mut().unwrap().remove("endpoints");
    assert_valid(ANNOUNCEMENT_SCHEMA, &a);
    assert!(decode_announcement(&serde_json::to_vec(&a).unwrap()).is_ok());
}

#[test]
fn control_topic_goes_with_its_action() {
    let mut v = control_value(ControlAction::Disable { topic: pattern("a/b") });
    v.as_object_mut().unwrap().remove("topic");
    assert_mentions(&assert_invalid(CONTROL_SCHEMA, &v), "topic");
    assert!(decode_control(&serde_json::to_vec(&v).unwrap()).is_err());

    let mut v = control_value(ControlAction::Drain);
    v["topic"] = "a/b".into();
    assert_invalid(CONTROL_SCHEMA, &v);

    let mut v = control_value(ControlAction::Drain);
    v["action"] = "restart".into();
    assert_mentions(&assert_invalid(CONTROL_SCHEMA, &v), "/action");
    assert!(decode_control(&serde_json::to_vec(&v).unwrap()).is_err());
}

#[test]
fn job_results_are_checked_per_status() {
    let bad = [
        json!({"status": "DONE"}),
        json!({"status": "ok"}),
        json!({"status": "FAILED", "reason": "x"}),
        json!({"status": "FAILED", "retry": true}),
        json!({"status": "CANCEL"}),
        json!({"status": "CANCEL", "reason": "x", "retry": false}),
        json!({"status": "OK", "reason": "x"}),
        json!({"reason": "x"}),
    ];
    for result in bad {
        assert!(!def_errors("job_result", &result).is_empty(), "accepted {result}");
        let mut c = completion_value();
        c["result"] = result;
        assert_mentions(&assert_invalid(COMPLETION_SCHEMA, &c), "/result");
    }
}

#[test]
fn other_malformed_values_are_rejected() {
    let mut cases: Vec<(&str, Value)> = Vec::new();

    let mut v = job_message();
    v["id"] = "not-a-uuid".into();
    cases.push((JOB_SCHEMA, v));
    let mut v = job_message();
    v["id"] = v["id"].as_str().unwrap().to_uppercase().into();
    cases.push((JOB_SCHEMA, v));
    let mut v = job_message();
    v["created_at"] = "yesterday".into();
    cases.push((JOB_SCHEMA, v));
    let mut v = job_message();
    v["attempt"] = 0.into();
    cases.push((JOB_SCHEMA, v));
    let mut v = job_message();
    v["attempt"] = (-1).into();
    cases.push((JOB_SCHEMA, v));
    let mut v = job_message();
    v["reply_to"] = "".into();
    cases.push((JOB_SCHEMA, v));
    let mut v = job_message();
    v["properties"] = json!(["not", "a", "map"]);
    cases.push((JOB_SCHEMA, v));
    let mut v = job_message();
    v["inputs"][1]["mime_type"] = Value::Null;
    cases.push((JOB_SCHEMA, v));
    let mut v = job_message();
    v["inputs"][0]["mime_type"] = "jpeg".into();
    cases.push((JOB_SCHEMA, v));
    let mut v = job_message();
    v["inputs"][0]["blob"]["size"] = (-5).into();
    cases.push((JOB_SCHEMA, v));
    // Emission drift: a field v1 does not define.
    let mut v = job_message();
    v["priority"] = 5.into();
    cases.push((JOB_SCHEMA, v));
    let mut v = job_message();
    v["inputs"][0]["blob"]["bucket"] = "b".into();
    cases.push((JOB_SCHEMA, v));

    let mut v = serde_json::to_value(started()).unwrap();
    v["redeliveries"] = 4_294_967_296u64.into();
    cases.push((JOB_STARTED_SCHEMA, v));

    let mut v = announcement_value();
    v["instance"]["role"] = "observer".into();
    cases.push((ANNOUNCEMENT_SCHEMA, v));
    let mut v = announcement_value();
    v["interval_ms"] = 0.into();
    cases.push((ANNOUNCEMENT_SCHEMA, v));
    let mut v = announcement_value();
    v["topics"] = json!(["acme/**"]);
    cases.push((ANNOUNCEMENT_SCHEMA, v));
    let mut v = announcement_value();
    v["instance"]["endpoints"] = json!(["not a url"]);
    cases.push((ANNOUNCEMENT_SCHEMA, v));

    for (schema_id, v) in cases {
        assert_invalid(schema_id, &v);
    }

    // The helper's error listing names the offending location.
    let mut v = job_message();
    v["topic"] = "a.b".into();
    let errs = errors(JOB_SCHEMA, &v);
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(errs[0].starts_with("at /topic: "), "{}", errs[0]);
}

#[test]
fn job_profiles_conform_and_bad_ones_do_not() {
    use offloader::protocol::profile::JOB_PROFILE_SCHEMA;
    use offloader::protocol::workflow::ImageFormat;
    use offloader::protocol::{ProcessingProfile, ProfileRendition};
    let r = |name: &str, format, quality| ProfileRendition {
        name: name.into(),
        format,
        width: 10_000,
        height: 200,
        quality,
        include_mime_types: vec!["image/*".into()],
        exclude_mime_types: vec!["image/gif".into()],
    };
    let profile = ProcessingProfile {
        name: "web".into(),
        renditions: vec![
            r("a.webp", ImageFormat::Webp, None),
            r("a.gif", ImageFormat::Gif, None),
            r("a.jpg", ImageFormat::Jpeg, Some(70)),
        ],
        fpo: true,
    };
    profile.validate().unwrap();
    let v = serde_json::to_value(profile.for_asset("image/png").unwrap()).unwrap();
    assert_eq!(v["renditions"].as_array().map(Vec::len), Some(4), "{v}");
    assert_valid(JOB_PROFILE_SCHEMA, &v);
    let mut bad = v.clone();
    bad["schema"] = "offloader.job-profile.v2".into();
    assert_invalid(JOB_PROFILE_SCHEMA, &bad);
    let mut bad = v.clone();
    bad["renditions"][0]["width"] = 10_001.into();
    assert_invalid(JOB_PROFILE_SCHEMA, &bad);
    let mut bad = v.clone();
    bad["renditions"][0]["format"] = "tiff".into();
    assert_invalid(JOB_PROFILE_SCHEMA, &bad);
    let mut bad = v;
    bad["folder"] = "/content/dam".into();
    assert_invalid(JOB_PROFILE_SCHEMA, &bad);
}
