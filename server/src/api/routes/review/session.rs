//! A session's evidence: the verdict timeline, Replay, and snapshots (every view audited).

use std::fmt::Write as _;

#[allow(clippy::wildcard_imports)]
use super::*;

fn render_verdict(body: &mut String, v: &SessionVerdict) {
    let _ = write!(
        body,
        "<p>Policy profile <strong id=\"profile\">{} v{}</strong> · wall {} · credited <strong>{}</strong> (provisional {}) · counts <strong>{}</strong> · flagged {} · events {}</p>",
        esc(&v.profile.id),
        v.profile.version,
        secs(v.wall_ms),
        secs(v.credited_ms),
        secs(v.provisional_ms),
        if v.counts { "yes" } else { "no" },
        if v.flagged_for_review {
            "<span class=\"bad\">yes</span>"
        } else {
            "no"
        },
        v.events_folded
    );
    // The timeline as a bar, then as a table.
    body.push_str("<h2>Timeline</h2><div class=\"bar\" aria-label=\"timeline\">");
    let wall = v.wall_ms.max(1);
    for s in &v.timeline {
        let w = (s.to.0 - s.from.0) as f64 * 100.0 / wall as f64;
        let _ = write!(
            body,
            "<div class=\"{}\" style=\"width:{w:.3}%\" title=\"{}\"></div>",
            if s.credited { "cr" } else { "un" },
            s.reason.map_or_else(|| "credited".into(), |r| code_of(&r))
        );
    }
    body.push_str("</div><table id=\"timeline\"><tr><th>from</th><th>to</th><th>video</th><th>credited</th><th>reason</th></tr>");
    for s in &v.timeline {
        let _ = write!(
            body,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"{}\">{}</td><td>{}</td></tr>",
            secs(s.from.0 - v.started_at.0),
            secs(s.to.0 - v.started_at.0),
            s.video
                .map_or_else(String::new, |[a, b]| format!("{}–{}", secs(a), secs(b))),
            if s.credited { "ok" } else { "bad" },
            if s.credited { "yes" } else { "no" },
            s.reason.map_or_else(String::new, |r| code_of(&r))
        );
    }
    body.push_str("</table><h2>Rules</h2><table id=\"rules\"><tr><th>rule</th><th>status</th><th>findings</th></tr>");
    for r in &v.rules {
        let findings: Vec<String> = r
            .findings
            .iter()
            .map(|f| {
                format!(
                    "{} at {}: {}",
                    code_of(&f.code),
                    secs(f.at.0 - v.started_at.0),
                    esc(&f.detail)
                )
            })
            .collect();
        let _ = write!(
            body,
            "<tr><td>{}</td><td class=\"{}\">{}</td><td>{}</td></tr>",
            r.rule.code(),
            if r.status == RuleStatus::Violated {
                "bad"
            } else {
                "ok"
            },
            code_of(&r.status),
            findings.join("<br>")
        );
    }
    body.push_str("</table><h2>Pop-ups and challenges</h2><table id=\"challenges\"><tr><th>kind</th><th>issued</th><th>deadline</th><th>response time</th><th>outcome</th></tr>");
    for c in &v.challenges {
        let _ = write!(
            body,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            code_of(&c.kind),
            secs(c.issued_at.0 - v.started_at.0),
            secs(c.deadline.0 - v.started_at.0),
            c.response_ms.map_or_else(|| "—".into(), secs),
            code_of(&c.outcome)
        );
    }
    body.push_str("</table><h2>Face checks</h2><table id=\"faces\"><tr><th>at</th><th>method</th><th>passed</th><th>match ‰</th><th>liveness ‰</th><th>detail</th></tr>");
    for f in &v.face_checks {
        let _ = write!(
            body,
            "<tr><td>{}</td><td>{}</td><td class=\"{}\">{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            secs(f.at.0 - v.started_at.0),
            code_of(&f.method),
            if f.passed { "ok" } else { "bad" },
            if f.passed { "yes" } else { "no" },
            f.match_permille
                .map_or_else(|| "—".into(), |x| x.to_string()),
            f.liveness_permille
                .map_or_else(|| "—".into(), |x| x.to_string()),
            esc(&f.detail)
        );
    }
    body.push_str("</table><h2>Snapshots</h2><p class=\"note\">Opening a snapshot is recorded in the audit log.</p><div id=\"snapshots\">");
    for s in &v.snapshots {
        let _ = write!(
            body,
            "<a href=\"/review/snapshots/{id}\" target=\"_blank\" rel=\"noopener\" title=\"{}\"><img class=\"thumb\" alt=\"snapshot at {}\" src=\"/review/snapshots/{id}?thumb=1\"></a>",
            esc(&s.sha256),
            secs(s.at.0 - v.started_at.0),
            id = esc(&s.snapshot_id)
        );
    }
    body.push_str("</div><h2>Tamper and environment signals</h2><ul id=\"signals\">");
    for s in &v.signals {
        let _ = write!(
            body,
            "<li>{} at {}: {}</li>",
            esc(&s.name),
            secs(s.at.0 - v.started_at.0),
            esc(&s.detail)
        );
    }
    if v.signals.is_empty() {
        body.push_str("<li class=\"note\">none</li>");
    }
    body.push_str("</ul>");
}

pub(super) async fn session(
    req: HttpRequest,
    app: web::Data<App>,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let who = reviewer!(req, app);
    let s = app.review_session_row(&who, &path).await?;
    let verdict: Option<SessionVerdict> = s
        .verdict_json
        .as_deref()
        .map(serde_json::from_str)
        .transpose()
        .map_err(|e| AppError::Internal(e.to_string()))?;
    let decisions = app
        .store
        .decisions_of_session(&s.id)
        .await
        .map_err(AppError::from)?;
    let signer_ids: Vec<String> = decisions
        .iter()
        .flat_map(|d| [Some(d.signer1.clone()), d.signer2.clone()])
        .flatten()
        .collect();
    let names = app
        .store
        .reviewer_names(&signer_ids)
        .await
        .map_err(AppError::from)?;
    let name = |id: &str| {
        names
            .iter()
            .find(|(i, _)| i == id)
            .map_or_else(|| id.to_owned(), |(_, n)| n.clone())
    };
    let appeals = app
        .store
        .appeals_of_session(&s.id)
        .await
        .map_err(AppError::from)?;
    app.audit(&who.id, "view_session", &who.province, &s.id, "")
        .await?;
    let mut body = format!(
        "<p>Learner <strong>{}</strong> · platform {} · class <a href=\"/review/queue?class={}\">{}</a> · lesson {} · status <strong id=\"status\">{}</strong></p>\
         <p><a id=\"replay\" href=\"/review/sessions/{}/replay\">Replay: recompute the verdict from the log</a></p>",
        esc(&s.learner_name),
        esc(&s.platform_name),
        esc(&s.class_id),
        esc(&s.class_name),
        esc(&s.lesson_id),
        ReviewStatus::of(&decisions, &appeals).code(),
        esc(&s.id)
    );
    if let Some(at) = app.store.purged_at(&s.id).await.map_err(AppError::from)? {
        let _ = write!(
            body,
            "<p class=\"bad\" id=\"purged\">Snapshots and event log purged at {} after the retention period (R15).</p>",
            at.0
        );
    }
    let hold = app.store.legal_hold(&s.id).await.map_err(AppError::from)?;
    let may_hold = matches!(
        who.role,
        crate::app::review::Role::SeniorReviewer | crate::app::review::Role::Administrator
    );
    match (&hold, may_hold) {
        (Some((reason, _, at)), true) => {
            let _ = write!(
                body,
                "<p id=\"hold\">Legal hold since {}: {} <form class=\"inline\" method=\"post\" action=\"/review/sessions/{}/release-hold\"><input type=\"hidden\" name=\"csrf\" value=\"{}\"><button>Release the hold</button></form></p>",
                at.0,
                esc(reason),
                esc(&s.id),
                esc(&who.csrf)
            );
        }
        (Some((reason, _, at)), false) => {
            let _ = write!(
                body,
                "<p id=\"hold\">Legal hold since {}: {}</p>",
                at.0,
                esc(reason)
            );
        }
        (None, true) => {
            let _ = write!(
                body,
                "<form method=\"post\" action=\"/review/sessions/{}/hold\"><input type=\"hidden\" name=\"csrf\" value=\"{}\"><label>Legal hold (keeps evidence past retention) <input name=\"reason\" required></label> <button>Place hold</button></form>",
                esc(&s.id),
                esc(&who.csrf)
            );
        }
        (None, false) => {}
    }
    match &verdict {
        Some(v) => render_verdict(&mut body, v),
        None => body.push_str(
            "<p class=\"note\">No verdict stored yet (the session has no folded events).</p>",
        ),
    }
    if !appeals.is_empty() {
        body.push_str("<h2>Appeals</h2><ul id=\"appeals\">");
        for a in &appeals {
            let _ = write!(
                body,
                "<li>{}: {}</li>",
                crate::app::review::day_of(a.submitted_at),
                esc(&a.reason)
            );
        }
        body.push_str("</ul>");
    }
    body.push_str("<h2>Decisions</h2><table id=\"decisions\"><tr><th>outcome</th><th>reason</th><th>comment</th><th>first signer</th><th>second signer</th><th></th></tr>");
    for d in &decisions {
        let action = if d.signer2.is_none() && who.role.can_sign() && d.signer1 != who.id {
            format!(
                "<form class=\"inline\" method=\"post\" action=\"/review/decisions/{}/countersign\"><input type=\"hidden\" name=\"csrf\" value=\"{}\"><button>Countersign</button></form>",
                esc(&d.id),
                esc(&who.csrf)
            )
        } else if d.signer2.is_none() {
            "awaiting a second, different reviewer".into()
        } else {
            "effective".into()
        };
        let _ = write!(
            body,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{action}</td></tr>",
            esc(&d.outcome),
            esc(&d.reason_code),
            esc(&d.comment),
            esc(&name(&d.signer1)),
            d.signer2
                .as_deref()
                .map_or_else(|| "—".into(), |s| esc(&name(s)))
        );
    }
    body.push_str("</table>");
    if who.role.can_sign() && decisions.iter().all(|d| d.signer2.is_some()) {
        let _ = write!(
            body,
            "<fieldset><legend>Sign a decision (a second reviewer must countersign)</legend><form method=\"post\" action=\"/review/sessions/{}/decisions\">\
             <input type=\"hidden\" name=\"csrf\" value=\"{}\"><label>Outcome <select name=\"outcome\"><option value=\"confirm\">confirm the verdict</option><option value=\"overturn\">overturn the verdict</option></select></label> \
             <label>Reason code <input name=\"reason_code\" required pattern=\"[A-Za-z0-9_]+\" placeholder=\"R4_face_liveness\"></label> \
             <label>Comment <input name=\"comment\" size=\"40\"></label> <button>Sign</button></form></fieldset>",
            esc(&s.id),
            esc(&who.csrf)
        );
    }
    Ok(page("Session", Some(&who), &body))
}

pub(super) async fn replay(
    req: HttpRequest,
    app: web::Data<App>,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let who = reviewer!(req, app);
    let s = app.review_session_row(&who, &path).await?;
    let report = app.replay(&s.id).await?;
    app.audit(
        &who.id,
        "replay",
        &who.province,
        &s.id,
        &format!("matches={}", report.matches),
    )
    .await?;
    let body = format!(
        "<p id=\"replay-result\" class=\"{}\">{}</p><p>{} events replayed under profile {} v{}; replayed credit {} (counts: {}).</p><p><a href=\"/review/sessions/{}\">Back to the session</a></p>",
        if report.matches { "ok" } else { "bad" },
        if report.matches {
            "The replayed verdict matches the stored verdict byte for byte."
        } else if report.stored_present {
            "MISMATCH: the replayed verdict differs from the stored one."
        } else {
            "No stored verdict to compare with."
        },
        report.events,
        esc(&report.replayed.profile.id),
        report.replayed.profile.version,
        secs(report.replayed.credited_ms),
        if report.replayed.counts { "yes" } else { "no" },
        esc(&s.id)
    );
    Ok(page("Replay", Some(&who), &body))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SnapQuery {
    #[serde(default)]
    thumb: Option<u8>,
}

pub(super) async fn snapshot(
    req: HttpRequest,
    app: web::Data<App>,
    path: web::Path<String>,
    q: web::Query<SnapQuery>,
) -> ApiResult<HttpResponse> {
    let who = reviewer!(req, app);
    let f = app
        .store
        .review_snapshot(&path, &who.scope())
        .await
        .map_err(AppError::from)?
        .ok_or(AppError::NotFound("snapshot"))?;
    let action = if q.thumb.is_some() {
        "view_snapshot_thumbnail"
    } else {
        "view_snapshot"
    };
    app.audit(
        &who.id,
        action,
        &who.province,
        &f.id,
        &format!("session={} at={}", f.session_id, f.at.0),
    )
    .await?;
    let evidence = app.evidence.clone();
    let locator = f.path.clone();
    let bytes = tokio::task::spawn_blocking(move || evidence.get(&locator))
        .await
        .map_err(|e| AppError::Internal(e.to_string()))?
        .map_err(|_| AppError::NotFound("snapshot file (purged or missing)"))?;
    Ok(HttpResponse::Ok()
        .content_type(f.content_type)
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(bytes))
}
