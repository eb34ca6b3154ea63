//! The reviewers' workbench at `/review`: server-rendered pages (inline CSS and a few lines of
//! script; nothing loads from elsewhere). Sign-in sets a short-lived cookie (HttpOnly,
//! SameSite=Strict, path /review) naming a server-side session; every POST form carries that
//! session's CSRF token. Ids outside the reviewer's province answer 404, exactly like ids that
//! do not exist. Every page view, evidence view and action is appended to the audit chain.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;

use crate::api::error::{ApiError, ApiResult};
use crate::app::review::{QueueFilter, ReviewStatus, Reviewer, SESSION_TTL_MS, export};
use crate::app::{App, AppError};
use crate::domain::{RuleStatus, SessionVerdict};

const COOKIE: &str = "proctor_review";

const STYLE: &str = "body{font:14px system-ui,sans-serif;margin:0;color:#1b1b1b}header{background:#123;color:#fff;padding:8px 16px;display:flex;gap:16px;align-items:center}header a{color:#cde}main{padding:16px}table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #ccc;padding:3px 6px;text-align:left;vertical-align:top}th{background:#eef}.bad{color:#a00;font-weight:600}.ok{color:#070}.bar{display:flex;height:18px;border:1px solid #999;margin:8px 0}.bar div{height:100%}.cr{background:#4a4}.un{background:#d55}img.thumb{width:120px;border:1px solid #999;margin:2px}form.inline{display:inline}fieldset{margin:12px 0}.note{color:#555}";

/// Registers `/review` and its pages.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.app_data(
        web::FormConfig::default()
            .limit(16 * 1024)
            .error_handler(|e, _| ApiError::Malformed(e.to_string()).into()),
    )
    .route("/review", web::get().to(home))
    .route("/review/", web::get().to(home))
    .route("/review/login", web::get().to(login_page))
    .route("/review/login", web::post().to(login))
    .route("/review/logout", web::post().to(logout))
    .route("/review/queue", web::get().to(queue))
    .route("/review/sessions/{id}", web::get().to(session))
    .route("/review/sessions/{id}/replay", web::get().to(replay))
    .route("/review/sessions/{id}/decisions", web::post().to(decide))
    .route(
        "/review/decisions/{id}/countersign",
        web::post().to(countersign),
    )
    .route("/review/sessions/{id}/hold", web::post().to(hold))
    .route(
        "/review/sessions/{id}/release-hold",
        web::post().to(release_hold),
    )
    .route("/review/snapshots/{id}", web::get().to(snapshot))
    .route(
        "/review/classes/{id}/export.json",
        web::get().to(export_json),
    )
    .route("/review/classes/{id}/export.csv", web::get().to(export_csv))
    .route("/review/enrolments/{id}", web::get().to(enrolment))
    .route("/review/publicity", web::get().to(publicity_page))
    .route("/review/audit", web::get().to(audit_page));
}

/// HTML-escapes text.
pub fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

fn cookie_token(req: &HttpRequest) -> Option<String> {
    let raw = req.headers().get(header::COOKIE)?.to_str().ok()?;
    raw.split(';').find_map(|kv| {
        let (k, v) = kv.trim().split_once('=')?;
        (k == COOKIE && !v.is_empty()).then(|| v.to_owned())
    })
}

/// The signed-in reviewer, or 401 (POST) / a redirect to the sign-in page (GET).
async fn signed_in(req: &HttpRequest, app: &App) -> Result<Reviewer, HttpResponse> {
    let found = match cookie_token(req) {
        Some(t) => app
            .reviewer_by_token(&t)
            .await
            .map_err(|e| actix_web::ResponseError::error_response(&ApiError::from(e)))?,
        None => None,
    };
    found.ok_or_else(|| {
        if req.method() == actix_web::http::Method::GET {
            HttpResponse::SeeOther()
                .insert_header((header::LOCATION, "/review/login"))
                .finish()
        } else {
            actix_web::ResponseError::error_response(&ApiError::Unauthorized(
                "sign in at /review/login".into(),
            ))
        }
    })
}

macro_rules! reviewer {
    ($req:expr, $app:expr) => {
        match signed_in(&$req, &$app).await {
            Ok(r) => r,
            Err(resp) => return Ok(resp),
        }
    };
}

mod actions;
mod queue;
mod reports;
mod session;

use actions::{countersign, decide, hold, release_hold};
use queue::{enrolment, queue};
use reports::{audit_page, export_csv, export_json, publicity_page};
use session::{replay, session, snapshot};

fn check_csrf(who: &Reviewer, given: &str) -> ApiResult<()> {
    if given.is_empty() || given != who.csrf {
        return Err(AppError::Forbidden(
            "the form's CSRF token is missing or wrong; reload the page".into(),
        )
        .into());
    }
    Ok(())
}

fn page(title: &str, who: Option<&Reviewer>, body: &str) -> HttpResponse {
    let nav = who.map_or_else(String::new, |w| {
        format!(
            "<a href=\"/review/queue\">Queue</a><a href=\"/review/publicity\">Publicity 公示</a>{}<span style=\"margin-left:auto\">{} ({}, province {})</span>\
             <form class=\"inline\" method=\"post\" action=\"/review/logout\"><input type=\"hidden\" name=\"csrf\" value=\"{}\"><button>Sign out</button></form>",
            if w.role.can_read_audit() { "<a href=\"/review/audit\">Audit log</a>" } else { "" },
            esc(&w.name),
            w.role.code(),
            esc(&w.province),
            esc(&w.csrf)
        )
    });
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header(("content-security-policy", "default-src 'self'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src 'self'; form-action 'self'; frame-ancestors 'none'"))
        .insert_header(("x-frame-options", "DENY"))
        .body(format!(
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{} · proctor review</title><style>{STYLE}</style></head>\
             <body><header><strong>proctor · 审核工作台</strong>{nav}</header><main><h1>{}</h1>{body}</main></body></html>",
            esc(title),
            esc(title)
        ))
}

async fn home(req: HttpRequest, app: web::Data<App>) -> ApiResult<HttpResponse> {
    let to = if let Some(t) = cookie_token(&req)
        && app.reviewer_by_token(&t).await?.is_some()
    {
        "/review/queue"
    } else {
        "/review/login"
    };
    Ok(HttpResponse::SeeOther()
        .insert_header((header::LOCATION, to))
        .finish())
}

fn login_form(message: &str) -> String {
    format!(
        "{}<form method=\"post\" action=\"/review/login\"><p><label>Name <input name=\"name\" autocomplete=\"username\" required></label></p>\
         <p><label>Password <input type=\"password\" name=\"password\" autocomplete=\"current-password\" required></label></p>\
         <p><label>Code (if you have TOTP) <input name=\"totp\" inputmode=\"numeric\" autocomplete=\"one-time-code\"></label></p>\
         <p><button type=\"submit\">Sign in</button></p></form>",
        if message.is_empty() {
            String::new()
        } else {
            format!("<p class=\"bad\" role=\"alert\">{}</p>", esc(message))
        }
    )
}

async fn login_page() -> HttpResponse {
    page("Sign in", None, &login_form(""))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LoginForm {
    name: String,
    password: String,
    #[serde(default)]
    totp: String,
}

async fn login(app: web::Data<App>, form: web::Form<LoginForm>) -> ApiResult<HttpResponse> {
    let f = form.into_inner();
    let totp = (!f.totp.trim().is_empty()).then_some(f.totp.as_str());
    match app.review_sign_in(f.name.trim(), &f.password, totp).await {
        Ok(token) => {
            let secure = if app.public_url.starts_with("https://") {
                "; Secure"
            } else {
                ""
            };
            Ok(HttpResponse::SeeOther()
                .insert_header((header::LOCATION, "/review/queue"))
                .insert_header((
                    header::SET_COOKIE,
                    format!("{COOKIE}={token}; Path=/review; HttpOnly; SameSite=Strict; Max-Age={}{secure}", SESSION_TTL_MS / 1000),
                ))
                .finish())
        }
        Err(AppError::Forbidden(why)) => {
            let mut resp = page("Sign in", None, &login_form(&why));
            *resp.status_mut() = actix_web::http::StatusCode::FORBIDDEN;
            Ok(resp)
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

async fn logout(
    req: HttpRequest,
    app: web::Data<App>,
    form: web::Form<CsrfForm>,
) -> ApiResult<HttpResponse> {
    let who = reviewer!(req, app);
    check_csrf(&who, &form.csrf)?;
    if let Some(t) = cookie_token(&req) {
        app.review_sign_out(&who, &t).await?;
    }
    Ok(HttpResponse::SeeOther()
        .insert_header((header::LOCATION, "/review/login"))
        .insert_header((
            header::SET_COOKIE,
            format!("{COOKIE}=; Path=/review; HttpOnly; SameSite=Strict; Max-Age=0"),
        ))
        .finish())
}

fn secs(ms: i64) -> String {
    format!("{:.1} s", ms as f64 / 1000.0)
}

fn code_of<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}
