// A producer on the billing channel writes ClassifiedTaskV2, its latest
// message: asking it for another message type does not compile.
use contact_center_contracts::channels::billing::Billing;
use contact_center_contracts::InteractionV1;

fn producer(client: &courier::Client) -> courier::Producer<InteractionV1> {
    courier::Producer::of::<Billing>(client)
}

fn main() {
    let _ = producer;
}
