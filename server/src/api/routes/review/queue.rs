//! The queue (sessions and enrolments, riskiest first) and the enrolment view.

use std::fmt::Write as _;

#[allow(clippy::wildcard_imports)]
use super::*;

pub(super) async fn queue(
    req: HttpRequest,
    app: web::Data<App>,
    q: web::Query<QueueFilter>,
) -> ApiResult<HttpResponse> {
    let who = reviewer!(req, app);
    let f = q.into_inner();
    let items = app.review_queue(&who, &f).await?;
    let sel = |name: &str, options: &[&str], cur: &Option<String>| {
        let mut s =
            format!("<label>{name} <select name=\"{name}\"><option value=\"\">any</option>");
        for o in options {
            let selected = if cur.as_deref() == Some(*o) {
                " selected"
            } else {
                ""
            };
            let _ = write!(s, "<option{selected}>{}</option>", esc(o));
        }
        s.push_str("</select></label> ");
        s
    };
    let rules: Vec<&str> = crate::domain::RuleId::ALL
        .iter()
        .map(|r| r.code())
        .collect();
    let mut body = String::from("<form method=\"get\" action=\"/review/queue\">");
    body.push_str(&sel("rule", &rules, &f.rule));
    body.push_str(&sel(
        "status",
        &[
            "not_reviewed",
            "awaiting_countersign",
            "confirmed",
            "overturned",
            "appealed",
        ],
        &f.status,
    ));
    let _ = write!(
        body,
        "<label>platform <input name=\"platform\" size=\"10\" value=\"{}\"></label> <label>class <input name=\"class\" size=\"10\" value=\"{}\"></label> \
         <label>date <input name=\"date\" type=\"date\" value=\"{}\"></label> <button>Filter</button></form>",
        esc(f.platform.as_deref().unwrap_or("")),
        esc(f.class.as_deref().unwrap_or("")),
        esc(f.date.as_deref().unwrap_or(""))
    );
    let _ = write!(
        body,
        "<p class=\"note\">{} sessions, riskiest first.</p>",
        items.len()
    );
    body.push_str("<table id=\"queue\"><tr><th>risk</th><th>session</th><th>learner</th><th>platform</th><th>class</th><th>started</th><th>credited</th><th>counts</th><th>flagged</th><th>rules violated</th><th>status</th><th>export</th></tr>");
    for i in &items {
        let v = i.verdict.as_ref();
        let _ = write!(
            body,
            "<tr class=\"item\"><td>{}</td><td><a href=\"/review/sessions/{}\">{}</a></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"bad\">{}</td><td>{}</td><td><a href=\"/review/classes/{}/export.csv\">CSV</a> <a href=\"/review/classes/{}/export.json\">JSON</a></td></tr>",
            i.risk,
            esc(&i.session.id),
            esc(&i.session.id[..8.min(i.session.id.len())]),
            esc(&i.session.learner_name),
            esc(&i.session.platform_name),
            esc(&i.session.class_name),
            crate::app::review::day_of(i.session.created_at),
            v.map_or_else(|| "—".into(), |v| secs(v.credited_ms)),
            v.map_or("—", |v| if v.counts { "yes" } else { "no" }),
            v.map_or("—", |v| if v.flagged_for_review { "⚑ yes" } else { "" }),
            esc(&i.violated.join(", ")),
            i.status.code(),
            esc(&i.session.class_id),
            esc(&i.session.class_id),
        );
    }
    body.push_str("</table>");

    // Enrolments: each learner's enrolment verdict, make-ups (R16) to verify first.
    let enrolments = app.review_enrolments(&who).await?;
    let _ = write!(
        body,
        "<h2>Enrolments</h2><p class=\"note\">{} enrolments, riskiest first; a make-up lesson (补课, R16) counts once two reviewers confirm its session.</p>\
         <table id=\"enrolments\"><tr><th>risk</th><th>enrolment</th><th>learner</th><th>platform</th><th>class</th><th>课时 counted</th><th>counts</th><th>make-ups to verify</th></tr>",
        enrolments.len()
    );
    for e in &enrolments {
        let make_ups: Vec<String> = e
            .make_ups_awaiting
            .iter()
            .map(|s| {
                format!(
                    "<a href=\"/review/sessions/{}\">{}</a>",
                    esc(s),
                    esc(&s[..8.min(s.len())])
                )
            })
            .collect();
        let _ = write!(
            body,
            "<tr class=\"enrolment\"><td>{}</td><td><a href=\"/review/enrolments/{}\">{}</a></td><td>{}</td><td>{}</td><td>{}</td><td>{} / {}</td><td>{}</td><td>{}</td></tr>",
            e.risk,
            esc(&e.enrolment_id),
            esc(&e.enrolment_id[..8.min(e.enrolment_id.len())]),
            esc(&e.learner_name),
            esc(&e.platform_name),
            esc(&e.class_name),
            e.verdict.lesson_hours,
            e.verdict.planned_online_hours,
            if e.verdict.counts { "yes" } else { "no" },
            make_ups.join(" ")
        );
    }
    body.push_str("</table>");
    Ok(page("Queue", Some(&who), &body))
}

pub(super) async fn enrolment(
    req: HttpRequest,
    app: web::Data<App>,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let who = reviewer!(req, app);
    let e = app.review_enrolment(&who, &path.into_inner()).await?;
    let v = &e.verdict;
    let mut body = String::new();
    let _ = write!(
        body,
        "<p>Learner <strong>{}</strong> · platform {} · class <a href=\"/review/classes/{}/export.json\">{}</a> · profile <span id=\"profile\">{} v{}</span></p>\
         <p>课时 counted <strong id=\"lesson-hours\">{}</strong> (planned online {}, cap {}) · credited {} · all lessons complete: {} · counts: <strong id=\"counts\">{}</strong>{}</p>",
        esc(&e.learner_name),
        esc(&e.platform_name),
        esc(&e.class_id),
        esc(&e.class_name),
        esc(&v.profile.id),
        v.profile.version,
        v.lesson_hours,
        v.planned_online_hours,
        v.online_cap_hours
            .map_or_else(|| "none".into(), |c| c.to_string()),
        secs(v.credited_ms),
        if v.all_lessons_complete { "yes" } else { "no" },
        if v.counts { "yes" } else { "no" },
        if v.flagged_for_review {
            " · <span class=\"bad\">⚑ flagged</span>"
        } else {
            ""
        }
    );
    body.push_str("<h2>Lessons</h2><table id=\"lessons\"><tr><th>#</th><th>complete</th><th>coverage</th><th>credited</th><th>sessions</th><th>make-ups (R16)</th></tr>");
    for l in &v.lessons {
        let sessions: Vec<String> = l
            .sessions
            .iter()
            .map(|s| {
                format!(
                    "<a href=\"/review/sessions/{}\">{}</a>",
                    esc(s.as_str()),
                    esc(&s.as_str()[..8.min(s.as_str().len())])
                )
            })
            .collect();
        let make_ups: Vec<String> = l
            .make_ups
            .iter()
            .map(|m| {
                format!(
                    "<span class=\"make-up\"><a href=\"/review/sessions/{}\">{}</a> makes up {}: {}</span>",
                    esc(m.session.as_str()),
                    esc(&m.session.as_str()[..8.min(m.session.as_str().len())]),
                    esc(&m.makes_up.as_str()[..8.min(m.makes_up.as_str().len())]),
                    if m.verified { "verified" } else { "awaiting two reviewers" }
                )
            })
            .collect();
        let _ = write!(
            body,
            "<tr><td>{}</td><td>{}</td><td>{} / {}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            l.position,
            if l.complete { "yes" } else { "no" },
            secs(l.coverage_ms),
            secs(l.duration_ms),
            secs(l.credited_ms),
            sessions.join(" "),
            make_ups.join("<br>")
        );
    }
    body.push_str("</table><h2>课时 (lesson hours)</h2><table id=\"lesson-hour-records\"><tr><th>#</th><th>from</th><th>to</th><th>snapshots</th><th>counts</th><th>reason</th></tr>");
    for r in &v.lesson_hour_records {
        let _ = write!(
            body,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            r.index,
            crate::app::review::day_of(r.from),
            crate::app::review::day_of(r.to),
            r.snapshot_ids.len(),
            if r.counts { "yes" } else { "no" },
            r.reason
                .as_ref()
                .map_or_else(String::new, |x| esc(&code_of(x)))
        );
    }
    body.push_str("</table><h2>Uncredited time</h2><table id=\"uncredited\"><tr><th>reason</th><th>time</th></tr>");
    for t in &v.uncredited {
        let _ = write!(
            body,
            "<tr><td>{}</td><td>{}</td></tr>",
            esc(&code_of(&t.reason)),
            secs(t.ms)
        );
    }
    body.push_str("</table><h2>Rules</h2><table id=\"rules\"><tr><th>rule</th><th>status</th><th>findings</th></tr>");
    for r in &v.rules {
        let _ = write!(
            body,
            "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
            r.rule.code(),
            esc(&code_of(&r.status)),
            r.findings.len()
        );
    }
    body.push_str("</table>");
    Ok(page(
        &format!(
            "Enrolment {}",
            &e.enrolment_id[..8.min(e.enrolment_id.len())]
        ),
        Some(&who),
        &body,
    ))
}
