//! Evidence retention (R15) with a controlled clock: nothing is purged before the profile's
//! retention period; after it, a held session keeps everything, and once the hold is released
//! the snapshots (rows and files) and the event log go, the verdict stays, and the purge is in
//! the audit chain, which still verifies.

#[path = "review/common.rs"]
mod common;

use common::{reviewer, world};
use proctor::app::review::Role;
use proctor::domain::Millis;

#[tokio::test]
async fn purges_after_retention_and_honours_legal_holds() {
    let mut w = world().await;
    let sid = w.session.clone();
    let app = w.t.app.clone();
    let senior = reviewer(&w, "sam", "41", Role::SeniorReviewer).await;
    let plain = reviewer(&w, "pat", "41", Role::Reviewer).await;
    let other = reviewer(&w, "oli", "11", Role::SeniorReviewer).await;
    let (rec, _) = app
        .store
        .session(&sid)
        .await
        .expect("store")
        .expect("session");
    let locator = app.store.snapshot_files_of(&sid).await.expect("files")[0]
        .1
        .clone();
    let days = 1095_i64; // henan-2023 snapshots.retention_days
    let started = rec.ended_at.unwrap_or(rec.created_at).0;

    // One day before the period ends: nothing happens.
    let early = app
        .purge_expired(Millis(started + (days - 1) * 86_400_000))
        .await
        .expect("purge");
    assert!(
        early.purged.is_empty() && early.held.is_empty(),
        "{early:?}"
    );

    // Holds: only senior reviewers and administrators of the province place them.
    let (s, _) = plain
        .post(&format!("/review/sessions/{sid}/hold"), &[("reason", "x")])
        .await;
    assert_eq!(s, 403);
    let (s, _) = other
        .post(&format!("/review/sessions/{sid}/hold"), &[("reason", "x")])
        .await;
    assert_eq!(s, 404);
    let (s, body) = senior
        .post(
            &format!("/review/sessions/{sid}/hold"),
            &[("reason", "court case 2029-17")],
        )
        .await;
    assert_eq!(s, 303, "{body}");

    let late = Millis(started + (days + 1) * 86_400_000);
    let held = app.purge_expired(late).await.expect("purge");
    assert_eq!(held.held, vec![sid.clone()]);
    assert!(held.purged.is_empty());
    assert!(
        !app.store.events(&sid).await.expect("events").is_empty(),
        "a held session keeps its log"
    );
    assert!(app.evidence.get(&locator).is_ok(), "and its files");

    let (s, body) = senior
        .post(&format!("/review/sessions/{sid}/release-hold"), &[])
        .await;
    assert_eq!(s, 303, "{body}");
    let purged = app.purge_expired(late).await.expect("purge");
    assert_eq!(purged.purged, vec![sid.clone()]);
    assert!(
        app.store.events(&sid).await.expect("events").is_empty(),
        "the log is purged"
    );
    assert!(
        app.store
            .snapshot_files_of(&sid)
            .await
            .expect("files")
            .is_empty(),
        "snapshot rows are purged"
    );
    assert!(app.evidence.get(&locator).is_err(), "the file is deleted");
    assert!(
        app.store
            .verdict_json(&sid)
            .await
            .expect("verdict")
            .is_some(),
        "the verdict stays"
    );
    let (s, _) = senior
        .get(&format!("/review/snapshots/{}", w.snapshot))
        .await;
    assert_eq!(s, 404);
    let (s, page) = senior.get(&format!("/review/sessions/{sid}")).await;
    assert_eq!(s, 200);
    assert!(page.contains("id=\"purged\""), "the session view says so");

    // A second run purges nothing again.
    assert!(
        app.purge_expired(late)
            .await
            .expect("purge")
            .purged
            .is_empty()
    );

    let rows = app.store.audit_rows(0, 1000).await.expect("audit");
    let purge = rows
        .iter()
        .find(|r| r.action == "purge")
        .expect("the purge is audited");
    assert_eq!(purge.target, sid);
    assert!(
        purge.detail.contains("snapshots=1") && purge.detail.contains("retention_days=1095"),
        "{}",
        purge.detail
    );
    assert!(
        rows.iter()
            .any(|r| r.action == "legal_hold" && r.target == sid)
    );
    assert!(
        rows.iter()
            .any(|r| r.action == "legal_hold_released" && r.target == sid)
    );
    assert_eq!(app.verify_audit().await.expect("verify").first_broken, None);
    w.t.stop().await;
}
