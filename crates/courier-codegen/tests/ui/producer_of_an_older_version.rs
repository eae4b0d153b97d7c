// Producers write a channel's latest version only: v1 of the billing
// channel's message does not compile.
use contact_center_contracts::channels::billing::Billing;
use contact_center_contracts::ClassifiedTaskV1;

fn producer(client: &courier::Client) -> courier::Producer<ClassifiedTaskV1> {
    courier::Producer::of::<Billing>(client)
}

fn main() {
    let _ = producer;
}
