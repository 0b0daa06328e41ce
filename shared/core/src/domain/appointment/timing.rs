//! When each reminder of an appointment goes: `before` its start, moved
//! into the practice's automatic window (in the practice's own time zone,
//! across daylight-saving changes), one catch-up when booked late, and
//! re-timed when the appointment moves.

use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;

use super::{Appointment, AppointmentStatus, Reminder, ReminderRule, ReminderStatus};
use crate::domain::practice::AutomaticWindow;

/// A reminder booked late goes at once only if the appointment is further
/// away than this.
pub const CATCH_UP_MARGIN: Duration = Duration::hours(1);

/// `day` at `time` in `tz`, as an instant. A time that does not exist that
/// day (the spring-forward gap) is taken as the first instant after it; an
/// ambiguous one (fall back) as the earlier.
fn local(tz: Tz, day: NaiveDate, time: NaiveTime) -> DateTime<Utc> {
    let naive = NaiveDateTime::new(day, time);
    match tz.from_local_datetime(&naive).earliest() {
        Some(t) => t.with_timezone(&Utc),
        None => {
            // In a gap: an hour later exists in every real zone.
            let later = naive + Duration::hours(1);
            tz.from_local_datetime(&later)
                .earliest()
                .map_or_else(|| Utc.from_utc_datetime(&naive), |t| t.with_timezone(&Utc))
        }
    }
}

fn opens(window: &AutomaticWindow, day: NaiveDate, appointment_day: NaiveDate) -> NaiveTime {
    if day == appointment_day {
        window.day_of_start
    } else {
        window.start
    }
}

/// The local day of the appointment.
pub fn appointment_day(starts_at: DateTime<Utc>, tz: Tz) -> NaiveDate {
    starts_at.with_timezone(&tz).date_naive()
}

/// The latest instant at or before `t` inside the window: `t` itself when
/// inside, else the end of the window before it (20:00 the same evening,
/// or the evening before when `t` is before the window opens).
pub fn latest_allowed(
    t: DateTime<Utc>,
    appointment_day: NaiveDate,
    window: Option<&AutomaticWindow>,
    tz: Tz,
) -> DateTime<Utc> {
    let Some(w) = window else { return t };
    let here = t.with_timezone(&tz);
    let (day, time) = (here.date_naive(), here.time());
    if time > w.end {
        return local(tz, day, w.end);
    }
    if time < opens(w, day, appointment_day) {
        return day.pred_opt().map_or(t, |before| local(tz, before, w.end));
    }
    t
}

/// The earliest instant at or after `t` inside the window.
pub fn earliest_allowed(
    t: DateTime<Utc>,
    appointment_day: NaiveDate,
    window: Option<&AutomaticWindow>,
    tz: Tz,
) -> DateTime<Utc> {
    let Some(w) = window else { return t };
    let here = t.with_timezone(&tz);
    let (day, time) = (here.date_naive(), here.time());
    let open = opens(w, day, appointment_day);
    if time < open {
        return local(tz, day, open);
    }
    if time > w.end {
        return day
            .succ_opt()
            .map_or(t, |next| local(tz, next, opens(w, next, appointment_day)));
    }
    t
}

/// Whether `t` is inside the window.
pub fn is_allowed(
    t: DateTime<Utc>,
    appointment_day: NaiveDate,
    window: Option<&AutomaticWindow>,
    tz: Tz,
) -> bool {
    latest_allowed(t, appointment_day, window, tz) == t
}

/// When the reminder of `rule` for an appointment starting at `starts_at`
/// is due: `before` the start, moved back to the end of the window before
/// it when that falls outside the window.
pub fn due_at(
    starts_at: DateTime<Utc>,
    rule: &ReminderRule,
    window: Option<&AutomaticWindow>,
    tz: Tz,
) -> DateTime<Utc> {
    latest_allowed(
        starts_at - rule.before(),
        appointment_day(starts_at, tz),
        window,
        tz,
    )
}

/// What the reminders are planned against.
#[derive(Debug, Clone, Copy)]
pub struct Planning<'a> {
    /// The practice's rules.
    pub rules: &'a [ReminderRule],
    /// The practice's automatic window.
    pub window: Option<&'a AutomaticWindow>,
    /// The practice's time zone.
    pub tz: Tz,
    /// The sync's time.
    pub now: DateTime<Utc>,
}

/// The reminders of `next` after a sync that found `previous` stored:
///
/// - an appointment that is not `scheduled` has its pending reminders
///   canceled;
/// - a new, moved or re-booked one is planned afresh: every reminder not
///   yet sent is due by its rule; those already overdue are `skipped`
///   (`too_late`) except the latest, which goes at once (at the window's
///   next opening) when the appointment is more than an hour away;
/// - an unchanged one keeps its reminders (a rule added since is planned,
///   without a catch-up).
pub fn plan(previous: Option<&Appointment>, next: &Appointment, p: &Planning<'_>) -> Vec<Reminder> {
    let kept: Vec<Reminder> = previous.map(|a| a.reminders.clone()).unwrap_or_default();
    if next.status != AppointmentStatus::Scheduled {
        return kept
            .into_iter()
            .map(|mut r| {
                if r.status == ReminderStatus::Pending {
                    r.status = ReminderStatus::Canceled;
                }
                r
            })
            .collect();
    }
    let fresh = previous
        .is_none_or(|a| a.starts_at != next.starts_at || a.status != AppointmentStatus::Scheduled);
    let day = appointment_day(next.starts_at, p.tz);
    let mut out: Vec<Reminder> = Vec::new();
    let mut overdue: Vec<usize> = Vec::new();
    for rule in p.rules.iter().filter(|r| r.enabled) {
        let before = kept.iter().find(|r| r.rule_id == rule.rule_id);
        if let Some(sent) = before.filter(|r| r.status == ReminderStatus::Sent) {
            out.push(sent.clone());
            continue;
        }
        if let (Some(existing), false) = (before, fresh) {
            out.push(existing.clone());
            continue;
        }
        let due = due_at(next.starts_at, rule, p.window, p.tz);
        if due > p.now {
            out.push(Reminder::pending(&rule.rule_id, due));
        } else {
            overdue.push(out.len());
            out.push(Reminder::skipped(&rule.rule_id, due, "too_late"));
        }
    }
    if fresh && next.starts_at - p.now > CATCH_UP_MARGIN {
        // The latest overdue rule (the nearest to the start) goes once, now.
        if let Some(&latest) = overdue.iter().max_by_key(|&&i| out[i].due_at) {
            let at_once = earliest_allowed(p.now, day, p.window, p.tz);
            if at_once < next.starts_at {
                out[latest] = Reminder::pending(&out[latest].rule_id, at_once);
            }
        }
    }
    // Reminders of rules no longer in force: sent stay sent, pending ones
    // of a moved appointment are canceled.
    for old in kept {
        if out.iter().any(|r| r.rule_id == old.rule_id) {
            continue;
        }
        let mut old = old;
        if fresh && old.status == ReminderStatus::Pending {
            old.status = ReminderStatus::Canceled;
        }
        out.push(old);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::appointment::rules::default_rules;
    use crate::domain::appointment::Confirmation;
    use crate::domain::phone::PhoneNumber;

    const NY: Tz = chrono_tz::America::New_York;
    const PHOENIX: Tz = chrono_tz::America::Phoenix;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn appointment(starts_at: &str) -> Appointment {
        Appointment {
            practice_id: "p".into(),
            appointment_id: "a1".into(),
            patient_id: "pat".into(),
            phone: PhoneNumber::parse("+14155550142").unwrap(),
            starts_at: t(starts_at),
            duration_minutes: None,
            provider: None,
            location: None,
            status: AppointmentStatus::Scheduled,
            confirmation: Confirmation::Unconfirmed,
            confirmed_at: None,
            updated_at: t(starts_at),
            reminders: vec![],
            version: 0,
        }
    }

    fn window() -> AutomaticWindow {
        AutomaticWindow::default()
    }

    fn dues(reminders: &[Reminder]) -> Vec<(String, String, ReminderStatus)> {
        reminders
            .iter()
            .map(|r| {
                (
                    r.rule_id.clone(),
                    r.due_at.with_timezone(&NY).to_rfc3339(),
                    r.status,
                )
            })
            .collect()
    }

    #[test]
    fn defaults_go_two_days_and_two_hours_before_inside_the_window() {
        let rules = default_rules();
        let w = window();
        let p = Planning {
            rules: &rules,
            window: Some(&w),
            tz: NY,
            now: t("2026-12-01T12:00:00Z"),
        };
        let a = appointment("2026-12-08T14:30:00-05:00");
        assert_eq!(
            dues(&plan(None, &a, &p)),
            [
                (
                    "confirm-2d".into(),
                    "2026-12-06T14:30:00-05:00".into(),
                    ReminderStatus::Pending
                ),
                (
                    "same-day-2h".into(),
                    "2026-12-08T12:30:00-05:00".into(),
                    ReminderStatus::Pending
                ),
            ]
        );
    }

    #[test]
    fn a_two_hour_reminder_for_nine_goes_at_eight_the_evening_before() {
        let rules = default_rules();
        let w = window();
        let p = Planning {
            rules: &rules,
            window: Some(&w),
            tz: NY,
            now: t("2026-12-01T12:00:00Z"),
        };
        let a = appointment("2026-12-08T09:00:00-05:00");
        let r = plan(None, &a, &p);
        assert_eq!(r[1].due_at, t("2026-12-07T20:00:00-05:00"));
        // 2 days before 9:00 is 9:00, inside the window.
        assert_eq!(r[0].due_at, t("2026-12-06T09:00:00-05:00"));
        // 8:30 on the day itself is allowed from 08:00.
        let a = appointment("2026-12-08T10:30:00-05:00");
        assert_eq!(plan(None, &a, &p)[1].due_at, t("2026-12-08T08:30:00-05:00"));
        // A late evening appointment's reminder due after 20:00 goes at 20:00.
        let a = appointment("2026-12-08T23:00:00-05:00");
        assert_eq!(plan(None, &a, &p)[1].due_at, t("2026-12-08T20:00:00-05:00"));
    }

    #[test]
    fn the_window_keeps_local_time_across_daylight_saving_changes() {
        // New York falls back on 2026-11-01 (EDT -4 to EST -5).
        let rules = default_rules();
        let w = window();
        let p = Planning {
            rules: &rules,
            window: Some(&w),
            tz: NY,
            now: t("2026-10-20T12:00:00Z"),
        };
        let a = appointment("2026-11-02T09:00:00-05:00");
        let r = plan(None, &a, &p);
        // 48 hours before 09:00 EST is 10:00 EDT: the day between has 25 hours.
        assert_eq!(r[0].due_at, t("2026-10-31T10:00:00-04:00"));
        // The 2-hour reminder (07:00) goes at 20:00 EST the evening before.
        assert_eq!(r[1].due_at, t("2026-11-01T20:00:00-05:00"));
        // Spring forward, 2027-03-14 (EST -5 to EDT -4): 20:00 the evening
        // before is 20:00 EDT.
        let a = appointment("2027-03-15T09:00:00-04:00");
        let p = Planning {
            now: t("2027-03-01T12:00:00Z"),
            ..p
        };
        assert_eq!(plan(None, &a, &p)[1].due_at, t("2027-03-14T20:00:00-04:00"));
        // A window opening in the spring-forward gap opens just after it.
        let early = AutomaticWindow {
            start: NaiveTime::from_hms_opt(2, 30, 0).unwrap(),
            end: NaiveTime::from_hms_opt(20, 0, 0).unwrap(),
            day_of_start: NaiveTime::from_hms_opt(2, 30, 0).unwrap(),
        };
        let day = NaiveDate::from_ymd_opt(2027, 3, 20).unwrap();
        assert_eq!(
            earliest_allowed(t("2027-03-14T01:00:00-05:00"), day, Some(&early), NY),
            t("2027-03-14T03:30:00-04:00")
        );
    }

    #[test]
    fn a_zone_without_daylight_saving_keeps_its_offset() {
        let rules = default_rules();
        let w = window();
        let p = Planning {
            rules: &rules,
            window: Some(&w),
            tz: PHOENIX,
            now: t("2027-03-01T12:00:00Z"),
        };
        let a = appointment("2027-03-15T09:00:00-07:00");
        let r = plan(None, &a, &p);
        assert_eq!(r[0].due_at, t("2027-03-13T09:00:00-07:00"));
        assert_eq!(r[1].due_at, t("2027-03-14T20:00:00-07:00"));
    }

    #[test]
    fn booked_late_only_the_latest_overdue_rule_goes_at_once() {
        let rules = default_rules();
        let w = window();
        // Booked Monday 10:00 for Tuesday 15:00: the 2-day reminder is
        // overdue and goes now; the 2-hour one stays on time.
        let p = Planning {
            rules: &rules,
            window: Some(&w),
            tz: NY,
            now: t("2026-12-07T10:00:00-05:00"),
        };
        let a = appointment("2026-12-08T15:00:00-05:00");
        let r = plan(None, &a, &p);
        assert_eq!(r[0].status, ReminderStatus::Pending);
        assert_eq!(r[0].due_at, p.now);
        assert_eq!(r[1].due_at, t("2026-12-08T13:00:00-05:00"));
        // Booked 90 minutes ahead: both overdue, the 2-hour one goes at once.
        let a = appointment("2026-12-07T11:30:00-05:00");
        let r = plan(None, &a, &p);
        assert_eq!(
            (
                r[0].status,
                r[0].skip_reason.as_deref(),
                r[1].status,
                r[1].due_at
            ),
            (
                ReminderStatus::Skipped,
                Some("too_late"),
                ReminderStatus::Pending,
                p.now
            )
        );
        // 30 minutes ahead: nothing goes.
        let a = appointment("2026-12-07T10:30:00-05:00");
        assert!(plan(None, &a, &p)
            .iter()
            .all(|r| r.status == ReminderStatus::Skipped));
        // Booked at 22:00 for tomorrow 15:00: the catch-up waits for 09:00.
        let p = Planning {
            now: t("2026-12-07T22:00:00-05:00"),
            ..p
        };
        let a = appointment("2026-12-08T15:00:00-05:00");
        assert_eq!(plan(None, &a, &p)[0].due_at, t("2026-12-08T08:00:00-05:00"));
    }

    #[test]
    fn a_move_re_times_pending_reminders_and_sent_ones_stay_sent() {
        let rules = default_rules();
        let p = Planning {
            rules: &rules,
            window: None,
            tz: NY,
            now: t("2026-12-01T12:00:00Z"),
        };
        let mut before = appointment("2026-12-08T14:30:00-05:00");
        before.reminders = plan(None, &before, &p);
        before.reminders[0].status = ReminderStatus::Sent;
        before.reminders[0].message_id = Some("m1".into());
        let mut moved = before.clone();
        moved.starts_at = t("2026-12-09T14:30:00-05:00");
        let r = plan(Some(&before), &moved, &p);
        assert_eq!(r[0], before.reminders[0], "sent stays sent");
        assert_eq!(r[1].due_at, t("2026-12-09T12:30:00-05:00"));
        // Unchanged: kept exactly.
        assert_eq!(plan(Some(&before), &before, &p), before.reminders);
        // Canceled: pending ones are canceled.
        let mut canceled = before.clone();
        canceled.status = AppointmentStatus::Canceled;
        let r = plan(Some(&before), &canceled, &p);
        assert_eq!(
            (r[0].status, r[1].status),
            (ReminderStatus::Sent, ReminderStatus::Canceled)
        );
    }

    #[test]
    fn without_a_window_reminders_go_exactly_before() {
        let rules = default_rules();
        let p = Planning {
            rules: &rules,
            window: None,
            tz: NY,
            now: t("2026-12-01T12:00:00Z"),
        };
        let a = appointment("2026-12-08T09:00:00-05:00");
        assert_eq!(plan(None, &a, &p)[1].due_at, t("2026-12-08T07:00:00-05:00"));
    }
}
