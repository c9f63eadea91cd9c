#![allow(clippy::unwrap_used)]
use super::*;
use crate::ids::{RepoId, RepoType};

fn entry(path: &str, content: &str) -> FileEntry {
    FileEntry {
        path: path.into(),
        size: content.len() as u64,
        sha256: crate::hashing::sha256_hex(content.as_bytes()),
        git_oid: crate::hashing::git_blob_id(content.as_bytes()),
        lfs: false,
    }
}

fn setup() -> (tempfile::TempDir, Db, Repo) {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path()).unwrap();
    db.add_user("alice", None, None).unwrap();
    let repo = db
        .create_repo(
            RepoType::Model,
            &RepoId::parse("alice/m").unwrap(),
            false,
            "alice",
            &entry(".gitattributes", "x"),
        )
        .unwrap()
        .unwrap();
    (dir, db, repo)
}

fn request(parent: Option<&str>, ops: Vec<Op>) -> CommitRequest {
    CommitRequest {
        branch: "refs/heads/main".into(),
        expected_parent: parent.map(str::to_string),
        title: "t".into(),
        message: String::new(),
        author: "alice".into(),
        ops,
    }
}

#[test]
fn commits_move_the_branch_and_keep_history() {
    let (_dir, db, repo) = setup();
    let initial = db.resolve_revision(&repo, "main").unwrap().unwrap();
    let c1 = db
        .commit(
            &repo,
            &request(Some(&initial), vec![Op::Put(entry("a/b.txt", "1"))]),
        )
        .unwrap()
        .unwrap();
    assert_eq!(db.resolve_revision(&repo, "main").unwrap().unwrap(), c1.id);
    let files: Vec<String> = db
        .files(&c1.id)
        .unwrap()
        .into_iter()
        .map(|f| f.path)
        .collect();
    assert_eq!(files, vec![".gitattributes", "a/b.txt"]);
    // The initial commit is unchanged.
    assert_eq!(db.files(&initial).unwrap().len(), 1);
    let (history, more) = db.history(&c1.id, 0, 10).unwrap();
    assert_eq!(history.len(), 2);
    assert!(!more);
}

#[test]
fn stale_parent_is_refused() {
    let (_dir, db, repo) = setup();
    let initial = db.resolve_revision(&repo, "main").unwrap().unwrap();
    db.commit(
        &repo,
        &request(Some(&initial), vec![Op::Put(entry("x", "1"))]),
    )
    .unwrap()
    .unwrap();
    let second = db
        .commit(
            &repo,
            &request(Some(&initial), vec![Op::Put(entry("y", "2"))]),
        )
        .unwrap();
    assert!(matches!(second, Err(CommitError::Stale { .. })));
}

#[test]
fn deletes_and_conflicts() {
    let (_dir, db, repo) = setup();
    let c = db
        .commit(
            &repo,
            &request(
                None,
                vec![Op::Put(entry("d/a", "1")), Op::Put(entry("d/b", "2"))],
            ),
        )
        .unwrap()
        .unwrap();
    assert!(matches!(
        db.commit(&repo, &request(None, vec![Op::Delete("nope".into())]))
            .unwrap(),
        Err(CommitError::MissingFile(_))
    ));
    assert!(matches!(
        db.commit(&repo, &request(None, vec![Op::Put(entry("d", "x"))]))
            .unwrap(),
        Err(CommitError::PathConflict(_))
    ));
    assert!(matches!(
        db.commit(&repo, &request(None, vec![Op::Put(entry("d/a/c", "x"))]))
            .unwrap(),
        Err(CommitError::PathConflict(_))
    ));
    // Refused commits leave the branch where it was.
    assert_eq!(db.resolve_revision(&repo, "main").unwrap().unwrap(), c.id);
    let c2 = db
        .commit(&repo, &request(None, vec![Op::DeleteFolder("d".into())]))
        .unwrap()
        .unwrap();
    assert_eq!(db.files(&c2.id).unwrap().len(), 1);
}

#[test]
fn refs_and_tokens() {
    let (_dir, db, repo) = setup();
    let head = db.resolve_revision(&repo, "main").unwrap().unwrap();
    assert!(db.create_ref(&repo, "refs/tags/v1", &head).unwrap());
    assert!(!db.create_ref(&repo, "refs/tags/v1", &head).unwrap());
    assert_eq!(db.resolve_revision(&repo, "v1").unwrap().unwrap(), head);
    assert_eq!(db.resolve_revision(&repo, &head).unwrap().unwrap(), head);
    assert!(db.resolve_revision(&repo, "nope").unwrap().is_none());
    let token = db.create_token("alice", Role::Write, "laptop").unwrap();
    assert!(token.starts_with("hf_"));
    let info = db.authenticate(&token).unwrap().unwrap();
    assert_eq!(info.user.name, "alice");
    assert_eq!(info.role, Role::Write);
    assert!(db.authenticate("hf_wrong").unwrap().is_none());
    assert!(db.add_user("alice", None, None).is_err());
}
