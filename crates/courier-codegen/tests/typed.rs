//! Typed channels, checked by the compiler: a producer of a channel writes
//! only its latest message version and a consumer reads only its message
//! enum; anything else fails to compile (trybuild).

#[test]
fn a_channel_refuses_another_message_at_compile_time() {
    let cases = trybuild::TestCases::new();
    cases.pass("tests/ui/generated_channels_are_typed.rs");
    cases.compile_fail("tests/ui/producer_of_another_message.rs");
    cases.compile_fail("tests/ui/producer_of_an_older_version.rs");
    cases.compile_fail("tests/ui/consumer_of_another_message.rs");
}
