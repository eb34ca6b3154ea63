//! `proctor admin create-reviewer` and `proctor audit verify` as an operator runs them: the
//! real binary on a data directory (SQLite) or on PROCTOR_DATABASE_URL (PostgreSQL runs).

use std::process::{Command, Stdio};

use std::io::Write as _;

fn run(
    args: &[&str],
    dir: &std::path::Path,
    db: Option<&str>,
    stdin: Option<&str>,
) -> (i32, String) {
    let bin = proctor_e2e::proctor_bin().expect("the proctor binary");
    let mut cmd = Command::new(bin);
    cmd.args(args)
        .arg("--data-dir")
        .arg(dir)
        .env_remove("PROCTOR_DATABASE_URL");
    if let Some(db) = db {
        cmd.env("PROCTOR_DATABASE_URL", db);
    }
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    if let Some(s) = stdin {
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(s.as_bytes())
            .expect("write");
    }
    drop(child.stdin.take());
    let out = child.wait_with_output().expect("wait");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

#[tokio::test]
async fn create_reviewer_then_verify_and_catch_an_edit() {
    let dir = tempfile::tempdir().expect("dir");
    let db = proctor_e2e::test_database_url().await;
    let (code, out) = run(
        &[
            "admin",
            "create-reviewer",
            "dora",
            "--province",
            "41",
            "--role",
            "auditor",
            "--password-stdin",
        ],
        dir.path(),
        db.as_deref(),
        Some("a long enough password\n"),
    );
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("\"role\": \"auditor\""), "{out}");
    let (code, out) = run(
        &[
            "admin",
            "create-reviewer",
            "eve",
            "--province",
            "41",
            "--role",
            "senior_reviewer",
            "--totp",
        ],
        dir.path(),
        db.as_deref(),
        None,
    );
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("\"password\"") && out.contains("otpauth://totp/"),
        "a generated password and the TOTP URI are printed: {out}"
    );
    let (code, out) = run(
        &[
            "admin",
            "create-reviewer",
            "dora",
            "--province",
            "41",
            "--role",
            "reviewer",
        ],
        dir.path(),
        db.as_deref(),
        None,
    );
    assert_ne!(code, 0, "a second dora is refused: {out}");

    let (code, out) = run(&["audit", "verify"], dir.path(), db.as_deref(), None);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("\"rows\": 2") && out.contains("\"first_broken\": null"),
        "{out}"
    );

    // Edit the first row in the database behind the service's back.
    let url = db
        .clone()
        .unwrap_or_else(|| format!("sqlite://{}", dir.path().join("proctor.db").display()));
    let store = proctor::adapters::store::Store::connect(&url)
        .await
        .expect("store");
    sqlx::query("UPDATE audit_log SET actor = $1 WHERE seq = $2")
        .bind("someone-else")
        .bind(1_i64)
        .execute(store.pool())
        .await
        .expect("edit");
    store.close().await;
    let (code, out) = run(&["audit", "verify"], dir.path(), db.as_deref(), None);
    assert_eq!(code, 3, "{out}");
    assert!(out.contains("\"first_broken\": 1"), "{out}");
}
