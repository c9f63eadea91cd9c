//! Dataset repositories on the project's hub server: push splits, load them back, and load the
//! layouts `datasets` users publish (split names in file names, `configs` in the card).
#![allow(clippy::unwrap_used)]

use embrace_datasets::{Dataset, DatasetDict, load_hub_dataset, push_to_hub};
use embrace_hub::{HubClient, HubConfig, RepoId, RepoType, UploadOptions};
use embrace_hub_server::{Hub, Role, ServerConfig};
use serde_json::json;

fn client(url: &str, cache: &std::path::Path, token: Option<&str>) -> HubClient {
    HubClient::new(HubConfig {
        cache_dir: cache.to_path_buf(),
        endpoint: url.to_string(),
        token: token.map(str::to_string),
        offline: false,
        token_path: cache.join("token"),
    })
    .unwrap()
}

#[test]
fn push_and_load_dataset_repositories() {
    let dir = tempfile::tempdir().unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let hub = Hub::open(ServerConfig::new(dir.path().join("data"), url.clone())).unwrap();
    hub.db().add_user("alice", None, None).unwrap();
    let token = hub.db().create_token("alice", Role::Write, "t").unwrap();
    let _server = hub.spawn(listener).unwrap();
    let writer = client(&url, &dir.path().join("writer"), Some(&token));

    // push_to_hub, then load_dataset: same splits, rows and features (ClassLabel included).
    let rows: Vec<_> = (0..50).map(|i| json!({ "text": format!("row {i}"), "label": if i % 3 == 0 { "pos" } else { "neg" } })).collect();
    let ds = Dataset::from_json_rows(&rows)
        .unwrap()
        .class_encode_column("label")
        .unwrap();
    let (train, test) = ds.train_test_split(0.2, Some(42)).unwrap();
    let dict = DatasetDict(vec![
        ("train".into(), train.clone()),
        ("test".into(), test.clone()),
    ]);
    let pushed = push_to_hub(&dict, &writer, "alice/tweets", false).unwrap();
    assert_eq!(pushed.commit_oid.len(), 40);
    let reader = client(&url, &dir.path().join("reader"), None);
    let loaded = load_hub_dataset(&reader, "alice/tweets", "main").unwrap();
    assert_eq!(loaded.splits(), vec!["train", "test"]);
    for (name, original) in [("train", &train), ("test", &test)] {
        let got = loaded.get(name).unwrap();
        assert_eq!(
            got.rows(0, got.num_rows()).unwrap(),
            original.rows(0, original.num_rows()).unwrap()
        );
        assert_eq!(got.features().to_json(), original.features().to_json());
    }

    // A repository laid out by hand: CSV files named by split.
    let repo = RepoId::new(RepoType::Dataset, "alice/plain").unwrap();
    writer.create_repo(&repo, false, false).unwrap();
    let folder = tempfile::tempdir().unwrap();
    std::fs::write(folder.path().join("train.csv"), "text,label\na,0\nb,1\n").unwrap();
    std::fs::write(folder.path().join("dev.csv"), "text,label\nc,1\n").unwrap();
    writer
        .upload_folder(&repo, folder.path(), &UploadOptions::default())
        .unwrap();
    let plain = load_hub_dataset(&reader, "alice/plain", "main").unwrap();
    assert_eq!(plain.splits(), vec!["train", "validation"]);
    assert_eq!(plain.get("validation").unwrap().num_rows(), 1);

    // A card with configs that point at custom paths.
    let repo = RepoId::new(RepoType::Dataset, "alice/custom").unwrap();
    writer.create_repo(&repo, false, false).unwrap();
    let folder = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(folder.path().join("files")).unwrap();
    std::fs::write(
        folder.path().join("files/part-a.jsonl"),
        "{\"x\": 1}\n{\"x\": 2}\n",
    )
    .unwrap();
    std::fs::write(folder.path().join("files/part-b.jsonl"), "{\"x\": 3}\n").unwrap();
    std::fs::write(
        folder.path().join("README.md"),
        "---\nconfigs:\n- config_name: default\n  data_files:\n  - split: everything\n    path: files/part-*.jsonl\n---\n",
    )
    .unwrap();
    writer
        .upload_folder(&repo, folder.path(), &UploadOptions::default())
        .unwrap();
    let custom = load_hub_dataset(&reader, "alice/custom", "main").unwrap();
    assert_eq!(custom.splits(), vec!["everything"]);
    assert_eq!(custom.get("everything").unwrap().num_rows(), 3);

    // Errors: a missing repository, a repository without data files.
    assert!(load_hub_dataset(&reader, "alice/none", "main").is_err());
    let empty = RepoId::new(RepoType::Dataset, "alice/empty").unwrap();
    writer.create_repo(&empty, false, false).unwrap();
    let err = load_hub_dataset(&reader, "alice/empty", "main").unwrap_err();
    assert!(err.to_string().contains("no data files"), "{err}");
}
