//! Rust names for schema things, in one place so that generated code and
//! documentation agree.

/// `classified_task` → `ClassifiedTask`.
pub fn pascal_case(snake: &str) -> String {
    snake
        .split('_')
        .filter(|part| !part.is_empty())
        .map(|part| {
            let mut chars = part.chars();
            match chars.next() {
                Some(first) => first.to_ascii_uppercase().to_string() + chars.as_str(),
                None => String::new(),
            }
        })
        .collect()
}

/// The type of one message version: `ClassifiedTaskV2`.
pub fn version_type(message: &str, version: u32) -> String {
    format!("{}V{version}", pascal_case(message))
}

/// The module of one message version: `v2`.
pub fn version_module(version: u32) -> String {
    format!("v{version}")
}

/// The marker type of a channel in its module: `Billing`, or
/// `MessageChannel` where the Pascal-case name would be one of the
/// module's own aliases (`Message`, `Latest`).
pub fn channel_marker(channel: &str) -> String {
    match pascal_case(channel).as_str() {
        name @ ("Message" | "Latest") => format!("{name}Channel"),
        name => name.to_string(),
    }
}

/// The package name of a domain's crate: `contact-center-contracts`.
pub fn crate_name(domain: &str) -> String {
    format!("{}-contracts", domain.replace('_', "-"))
}

/// A schema identifier (`^[a-z][a-z0-9_]*$`) as a Rust identifier, raw when
/// it is a keyword.
pub fn ident(name: &str) -> String {
    const KEYWORDS: &[&str] = &[
        "abstract", "as", "async", "await", "become", "box", "break", "const", "continue", "crate",
        "do", "dyn", "else", "enum", "extern", "false", "final", "fn", "for", "gen", "if", "impl",
        "in", "let", "loop", "macro", "match", "mod", "move", "mut", "override", "priv", "pub",
        "ref", "return", "self", "static", "struct", "super", "trait", "true", "try", "type",
        "typeof", "unsafe", "unsized", "use", "virtual", "where", "while", "yield",
    ];
    if KEYWORDS.contains(&name) {
        format!("r#{name}")
    } else {
        name.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(pascal_case("classified_task"), "ClassifiedTask");
        assert_eq!(pascal_case("a2b_c"), "A2bC");
        assert_eq!(version_type("human_escalation", 3), "HumanEscalationV3");
        assert_eq!(crate_name("contact_center"), "contact-center-contracts");
        assert_eq!(ident("type"), "r#type");
        assert_eq!(ident("billing"), "billing");
        assert_eq!(channel_marker("billing"), "Billing");
        assert_eq!(channel_marker("message"), "MessageChannel");
        assert_eq!(channel_marker("latest"), "LatestChannel");
    }
}
