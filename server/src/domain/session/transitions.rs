//! The fold's transitions: what each verb of the log does to the session state. Split from
//! `mod.rs` (the state and its accounting) so that each file stays one idea; the invariants
//! are the module's (see `mod.rs`).

use super::*;

impl SessionFold {
    pub(super) fn apply_body(&mut self, e: &Event, ev: &EventRef) {
        let t = e.at;
        match &e.body {
            EventBody::SessionStarted => {
                if self.started_at.is_none() {
                    self.started_at = Some(t);
                    self.last_at = t;
                }
            }
            EventBody::ChallengeIssued {
                nonce,
                kind,
                deadline,
                expected,
            } => {
                push_small(
                    &mut self.ev_mut().outstanding,
                    Outstanding {
                        nonce: nonce.clone(),
                        kind: *kind,
                        issued_at: t,
                        deadline: *deadline,
                        expected: expected.clone(),
                    },
                );
                push_small(
                    &mut self.ev_mut().challenges,
                    ChallengeRecord {
                        nonce: nonce.clone(),
                        kind: *kind,
                        issued_at: t,
                        deadline: *deadline,
                        answered_at: None,
                        response_ms: None,
                        outcome: ChallengeOutcome::Pending,
                    },
                );
            }
            EventBody::ChallengeExpired { nonce } => {
                if let Some(o) = self.take_outstanding(nonce) {
                    match o.kind {
                        ChallengeKind::Popup => self.popup_missed(&o, ev, "expired", None),
                        ChallengeKind::Snapshot => {
                            self.resolve(nonce, ChallengeOutcome::Missed, None);
                            let detail = format!("snapshot request {nonce} expired");
                            self.find(
                                RuleId::R6RandomSnapshots,
                                Reason::MissingSnapshots,
                                ev,
                                detail,
                                true,
                            );
                        }
                        ChallengeKind::FaceRecheck => {
                            self.resolve(nonce, ChallengeOutcome::Missed, None);
                            self.face_failed(ev, format!("face re-check {nonce} expired"));
                        }
                        ChallengeKind::Liveness => {
                            self.resolve(nonce, ChallengeOutcome::Missed, None);
                            self.face_failed(ev, format!("liveness challenge {nonce} expired"));
                        }
                    }
                }
            }
            EventBody::FaceChecked {
                check_id,
                nonce,
                method,
                passed,
                match_permille,
                liveness_permille,
                detail,
            } => {
                push_small(
                    &mut self.ev_mut().face_checks,
                    FaceCheckRecord {
                        check_id: check_id.clone(),
                        at: t,
                        passed: *passed,
                        method: *method,
                        match_permille: *match_permille,
                        liveness_permille: *liveness_permille,
                        detail: detail.clone(),
                    },
                );
                let answered = nonce.as_deref().and_then(|n| {
                    self.take_outstanding_kind(n, ChallengeKind::FaceRecheck)
                        .or_else(|| self.take_outstanding_kind(n, ChallengeKind::Liveness))
                });
                let active = answered
                    .as_ref()
                    .is_some_and(|o| o.kind == ChallengeKind::Liveness);
                if let (Some(n), Some(o)) = (nonce, &answered) {
                    let ok = *passed && t < o.deadline;
                    let outcome = if ok {
                        ChallengeOutcome::Confirmed
                    } else {
                        ChallengeOutcome::Missed
                    };
                    self.resolve(n, outcome, Some(t));
                }
                let needs_active = self
                    .profile
                    .face
                    .active_challenge
                    .as_ref()
                    .is_some_and(|a| a.required);
                if *passed && needs_active && !active && self.face == FaceState::Required {
                    // The profile wants the first pass to be an active challenge: a plain
                    // check is evidence but does not start credit (and is no failure).
                    let detail = format!(
                        "face check {check_id} passed, but this profile requires an active liveness challenge first"
                    );
                    self.find(
                        RuleId::R4FaceLiveness,
                        Reason::FaceCheckRequired,
                        ev,
                        detail,
                        false,
                    );
                } else if *passed {
                    self.face = FaceState::Passed;
                    self.credit_since_face = 0;
                } else {
                    self.face_failed(ev, format!("face check {check_id} failed"));
                }
            }
            EventBody::SnapshotStored {
                nonce,
                snapshot_id,
                sha256,
                analysis,
            } => match self.take_outstanding_kind(nonce, ChallengeKind::Snapshot) {
                Some(o) if t < o.deadline => {
                    self.resolve(nonce, ChallengeOutcome::Confirmed, Some(t));
                    let refusal = r6::refusal(analysis.as_ref());
                    if let Some((code, why)) = &refusal {
                        // A reused picture is a violation (flagged); an unusable one only
                        // leaves its 课时 short of snapshots.
                        let violates = *code == Reason::ReusedPicture;
                        self.flagged |= violates;
                        let detail = format!("snapshot {snapshot_id}: {why}");
                        self.find(RuleId::R6RandomSnapshots, *code, ev, detail, violates);
                    }
                    push_small(
                        &mut self.ev_mut().snapshots,
                        SnapshotRecord {
                            snapshot_id: snapshot_id.clone(),
                            nonce: nonce.clone(),
                            at: t,
                            sha256: sha256.clone(),
                            analysis: analysis.clone(),
                            not_counted: refusal.map(|(_, why)| why),
                        },
                    );
                }
                Some(_) => {
                    self.resolve(nonce, ChallengeOutcome::Missed, Some(t));
                    let detail =
                        format!("snapshot {snapshot_id} for {nonce} arrived after the deadline");
                    self.find(
                        RuleId::R6RandomSnapshots,
                        Reason::MissingSnapshots,
                        ev,
                        detail,
                        true,
                    );
                }
                None => {
                    // Not evidence for any 课时: the server did not ask for it (or already
                    // closed the request), so the client could have chosen the moment.
                    let detail = format!("snapshot {snapshot_id} answers no open request {nonce}");
                    self.find(
                        RuleId::R6RandomSnapshots,
                        Reason::MissingSnapshots,
                        ev,
                        detail,
                        false,
                    );
                }
            },
            EventBody::ConcurrentSessionRefused { other_session } => {
                let detail = format!(
                    "a second session {other_session} was refused while this one held the lease"
                );
                self.find(
                    RuleId::R2SingleWindow,
                    Reason::ConcurrentSession,
                    ev,
                    detail,
                    true,
                );
            }
            EventBody::Terminated {
                reason,
                position_ms,
            } => {
                if let Some(p) = position_ms {
                    self.position = *p;
                }
                if self.termination.is_none() {
                    match reason {
                        TerminationReason::Ended
                        | TerminationReason::Completed
                        | TerminationReason::Server => {}
                        TerminationReason::LeaseExpired => {
                            let voided = self.void_provisional(Reason::LeaseLost, ev);
                            let detail =
                                format!("lease expired; {voided} ms of unconfirmed credit voided");
                            self.find(RuleId::R2SingleWindow, Reason::LeaseLost, ev, detail, false);
                        }
                        TerminationReason::Superseded => {
                            let voided = self.void_provisional(Reason::LeaseLost, ev);
                            let detail = format!(
                                "superseded by a newer session; {voided} ms of unconfirmed credit voided"
                            );
                            self.find(
                                RuleId::R2SingleWindow,
                                Reason::ConcurrentSession,
                                ev,
                                detail,
                                true,
                            );
                        }
                    }
                    self.termination = Some((t, *reason));
                    self.playing = false;
                    self.anchor = None;
                }
            }
            EventBody::Initialized { .. } => {}
            EventBody::Played { position_ms } => {
                self.set_playing(t, true, *position_ms);
                self.anchor = Some((t, *position_ms));
            }
            EventBody::Paused { position_ms } => self.set_playing(t, false, *position_ms),
            EventBody::Seeked { to_ms, .. } => {
                let furthest = self.furthest();
                if r1::is_forward_seek(&self.profile, furthest, *to_ms) && self.running() {
                    let detail =
                        format!("seek to {to_ms} ms beyond the furthest watched {furthest} ms");
                    self.find(
                        RuleId::R1NoFastForward,
                        Reason::ForwardSeek,
                        ev,
                        detail,
                        true,
                    );
                }
                self.position = *to_ms;
                if self.playing {
                    self.anchor = Some((t, *to_ms));
                }
            }
            EventBody::RateChanged {
                position_ms,
                rate_permille,
            } => {
                self.position = *position_ms;
                self.set_rate(t, *rate_permille, ev);
            }
            EventBody::Heartbeat {
                position_ms,
                rate_permille,
                paused,
                visible,
                focused,
                ..
            } => {
                self.set_playing(t, !*paused, *position_ms);
                self.set_rate(t, *rate_permille, ev);
                self.set_page(*visible, *focused, ev);
            }
            EventBody::VisibilityChanged {
                visible,
                position_ms,
            } => {
                self.position = *position_ms;
                self.set_page(*visible, self.focused, ev);
            }
            EventBody::FocusChanged {
                focused,
                position_ms,
            } => {
                self.position = *position_ms;
                self.set_page(self.visible, *focused, ev);
            }
            EventBody::ChallengeAnswered { nonce, answer } => {
                let popup = self
                    .ev()
                    .outstanding
                    .iter()
                    .find(|o| o.nonce == *nonce && o.kind == ChallengeKind::Popup)
                    .cloned();
                match popup {
                    None => {
                        let detail = format!("answer to unknown or closed pop-up {nonce}");
                        self.find(RuleId::R3PopupCheck, Reason::PopupMissed, ev, detail, false);
                    }
                    Some(o) => match r3::judge(o.deadline, o.expected.as_deref(), t, answer) {
                        r3::PopupAnswer::Confirmed => {
                            self.take_outstanding(nonce);
                            self.resolve(nonce, ChallengeOutcome::Confirmed, Some(t));
                            self.confirm_window();
                        }
                        r3::PopupAnswer::Wrong => {
                            let detail = format!("wrong answer to pop-up {nonce}; still pending");
                            self.find(RuleId::R3PopupCheck, Reason::PopupMissed, ev, detail, false);
                        }
                        r3::PopupAnswer::Late => {
                            self.take_outstanding(nonce);
                            self.popup_missed(&o, ev, "answered after its deadline", Some(t));
                        }
                    },
                }
            }
            EventBody::Signal { name, detail } => {
                push_small(
                    &mut self.ev_mut().signals,
                    SignalRecord {
                        at: t,
                        name: name.clone(),
                        detail: detail.clone(),
                    },
                );
                self.flagged = true;
            }
        }
    }
}
