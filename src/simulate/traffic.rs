//! The customers' side of a scenario: the arrival rate over time, the category
//! and customer mix, handle times, and the seeded draw of every inquiry.
//!
//! Everything here depends only on the scenario and the seed, never on the
//! routing configuration, so two configurations compared on one scenario see
//! exactly the same inquiries with the same handle times.

use super::scenario::{CurveShape, Distribution};
use crate::core::{Category, Channel, Customer, Inquiry, Millis};
use crate::rng::Rng;

/// The arrival rate: base points and spikes, all in epoch milliseconds.
#[derive(Clone, Debug, Default)]
pub struct Curve {
    /// `(at, per_min)`, time-ordered.
    pub points: Vec<(Millis, f64)>,
    pub shape: CurveShape,
    pub spikes: Vec<SpikeShape>,
}

/// One named spike on top of the base rate.
#[derive(Clone, Debug)]
pub struct SpikeShape {
    pub name: String,
    pub at: Millis,
    pub peak_per_min: f64,
    pub rise_ms: u64,
    pub decay_ms: u64,
    pub lasts_ms: u64,
}

impl Curve {
    /// Arrivals per minute at `t`.
    pub fn rate_at(&self, t: Millis) -> f64 {
        self.base_at(t) + self.spikes.iter().map(|s| s.extra_at(t)).sum::<f64>()
    }

    /// The inquiries the curve asks for over `[start, end)`, a minute at a time.
    pub fn expected_between(&self, start: Millis, end: Millis) -> f64 {
        let minute = |t: Millis| self.rate_at(t + 30_000) * (end - t).min(60_000) as f64 / 60_000.0;
        (start..end).step_by(60_000).map(minute).sum()
    }

    fn base_at(&self, t: Millis) -> f64 {
        let next = self.points.partition_point(|&(at, _)| at <= t);
        match (next.checked_sub(1).map(|i| self.points[i]), self.points.get(next)) {
            (None, Some(&(_, rate))) | (Some((_, rate)), None) => rate,
            (Some((a, ra)), Some(&(b, rb))) if self.shape == CurveShape::Linear && b > a => {
                ra + (rb - ra) * (t - a) as f64 / (b - a) as f64
            }
            (Some((_, rate)), Some(_)) => rate,
            (None, None) => 0.0,
        }
    }
}

impl SpikeShape {
    fn extra_at(&self, t: Millis) -> f64 {
        if t < self.at || t >= self.at + self.lasts_ms {
            return 0.0;
        }
        let since = (t - self.at) as f64;
        if since < self.rise_ms as f64 {
            return self.peak_per_min * since / self.rise_ms as f64;
        }
        self.peak_per_min * (-(since - self.rise_ms as f64) / self.decay_ms.max(1) as f64).exp()
    }
}

/// Category weights per period: `(from, weights in Category::ALL order)`.
#[derive(Clone, Debug)]
pub struct Mix(pub Vec<(Millis, [f64; 8])>);

impl Mix {
    /// A plain weekday mix, used when a scenario names none.
    pub fn everyday() -> [f64; 8] {
        // PRE_SALES ORDER LOGISTICS REFUND EXCHANGE REPAIR COMPLAINT OTHER
        [35.0, 15.0, 15.0, 12.0, 6.0, 3.0, 4.0, 10.0]
    }

    fn at(&self, t: Millis) -> &[f64; 8] {
        let i = self.0.partition_point(|&(from, _)| from <= t);
        &self.0[i.saturating_sub(1)].1
    }
}

/// Who the customers are.
#[derive(Clone, Debug)]
pub struct CustomerModel {
    pub vip_share: f64,
    pub vip_tiers: [f64; 5],
    pub fan_share: f64,
    /// `(language, weight)`; `zh` only when empty.
    pub languages: Vec<(String, f64)>,
}

/// Handle time per category.
#[derive(Clone, Debug)]
pub struct HandleModel {
    pub distribution: Distribution,
    pub spread: f64,
    /// Mean per category, in `Category::ALL` order.
    pub mean_ms: [u64; 8],
}

impl HandleModel {
    /// One chat's handle time in milliseconds (at least 5 s).
    pub fn sample(&self, rng: &mut Rng, category: Category) -> u64 {
        let mean = self.mean_ms[category as usize] as f64;
        let ms = match self.distribution {
            Distribution::Lognormal => rng.lognormal(mean, self.spread),
            Distribution::Exponential => rng.exponential(mean),
            Distribution::Fixed => mean,
        };
        (ms as u64).max(5_000)
    }
}

/// One inquiry to replay: when it arrives and how long its chat will take.
#[derive(Clone, Debug)]
pub struct Arrival {
    pub at: Millis,
    pub inquiry: Inquiry,
    pub handle_ms: u64,
}

/// Everything needed to draw a day of inquiries.
pub struct Traffic<'a> {
    pub curve: &'a Curve,
    pub mix: &'a Mix,
    pub customers: &'a CustomerModel,
    pub handle: &'a HandleModel,
    pub shop: &'a str,
    pub platform: &'a str,
}

impl Traffic<'_> {
    /// Draws the arrivals of `[start, end)` in steps of `step_ms`, time-ordered.
    pub fn generate(&self, start: Millis, end: Millis, step_ms: u64, seed: u64) -> Vec<Arrival> {
        let mut rng = Rng::new(seed);
        let mut out = Vec::new();
        let mut t = start;
        while t < end {
            let width = step_ms.min(end - t);
            let expected = self.curve.rate_at(t + width / 2) * width as f64 / 60_000.0;
            let mut offsets: Vec<u64> =
                (0..rng.poisson(expected)).map(|_| (rng.unit() * width as f64) as u64).collect();
            offsets.sort_unstable();
            for offset in offsets {
                let n = out.len() + 1;
                out.push(self.draw(&mut rng, t + offset, n));
            }
            t += width;
        }
        out
    }

    fn draw(&self, rng: &mut Rng, at: Millis, n: usize) -> Arrival {
        let category = Category::ALL[rng.pick(self.mix.at(at))];
        let c = self.customers;
        let vip_tier = if rng.unit() < c.vip_share { rng.pick(&c.vip_tiers) as u8 + 1 } else { 0 };
        let is_fan = rng.unit() < c.fan_share;
        let language = if c.languages.is_empty() {
            "zh".into()
        } else {
            let weights: Vec<f64> = c.languages.iter().map(|(_, w)| *w).collect();
            c.languages[rng.pick(&weights)].0.as_str().into()
        };
        let inquiry = Inquiry {
            id: format!("sim-{n:07}").into(),
            shop_id: self.shop.into(),
            platform: self.platform.into(),
            customer: Customer {
                id: format!("cust-{n:07}").into(),
                vip_tier,
                is_fan,
                lifetime_value_cents: i64::from(vip_tier) * 50_000,
            },
            category,
            channel: Channel::Chat,
            language,
            required_skills: Vec::new(),
            order_value_cents: 0,
            subject: None,
            created_at_ms: at,
            bot_attempted: false,
        };
        Arrival { at, inquiry, handle_ms: self.handle.sample(rng, category) }
    }
}
