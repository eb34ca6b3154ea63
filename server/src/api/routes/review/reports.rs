//! Exports, the audit log and the publicity (公示) list.

use std::fmt::Write as _;

#[allow(clippy::wildcard_imports)]
use super::*;

pub(super) async fn export_json(
    req: HttpRequest,
    app: web::Data<App>,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let who = reviewer!(req, app);
    let e = app.export_class(&who, &path).await?;
    Ok(HttpResponse::Ok()
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"class-{}.json\"", e.class_id),
        ))
        .json(e))
}

pub(super) async fn export_csv(
    req: HttpRequest,
    app: web::Data<App>,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let who = reviewer!(req, app);
    let e = app.export_class(&who, &path).await?;
    Ok(HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"class-{}.csv\"", e.class_id),
        ))
        .body(export::to_csv(&e)))
}

pub(super) async fn audit_page(req: HttpRequest, app: web::Data<App>) -> ApiResult<HttpResponse> {
    let who = reviewer!(req, app);
    if !who.role.can_read_audit() {
        return Err(AppError::Forbidden(format!(
            "a {} cannot read the audit log",
            who.role.code()
        ))
        .into());
    }
    let rows = app
        .store
        .audit_rows_of_province(&who.province, 500)
        .await
        .map_err(AppError::from)?;
    app.audit(&who.id, "view_audit", &who.province, "audit", "")
        .await?;
    let mut body = String::from(
        "<p class=\"note\">The latest 500 entries of this province; <code>proctor audit verify</code> checks the whole chain.</p><table id=\"audit\"><tr><th>seq</th><th>at</th><th>actor</th><th>action</th><th>target</th><th>detail</th><th>hash</th></tr>",
    );
    for r in rows {
        let _ = write!(
            body,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td><code>{}</code></td></tr>",
            r.seq,
            r.at.0,
            esc(&r.actor),
            esc(&r.action),
            esc(&r.target),
            esc(&r.detail),
            esc(&r.hash[..12.min(r.hash.len())])
        );
    }
    body.push_str("</table>");
    Ok(page("Audit log", Some(&who), &body))
}

pub(super) async fn publicity_page(
    req: HttpRequest,
    app: web::Data<App>,
) -> ApiResult<HttpResponse> {
    let who = reviewer!(req, app);
    let rows = app
        .store
        .effective_decisions_of_province(&who.scope(), 500)
        .await
        .map_err(AppError::from)?;
    app.audit(&who.id, "view_publicity", &who.province, "publicity", "")
        .await?;
    let now = app.now();
    let mut body = String::from(
        "<p class=\"note\">Effective decisions are listed publicly for the profile's period (R17) before they are final.</p>\
         <table id=\"publicity\"><tr><th>session</th><th>outcome</th><th>reason</th><th>effective</th><th>publicity through (UTC+8)</th><th>state</th></tr>",
    );
    for (d, profile) in rows {
        let review = crate::domain::Profile::find(&profile)
            .map_err(|e| AppError::Internal(e.to_string()))?
            .review;
        let at = d.signed2_at.unwrap_or(d.signed1_at);
        let ends = crate::app::review::publicity::publicity_end(
            at,
            review.publicity_days,
            review.publicity_working_days,
        );
        let _ = write!(
            body,
            "<tr><td><a href=\"/review/sessions/{id}\">{id}</a></td><td>{}</td><td>{}</td><td>{}</td><td>{} ({} {}days)</td><td>{}</td></tr>",
            esc(&d.outcome),
            esc(&d.reason_code),
            crate::app::review::day_of(at),
            // The last day of the period, in China Standard Time.
            crate::app::review::day_of(crate::domain::Millis(ends.0 + 8 * 3_600_000 - 1)),
            review.publicity_days,
            if review.publicity_working_days {
                "working "
            } else {
                ""
            },
            if now >= ends { "final" } else { "in publicity" },
            id = esc(&d.session_id),
        );
    }
    body.push_str("</table>");
    Ok(page("Publicity 公示", Some(&who), &body))
}
