// The generated constructors give the channel's own types.
use contact_center_contracts::channels::{billing, feedback};
use contact_center_contracts::{ClassifiedTask, ClassifiedTaskV2, FeedbackEvent};

fn typed(client: &courier::Client) {
    let _: courier::Producer<ClassifiedTaskV2> = billing::producer(client);
    let _: courier::Consumer<ClassifiedTask> = billing::consumer(client, "group");
    let _: courier::Subscriber<FeedbackEvent> = feedback::subscriber(client);
    let _: courier::Producer<ClassifiedTaskV2> = courier::Producer::of::<billing::Billing>(client);
}

fn main() {
    let _ = typed;
}
