//! `cast_column` / `cast`: conversions that work, and values that cannot convert as errors that
//! name the row (never silent nulls).
#![allow(clippy::unwrap_used)]

use embrace_datasets::{Dataset, Feature, Features};
use serde_json::json;

fn data() -> Dataset {
    Dataset::from_json_rows(&[
        json!({"n": "1", "label": "pos", "score": 0.5, "k": 1}),
        json!({"n": "22", "label": "neg", "score": 1.5, "k": 0}),
        json!({"n": "x3", "label": "pos", "score": 2.0, "k": 2}),
    ])
    .unwrap()
}

#[test]
fn casts_convert_and_record_features() {
    let d = data();
    let labels = d
        .cast_column(
            "label",
            Feature::ClassLabel(vec!["neg".into(), "pos".into()]),
        )
        .unwrap();
    assert_eq!(
        labels
            .rows(0, 3)
            .unwrap()
            .iter()
            .map(|r| r["label"].clone())
            .collect::<Vec<_>>(),
        vec![json!(1), json!(0), json!(1)]
    );
    assert_eq!(
        labels.features().0[1].1,
        Feature::ClassLabel(vec!["neg".into(), "pos".into()])
    );
    assert_ne!(labels.fingerprint(), d.fingerprint());
    let text = d
        .cast_column("score", Feature::Value("string".into()))
        .unwrap();
    assert_eq!(text.rows(1, 1).unwrap()[0]["score"], json!("1.5"));
    let small = d
        .select(&[0, 1])
        .unwrap()
        .cast_column("n", Feature::Value("int32".into()))
        .unwrap();
    assert_eq!(small.rows(1, 1).unwrap()[0]["n"], json!(22));
    // cast() over all features converts only what differs.
    let mut target: Features = d.features().clone();
    target.0[3].1 = Feature::ClassLabel(vec!["a".into(), "b".into(), "c".into()]);
    let all = d.cast(&target).unwrap();
    assert_eq!(all.features(), &target);
}

#[test]
fn values_that_cannot_cast_are_errors() {
    let d = data();
    let e = d
        .cast_column("n", Feature::Value("int64".into()))
        .unwrap_err();
    assert!(
        e.to_string().contains("row 2") && e.to_string().contains("x3"),
        "{e}"
    );
    let e = d
        .cast_column("label", Feature::ClassLabel(vec!["pos".into()]))
        .unwrap_err();
    assert!(
        e.to_string().contains("row 1") && e.to_string().contains("neg"),
        "{e}"
    );
    let e = d
        .cast_column("k", Feature::ClassLabel(vec!["a".into(), "b".into()]))
        .unwrap_err();
    assert!(e.to_string().contains("row 2"), "{e}");
    let e = d
        .cast_column("missing", Feature::Value("int64".into()))
        .unwrap_err();
    assert!(e.to_string().contains("missing"), "{e}");
    let e = d
        .cast(&Features(vec![(
            "n".into(),
            Feature::Value("int64".into()),
        )]))
        .unwrap_err();
    assert!(e.to_string().contains("columns"), "{e}");
}
