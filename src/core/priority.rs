//! Priority score, band and queue rank (SPEC section 4, "Priority").
//!
//! Aging is the same rate for everyone, so the order `score - wait / interval`
//! reduces to `score * interval - since`, a number fixed at queue entry: a
//! waiting queue never needs re-sorting.

use super::settings::PrioritySettings;
use super::types::{Band, Category, Millis};

/// An inquiry's standing before aging: its score and band.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Standing {
    pub score: i32,
    pub band: Band,
}

/// What the priority rules read of an inquiry.
#[derive(Clone, Copy, Debug)]
pub struct PriorityInput {
    pub category: Category,
    pub vip_tier: u8,
    pub is_fan: bool,
    pub escalated: bool,
}

/// Score and band of an inquiry (without aging).
pub fn standing(settings: &PrioritySettings, input: PriorityInput) -> Standing {
    let mut score = settings.base.of(input.category) + settings.per_vip_tier * i32::from(input.vip_tier);
    if input.is_fan {
        score += settings.fan_bonus;
    }
    if input.escalated {
        score += settings.escalation_bonus;
    }
    let band = if score >= settings.high_band_score
        || (settings.high_band_vip_tier > 0 && input.vip_tier >= settings.high_band_vip_tier)
        || input.escalated
    {
        Band::High
    } else if matches!(input.category, Category::PreSales | Category::Other) && input.vip_tier == 0 && !input.is_fan {
        Band::Low
    } else {
        Band::Normal
    };
    Standing { score, band }
}

/// Queue rank: higher is served first. Fixed for as long as the inquiry waits.
pub fn rank(score: i32, since: Millis, aging_interval_ms: u64) -> i64 {
    if aging_interval_ms == 0 {
        return i64::from(score);
    }
    i64::from(score) * aging_interval_ms as i64 - since as i64
}

/// The score including aging at `now`, for display and traces.
pub fn aged_score(score: i32, since: Millis, now: Millis, aging_interval_ms: u64) -> i32 {
    if aging_interval_ms == 0 {
        return score;
    }
    let points = now.saturating_sub(since) / aging_interval_ms;
    score.saturating_add(points.min(i32::MAX as u64) as i32)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(category: Category, vip_tier: u8, is_fan: bool) -> PriorityInput {
        PriorityInput { category, vip_tier, is_fan, escalated: false }
    }

    #[test]
    fn base_scores_follow_the_spec_table() {
        let s = PrioritySettings::default();
        let score = |c| standing(&s, input(c, 0, false)).score;
        assert_eq!(score(Category::Complaint), 90);
        assert_eq!(score(Category::PreSales), 20);
        assert!(score(Category::AfterSalesRefund) > score(Category::AfterSalesExchange));
        assert!(score(Category::AfterSalesExchange) > score(Category::AfterSalesRepair));
        assert!(score(Category::AfterSalesRepair) > score(Category::Logistics));
    }

    #[test]
    fn vip_fan_and_escalation_add_points() {
        let s = PrioritySettings::default();
        assert_eq!(standing(&s, input(Category::Order, 2, true)).score, 40 + 12 + 15);
        let escalated = PriorityInput { escalated: true, ..input(Category::Order, 0, false) };
        assert_eq!(standing(&s, escalated), Standing { score: 50, band: Band::High });
    }

    #[test]
    fn a_vip3_pre_sales_inquiry_is_high() {
        let s = PrioritySettings::default();
        assert_eq!(standing(&s, input(Category::PreSales, 3, false)).band, Band::High);
    }

    #[test]
    fn bands_follow_the_spec() {
        let s = PrioritySettings::default();
        assert_eq!(standing(&s, input(Category::AfterSalesRefund, 0, false)).band, Band::High);
        assert_eq!(standing(&s, input(Category::PreSales, 0, false)).band, Band::Low);
        assert_eq!(standing(&s, input(Category::Other, 0, false)).band, Band::Low);
        assert_eq!(standing(&s, input(Category::PreSales, 1, false)).band, Band::Normal);
        assert_eq!(standing(&s, input(Category::PreSales, 0, true)).band, Band::Normal);
        assert_eq!(standing(&s, input(Category::Order, 0, false)).band, Band::Normal);
    }

    #[test]
    fn aging_lets_a_long_waiter_overtake_and_keeps_fifo_among_equals() {
        let interval = 10_000;
        // A pre-sales (20) that waited 300 s outranks a fresh order (40).
        assert!(rank(20, 0, interval) > rank(40, 300_000, interval));
        // Among equal scores, earlier arrival ranks higher.
        assert!(rank(40, 1_000, interval) > rank(40, 2_000, interval));
        assert_eq!(aged_score(20, 0, 300_000, interval), 50);
        assert_eq!(aged_score(20, 0, 300_000, 0), 20);
        assert_eq!(rank(20, 5, 0), 20);
    }
}
