//! The agents. Each is a struct implementing [`courier::Handler`] for the
//! typed message of its channel; it builds what it publishes from the
//! generated types, field by field, so a misspelt field or a wrong enum
//! value does not compile, and publishes through generated producers. None
//! writes JSON, a Redis key or an envelope. Each has unit tests through
//! [`courier::testing`], without Redis.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use contact_center_contracts::channels;
use contact_center_contracts::evaluation_result::v1::{
    EvaluationResultV1Resolution, EvaluationResultV1Specialist,
};
use contact_center_contracts::feedback_event::v1::{FeedbackEventV1Outcome, FeedbackEventV1Source};
use contact_center_contracts::human_escalation::v1::{
    Evaluation, EvaluationNotes, HumanEscalationV1Reason,
};
use contact_center_contracts::{
    ClassifiedTask, ClassifiedTaskV2, EvaluationResult, EvaluationResultV1, FeedbackEvent,
    FeedbackEventV1, HumanEscalation, HumanEscalationV1, Intent, Interaction, Summary,
};
use courier::{Client, Delivery, FieldError, Handler, Outcome, Producer, PublishOptions};

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
    /// The intent and a confidence in it.
    fn classify(&self, text: &str) -> (Intent, f64);
}

/// Deterministic keyword rules.
#[derive(Debug, Default)]
pub struct Keywords;

impl Classify for Keywords {
    fn classify(&self, text: &str) -> (Intent, f64) {
        let text = text.to_lowercase();
        if ["cancel", "leave", "switch", "competitor"]
            .iter()
            .any(|w| text.contains(w))
        {
            (Intent::Retention, 0.9)
        } else if ["invoice", "charge", "bill", "refund"]
            .iter()
            .any(|w| text.contains(w))
        {
            (Intent::Billing, 0.92)
        } else {
            (Intent::TechnicalSupport, 0.75)
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

/// What a handler does with a message it cannot build a follow-up for: a
/// field its schema refuses is a bug or bad data, not a passing fault.
fn refused(error: FieldError) -> Outcome {
    Outcome::fatal(error)
}

/// The classification agent: intake → a specialist queue.
///
/// It adjusts from the feedback broadcast: the confidence it attaches to
/// an intent falls with the share of that intent's predictions humans
/// corrected ([`Heard::trust`]).
pub struct Classifier {
    classify: Arc<dyn Classify>,
    tally: Arc<Tally>,
    billing: Producer<ClassifiedTaskV2>,
    technical_support: Producer<ClassifiedTaskV2>,
    retention: Producer<ClassifiedTaskV2>,
}

impl std::fmt::Debug for Classifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Classifier").finish_non_exhaustive()
    }
}

impl Classifier {
    /// A classifier publishing through `client`.
    pub fn new(client: &Client, classify: Arc<dyn Classify>, tally: Arc<Tally>) -> Self {
        Self {
            classify,
            tally,
            billing: channels::billing::producer(client),
            technical_support: channels::technical_support::producer(client),
            retention: channels::retention::producer(client),
        }
    }

    /// The specialist task for a contact.
    fn task(
        &self,
        contact: &contact_center_contracts::InteractionV1,
    ) -> Result<ClassifiedTaskV2, FieldError> {
        let (intent, confidence) = self.classify.classify(&contact.text);
        let trust = self
            .tally
            .feedback
            .lock()
            .unwrap()
            .get(&intent.to_string())
            .map_or(1.0, Heard::trust);
        // A summary holds at most 500 characters; a transcript up to 4,000.
        let summary: String = contact.text.chars().take(500).collect();
        Ok(ClassifiedTaskV2 {
            task_id: derived(contact.interaction_id, 1),
            interaction_id: contact.interaction_id,
            customer_id: contact.customer_id.clone(),
            region: contact.region,
            intent,
            confidence: confidence * trust,
            summary: Summary::new(summary)?,
            sentiment: Some(if intent == Intent::Retention {
                -0.6
            } else {
                0.1
            }),
        })
    }
}

impl Handler<Interaction> for Classifier {
    async fn handle(&self, delivery: Delivery<Interaction>) -> Outcome {
        let Interaction::V1(contact) = &delivery.message;
        let task = match self.task(contact) {
            Ok(task) => task,
            Err(e) => return refused(e),
        };
        let queue = match task.intent {
            Intent::Billing => &self.billing,
            Intent::TechnicalSupport => &self.technical_support,
            Intent::Retention => &self.retention,
        };
        match queue.publish_with(&task, &delivery.follow_up()).await {
            Ok(_) => Outcome::Done,
            Err(e) => Outcome::retry(e),
        }
    }
}

/// A specialist: handles a task for `handling` (simulated), fails at
/// `fail_rate` to exercise retries, and asks for evaluation.
#[derive(Debug)]
pub struct Specialist {
    evaluations: Producer<EvaluationResultV1>,
    handling: Duration,
    fail_rate: f64,
}

impl Specialist {
    /// A specialist publishing through `client`.
    pub fn new(client: &Client, handling: Duration, fail_rate: f64) -> Self {
        Self {
            evaluations: channels::evaluations::producer(client),
            handling,
            fail_rate,
        }
    }
}

/// A specialist's result for a task: every version of the task carries
/// what the evaluation needs.
fn evaluation(task: &ClassifiedTask) -> Result<EvaluationResultV1, FieldError> {
    let (task_id, intent) = match task {
        ClassifiedTask::V1(t) => (t.task_id, t.intent),
        ClassifiedTask::V2(t) => (t.task_id, t.intent),
    };
    Ok(EvaluationResultV1 {
        task_id,
        specialist: EvaluationResultV1Specialist::new(format!("{intent}-agent"))?,
        intent,
        resolution: EvaluationResultV1Resolution::new("Resolved with the customer")?,
        handling_ms: 180_000,
        tags: None,
    })
}

impl Handler<ClassifiedTask> for Specialist {
    async fn handle(&self, delivery: Delivery<ClassifiedTask>) -> Outcome {
        tokio::time::sleep(self.handling).await;
        if fastrand::f64() < self.fail_rate {
            return Outcome::retry("the billing system timed out");
        }
        let result = match evaluation(&delivery.message) {
            Ok(result) => result,
            Err(e) => return refused(e),
        };
        match self
            .evaluations
            .publish_with(&result, &delivery.follow_up())
            .await
        {
            Ok(_) => Outcome::Done,
            Err(e) => Outcome::retry(e),
        }
    }
}

/// The evaluator: accepts a stable `automation` share of resolutions and
/// escalates the rest to the human desk, the lowest scores first.
#[derive(Debug)]
pub struct Evaluator {
    tally: Arc<Tally>,
    automation: f64,
    feedback: Producer<FeedbackEventV1>,
    escalations: Producer<HumanEscalationV1>,
}

impl Evaluator {
    /// An evaluator publishing through `client`.
    pub fn new(client: &Client, tally: Arc<Tally>, automation: f64) -> Self {
        Self {
            tally,
            automation,
            feedback: channels::feedback::producer(client),
            escalations: channels::escalations::producer(client),
        }
    }
}

impl Handler<EvaluationResult> for Evaluator {
    async fn handle(&self, delivery: Delivery<EvaluationResult>) -> Outcome {
        let EvaluationResult::V1(result) = &delivery.message;
        // A stable score per task, uniform over [0, 1).
        let score = fastrand::Rng::with_seed(result.task_id.as_u128() as u64).f64();
        if score < self.automation {
            let event = FeedbackEventV1 {
                event_id: derived(result.task_id, 2),
                task_id: result.task_id,
                predicted_intent: result.intent,
                actual_intent: None,
                outcome: FeedbackEventV1Outcome::Accepted,
                source: FeedbackEventV1Source::Automated,
            };
            // A broadcast: at most once, nobody may be listening.
            let _ = self
                .feedback
                .publish_with(&event, &delivery.follow_up())
                .await;
            self.tally.automated.fetch_add(1, Ordering::Relaxed);
            if let Some(real) = self.tally.resolve(derived(result.task_id, 1)) {
                self.tally.automated_resolutions.lock().unwrap().push(real);
            }
            return Outcome::Done;
        }
        let priority = (score * 10.0) as u8 % 10;
        let notes = match EvaluationNotes::new(format!("predicted intent: {}", result.intent)) {
            Ok(notes) => notes,
            Err(e) => return refused(e),
        };
        let escalation = HumanEscalationV1 {
            escalation_id: derived(result.task_id, 3),
            task_id: result.task_id,
            reason: HumanEscalationV1Reason::LowScore,
            priority: i64::from(priority),
            sla_deadline: None,
            evaluation: Evaluation { score, notes },
        };
        let options = PublishOptions {
            priority: Some(priority),
            ..delivery.follow_up()
        };
        match self.escalations.publish_with(&escalation, &options).await {
            Ok(_) => Outcome::Done,
            Err(e) => Outcome::retry(e),
        }
    }
}

/// A simulated human at the escalation desk: takes `handling`
/// (simulated), then announces the correction on the feedback broadcast.
#[derive(Debug)]
pub struct Human {
    tally: Arc<Tally>,
    handling: Duration,
    feedback: Producer<FeedbackEventV1>,
}

impl Human {
    /// A human at the desk, announcing through `client`.
    pub fn new(client: &Client, tally: Arc<Tally>, handling: Duration) -> Self {
        Self {
            tally,
            handling,
            feedback: channels::feedback::producer(client),
        }
    }
}

impl Handler<HumanEscalation> for Human {
    async fn handle(&self, delivery: Delivery<HumanEscalation>) -> Outcome {
        tokio::time::sleep(self.handling).await;
        let HumanEscalation::V1(escalation) = &delivery.message;
        // The evaluator's notes name the predicted intent; notes that name
        // no known intent announce nothing.
        let predicted = match escalation
            .evaluation
            .notes
            .strip_prefix("predicted intent: ")
        {
            None => Some(Intent::Billing),
            Some(intent) => intent.parse().ok(),
        };
        if let Some(predicted) = predicted {
            let event = FeedbackEventV1 {
                event_id: escalation.escalation_id,
                task_id: escalation.task_id,
                predicted_intent: predicted,
                actual_intent: None,
                outcome: FeedbackEventV1Outcome::Corrected,
                source: FeedbackEventV1Source::Human,
            };
            let _ = self
                .feedback
                .publish_with(&event, &delivery.follow_up())
                .await;
        }
        self.tally.human.fetch_add(1, Ordering::Relaxed);
        self.tally.resolve(derived(escalation.task_id, 1));
        Outcome::Done
    }
}

/// The classifier's ear on the feedback broadcast: counts accepted and
/// corrected predictions per intent.
#[derive(Debug)]
pub struct Learner {
    tally: Arc<Tally>,
}

impl Learner {
    /// A learner recording into `tally`.
    pub fn new(tally: Arc<Tally>) -> Self {
        Self { tally }
    }
}

impl Handler<FeedbackEvent> for Learner {
    async fn handle(&self, delivery: Delivery<FeedbackEvent>) -> Outcome {
        let FeedbackEvent::V1(event) = &delivery.message;
        let mut feedback = self.tally.feedback.lock().unwrap();
        let heard = feedback
            .entry(event.predicted_intent.to_string())
            .or_default();
        if event.outcome == FeedbackEventV1Outcome::Corrected {
            heard.corrected += 1;
        } else {
            heard.accepted += 1;
        }
        Outcome::Done
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
            assert_eq!(Keywords.classify(text).0.to_string(), intent, "{text}");
        }
    }

    #[test]
    fn derived_ids_are_stable_and_distinct() {
        let id = uuid::Uuid::new_v4();
        assert_eq!(derived(id, 1), derived(id, 1));
        assert_ne!(derived(id, 1), derived(id, 2));
        assert_eq!(derived(derived(id, 3), 3), id);
    }

    use contact_center_contracts::channels::{
        billing::Billing, escalations::Escalations, evaluations::Evaluations, feedback::Feedback,
        intake::Intake, retention::Retention,
    };
    use contact_center_contracts::interaction::v1::{InteractionV1Medium, InteractionV1Text};
    use contact_center_contracts::{ClassifiedTaskV1, CustomerId, InteractionV1, Region};
    use courier::testing::Harness;

    fn contact(text: &str) -> InteractionV1 {
        InteractionV1 {
            interaction_id: uuid::Uuid::from_u128(42),
            customer_id: CustomerId::new("C1234567").unwrap(),
            region: Region::Emea,
            medium: InteractionV1Medium::Chat,
            language: None,
            text: InteractionV1Text::new(text).unwrap(),
            received_at: chrono::Utc::now(),
        }
    }

    fn task_v1(intent: Intent) -> ClassifiedTaskV1 {
        ClassifiedTaskV1 {
            task_id: uuid::Uuid::from_u128(7),
            interaction_id: uuid::Uuid::from_u128(42),
            customer_id: CustomerId::new("C1234567").unwrap(),
            region: Region::Amer,
            intent,
            confidence: 0.9,
            summary: Summary::new("A refund").unwrap(),
        }
    }

    #[tokio::test]
    async fn the_classifier_routes_a_contact_to_its_specialist_queue() {
        let harness = Harness::new();
        let tally = Arc::new(Tally::default());
        let classifier = Classifier::new(harness.client(), Arc::new(Keywords), tally);
        let handled = harness
            .deliver(
                Intake,
                &classifier,
                contact("I want to cancel my subscription"),
            )
            .await
            .unwrap();
        assert_eq!(handled.outcome, Outcome::Done);
        assert!(handled.published::<Billing>().unwrap().is_empty());
        let tasks = handled.published::<Retention>().unwrap();
        assert_eq!(tasks.len(), 1);
        let task = &tasks[0];
        assert_eq!(task.task_id, derived(uuid::Uuid::from_u128(42), 1));
        assert_eq!(task.customer_id.as_str(), "C1234567");
        assert_eq!(task.region, Region::Emea);
        assert_eq!(task.intent, Intent::Retention);
        assert_eq!(task.sentiment, Some(-0.6));
        // The follow-up continues the contact's correlation.
        assert!(handled.published[0].envelope.correlation_id.is_some());

        // A redelivery derives the same task: a duplicate, written once.
        let again = harness
            .deliver(
                Intake,
                &classifier,
                contact("I want to cancel my subscription"),
            )
            .await
            .unwrap();
        assert!(again.published[0].duplicate);
        assert!(again.published::<Retention>().unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_long_transcript_becomes_a_summary_within_its_bound() {
        let harness = Harness::new();
        let classifier = Classifier::new(
            harness.client(),
            Arc::new(Keywords),
            Arc::new(Tally::default()),
        );
        let text = "my invoice ".repeat(60);
        let handled = harness
            .deliver(Intake, &classifier, contact(&text))
            .await
            .unwrap();
        let tasks = handled.published::<Billing>().unwrap();
        assert_eq!(tasks[0].summary.chars().count(), 500);
    }

    #[tokio::test]
    async fn a_specialist_reads_every_task_version_and_retries_failures() {
        let harness = Harness::new();
        let specialist = Specialist::new(harness.client(), Duration::ZERO, 0.0);
        let handled = harness
            .deliver(Retention, &specialist, task_v1(Intent::Retention))
            .await
            .unwrap();
        assert_eq!(handled.outcome, Outcome::Done);
        let results = handled.published::<Evaluations>().unwrap();
        assert_eq!(results.len(), 1);
        assert_eq!(results[0].specialist.as_str(), "retention-agent");
        assert_eq!(results[0].intent, Intent::Retention);

        let failing = Specialist::new(harness.client(), Duration::ZERO, 1.0);
        let handled = harness
            .deliver(Retention, &failing, task_v1(Intent::Retention))
            .await
            .unwrap();
        assert!(
            matches!(handled.outcome, Outcome::Retry { .. }),
            "{:?}",
            handled.outcome
        );
        assert!(handled.published.is_empty());
    }

    fn result(task: u128) -> EvaluationResultV1 {
        EvaluationResultV1 {
            task_id: uuid::Uuid::from_u128(task),
            specialist: EvaluationResultV1Specialist::new("billing-agent").unwrap(),
            intent: Intent::Billing,
            resolution: EvaluationResultV1Resolution::new("Refunded").unwrap(),
            handling_ms: 1_000,
            tags: None,
        }
    }

    #[tokio::test]
    async fn the_evaluator_accepts_or_escalates_by_its_automation_share() {
        let harness = Harness::new();
        let tally = Arc::new(Tally::default());
        let accepting = Evaluator::new(harness.client(), tally.clone(), 1.0);
        let handled = harness
            .deliver(Evaluations, &accepting, result(9))
            .await
            .unwrap();
        assert_eq!(handled.outcome, Outcome::Done);
        let events = handled.published::<Feedback>().unwrap();
        assert_eq!(events[0].outcome, FeedbackEventV1Outcome::Accepted);
        assert_eq!(events[0].predicted_intent, Intent::Billing);
        assert_eq!(tally.automated.load(Ordering::Relaxed), 1);

        let escalating = Evaluator::new(harness.client(), tally.clone(), 0.0);
        let handled = harness
            .deliver(Evaluations, &escalating, result(9))
            .await
            .unwrap();
        let escalations = handled.published::<Escalations>().unwrap();
        assert_eq!(escalations.len(), 1);
        let escalation = &escalations[0];
        assert_eq!(escalation.reason, HumanEscalationV1Reason::LowScore);
        assert_eq!(&*escalation.evaluation.notes, "predicted intent: billing");
        assert_eq!(
            handled.published[0].envelope.priority,
            Some(escalation.priority as u8)
        );
        assert_eq!(tally.automated.load(Ordering::Relaxed), 1);
    }

    #[tokio::test]
    async fn a_human_correction_reaches_the_classifier_through_the_learner() {
        let harness = Harness::new();
        let tally = Arc::new(Tally::default());
        let human = Human::new(harness.client(), tally.clone(), Duration::ZERO);
        let escalation = HumanEscalationV1 {
            escalation_id: uuid::Uuid::from_u128(5),
            task_id: uuid::Uuid::from_u128(7),
            reason: HumanEscalationV1Reason::LowScore,
            priority: 3,
            sla_deadline: None,
            evaluation: Evaluation {
                score: 0.2,
                notes: EvaluationNotes::new("predicted intent: retention").unwrap(),
            },
        };
        let handled = harness
            .deliver(Escalations, &human, escalation)
            .await
            .unwrap();
        assert_eq!(handled.outcome, Outcome::Done);
        let events = handled.published::<Feedback>().unwrap();
        assert_eq!(events[0].outcome, FeedbackEventV1Outcome::Corrected);
        assert_eq!(events[0].predicted_intent, Intent::Retention);
        assert_eq!(tally.human.load(Ordering::Relaxed), 1);

        let learner = Learner::new(tally.clone());
        let heard = harness
            .deliver(Feedback, &learner, events[0].clone())
            .await
            .unwrap();
        assert_eq!(heard.outcome, Outcome::Done);
        let feedback = tally.feedback.lock().unwrap();
        assert_eq!(feedback["retention"].corrected, 1);
        assert!(feedback["retention"].trust() < 1.0);
    }

    #[tokio::test]
    async fn a_message_its_schema_refuses_never_reaches_the_handler() {
        let harness = Harness::new();
        let mut task = task_v1(Intent::Billing);
        task.confidence = 1.5; // the schema says at most 1
        let specialist = Specialist::new(harness.client(), Duration::ZERO, 0.0);
        let error = harness
            .deliver(Billing, &specialist, task)
            .await
            .unwrap_err();
        assert!(error.to_string().contains("confidence"), "{error}");
        assert!(harness.published().is_empty());
    }
}
