//! Two-person decisions (R17) and the hash-chained audit trail: a decision is effective only
//! when a second, different reviewer countersigns; the same reviewer cannot sign twice; every
//! action and evidence view is in the chain; editing a row in the database breaks verification
//! at that row (on SQLite and on PostgreSQL, whichever the suite runs on).

#[path = "review/common.rs"]
mod common;

use common::{reviewer, world};
use proctor::app::review::Role;

#[tokio::test]
async fn decisions_need_two_different_signers_and_export_names_both() {
    let mut w = world().await;
    let sid = w.session.clone();
    let a = reviewer(&w, "alice", "41", Role::Reviewer).await;
    let b = reviewer(&w, "bob", "41", Role::SeniorReviewer).await;
    let auditor = reviewer(&w, "audrey", "41", Role::Auditor).await;

    let (s, body) = a
        .post(
            &format!("/review/sessions/{sid}/decisions"),
            &[
                ("outcome", "overturn"),
                ("reason_code", "R4_face_liveness"),
                ("comment", "the frame was dark; manual check passed"),
            ],
        )
        .await;
    assert_eq!(s, 303, "{body}");
    let d =
        w.t.app
            .store
            .decisions_of_session(&sid)
            .await
            .expect("decisions")[0]
            .clone();
    let (_, page) = a.get(&format!("/review/sessions/{sid}")).await;
    assert!(
        page.contains("id=\"status\">awaiting_countersign<"),
        "not effective with one signature"
    );

    // The same person cannot sign twice.
    let (s, body) = a
        .post(&format!("/review/decisions/{}/countersign", d.id), &[])
        .await;
    assert_eq!(s, 403, "{body}");
    assert!(body.contains("cannot sign a decision twice"), "{body}");
    // Nor can the database be made to: the table refuses signer2 = signer1.
    let direct =
        sqlx::query("UPDATE review_decisions SET signer2 = signer1, signed2_at = 1 WHERE id = $1")
            .bind(&d.id)
            .execute(w.t.app.store.pool())
            .await;
    assert!(
        direct.is_err(),
        "the CHECK constraint refuses one person signing twice"
    );
    // Auditors never sign.
    let (s, _) = auditor
        .post(&format!("/review/decisions/{}/countersign", d.id), &[])
        .await;
    assert_eq!(s, 403);
    let still =
        w.t.app
            .store
            .decision(&d.id)
            .await
            .expect("store")
            .expect("decision");
    assert_eq!(still.signer2, None);

    let (s, body) = b
        .post(&format!("/review/decisions/{}/countersign", d.id), &[])
        .await;
    assert_eq!(s, 303, "{body}");
    let (_, page) = a.get(&format!("/review/sessions/{sid}")).await;
    assert!(
        page.contains("id=\"status\">overturned<"),
        "effective after the second signature"
    );
    // A countersigned decision cannot be signed again.
    let (s, _) = a
        .post(&format!("/review/decisions/{}/countersign", d.id), &[])
        .await;
    assert_eq!(s, 403);

    // The effective decision is in publicity (公示, henan-2023: 5 days), not yet final.
    let (s, page) = a.get("/review/publicity").await;
    assert_eq!(s, 200);
    assert!(
        page.contains(&sid) && page.contains("in publicity"),
        "{page}"
    );

    // The export names both signers, in JSON and CSV.
    let (s, json) = a
        .get(&format!("/review/classes/{}/export.json", w.class))
        .await;
    assert_eq!(s, 200, "{json}");
    let v: serde_json::Value = serde_json::from_str(&json).expect("json");
    let sess = &v["learners"][0]["sessions"][0];
    assert_eq!(sess["session_id"], sid.as_str());
    assert_eq!(sess["decision"]["outcome"], "overturn");
    assert_eq!(
        sess["decision"]["signers"],
        serde_json::json!(["alice", "bob"])
    );
    assert!(
        v["learners"][0]["rules"].get("R4_face_liveness").is_some(),
        "{v}"
    );
    let eff = sess["decision"]["effective_at"]
        .as_i64()
        .expect("effective_at");
    let ends = sess["decision"]["publicity_ends_at"]
        .as_i64()
        .expect("publicity_ends_at");
    assert!(
        ends > eff + 5 * 86_400_000 && ends <= eff + 6 * 86_400_000,
        "{eff} {ends}"
    );
    assert_eq!(sess["decision"]["final"], false);
    let (s, csv) = a
        .get(&format!("/review/classes/{}/export.csv", w.class))
        .await;
    assert_eq!(s, 200);
    let mut lines = csv.lines();
    assert!(
        lines
            .next()
            .expect("header")
            .starts_with("class_id,learner_id,")
    );
    let row = lines.next().expect("a row");
    assert!(
        row.contains(&sid) && row.contains(",overturn,R4_face_liveness,alice,bob,"),
        "{row}"
    );

    // Replay shows the stored verdict matches the log.
    let (s, page) = a.get(&format!("/review/sessions/{sid}/replay")).await;
    assert_eq!(s, 200);
    assert!(page.contains("matches the stored verdict"), "{page}");
    w.t.stop().await;
}

#[tokio::test]
async fn the_audit_chain_records_actions_and_catches_an_edited_row() {
    let mut w = world().await;
    let sid = w.session.clone();
    let a = reviewer(&w, "carol", "41", Role::Reviewer).await;
    let (s, _) = a.get(&format!("/review/sessions/{sid}")).await;
    assert_eq!(s, 200);
    let (s, _) = a.get(&format!("/review/snapshots/{}", w.snapshot)).await;
    assert_eq!(s, 200);
    let (s, _) = a
        .post(
            &format!("/review/sessions/{sid}/decisions"),
            &[("outcome", "confirm"), ("reason_code", "R4_face_liveness")],
        )
        .await;
    assert_eq!(s, 303);

    let rows = w.t.app.store.audit_rows(0, 1000).await.expect("rows");
    let actions: Vec<&str> = rows.iter().map(|r| r.action.as_str()).collect();
    for want in [
        "create_reviewer",
        "sign_in",
        "view_queue",
        "view_session",
        "view_snapshot",
        "sign_decision",
    ] {
        assert!(actions.contains(&want), "{want} is audited: {actions:?}");
    }
    let snap_view = rows
        .iter()
        .find(|r| r.action == "view_snapshot")
        .expect("snapshot view");
    assert_eq!(snap_view.target, w.snapshot);
    assert_eq!(
        snap_view.actor,
        w.t.app
            .store
            .reviewer_by_name("carol")
            .await
            .expect("store")
            .expect("row")
            .id
    );

    let ok = w.t.app.verify_audit().await.expect("verify");
    assert_eq!(ok.first_broken, None, "{ok:?}");
    assert_eq!(ok.rows, i64::try_from(rows.len()).expect("len"));

    // Edit one row's detail directly in the database: verification names that row.
    let target = rows
        .iter()
        .find(|r| r.action == "sign_decision")
        .expect("decision row")
        .seq;
    sqlx::query("UPDATE audit_log SET detail = $1 WHERE seq = $2")
        .bind("outcome=overturn")
        .bind(target)
        .execute(w.t.app.store.pool())
        .await
        .expect("tamper");
    let bad = w.t.app.verify_audit().await.expect("verify");
    assert_eq!(bad.first_broken, Some(target), "{bad:?}");

    // Recomputing that row's hash to hide the edit breaks the next link instead.
    let r = &w.t.app.store.audit_rows(target - 1, 1).await.expect("row")[0];
    let rehash = proctor::app::review::audit::row_hash(&r.prev_hash, r);
    sqlx::query("UPDATE audit_log SET hash = $1 WHERE seq = $2")
        .bind(&rehash)
        .bind(target)
        .execute(w.t.app.store.pool())
        .await
        .expect("rehash");
    let bad = w.t.app.verify_audit().await.expect("verify");
    if target < i64::try_from(rows.len()).expect("len") {
        assert_eq!(bad.first_broken, Some(target + 1), "{bad:?}");
    }

    // A deleted row is a missing link.
    sqlx::query("DELETE FROM audit_log WHERE seq = $1")
        .bind(2_i64)
        .execute(w.t.app.store.pool())
        .await
        .expect("delete");
    let bad = w.t.app.verify_audit().await.expect("verify");
    assert_eq!(bad.first_broken, Some(2), "{bad:?}");
    w.t.stop().await;
}
