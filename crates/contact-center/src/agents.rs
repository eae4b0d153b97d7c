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
use contact_center_contracts::feedback_event::v1::{FeedbackEventV1Outcome, FeedbackEventV1Source};
use contact_center_contracts::human_escalation::v1::{
    Evaluation, EvaluationNotes, HumanEscalationV1Reason,
};
use contact_center_contracts::{
    ClassifiedTask, ClassifiedTaskV2, EvaluationResult, EvaluationResultV2, FeedbackEvent,
    FeedbackEventV1, HumanEscalation, HumanEscalationV1, Intent, Interaction, InteractionV1,
    Resolution, Specialist as SpecialistName, Summary,
};
use courier::{Client, Delivery, FieldError, Handler, Outcome, Producer, PublishOptions};

use crate::model::{Model, World};

/// Counters the agents share.
#[derive(Debug, Default)]
pub struct Tally {
    /// Resolved by the evaluator without a human.
    pub automated: AtomicU64,
    /// Resolved by the human desk.
    pub human: AtomicU64,
    /// Resolved without a human although the contact needed one: the
    /// customer came back and a human corrected it.
    pub automated_wrongly: AtomicU64,
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
    /// Resolutions accepted without a human.
    pub accepted: u64,
    /// Of those, the ones a human had to correct (the customer came back).
    pub corrected: u64,
    /// Escalated contacts a human handled.
    pub handled_by_humans: u64,
}

impl Heard {
    /// How far the classifier trusts its confidence for this intent: the
    /// share of automated resolutions that were not corrected, smoothed so
    /// that no feedback means 1.
    pub fn trust(&self) -> f64 {
        let kept = self.accepted.saturating_sub(self.corrected);
        (kept as f64 + 4.0) / (self.accepted as f64 + 4.0)
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
    /// The intent, and the confidence that the contact can be resolved
    /// without a human.
    fn classify(&self, contact: &InteractionV1) -> (Intent, f64);
}

/// Deterministic keyword rules, with a fixed confidence per intent: the
/// intent part of [`Model`], and a classifier for tests.
#[derive(Debug, Default)]
pub struct Keywords;

impl Classify for Keywords {
    fn classify(&self, contact: &InteractionV1) -> (Intent, f64) {
        let text = contact.text.to_lowercase();
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
    fn task(&self, contact: &InteractionV1) -> Result<ClassifiedTaskV2, FieldError> {
        let (intent, confidence) = self.classify.classify(contact);
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

/// A specialist: handles a task for `handling` (simulated), drafting its
/// resolution with the model, fails at `fail_rate` to exercise retries, and
/// asks for evaluation, passing on the classifier's confidence.
#[derive(Debug)]
pub struct Specialist {
    model: Arc<Model>,
    evaluations: Producer<EvaluationResultV2>,
    handling: Duration,
    fail_rate: f64,
}

impl Specialist {
    /// A specialist publishing through `client`.
    pub fn new(client: &Client, model: Arc<Model>, handling: Duration, fail_rate: f64) -> Self {
        Self {
            model,
            evaluations: channels::evaluations::producer(client),
            handling,
            fail_rate,
        }
    }

    /// Its result for a task: every version of the task carries what the
    /// evaluation needs.
    fn evaluation(&self, task: &ClassifiedTask) -> Result<EvaluationResultV2, FieldError> {
        let (task_id, intent, confidence, summary) = match task {
            ClassifiedTask::V1(t) => (t.task_id, t.intent, t.confidence, &t.summary),
            ClassifiedTask::V2(t) => (t.task_id, t.intent, t.confidence, &t.summary),
        };
        Ok(EvaluationResultV2 {
            task_id,
            specialist: SpecialistName::new(format!("{intent}-agent"))?,
            intent,
            resolution: Resolution::new(self.model.resolve(intent, summary))?,
            handling_ms: 180_000,
            confidence: Some(confidence),
            tags: None,
        })
    }
}

impl Handler<ClassifiedTask> for Specialist {
    async fn handle(&self, delivery: Delivery<ClassifiedTask>) -> Outcome {
        tokio::time::sleep(self.handling).await;
        if fastrand::f64() < self.fail_rate {
            return Outcome::retry("the billing system timed out");
        }
        let result = match self.evaluation(&delivery.message) {
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

/// The evaluator: accepts a resolution whose confidence reaches
/// `threshold` and escalates the rest to the human desk, the least
/// confident first. A result without a confidence (version 1) goes to a
/// human.
#[derive(Debug)]
pub struct Evaluator {
    tally: Arc<Tally>,
    threshold: f64,
    feedback: Producer<FeedbackEventV1>,
    escalations: Producer<HumanEscalationV1>,
}

impl Evaluator {
    /// An evaluator publishing through `client`.
    pub fn new(client: &Client, tally: Arc<Tally>, threshold: f64) -> Self {
        Self {
            tally,
            threshold,
            feedback: channels::feedback::producer(client),
            escalations: channels::escalations::producer(client),
        }
    }
}

impl Handler<EvaluationResult> for Evaluator {
    async fn handle(&self, delivery: Delivery<EvaluationResult>) -> Outcome {
        let (task_id, intent, confidence) = match &delivery.message {
            EvaluationResult::V1(r) => (r.task_id, r.intent, None),
            EvaluationResult::V2(r) => (r.task_id, r.intent, r.confidence),
        };
        let score = confidence.unwrap_or(0.0);
        if score >= self.threshold {
            let event = FeedbackEventV1 {
                event_id: derived(task_id, 2),
                task_id,
                predicted_intent: intent,
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
            if let Some(real) = self.tally.resolve(derived(task_id, 1)) {
                self.tally.automated_resolutions.lock().unwrap().push(real);
            }
            return Outcome::Done;
        }
        // The least confident first: priority 9 at confidence 0.
        let priority = ((1.0 - score) * 10.0).clamp(0.0, 9.0) as u8;
        let notes = match EvaluationNotes::new(format!("predicted intent: {intent}")) {
            Ok(notes) => notes,
            Err(e) => return refused(e),
        };
        let escalation = HumanEscalationV1 {
            escalation_id: derived(task_id, 3),
            task_id,
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
/// (simulated), then announces on the feedback broadcast that a human
/// handled the contact.
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
                outcome: FeedbackEventV1Outcome::Accepted,
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

/// The customers, as the world answers the pipeline: a contact resolved
/// without a human that needed one comes back, and a human corrects it,
/// announced on the feedback broadcast (which lowers the classifier's
/// trust in that intent). Listens to the same broadcast; counts each such
/// contact once.
#[derive(Debug)]
pub struct Customers {
    world: Arc<World>,
    tally: Arc<Tally>,
    feedback: Producer<FeedbackEventV1>,
}

impl Customers {
    /// The customers of `world`, announcing corrections through `client`.
    pub fn new(client: &Client, world: Arc<World>, tally: Arc<Tally>) -> Self {
        Self {
            world,
            tally,
            feedback: channels::feedback::producer(client),
        }
    }
}

impl Handler<FeedbackEvent> for Customers {
    async fn handle(&self, delivery: Delivery<FeedbackEvent>) -> Outcome {
        let FeedbackEvent::V1(event) = &delivery.message;
        let automated = event.outcome == FeedbackEventV1Outcome::Accepted
            && event.source == FeedbackEventV1Source::Automated;
        // The task id is derived from the contact's (derived(contact, 1)).
        if !automated || self.world.resolvable(derived(event.task_id, 1)) {
            return Outcome::Done;
        }
        let correction = FeedbackEventV1 {
            event_id: derived(event.task_id, 4),
            task_id: event.task_id,
            predicted_intent: event.predicted_intent,
            actual_intent: None,
            outcome: FeedbackEventV1Outcome::Corrected,
            source: FeedbackEventV1Source::Human,
        };
        self.tally.automated_wrongly.fetch_add(1, Ordering::Relaxed);
        // A broadcast, as the evaluator's: the correction is what the
        // classifier hears; the count above is what the report says.
        let _ = self
            .feedback
            .publish_with(&correction, &delivery.follow_up())
            .await;
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
        match (event.outcome, event.source) {
            (FeedbackEventV1Outcome::Corrected, _) => heard.corrected += 1,
            (_, FeedbackEventV1Source::Automated) => heard.accepted += 1,
            (_, FeedbackEventV1Source::Human) => heard.handled_by_humans += 1,
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
            assert_eq!(
                Keywords.classify(&contact(text)).0.to_string(),
                intent,
                "{text}"
            );
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
    use contact_center_contracts::{ClassifiedTaskV1, CustomerId, EvaluationResultV1, Region};
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
        let model = model();
        let specialist = Specialist::new(harness.client(), model.clone(), Duration::ZERO, 0.0);
        let handled = harness
            .deliver(Retention, &specialist, task_v1(Intent::Retention))
            .await
            .unwrap();
        assert_eq!(handled.outcome, Outcome::Done);
        let results = handled.published::<Evaluations>().unwrap();
        assert_eq!(results.len(), 1);
        assert_eq!(results[0].specialist.as_str(), "retention-agent");
        assert_eq!(results[0].intent, Intent::Retention);
        // The task's confidence travels on; the resolution is the model's,
        // its tokens counted.
        assert_eq!(results[0].confidence, Some(0.9));
        assert!(results[0].resolution.contains("loyalty discount"));
        assert_eq!(model.calls(), 1);
        assert!(model.tokens() > 50, "{}", model.tokens());

        let failing = Specialist::new(harness.client(), model, Duration::ZERO, 1.0);
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

    fn model() -> Arc<Model> {
        Arc::new(Model::new(Arc::new(World::new(0.65, 0))))
    }

    fn result(task: u128, confidence: Option<f64>) -> EvaluationResultV2 {
        EvaluationResultV2 {
            task_id: uuid::Uuid::from_u128(task),
            specialist: SpecialistName::new("billing-agent").unwrap(),
            intent: Intent::Billing,
            resolution: Resolution::new("Refunded").unwrap(),
            handling_ms: 1_000,
            confidence,
            tags: None,
        }
    }

    #[tokio::test]
    async fn the_evaluator_accepts_at_its_threshold_and_escalates_below_it() {
        let harness = Harness::new();
        let tally = Arc::new(Tally::default());
        let evaluator = Evaluator::new(harness.client(), tally.clone(), 0.7);
        let handled = harness
            .deliver(Evaluations, &evaluator, result(9, Some(0.7)))
            .await
            .unwrap();
        assert_eq!(handled.outcome, Outcome::Done);
        let events = handled.published::<Feedback>().unwrap();
        assert_eq!(events[0].outcome, FeedbackEventV1Outcome::Accepted);
        assert_eq!(events[0].source, FeedbackEventV1Source::Automated);
        assert_eq!(events[0].predicted_intent, Intent::Billing);
        assert_eq!(tally.automated.load(Ordering::Relaxed), 1);

        let handled = harness
            .deliver(Evaluations, &evaluator, result(10, Some(0.64)))
            .await
            .unwrap();
        let escalations = handled.published::<Escalations>().unwrap();
        assert_eq!(escalations.len(), 1);
        let escalation = &escalations[0];
        assert_eq!(escalation.reason, HumanEscalationV1Reason::LowScore);
        assert_eq!(escalation.evaluation.score, 0.64);
        assert_eq!(escalation.priority, 3, "the less confident, the sooner");
        assert_eq!(&*escalation.evaluation.notes, "predicted intent: billing");
        assert_eq!(handled.published[0].envelope.priority, Some(3));
        assert_eq!(tally.automated.load(Ordering::Relaxed), 1);

        // A version 1 result carries no confidence: a human decides.
        let v1 = EvaluationResultV1 {
            task_id: uuid::Uuid::from_u128(11),
            specialist: SpecialistName::new("billing-agent").unwrap(),
            intent: Intent::Billing,
            resolution: Resolution::new("Refunded").unwrap(),
            handling_ms: 1_000,
            tags: None,
        };
        let handled = harness.deliver(Evaluations, &evaluator, v1).await.unwrap();
        assert_eq!(handled.published::<Escalations>().unwrap()[0].priority, 9);
    }

    /// A contact id whose world says it needs a human (or not), and the id
    /// of its task.
    fn contact_needing_a_human(world: &World, needs: bool) -> (uuid::Uuid, uuid::Uuid) {
        let contact = (0..1000u128)
            .map(uuid::Uuid::from_u128)
            .find(|id| world.resolvable(*id) != needs)
            .unwrap();
        (contact, derived(contact, 1))
    }

    #[tokio::test]
    async fn a_wrong_automation_comes_back_as_a_correction_that_lowers_trust() {
        let harness = Harness::new();
        let tally = Arc::new(Tally::default());
        let world = Arc::new(World::new(0.65, 0));
        let customers = Customers::new(harness.client(), world.clone(), tally.clone());
        let learner = Learner::new(tally.clone());
        let accepted = |task_id| FeedbackEventV1 {
            event_id: derived(task_id, 2),
            task_id,
            predicted_intent: Intent::Retention,
            actual_intent: None,
            outcome: FeedbackEventV1Outcome::Accepted,
            source: FeedbackEventV1Source::Automated,
        };

        // Automated rightly: the customer stays away.
        let (_, fine) = contact_needing_a_human(&world, false);
        let handled = harness
            .deliver(Feedback, &customers, accepted(fine))
            .await
            .unwrap();
        assert!(handled.published.is_empty());

        // Automated wrongly: the customer comes back, a human corrects it.
        let (_, wrong) = contact_needing_a_human(&world, true);
        let handled = harness
            .deliver(Feedback, &customers, accepted(wrong))
            .await
            .unwrap();
        let corrections = handled.published::<Feedback>().unwrap();
        assert_eq!(corrections.len(), 1);
        assert_eq!(corrections[0].outcome, FeedbackEventV1Outcome::Corrected);
        assert_eq!(corrections[0].source, FeedbackEventV1Source::Human);
        assert_eq!(tally.automated_wrongly.load(Ordering::Relaxed), 1);

        // The classifier hears both acceptances and the correction.
        for event in [accepted(fine), accepted(wrong), corrections[0].clone()] {
            harness.deliver(Feedback, &learner, event).await.unwrap();
        }
        let heard = tally.feedback.lock().unwrap()["retention"];
        assert_eq!((heard.accepted, heard.corrected), (2, 1));
        assert!(
            (heard.trust() - 5.0 / 6.0).abs() < 1e-9,
            "{}",
            heard.trust()
        );
    }

    #[tokio::test]
    async fn the_desk_announces_what_a_human_handled_without_lowering_trust() {
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
        assert_eq!(events[0].outcome, FeedbackEventV1Outcome::Accepted);
        assert_eq!(events[0].source, FeedbackEventV1Source::Human);
        assert_eq!(events[0].predicted_intent, Intent::Retention);
        assert_eq!(tally.human.load(Ordering::Relaxed), 1);

        let learner = Learner::new(tally.clone());
        let heard = harness
            .deliver(Feedback, &learner, events[0].clone())
            .await
            .unwrap();
        assert_eq!(heard.outcome, Outcome::Done);
        let feedback = tally.feedback.lock().unwrap();
        assert_eq!(feedback["retention"].handled_by_humans, 1);
        assert_eq!(feedback["retention"].trust(), 1.0);
    }

    #[tokio::test]
    async fn a_message_its_schema_refuses_never_reaches_the_handler() {
        let harness = Harness::new();
        let mut task = task_v1(Intent::Billing);
        task.confidence = 1.5; // the schema says at most 1
        let specialist = Specialist::new(harness.client(), model(), Duration::ZERO, 0.0);
        let error = harness
            .deliver(Billing, &specialist, task)
            .await
            .unwrap_err();
        assert!(error.to_string().contains("confidence"), "{error}");
        assert!(harness.published().is_empty());
    }
}
