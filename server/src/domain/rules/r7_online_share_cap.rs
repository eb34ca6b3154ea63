//! R7 online share cap: at most `max_online_share` of the class's planned total hours may be
//! earned online. Invariant: the cap is whole 课时, rounded down.

use crate::domain::profile::Profile;

/// Online 课时 allowed, or `None` when the profile states no cap.
pub fn cap_hours(profile: &Profile, planned_total_hours: u32) -> Option<u32> {
    profile.online_cap.as_ref().map(|c| {
        // Shares are in 0..=1 (validated) and hours small: the product fits and floors.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let h = (f64::from(planned_total_hours) * c.max_online_share + 1e-9).floor() as u32;
        h
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::profile::Profile;

    #[test]
    fn forty_percent_of_ten_is_four() {
        let henan = Profile::latest("henan-2023").expect("henan");
        assert_eq!(cap_hours(&henan, 10), Some(4));
        assert_eq!(cap_hours(&henan, 9), Some(3));
        let hc = Profile::latest("huangchuan-2021").expect("huangchuan");
        assert_eq!(cap_hours(&hc, 10), None);
    }
}
