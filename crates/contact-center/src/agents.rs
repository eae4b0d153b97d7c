//! The agents' handlers. Each takes a typed delivery from the generated
//! contracts crate and publishes its follow-up through a generated
//! producer; none writes a Redis key or an envelope.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use contact_center_contracts::channels;
use contact_center_contracts::{
    ClassifiedTask, EvaluationResult, FeedbackEvent, HumanEscalation, Interaction,
};
use courier::{Client, Delivery, Outcome, PublishOptions};
use serde_json::json;

/// A handler's run.
pub type Handling = Pin<Box<dyn Future<Output = Outcome> + Send>>;

/// Counters the agents share.
#[derive(Debug, Default)]
pub struct Tally {
    /// Resolved by the evaluator without a human.
    pub automated: AtomicU64,
    /// Resolved by the human desk.
    pub human: AtomicU64,
    /// What the classifier heard on the feedback broadcast, by predicted
    /// intent.
    pub feedback: Mutex<HashMap<String, Heard>>,
    /// Contact to resolution, real seconds, every resolution.
    pub resolutions: Mutex<Vec<f64>>,
    /// Contact to automated resolution, real seconds.
    pub automated_resolutions: Mutex<Vec<f64>>,
    /// When telephony published each contact, by interaction id.
    pub published: Mutex<HashMap<u128, Instant>>,
    /// How often each interaction was resolved.
    pub resolved: Mutex<HashMap<u128, u32>>,
}

/// Feedback on one intent.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct Heard {
    /// Predictions accepted.
    pub accepted: u64,
    /// Predictions a human corrected.
    pub corrected: u64,
}

impl Heard {
    /// How far the classifier trusts its rules for this intent: the share
    /// of accepted predictions, smoothed so that no feedback means 1.
    pub fn trust(&self) -> f64 {
        (self.accepted as f64 + 4.0) / ((self.accepted + self.corrected) as f64 + 4.0)
    }
}

impl Tally {
    /// Records a resolution of `interaction` and returns the real seconds
    /// since its contact was published.
    fn resolve(&self, interaction: uuid::Uuid) -> Option<f64> {
        *self
            .resolved
            .lock()
            .unwrap()
            .entry(interaction.as_u128())
            .or_default() += 1;
        let published = *self.published.lock().unwrap().get(&interaction.as_u128())?;
        let seconds = published.elapsed().as_secs_f64();
        self.resolutions.lock().unwrap().push(seconds);
        Some(seconds)
    }
}

/// Where a real LLM client would go: decides an interaction's intent.
pub trait Classify: Send + Sync + 'static {
    /// The intent (`billing`, `technical_support`, `retention`) and a
    /// confidence.
    fn classify(&self, text: &str) -> (&'static str, f64);
}

/// Deterministic keyword rules.
#[derive(Debug, Default)]
pub struct Keywords;

impl Classify for Keywords {
    fn classify(&self, text: &str) -> (&'static str, f64) {
        let text = text.to_lowercase();
        if ["cancel", "leave", "switch", "competitor"]
            .iter()
            .any(|w| text.contains(w))
        {
            ("retention", 0.9)
        } else if ["invoice", "charge", "bill", "refund"]
            .iter()
            .any(|w| text.contains(w))
        {
            ("billing", 0.92)
        } else {
            ("technical_support", 0.75)
        }
    }
}

/// What callers say, in turn.
pub const TEXTS: &[&str] = &[
    "I was charged twice on my invoice",
    "The app crashes when I log in",
    "I want to cancel my subscription",
    "Please refund last month's bill",
    "My router keeps dropping the connection",
    "A competitor offers a better price, I will switch",
];

/// A stable id derived from another, so a redelivered message derives the
/// same downstream id (and its idempotency key dedupes the publish).
pub fn derived(id: uuid::Uuid, salt: u128) -> uuid::Uuid {
    uuid::Uuid::from_u128(id.as_u128() ^ (salt << 64))
}

/// The classification agent: intake → a specialist queue.
///
/// It adjusts from the feedback broadcast: the confidence it attaches to
/// an intent falls with the share of that intent's predictions humans
/// corrected ([`Heard::trust`]).
pub fn classifier(
    client: &Client,
    classifier: Arc<dyn Classify>,
    tally: Arc<Tally>,
) -> impl Fn(Delivery<Interaction>) -> Handling + Clone + Send + Sync + 'static {
    let billing = channels::billing::producer(client);
    let technical = channels::technical_support::producer(client);
    let retention = channels::retention::producer(client);
    move |d: Delivery<Interaction>| {
        let (billing, technical, retention) =
            (billing.clone(), technical.clone(), retention.clone());
        let (classifier, tally) = (classifier.clone(), tally.clone());
        Box::pin(async move {
            let Interaction::V1(contact) = &d.message;
            let (intent, confidence) = classifier.classify(&contact.text);
            let trust = tally
                .feedback
                .lock()
                .unwrap()
                .get(intent)
                .map_or(1.0, Heard::trust);
            let confidence = confidence * trust;
            let task = json!({
                "task_id": derived(contact.interaction_id, 1),
                "interaction_id": contact.interaction_id, "customer_id": contact.customer_id.to_string(),
                "region": contact.region, "intent": intent, "confidence": confidence,
                "summary": contact.text.to_string(), "sentiment": if intent == "retention" { -0.6 } else { 0.1 }
            });
            let task = match serde_json::from_value(task) {
                Ok(task) => task,
                Err(e) => return Outcome::fatal(e),
            };
            let queue = match intent {
                "billing" => &billing,
                "retention" => &retention,
                _ => &technical,
            };
            match queue.publish_with(&task, &d.follow_up()).await {
                Ok(_) => Outcome::Done,
                Err(e) => Outcome::retry(e),
            }
        })
    }
}

/// A specialist: handles a task for `handling` (simulated), fails at
/// `fail_rate` to exercise retries, and asks for evaluation.
pub fn specialist(
    client: &Client,
    handling: Duration,
    fail_rate: f64,
) -> impl Fn(Delivery<ClassifiedTask>) -> Handling + Send + Sync + 'static {
    let evaluations = channels::evaluations::producer(client);
    move |d: Delivery<ClassifiedTask>| {
        let evaluations = evaluations.clone();
        Box::pin(async move {
            tokio::time::sleep(handling).await;
            if fastrand::f64() < fail_rate {
                return Outcome::retry("the billing system timed out");
            }
            let (task_id, intent) = match &d.message {
                ClassifiedTask::V1(t) => (t.task_id, serde_json::to_value(t.intent)),
                ClassifiedTask::V2(t) => (t.task_id, serde_json::to_value(t.intent)),
            };
            let intent = intent.unwrap_or_default();
            let result = json!({
                "task_id": task_id, "specialist": format!("{}-agent", intent.as_str().unwrap_or("specialist")),
                "intent": intent, "resolution": "Resolved with the customer", "handling_ms": 180_000
            });
            let Ok(result) = serde_json::from_value(result) else {
                return Outcome::fatal("cannot build the evaluation result");
            };
            match evaluations.publish_with(&result, &d.follow_up()).await {
                Ok(_) => Outcome::Done,
                Err(e) => Outcome::retry(e),
            }
        })
    }
}

/// The evaluator: accepts a stable `automation` share of resolutions and
/// escalates the rest to the human desk, the lowest scores first.
pub fn evaluator(
    client: &Client,
    tally: Arc<Tally>,
    automation: f64,
) -> impl Fn(Delivery<EvaluationResult>) -> Handling + Send + Sync + 'static {
    let feedback = channels::feedback::producer(client);
    let escalations = channels::escalations::producer(client);
    move |d: Delivery<EvaluationResult>| {
        let (feedback, escalations, tally) = (feedback.clone(), escalations.clone(), tally.clone());
        Box::pin(async move {
            let EvaluationResult::V1(result) = &d.message;
            // A stable score per task, uniform over [0, 1).
            let score = fastrand::Rng::with_seed(result.task_id.as_u128() as u64).f64();
            if score < automation {
                let event = json!({
                    "event_id": derived(result.task_id, 2),
                    "task_id": result.task_id, "predicted_intent": result.intent,
                    "outcome": "accepted", "source": "automated"
                });
                let Ok(event) = serde_json::from_value(event) else {
                    return Outcome::fatal("cannot build the feedback event");
                };
                // A broadcast: at most once, nobody may be listening.
                let _ = feedback.publish_with(&event, &d.follow_up()).await;
                tally.automated.fetch_add(1, Ordering::Relaxed);
                if let Some(real) = tally.resolve(derived(result.task_id, 1)) {
                    tally.automated_resolutions.lock().unwrap().push(real);
                }
                return Outcome::Done;
            }
            let priority = (score * 10.0) as u8 % 10;
            let escalation = json!({
                "escalation_id": derived(result.task_id, 3),
                "task_id": result.task_id, "reason": "low_score", "priority": priority,
                "evaluation": { "score": score, "notes": format!("predicted intent: {}", result.intent) }
            });
            let Ok(escalation) = serde_json::from_value(escalation) else {
                return Outcome::fatal("cannot build the escalation");
            };
            let options = PublishOptions {
                priority: Some(priority),
                ..d.follow_up()
            };
            match escalations.publish_with(&escalation, &options).await {
                Ok(_) => Outcome::Done,
                Err(e) => Outcome::retry(e),
            }
        })
    }
}

/// A simulated human at the escalation desk: takes `handling`
/// (simulated), then announces the correction on the feedback broadcast.
pub fn human(
    client: &Client,
    tally: Arc<Tally>,
    handling: Duration,
) -> impl Fn(Delivery<HumanEscalation>) -> Handling + Send + Sync + 'static {
    let feedback = channels::feedback::producer(client);
    move |d: Delivery<HumanEscalation>| {
        let (feedback, tally) = (feedback.clone(), tally.clone());
        Box::pin(async move {
            tokio::time::sleep(handling).await;
            let HumanEscalation::V1(escalation) = &d.message;
            // The evaluator's notes name the predicted intent.
            let notes: &str = &escalation.evaluation.notes;
            let predicted = notes
                .strip_prefix("predicted intent: ")
                .unwrap_or("billing");
            let event = json!({
                "event_id": escalation.escalation_id, "task_id": escalation.task_id,
                "predicted_intent": predicted, "outcome": "corrected", "source": "human"
            });
            if let Ok(event) =
                serde_json::from_value::<contact_center_contracts::FeedbackEventV1>(event)
            {
                let _ = feedback.publish_with(&event, &d.follow_up()).await;
            }
            tally.human.fetch_add(1, Ordering::Relaxed);
            tally.resolve(derived(escalation.task_id, 1));
            Outcome::Done
        })
    }
}

/// The classifier's ear on the feedback broadcast: counts accepted and
/// corrected predictions per intent.
pub fn learner(tally: Arc<Tally>) -> impl Fn(Delivery<FeedbackEvent>) -> Handling + Send + Sync {
    move |d: Delivery<FeedbackEvent>| {
        let tally = tally.clone();
        Box::pin(async move {
            let FeedbackEvent::V1(event) = &d.message;
            let corrected = serde_json::to_value(event.outcome).ok() == Some(json!("corrected"));
            let mut feedback = tally.feedback.lock().unwrap();
            let heard = feedback
                .entry(event.predicted_intent.to_string())
                .or_default();
            if corrected {
                heard.corrected += 1;
            } else {
                heard.accepted += 1;
            }
            Outcome::Done
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keywords_route_each_caller() {
        let expected = [
            "billing",
            "technical_support",
            "retention",
            "billing",
            "technical_support",
            "retention",
        ];
        for (text, intent) in TEXTS.iter().zip(expected) {
            assert_eq!(Keywords.classify(text).0, intent, "{text}");
        }
    }

    #[test]
    fn derived_ids_are_stable_and_distinct() {
        let id = uuid::Uuid::new_v4();
        assert_eq!(derived(id, 1), derived(id, 1));
        assert_ne!(derived(id, 1), derived(id, 2));
        assert_eq!(derived(derived(id, 3), 3), id);
    }
}
