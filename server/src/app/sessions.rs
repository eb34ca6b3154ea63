//! Starting sessions (admission: R2, R5, R11, R13, R14), reading verdicts, replaying logs and
//! summarising enrolments. Refusals are recorded as evidence before the error is returned.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{App, AppError, AppResult, new_id};
use crate::domain::admission::{
    self, AdmissionFacts, Admitted, OtherEnrolment, PlatformStanding, Refusal,
};
use crate::domain::enrolment::{EnrolmentInput, LessonInput, enrolment_verdict};
use crate::domain::verdict::EnrolmentVerdict;
use crate::domain::{
    Event, EventBody, LearnerId, LessonId, Millis, Origin, Profile, ProfileRef, SessionContext,
    SessionFold, SessionId, SessionVerdict, TerminationReason,
};
use crate::model::{Enrolment, Platform, SessionRecord};

/// A request to start learning one lesson.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StartSession {
    pub enrolment_id: String,
    pub lesson_id: String,
}

/// How the learner proves who they are (R4).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum IdentityCheck {
    /// Liveness and face match by the face models (the learner consented).
    Face,
    /// The non-face alternative: a reviewer's manual check (no face consent).
    Manual,
}

/// A started session: hand `learner_token` and `ws_url` to the learner's browser.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct StartedSession {
    pub session_id: String,
    pub learner_token: String,
    /// Unix seconds.
    pub token_expires_at: u64,
    pub ws_url: String,
    pub lesson_id: String,
    pub lesson_duration_ms: i64,
    pub profile: ProfileRef,
    pub identity_check: IdentityCheck,
    pub heartbeat_interval_ms: i64,
    /// Server time at creation.
    pub started_at: Millis,
}

/// A refused session start, kept as evidence (R5 and friends).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RefusalRecord {
    pub rule: String,
    pub detail: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lesson_id: Option<String>,
    pub at: Millis,
}

/// An enrolment's summary: its verdict plus refused starts.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct EnrolmentSummary {
    pub verdict: EnrolmentVerdict,
    pub refusals: Vec<RefusalRecord>,
}

/// The outcome of replaying a session's log against its stored verdict.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ReplayReport {
    pub session_id: String,
    pub events: usize,
    /// The stored verdict is byte-identical to the replayed one.
    pub matches: bool,
    pub stored_present: bool,
    pub replayed: SessionVerdict,
}

/// The rule code a refusal names, for problem+json and the refusals table.
pub fn refusal_rule(r: &Refusal) -> &'static str {
    r.rule()
}

fn other_enrolments(all: &[Enrolment], except: Option<&str>) -> Vec<OtherEnrolment> {
    all.iter()
        .filter(|e| Some(e.id.as_str()) != except)
        .map(|e| OtherEnrolment {
            enrolled_at: e.enrolled_at,
            examined_at: e.examined_at,
        })
        .collect()
}

/// R11 at enrolment time: the same decision the session start makes, on the person's other
/// enrolments only.
pub fn check_cooldown(
    profile: &Profile,
    now: Millis,
    person_enrolments: &[Enrolment],
) -> AppResult<()> {
    let others = other_enrolments(person_enrolments, None);
    let facts = AdmissionFacts {
        profile,
        now,
        enrolled_at: now,
        lesson_position: 1,
        completed_positions: &[],
        content_approved: true,
        platform: PlatformStanding {
            registered: true,
            banned_since: None,
        },
        other_enrolments: &others,
        lease_holder: None,
    };
    admission::admit(&facts)
        .map(|_| ())
        .map_err(|r| AppError::Rule {
            rule: refusal_rule(&r),
            detail: r.to_string(),
        })
}

/// Merged union of ms intervals.
pub fn merge_intervals(mut v: Vec<[i64; 2]>) -> Vec<[i64; 2]> {
    v.retain(|[a, b]| b > a);
    v.sort_unstable();
    let mut out: Vec<[i64; 2]> = Vec::with_capacity(v.len());
    for [a, b] in v {
        match out.last_mut() {
            Some(last) if a <= last[1] => last[1] = last[1].max(b),
            _ => out.push([a, b]),
        }
    }
    out
}

impl App {
    fn profile_of(&self, r: &ProfileRef) -> AppResult<Profile> {
        Profile::find(r).map_err(|e| AppError::Internal(e.to_string()))
    }

    /// A session and its context, whoever owns it.
    pub async fn session_with_context(
        &self,
        id: &str,
    ) -> AppResult<(SessionRecord, SessionContext)> {
        let (rec, ctx) = self
            .store
            .session(id)
            .await?
            .ok_or(AppError::NotFound("session"))?;
        let ctx = serde_json::from_str(&ctx).map_err(|e| AppError::Internal(e.to_string()))?;
        Ok((rec, ctx))
    }

    /// A session the platform owns.
    pub async fn session_of(
        &self,
        platform: &Platform,
        id: &str,
    ) -> AppResult<(SessionRecord, SessionContext)> {
        let (rec, ctx) = self.session_with_context(id).await?;
        if rec.platform_id != platform.id {
            return Err(AppError::NotFound("session"));
        }
        Ok((rec, ctx))
    }

    /// The current verdict of a session: the stored one, or a replay if none is stored yet.
    pub async fn session_verdict(
        &self,
        rec: &SessionRecord,
        ctx: &SessionContext,
    ) -> AppResult<SessionVerdict> {
        let mut verdict: SessionVerdict = match self.store.verdict_json(&rec.id).await? {
            Some(json) => {
                serde_json::from_str(&json).map_err(|e| AppError::Internal(e.to_string()))?
            }
            None => {
                let events = self.store.events(&rec.id).await?;
                SessionFold::replay(self.profile_of(&rec.profile)?, ctx.clone(), events)
            }
        };
        // Reviewers' decisions are not in the learner's event log: the fold leaves
        // `reviewed_by` empty and reads add the effective decision (R17).
        verdict.reviewed_by = self.reviewed_by(&rec.id).await?;
        Ok(verdict)
    }

    /// Recomputes a verdict from the log and compares it, byte for byte, with the stored one.
    pub async fn replay(&self, session_id: &str) -> AppResult<ReplayReport> {
        let (rec, ctx) = self.session_with_context(session_id).await?;
        let events = self.store.events(&rec.id).await?;
        let n = events.len();
        let replayed = SessionFold::replay(self.profile_of(&rec.profile)?, ctx, events);
        let stored = self.store.verdict_json(&rec.id).await?;
        let fresh =
            serde_json::to_string(&replayed).map_err(|e| AppError::Internal(e.to_string()))?;
        Ok(ReplayReport {
            session_id: rec.id,
            events: n,
            matches: stored.as_deref() == Some(fresh.as_str()),
            stored_present: stored.is_some(),
            replayed,
        })
    }

    /// Coverage of one lesson by an enrolment's sessions so far (merged), and whether any
    /// of those sessions is still running.
    async fn lesson_coverage(
        &self,
        sessions: &[SessionRecord],
        lesson_id: &str,
    ) -> AppResult<Vec<[i64; 2]>> {
        let mut all = Vec::new();
        for s in sessions.iter().filter(|s| s.lesson_id == lesson_id) {
            if let Some(json) = self.store.verdict_json(&s.id).await? {
                let v: SessionVerdict =
                    serde_json::from_str(&json).map_err(|e| AppError::Internal(e.to_string()))?;
                all.extend(v.coverage);
            }
        }
        Ok(merge_intervals(all))
    }

    /// Starts a learning session, or refuses it naming the rule (and records the refusal).
    pub async fn start_session(
        &self,
        platform: &Platform,
        req: StartSession,
    ) -> AppResult<StartedSession> {
        let (enrolment, class) = self.enrolment(platform, &req.enrolment_id).await?;
        let profile = self.profile_of(&class.profile)?;
        let course = self.course(platform, &class.course_id).await?;
        let lesson = course
            .lessons
            .iter()
            .find(|l| l.id == req.lesson_id)
            .cloned()
            .ok_or(AppError::Invalid {
                field: "lesson_id",
                why: "is not a lesson of the class's course".into(),
            })?;
        let learner = self.learner(platform, &enrolment.learner_id).await?;
        let now = self.now();

        let sessions = self.store.sessions_of_enrolment(&enrolment.id).await?;
        let mut completed = Vec::new();
        for l in &course.lessons {
            let cov = self.lesson_coverage(&sessions, &l.id).await?;
            let covered: i64 = cov.iter().map(|[a, b]| b - a).sum();
            if covered >= l.duration_ms - profile.fast_forward.coverage_slack_ms {
                completed.push(l.position);
            }
        }
        let person = self.store.enrolments_of_person(&learner.id).await?;
        let others = other_enrolments(&person, Some(&enrolment.id));
        let holder = self.lease_holder(&learner.id).await?;
        let facts = AdmissionFacts {
            profile: &profile,
            now,
            enrolled_at: enrolment.enrolled_at,
            lesson_position: lesson.position,
            completed_positions: &completed,
            content_approved: lesson.approved,
            platform: PlatformStanding {
                registered: platform.registered,
                banned_since: platform.banned_since,
            },
            other_enrolments: &others,
            lease_holder: holder.clone().map(SessionId::from),
        };
        let session_id = new_id();
        let admitted = match admission::admit(&facts) {
            Ok(a) => a,
            Err(refusal) => {
                let rule = refusal_rule(&refusal);
                let detail = refusal.to_string();
                self.store
                    .record_refusal(&crate::adapters::store::RefusalRow {
                        id: &new_id(),
                        learner_id: &learner.id,
                        enrolment_id: Some(&enrolment.id),
                        lesson_id: Some(&lesson.id),
                        rule,
                        detail: &detail,
                        at: now,
                    })
                    .await?;
                if let Refusal::ConcurrentSession { holder } = &refusal {
                    // R2: both facts are recorded, in the holder's log too.
                    self.append_server_event(
                        holder.as_str(),
                        EventBody::ConcurrentSessionRefused {
                            other_session: SessionId::from(session_id.as_str()),
                        },
                    )
                    .await?;
                }
                return Err(AppError::Rule { rule, detail });
            }
        };

        let prior = self.lesson_coverage(&sessions, &lesson.id).await?;
        let ctx = SessionContext {
            session_id: SessionId::from(session_id.as_str()),
            learner_id: LearnerId::from(learner.id.as_str()),
            lesson_id: LessonId::from(lesson.id.as_str()),
            lesson_duration_ms: lesson.duration_ms,
            prior_coverage: prior,
        };
        let record = SessionRecord {
            id: session_id.clone(),
            enrolment_id: enrolment.id.clone(),
            learner_id: learner.id.clone(),
            lesson_id: lesson.id.clone(),
            platform_id: platform.id.clone(),
            profile: class.profile.clone(),
            created_at: now,
            ended_at: None,
        };
        let started = Event {
            origin: Origin::Server,
            seq: 1,
            at: now,
            body: EventBody::SessionStarted,
        };
        let ctx_json =
            serde_json::to_string(&ctx).map_err(|e| AppError::Internal(e.to_string()))?;
        self.store
            .create_session(crate::adapters::store::NewSession {
                record: &record,
                context_json: &ctx_json,
                started: &started,
            })
            .await?;
        if let Admitted::StartSuperseding(old) = admitted {
            self.append_server_event(
                old.as_str(),
                EventBody::Terminated {
                    reason: TerminationReason::Superseded,
                    position_ms: None,
                },
            )
            .await?;
            self.close_socket(
                old.as_str(),
                super::protocol::close::SESSION_ENDED,
                "superseded by a newer session",
            )
            .await;
        }
        self.lease_hold(&learner.id, &session_id, profile.single_window.lease_ttl_ms)
            .await?;
        self.bus
            .publish(crate::adapters::bus::Delivery::new(
                session_id.clone(),
                started,
            ))
            .await?;
        let (token, expires) = self
            .keys
            .issue_learner(&learner.id, &session_id)
            .map_err(|e| AppError::Internal(e.to_string()))?;
        Ok(StartedSession {
            ws_url: self.ws_url(&session_id),
            session_id,
            learner_token: token,
            token_expires_at: expires,
            lesson_id: lesson.id,
            lesson_duration_ms: lesson.duration_ms,
            profile: class.profile,
            identity_check: if learner.face_consent {
                IdentityCheck::Face
            } else {
                IdentityCheck::Manual
            },
            heartbeat_interval_ms: self.heartbeat_interval_ms,
            started_at: now,
        })
    }

    /// Credited time of the enrolment's other sessions, and how many of their snapshots fall in
    /// the 课时 that is still open: where a new session's snapshot plan continues from.
    pub async fn enrolment_progress(
        &self,
        rec: &SessionRecord,
        profile: &Profile,
    ) -> AppResult<(i64, u32)> {
        let mut spans = Vec::new();
        let mut snaps = Vec::new();
        for s in self.store.sessions_of_enrolment(&rec.enrolment_id).await? {
            if s.id == rec.id {
                continue;
            }
            let Some(json) = self.store.verdict_json(&s.id).await? else {
                continue;
            };
            let v: SessionVerdict =
                serde_json::from_str(&json).map_err(|e| AppError::Internal(e.to_string()))?;
            spans.extend(
                v.timeline
                    .iter()
                    .filter(|sp| sp.credited)
                    .map(|sp| (sp.from, sp.to)),
            );
            snaps.extend(v.snapshots.iter().map(|sn| sn.at));
        }
        spans.sort_unstable();
        let total: i64 = spans.iter().map(|(a, b)| b.saturating_sub(*a)).sum();
        let hour = profile.lesson_hour_ms();
        let open_from = (total / hour) * hour;
        // The server time at which credited time reached `open_from`.
        let mut acc = 0;
        let mut t0 = Millis(i64::MIN);
        for (a, b) in &spans {
            let len = b.saturating_sub(*a);
            if open_from > 0 && acc + len >= open_from {
                t0 = a.plus(open_from - acc);
                break;
            }
            acc += len;
        }
        let in_hour = snaps.iter().filter(|at| **at >= t0).count();
        Ok((total, u32::try_from(in_hour).unwrap_or(u32::MAX)))
    }

    /// The enrolment verdict: the pure enrolment fold over its sessions' verdicts.
    pub async fn enrolment_summary(
        &self,
        platform: &Platform,
        id: &str,
    ) -> AppResult<EnrolmentSummary> {
        let (enrolment, class) = self.enrolment(platform, id).await?;
        let profile = self.profile_of(&class.profile)?;
        let course = self.course(platform, &class.course_id).await?;
        let sessions = self.store.sessions_of_enrolment(&enrolment.id).await?;
        let mut lessons = Vec::with_capacity(course.lessons.len());
        for l in &course.lessons {
            let mut verdicts = Vec::new();
            for s in sessions.iter().filter(|s| s.lesson_id == l.id) {
                let (rec, ctx) = self.session_of(platform, &s.id).await?;
                verdicts.push(self.session_verdict(&rec, &ctx).await?);
            }
            lessons.push(LessonInput {
                lesson_id: LessonId::from(l.id.as_str()),
                position: l.position,
                duration_ms: l.duration_ms,
                sessions: verdicts,
            });
        }
        let input = EnrolmentInput {
            enrolment_id: crate::domain::EnrolmentId::from(enrolment.id.as_str()),
            learner_id: LearnerId::from(enrolment.learner_id.as_str()),
            planned_total_hours: class.planned_total_hours,
            planned_online_hours: class.planned_online_hours,
            lessons,
        };
        let refusals = self
            .store
            .refusals_of_enrolment(&enrolment.id)
            .await?
            .into_iter()
            .map(|(rule, detail, lesson_id, at)| RefusalRecord {
                rule,
                detail,
                lesson_id,
                at,
            })
            .collect();
        Ok(EnrolmentSummary {
            verdict: enrolment_verdict(&profile, &input),
            refusals,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_merge() {
        assert_eq!(
            merge_intervals(vec![[5, 9], [0, 3], [2, 4], [9, 10], [7, 7]]),
            vec![[0, 4], [5, 10]]
        );
        assert!(merge_intervals(vec![]).is_empty());
    }
}
