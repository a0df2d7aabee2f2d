//! What loadgen sends: the rate curve (a list of phases), the arrival times it
//! gives, the category and customer mix of a real shop, and each inquiry's
//! encoding (JSON or protobuf, with `Nats-Msg-Id`).
//!
//! Pure and seeded: the same seed gives the same arrivals and inquiries
//! (only `created_at_ms` is the caller's clock).

use crate::proto::{self, Category};
use crate::rng::Rng;
use async_nats::HeaderMap;
use bytes::Bytes;
use prost::Message;
use std::time::Duration;

/// One stretch of the curve at a constant rate.
#[derive(Clone, Debug, PartialEq)]
pub struct Phase {
    pub name: String,
    pub duration: Duration,
    /// Inquiries per second.
    pub per_sec: f64,
}

impl Phase {
    /// A phase called `name`.
    pub fn new(name: &str, duration: Duration, per_sec: f64) -> Phase {
        Phase { name: name.to_string(), duration, per_sec }
    }
}

/// The rate curve: phases one after the other.
#[derive(Clone, Debug, PartialEq)]
pub struct Profile {
    pub phases: Vec<Phase>,
}

impl Profile {
    /// The demo: normal → peak → surge → normal over 4 min 40 s, sized to the
    /// demo configuration. Its groups' baselines add up to 82 inquiries/min
    /// (1.37/s) and the mix splits arrivals roughly in their proportions, so
    /// 1.0/s is ~0.73x baseline, 3.4/s ~2.5x (PEAK at 2x) and 8.5/s ~6.2x
    /// (SURGE at 5x) for every group. Levels count arrivals over a 60 s
    /// window, so each phase lasts long enough for the window to fill, and the
    /// last one long enough for the cooldown.
    pub fn demo() -> Profile {
        let s = Duration::from_secs;
        Profile {
            phases: vec![
                Phase::new("normal", s(40), 1.0),
                Phase::new("peak", s(60), 3.4),
                Phase::new("surge", s(80), 8.5),
                Phase::new("normal", s(100), 1.0),
            ],
        }
    }

    /// One phase at `per_sec` for `duration`.
    pub fn steady(per_sec: f64, duration: Duration) -> Profile {
        Profile { phases: vec![Phase::new("steady", duration, per_sec)] }
    }

    /// The length of the whole curve.
    pub fn total(&self) -> Duration {
        self.phases.iter().map(|p| p.duration).sum()
    }

    /// The same shape stretched or squeezed to last `total`.
    pub fn scaled_to(mut self, total: Duration) -> Profile {
        let factor = total.as_secs_f64() / self.total().as_secs_f64().max(1e-9);
        for phase in &mut self.phases {
            phase.duration = phase.duration.mul_f64(factor);
        }
        self
    }

    /// Every rate multiplied by `factor`.
    pub fn rates_times(mut self, factor: f64) -> Profile {
        for phase in &mut self.phases {
            phase.per_sec *= factor;
        }
        self
    }

    /// The phase in force `elapsed` after the start, with its index.
    pub fn phase_at(&self, elapsed: Duration) -> Option<(usize, &Phase)> {
        let mut end = Duration::ZERO;
        self.phases.iter().enumerate().find(|(_, p)| {
            end += p.duration;
            elapsed < end
        })
    }
}

/// Arrival times along a profile: Poisson (exponential gaps, as customers
/// arrive) or evenly spaced (for latency measurement at a fixed rate).
#[derive(Clone, Debug)]
pub struct Schedule {
    ends: Vec<f64>,
    rates: Vec<f64>,
    poisson: bool,
    rng: Rng,
    t: f64,
    /// Even spacing: arrivals so far in the current phase.
    k: u64,
}

impl Schedule {
    /// Arrivals along `profile` from time 0.
    pub fn new(profile: &Profile, poisson: bool, seed: u64) -> Schedule {
        let mut end = 0.0;
        let ends = profile.phases.iter().map(|p| {
            end += p.duration.as_secs_f64();
            end
        });
        let ends = ends.collect();
        let rates = profile.phases.iter().map(|p| p.per_sec).collect();
        Schedule { ends, rates, poisson, rng: Rng::new(seed), t: 0.0, k: 0 }
    }

    /// Seconds from the start to the next arrival; `None` once the curve is over.
    pub fn next_arrival(&mut self) -> Option<f64> {
        const EPSILON: f64 = 1e-9;
        loop {
            let i = self.ends.iter().position(|&end| end > self.t + EPSILON)?;
            let (start, rate) = (if i == 0 { 0.0 } else { self.ends[i - 1] }, self.rates[i]);
            if rate > 0.0 {
                // Even arrivals are counted from the phase start, so no error
                // accumulates; the first at the start, so a phase of d seconds
                // at r per second holds d x r of them.
                let next =
                    if self.poisson { self.t + self.rng.exponential(1.0 / rate) } else { start + self.k as f64 / rate };
                if next < self.ends[i] - EPSILON {
                    self.t = next;
                    self.k += 1;
                    return Some(next);
                }
            }
            // Exponential gaps are memoryless: start afresh at the next phase.
            self.t = self.ends[i];
            self.k = 0;
        }
    }
}

/// Categories weighted like a marketplace shop: pre-sales questions are the
/// bulk, then orders and shipping, after-sales, a few complaints.
pub const CATEGORY_WEIGHTS: [(Category, f64); 8] = [
    (Category::PreSales, 38.0),
    (Category::Other, 5.0),
    (Category::Order, 15.0),
    (Category::Logistics, 14.0),
    (Category::AfterSalesRefund, 11.0),
    (Category::AfterSalesExchange, 6.0),
    (Category::AfterSalesRepair, 4.0),
    (Category::Complaint, 7.0),
];
/// VIP tiers 0-5: about 10 % of customers are members, few at the top.
pub const VIP_TIER_WEIGHTS: [f64; 6] = [90.0, 4.0, 2.5, 2.0, 1.0, 0.5];
/// Share of customers who follow the shop.
pub const FAN_SHARE: f64 = 0.08;
/// Share of pre-sales and other questions the bot already tried.
pub const BOT_ATTEMPTED_SHARE: f64 = 0.2;
const PLATFORMS: [(&str, f64); 5] =
    [("taobao", 35.0), ("tmall", 25.0), ("douyin", 20.0), ("pinduoduo", 15.0), ("aliexpress", 5.0)];
/// Distinct customers drawn from, so some come back (and meet their agent again).
const CUSTOMERS: u64 = 20_000;

/// Who asks what.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mix {
    /// The shop mix above.
    Shop,
    /// The shop mix with every pre-sales/other question marked as already
    /// tried by the bot, so none is deflected and every inquiry leads to an
    /// offer (the benchmark measures offers).
    NoDeflection,
}

/// Draws inquiries with ids `<run>-<seq>`.
#[derive(Clone, Debug)]
pub struct InquiryMaker {
    rng: Rng,
    mix: Mix,
    run: String,
    seq: u64,
}

impl InquiryMaker {
    /// A maker whose ids start with `run`.
    pub fn new(run: &str, mix: Mix, seed: u64) -> InquiryMaker {
        InquiryMaker { rng: Rng::new(seed), mix, run: run.to_string(), seq: 0 }
    }

    /// The next inquiry, created at `now_ms`; its `shop_id` names the subject.
    pub fn next(&mut self, now_ms: i64) -> proto::Inquiry {
        let r = &mut self.rng;
        self.seq += 1;
        let category = CATEGORY_WEIGHTS[r.pick(&CATEGORY_WEIGHTS.map(|c| c.1))].0;
        let vip_tier = r.pick(&VIP_TIER_WEIGHTS) as u32;
        let (platform, _) = PLATFORMS[r.pick(&PLATFORMS.map(|p| p.1))];
        let asks_bot_first = matches!(category, Category::PreSales | Category::Other);
        let bot_attempted = asks_bot_first && (self.mix == Mix::NoDeflection || r.chance(BOT_ATTEMPTED_SHARE));
        let order_value_cents = if asks_bot_first { 0 } else { r.lognormal(15_000.0, 0.8) as i64 };
        proto::Inquiry {
            id: format!("{}-{}", self.run, self.seq),
            shop_id: format!("{platform}-{}", 1 + r.below(3)),
            platform: platform.to_string(),
            customer: Some(proto::Customer {
                id: format!("c-{}", r.below(CUSTOMERS)),
                vip_tier,
                is_fan: r.chance(FAN_SHARE),
                lifetime_value_cents: (f64::from(vip_tier + 1) * r.lognormal(80_000.0, 0.7)) as i64,
            }),
            category: category as i32,
            channel: proto::Channel::Chat as i32,
            language: if platform == "aliexpress" { "en" } else { "zh-CN" }.to_string(),
            required_skills: Vec::new(),
            order_value_cents,
            subject: subject_of(category).to_string(),
            created_at_ms: now_ms,
            bot_attempted,
        }
    }
}

/// A short, made-up line for the agent's list.
fn subject_of(category: Category) -> &'static str {
    match category {
        Category::PreSales => "which size fits 175 cm?",
        Category::Order => "change the delivery address",
        Category::Logistics => "parcel has not moved for 3 days",
        Category::AfterSalesRefund => "refund for a damaged kettle",
        Category::AfterSalesExchange => "exchange for a larger size",
        Category::AfterSalesRepair => "headphones stopped charging",
        Category::Complaint => "courier was rude",
        Category::Other | Category::Unspecified => "invoice question",
    }
}

/// How inquiries are encoded on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Json,
    Protobuf,
}

impl Format {
    /// The name used on the command line and in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Json => "json",
            Format::Protobuf => "protobuf",
        }
    }
}

/// Headers (`Nats-Msg-Id`, `Content-Type`) and body of one inquiry.
pub fn encode(format: Format, inquiry: &proto::Inquiry) -> (HeaderMap, Bytes) {
    let mut headers = HeaderMap::new();
    headers.insert("Nats-Msg-Id", inquiry.id.as_str());
    let body = match format {
        Format::Json => {
            headers.insert("Content-Type", "application/json");
            serde_json::to_vec(inquiry).expect("inquiries always serialise")
        }
        Format::Protobuf => {
            headers.insert("Content-Type", "application/protobuf");
            inquiry.encode_to_vec()
        }
    };
    (headers, body.into())
}
