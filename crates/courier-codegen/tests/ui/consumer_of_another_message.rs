// A consumer of the billing channel reads its message enum: a consumer of
// interactions on it does not compile.
use contact_center_contracts::channels::billing::Billing;
use contact_center_contracts::Interaction;

fn consumer(client: &courier::Client) -> courier::Consumer<Interaction> {
    courier::Consumer::of::<Billing>(client, "group")
}

fn main() {
    let _ = consumer;
}
