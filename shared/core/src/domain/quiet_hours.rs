//! When a scheduled or bulk send may go out: inside the practice's sending
//! window, in its own time zone, across daylight-saving changes.

use chrono::{DateTime, Duration, LocalResult, NaiveDate, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;

use super::practice::QuietHours;

/// Whether local time `t` is inside the window `[start, end)`. A window whose
/// end is before its start runs overnight (e.g. 21:00–06:00).
fn inside(window: &QuietHours, t: NaiveTime) -> bool {
    if window.start < window.end {
        window.start <= t && t < window.end
    } else {
        t >= window.start || t < window.end
    }
}

/// The instant local wall time `time` on `date` happens in `tz`. On a
/// fall-back day the earlier of the two; on a spring-forward day a time in
/// the gap does not exist, so the first instant after the gap.
fn local_instant(tz: Tz, date: NaiveDate, time: NaiveTime) -> DateTime<Utc> {
    let mut candidate = date.and_time(time);
    for _ in 0..4 {
        match tz.from_local_datetime(&candidate) {
            LocalResult::Single(t) => return t.with_timezone(&Utc),
            LocalResult::Ambiguous(earlier, _) => return earlier.with_timezone(&Utc),
            // Inside a DST gap: move forward until the wall clock exists again.
            LocalResult::None => candidate += Duration::minutes(30),
        }
    }
    Utc.from_utc_datetime(&candidate)
}

/// The first instant at or after `at` when sending is allowed. `None` quiet
/// hours means any time.
pub fn next_allowed(at: DateTime<Utc>, tz: Tz, window: Option<&QuietHours>) -> DateTime<Utc> {
    let Some(window) = window else {
        return at;
    };
    let local = at.with_timezone(&tz);
    if inside(window, local.time()) {
        return at;
    }
    // The window opens today (if its start is still ahead) or tomorrow.
    let today = local.date_naive();
    let opening_today = local_instant(tz, today, window.start);
    if opening_today > at {
        return opening_today;
    }
    let tomorrow = today.succ_opt().unwrap_or(today);
    local_instant(tz, tomorrow, window.start)
}

/// The first instant after `at` when sending stops being allowed (the
/// window closes), or `None` when there are no quiet hours. Meaningful when
/// `at` is inside the window ([`next_allowed`] returned `at`).
pub fn window_closes(
    at: DateTime<Utc>,
    tz: Tz,
    window: Option<&QuietHours>,
) -> Option<DateTime<Utc>> {
    let window = window?;
    let today = at.with_timezone(&tz).date_naive();
    let tomorrow = today.succ_opt().unwrap_or(today);
    [today, tomorrow]
        .into_iter()
        .map(|d| local_instant(tz, d, window.end))
        .find(|t| *t > at)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn window(s: &str) -> QuietHours {
        QuietHours::parse_setting(s).unwrap().unwrap()
    }

    const NY: Tz = chrono_tz::America::New_York;

    #[test]
    fn the_window_closes_at_its_end_in_local_time() {
        let w = window("08:00-21:00");
        // 10:00 EST → closes 21:00 EST = 02:00Z next day.
        assert_eq!(
            window_closes(utc("2026-12-01T15:00:00Z"), NY, Some(&w)),
            Some(utc("2026-12-02T02:00:00Z"))
        );
        // Overnight window 21:00-06:00, at 23:00 local → 06:00 next day.
        let night = window("21:00-06:00");
        assert_eq!(
            window_closes(utc("2026-12-02T04:00:00Z"), NY, Some(&night)),
            Some(utc("2026-12-02T11:00:00Z"))
        );
        assert_eq!(window_closes(utc("2026-12-01T15:00:00Z"), NY, None), None);
    }

    #[test]
    fn inside_the_window_is_sent_at_once() {
        let w = window("08:00-21:00");
        // 10:00 EST
        assert_eq!(
            next_allowed(utc("2026-12-01T15:00:00Z"), NY, Some(&w)),
            utc("2026-12-01T15:00:00Z")
        );
    }

    #[test]
    fn too_early_waits_for_the_opening_the_same_day() {
        let w = window("08:00-21:00");
        // 06:30 EST → 08:00 EST
        assert_eq!(
            next_allowed(utc("2026-12-01T11:30:00Z"), NY, Some(&w)),
            utc("2026-12-01T13:00:00Z")
        );
    }

    #[test]
    fn too_late_waits_for_the_next_morning() {
        let w = window("08:00-21:00");
        // 22:15 EST Dec 1 → 08:00 EST Dec 2
        assert_eq!(
            next_allowed(utc("2026-12-02T03:15:00Z"), NY, Some(&w)),
            utc("2026-12-02T13:00:00Z")
        );
        // exactly at closing time is outside
        assert_eq!(
            next_allowed(utc("2026-12-02T02:00:00Z"), NY, Some(&w)),
            utc("2026-12-02T13:00:00Z")
        );
    }

    #[test]
    fn no_quiet_hours_never_holds() {
        assert_eq!(
            next_allowed(utc("2026-12-02T03:15:00Z"), NY, None),
            utc("2026-12-02T03:15:00Z")
        );
    }

    #[test]
    fn spring_forward_day_opens_at_local_eight_in_daylight_time() {
        let w = window("08:00-21:00");
        // 2026-03-08: clocks go 02:00 EST → 03:00 EDT. 01:30 EST = 06:30Z.
        // Opening 08:00 EDT = 12:00Z (not 13:00Z as in winter).
        assert_eq!(
            next_allowed(utc("2026-03-08T06:30:00Z"), NY, Some(&w)),
            utc("2026-03-08T12:00:00Z")
        );
    }

    #[test]
    fn opening_inside_the_spring_forward_gap_moves_past_the_gap() {
        let w = window("02:30-21:00");
        // 01:00 EST = 06:00Z; 02:30 does not exist that day → 03:00 EDT = 07:00Z.
        assert_eq!(
            next_allowed(utc("2026-03-08T06:00:00Z"), NY, Some(&w)),
            utc("2026-03-08T07:00:00Z")
        );
    }

    #[test]
    fn fall_back_day_opens_at_local_eight_in_standard_time() {
        let w = window("08:00-21:00");
        // 2026-11-01: clocks go 02:00 EDT → 01:00 EST. 00:30 EDT = 04:30Z.
        // Opening 08:00 EST = 13:00Z.
        assert_eq!(
            next_allowed(utc("2026-11-01T04:30:00Z"), NY, Some(&w)),
            utc("2026-11-01T13:00:00Z")
        );
    }

    #[test]
    fn opening_at_an_ambiguous_fall_back_time_takes_the_first() {
        let w = window("01:30-21:00");
        // 00:10 EDT = 04:10Z; 01:30 happens twice; the first is 01:30 EDT = 05:30Z.
        assert_eq!(
            next_allowed(utc("2026-11-01T04:10:00Z"), NY, Some(&w)),
            utc("2026-11-01T05:30:00Z")
        );
    }

    #[test]
    fn overnight_window_wraps_midnight() {
        let w = window("20:00-06:00");
        // 23:00 EST inside; 12:00 EST outside → 20:00 EST.
        assert_eq!(
            next_allowed(utc("2026-12-02T04:00:00Z"), NY, Some(&w)),
            utc("2026-12-02T04:00:00Z")
        );
        assert_eq!(
            next_allowed(utc("2026-12-01T17:00:00Z"), NY, Some(&w)),
            utc("2026-12-02T01:00:00Z")
        );
    }
}
