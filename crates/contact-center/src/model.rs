//! The simulated world the agents work in and the language model they
//! call: what a deployment gets from its customers and its LLM provider.
//!
//! - [`World`]: each contact's hidden ground truth, whether it can be
//!   resolved without a human, drawn per contact with the `--resolvable`
//!   share (the seed's 65 % by default). No agent reads it. The model's
//!   confidence is noisy evidence of it, and the customers act on it: a
//!   contact automated that needed a human comes back
//!   ([`crate::agents::Customers`]).
//! - [`Model`]: the simulated LLM. It classifies a contact (the intent from
//!   keyword rules, the confidence from the world's evidence) and drafts a
//!   specialist's resolution, counting the tokens of every call.
//!
//! # Counting tokens
//!
//! A call's tokens are those of the text sent (the instructions and the
//! contact's text or the task's summary) plus those of the text received
//! (the answer), each counted by [`tokens`]: one token per four characters,
//! rounded up, the rule of thumb LLM providers give for English text. The
//! prompts are the constants below, so the count follows what the agents
//! actually send; a real client would read the provider's usage figures
//! instead.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use contact_center_contracts::{Intent, InteractionV1};

use crate::agents::{Classify, Keywords};

/// Tokens in `text`: one per four characters (Unicode scalar values),
/// rounded up.
pub fn tokens(text: &str) -> u64 {
    (text.chars().count() as u64).div_ceil(4)
}

/// What the classifier sends before the contact's text.
pub const CLASSIFY_PROMPT: &str = "You are the triage agent of a contact center. \
Read the customer's message below and answer with one JSON object and nothing else: \
\"intent\", one of billing, technical_support or retention; \"confidence\", a number \
from 0 to 1 that says how sure you are that the request can be resolved without a \
human agent, judged from how clear, complete and routine it is; \"summary\", the \
request in one sentence a specialist can act on. Billing covers invoices, charges, \
refunds and payment methods. Technical support covers the app, devices, connections \
and outages. Retention covers cancellations, competitors' offers and complaints about \
price. Never invent account details; if the message is ambiguous, lower the \
confidence instead of guessing. Customer message:\n";

/// What a specialist sends before the task's summary.
pub const RESOLVE_PROMPT: &str = "You are a specialist agent of a contact center. \
Resolve the request below within policy: say in two sentences what you did for the \
customer and what they should expect next. Do not promise refunds above the \
invoice amount or changes of contract terms. Request:\n";

/// A specialist's answer, by intent.
fn resolution(intent: Intent) -> &'static str {
    match intent {
        Intent::Billing => {
            "Reversed the duplicate charge and sent a corrected invoice. \
             The refund reaches the customer's card within five working days."
        }
        Intent::TechnicalSupport => {
            "Reset the customer's session and pushed the fixed app release. \
             The customer confirmed the connection holds; a follow-up is set for tomorrow."
        }
        Intent::Retention => {
            "Offered the loyalty discount on the current plan, which the customer accepted. \
             The new price applies from the next invoice."
        }
    }
}

/// The contacts' hidden ground truth.
#[derive(Debug, Clone)]
pub struct World {
    /// Share of contacts that can be resolved without a human.
    resolvable: f64,
    /// Varies the draws between runs; 0 for the default day.
    seed: u64,
}

impl World {
    /// A world where a `resolvable` share of contacts needs no human.
    pub fn new(resolvable: f64, seed: u64) -> World {
        World {
            resolvable: resolvable.clamp(0.0, 1.0),
            seed,
        }
    }

    fn draws(&self, interaction: uuid::Uuid) -> fastrand::Rng {
        let id = interaction.as_u128();
        fastrand::Rng::with_seed((id as u64) ^ ((id >> 64) as u64).rotate_left(17) ^ self.seed)
    }

    /// Whether the contact can be resolved without a human.
    pub fn resolvable(&self, interaction: uuid::Uuid) -> bool {
        self.draws(interaction).f64() < self.resolvable
    }

    /// The model's confidence that the contact needs no human: noisy
    /// evidence of the truth, around 0.85 (spread 0.08) for a contact that
    /// needs none and 0.5 (spread 0.12) for one that does, within 0 and 1.
    pub fn evidence(&self, interaction: uuid::Uuid) -> f64 {
        let mut draws = self.draws(interaction);
        let resolvable = draws.f64() < self.resolvable;
        // Three uniform draws summed: a bell around 0, spread 0.5.
        let noise = draws.f64() + draws.f64() + draws.f64() - 1.5;
        let (mean, spread) = if resolvable {
            (0.85, 0.08)
        } else {
            (0.5, 0.12)
        };
        (mean + 2.0 * spread * noise).clamp(0.0, 1.0)
    }
}

/// The simulated language model, shared by the agents that call it.
#[derive(Debug)]
pub struct Model {
    world: Arc<World>,
    tokens: AtomicU64,
    calls: AtomicU64,
}

impl Model {
    /// A model whose confidence follows `world`.
    pub fn new(world: Arc<World>) -> Model {
        Model {
            world,
            tokens: AtomicU64::new(0),
            calls: AtomicU64::new(0),
        }
    }

    /// Tokens sent and received so far.
    pub fn tokens(&self) -> u64 {
        self.tokens.load(Ordering::Relaxed)
    }

    /// Calls made so far.
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }

    fn count(&self, sent: &[&str], received: &str) {
        let tokens = sent.iter().map(|text| tokens(text)).sum::<u64>() + tokens(received);
        self.tokens.fetch_add(tokens, Ordering::Relaxed);
        self.calls.fetch_add(1, Ordering::Relaxed);
    }

    /// A specialist's resolution of a task of `intent` summarized as
    /// `summary`.
    pub fn resolve(&self, intent: Intent, summary: &str) -> &'static str {
        let answer = resolution(intent);
        self.count(&[RESOLVE_PROMPT, summary], answer);
        answer
    }
}

impl Classify for Model {
    fn classify(&self, contact: &InteractionV1) -> (Intent, f64) {
        let (intent, _) = Keywords.classify(contact);
        let confidence = self.world.evidence(contact.interaction_id);
        let answer = format!(
            "{{\"intent\": \"{intent}\", \"confidence\": {confidence:.2}, \"summary\": \"{}\"}}",
            contact.text.as_str()
        );
        self.count(&[CLASSIFY_PROMPT, &contact.text], &answer);
        (intent, confidence)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_four_characters_rounded_up() {
        assert_eq!(tokens(""), 0);
        assert_eq!(tokens("abcd"), 1);
        assert_eq!(tokens("abcde"), 2);
        // Characters, not bytes.
        assert_eq!(tokens("éééé"), 1);
    }

    #[test]
    fn the_truth_is_drawn_at_its_share_and_the_evidence_follows_it() {
        let world = World::new(0.65, 0);
        let ids: Vec<uuid::Uuid> = (0..20_000u128)
            .map(|n| uuid::Uuid::from_u128(0x00c0_0000_0000_4000_8000_0000_0000_0000 | n))
            .collect();
        let resolvable = ids.iter().filter(|id| world.resolvable(**id)).count();
        let share = resolvable as f64 / ids.len() as f64;
        assert!((share - 0.65).abs() < 0.015, "{share}");
        // The same contact always draws the same.
        assert_eq!(world.evidence(ids[7]), world.evidence(ids[7]));
        let mean = |want: bool| {
            let picked: Vec<f64> = ids
                .iter()
                .filter(|id| world.resolvable(**id) == want)
                .map(|id| world.evidence(*id))
                .collect();
            picked.iter().sum::<f64>() / picked.len() as f64
        };
        assert!((mean(true) - 0.85).abs() < 0.01, "{}", mean(true));
        assert!((mean(false) - 0.5).abs() < 0.01, "{}", mean(false));
        // At a threshold of 0.7, about 97 % of contacts that need no human
        // pass and about 5 % of those that do.
        let passed = |want: bool| {
            let of: Vec<_> = ids
                .iter()
                .filter(|id| world.resolvable(**id) == want)
                .collect();
            of.iter().filter(|id| world.evidence(***id) >= 0.7).count() as f64 / of.len() as f64
        };
        assert!(passed(true) > 0.94, "{}", passed(true));
        assert!(passed(false) < 0.08, "{}", passed(false));
    }

    #[test]
    fn every_call_counts_what_was_sent_and_received() {
        let model = Model::new(Arc::new(World::new(0.65, 0)));
        let answer = model.resolve(Intent::Billing, "Refund a double charge");
        assert_eq!(model.calls(), 1);
        assert_eq!(
            model.tokens(),
            tokens(RESOLVE_PROMPT) + tokens("Refund a double charge") + tokens(answer)
        );
    }
}
