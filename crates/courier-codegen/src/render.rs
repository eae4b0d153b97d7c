//! Renders one domain's crate: `Cargo.toml` and `src/lib.rs`.

use std::fmt::Write as _;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

use courier_schema::{ChannelSpec, Domain, Message, MessageVersion, Transport};
use serde_json::Value;
use typify::{TypeSpace, TypeSpaceImpl, TypeSpaceSettings};

use crate::names::{channel_marker, crate_name, ident, pascal_case, version_module, version_type};
use crate::shared::{self, Shared};
use crate::spec_literal::spec_literal;
use crate::typify_input::typify_input;
use crate::{format, Error, GeneratedFile, HEADER};

/// Which optional crates the typify output refers to.
#[derive(Debug, Default, Clone, Copy)]
struct Uses {
    chrono: bool,
    regress: bool,
    uuid: bool,
}

/// The files of one domain's crate, under `crate_dir`.
pub fn domain_crate(
    domain: &Domain,
    crate_dir: &Path,
    workspace_root: &Path,
) -> Result<Vec<GeneratedFile>, Error> {
    let (lib, uses) = lib_rs(domain)?;
    let lib_path = crate_dir.join("src/lib.rs");
    let lib = format::rust_file(&lib, &lib_path.display().to_string(), workspace_root)?;
    Ok(vec![
        GeneratedFile {
            path: crate_dir.join("Cargo.toml"),
            contents: cargo_toml(domain, uses),
        },
        GeneratedFile {
            path: lib_path,
            contents: format!("// {HEADER}\n\n{lib}"),
        },
    ])
}

fn cargo_toml(domain: &Domain, uses: Uses) -> String {
    let mut toml = format!(
        "# {HEADER}\n\
         [package]\n\
         name = \"{}\"\n\
         description = \"Typed messages and channels of the {} domain, generated from schemas/{}\"\n\
         version.workspace = true\n\
         edition.workspace = true\n\
         license.workspace = true\n\
         publish.workspace = true\n\
         \n\
         [dependencies]\n",
        crate_name(&domain.name),
        domain.name,
        domain.name,
    );
    let mut deps = vec!["courier", "serde", "serde_json"];
    if uses.chrono {
        deps.push("chrono");
    }
    if uses.regress {
        deps.push("regress");
    }
    if uses.uuid {
        deps.push("uuid");
    }
    deps.sort();
    for dep in deps {
        let _ = writeln!(toml, "{dep}.workspace = true");
    }
    toml
}

fn lib_rs(domain: &Domain) -> Result<(String, Uses), Error> {
    let mut uses = Uses::default();
    let mut out = String::new();
    let doc = |out: &mut String, inner: bool, text: &str| {
        for line in text.lines() {
            let _ = writeln!(
                out,
                "#{}[doc = {:?}]",
                if inner { "!" } else { "" },
                format!(" {line}")
            );
        }
    };
    doc(
        &mut out,
        true,
        &format!(
            "Typed messages and channels of the `{name}` domain.\n\n{desc}\n\n\
             Generated from `schemas/{name}/` by `cargo xtask codegen`: edit the schemas, \
             never this file.\n\n# Messages\n",
            name = domain.name,
            desc = domain.description,
        ),
    );
    for message in domain.messages.values() {
        let versions: Vec<String> = message
            .versions
            .iter()
            .map(|v| format!("v{}", v.version))
            .collect();
        doc(
            &mut out,
            true,
            &format!(
                "- [`{}`](crate::{}): {}",
                pascal_case(&message.name),
                message.name,
                versions.join(", ")
            ),
        );
    }
    doc(&mut out, true, "\n# Channels\n");
    for channel in domain.channels.values() {
        doc(
            &mut out,
            true,
            &format!(
                "- [`{name}`](crate::channels::{module}): {transport}, carries `{message}`",
                name = channel.name,
                module = ident(&channel.name),
                transport = channel.transport.as_str(),
                message = channel.message(),
            ),
        );
    }

    let shared = shared::analyse(domain);
    // A shared type is also reachable at the crate root, unless a message
    // type has its name there.
    let root_names: Vec<String> = domain
        .messages
        .values()
        .flat_map(|m| {
            m.versions
                .iter()
                .map(|v| version_type(&m.name, v.version))
                .chain([pascal_case(&m.name)])
        })
        .collect();
    for name in shared.types.keys() {
        if !root_names.contains(name) {
            let _ = writeln!(out, "pub use {}::{name};", shared.module);
        }
    }
    for message in domain.messages.values() {
        for version in &message.versions {
            let _ = writeln!(
                out,
                "pub use {}::{};",
                message.name,
                version_type(&message.name, version.version)
            );
        }
        let _ = writeln!(
            out,
            "pub use {}::{};",
            message.name,
            pascal_case(&message.name)
        );
    }

    if !shared.types.is_empty() {
        out.push_str(&shared_module(domain, &shared, &mut uses)?);
    }
    for message in domain.messages.values() {
        out.push_str(&message_module(message, &shared, &mut uses)?);
    }
    for widening in &shared.widenings {
        out.push_str(&widening_impl(widening));
    }

    doc(
        &mut out,
        false,
        &format!("The channels of `{}`, one module each.", domain.name),
    );
    out.push_str("pub mod channels {\n");
    for channel in domain.channels.values() {
        // The registry only builds channels whose message exists.
        let message = &domain.messages[channel.message()];
        out.push_str(&channel_module(domain, channel, message));
    }
    out.push_str("}\n");
    Ok((out, uses))
}

fn message_module(message: &Message, shared: &Shared, uses: &mut Uses) -> Result<String, Error> {
    let schema_name = message.schema_name();
    let enum_name = pascal_case(&message.name);
    let mut out = String::new();
    let latest = message.latest();
    let _ = writeln!(out, "#[doc = {:?}]", format!(" {}", latest.description));
    let _ = writeln!(out, "pub mod {} {{", message.name);
    for version in &message.versions {
        let type_name = version_type(&message.name, version.version);
        let module = version_module(version.version);
        let _ = writeln!(out, "pub use self::{module}::{type_name};");
        let _ = writeln!(
            out,
            "#[doc = {:?}]",
            format!(
                " Version {} of `{schema_name}`, from `schemas/{}/{}`.",
                version.version,
                message.domain,
                version
                    .file
                    .file_name()
                    .unwrap_or_default()
                    .to_string_lossy()
            )
        );
        // typify's output is not written to the workspace's lint standard.
        let _ = writeln!(out, "#[allow(clippy::all, clippy::pedantic, missing_docs)]");
        let hoist = shared.hoisted(&message.name, version.version);
        let input =
            typify_input(&version.schema, &type_name, hoist).map_err(|reason| Error::Typify {
                file: version.file.clone(),
                reason,
            })?;
        // The shared types this version uses, generated once in `shared`
        // (typify looks a replacement up by the Pascal-case name).
        let is_shared = |name: &str| shared.is_shared(&message.name, version.version, name);
        let used: Vec<String> = input
            .definitions
            .keys()
            .map(|key| pascal_case(key))
            .filter(|name| is_shared(name))
            .collect();
        let mut settings = settings();
        for name in &used {
            let impls = replacement_impls(&shared.types[name]);
            settings.with_replacement(
                name,
                format!("crate::{}::{name}", shared.module),
                impls.into_iter(),
            );
        }
        let code = typify(&settings, uses, |space| {
            space.add_root_schema(input).map(|_| ())
        })
        .map_err(|reason| Error::Typify {
            file: version.file.clone(),
            reason,
        })?;
        let mut extra = String::new();
        for name in &used {
            let _ = writeln!(extra, "pub use crate::{}::{name};", shared.module);
            for nested in shared.nested.get(name).into_iter().flatten() {
                let _ = writeln!(extra, "pub use crate::{}::{nested};", shared.module);
            }
        }
        extra.push_str(&string_constructors(
            &version.schema,
            &type_name,
            hoist,
            &is_shared,
        ));
        let _ = writeln!(out, "pub mod {module} {{ {code} {extra} }}");
        out.push_str(&contract_impl(&schema_name, &type_name, version));
    }

    let _ = writeln!(
        out,
        "/// Every version of `{schema_name}` a consumer reads: match on it to handle each.\n\
         #[derive(Debug, Clone, PartialEq)]\npub enum {enum_name} {{"
    );
    for version in &message.versions {
        let _ = writeln!(
            out,
            "    /// Version {v}.\n    V{v}({}),",
            version_type(&message.name, version.version),
            v = version.version
        );
    }
    out.push_str("}\n");
    for version in &message.versions {
        let _ = writeln!(
            out,
            "impl ::std::convert::From<{ty}> for {enum_name} {{\n\
             fn from(message: {ty}) -> Self {{ Self::V{v}(message) }}\n}}",
            ty = version_type(&message.name, version.version),
            v = version.version
        );
    }
    let versions: Vec<String> = message
        .versions
        .iter()
        .map(|v| v.version.to_string())
        .collect();
    let _ = writeln!(
        out,
        "impl ::courier::Readable for {enum_name} {{\n\
         const SCHEMA: &'static str = {schema_name:?};\n\
         const VERSIONS: &'static [u32] = &[{}];\n\
         fn decode(version: u32, payload: &::serde_json::Value) -> ::std::result::Result<Self, ::courier::Error> {{\n\
         match version {{",
        versions.join(", ")
    );
    for version in &message.versions {
        let _ = writeln!(
            out,
            "{v} => ::courier::contract::decode(payload).map(Self::V{v}),",
            v = version.version
        );
    }
    let _ = writeln!(
        out,
        "other => Err(::courier::contract::unsupported::<Self>(other)),\n}}\n}}\n}}\n\
         /// The version producers write: the newest.\n\
         pub type Latest = {};\n}}",
        version_type(&message.name, latest.version)
    );
    Ok(out)
}

/// typify's settings for every generated type.
fn settings() -> TypeSpaceSettings {
    let mut settings = TypeSpaceSettings::default();
    // typify's builders check required fields at run time; a struct
    // literal of the generated type checks them at compile time.
    settings
        .with_derive("PartialEq".to_string())
        .with_struct_builder(false)
        .with_map_type("::std::collections::BTreeMap");
    settings
}

/// What a replaced (shared) type implements, for typify's own checks.
fn replacement_impls(schema: &Value) -> Vec<TypeSpaceImpl> {
    match (
        schema.get("type").and_then(Value::as_str),
        schema.get("enum"),
    ) {
        (Some("string"), Some(_)) => vec![TypeSpaceImpl::FromStr, TypeSpaceImpl::Display],
        (Some("string"), None) => vec![TypeSpaceImpl::FromStr],
        _ => vec![],
    }
}

/// typify's code for what `add` puts into a type space, as text. A panic
/// inside typify becomes an error: the generator must never crash on a
/// schema.
fn typify(
    settings: &TypeSpaceSettings,
    uses: &mut Uses,
    add: impl FnOnce(&mut TypeSpace) -> Result<(), typify::Error>,
) -> Result<String, String> {
    let generated = catch_unwind(AssertUnwindSafe(|| {
        let mut space = TypeSpace::new(settings);
        add(&mut space).map(|_| {
            (
                space.to_stream().to_string(),
                space.uses_chrono(),
                space.uses_regress(),
                space.uses_uuid(),
            )
        })
    }));
    match generated {
        Ok(Ok((code, chrono, regress, uuid))) => {
            uses.chrono |= chrono;
            uses.regress |= regress;
            uses.uuid |= uuid;
            Ok(code)
        }
        Ok(Err(e)) => Err(e.to_string()),
        Err(panic) => {
            let reason = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "typify panicked".into());
            Err(format!("typify panicked: {reason}"))
        }
    }
}

/// The `shared` module: every type several versions of the domain share,
/// generated once.
fn shared_module(domain: &Domain, shared: &Shared, uses: &mut Uses) -> Result<String, Error> {
    let definitions = shared
        .types
        .iter()
        .map(|(name, schema)| {
            serde_json::from_value::<schemars::schema::Schema>(schema.clone())
                .map(|schema| (name.clone(), schema))
        })
        .collect::<Result<Vec<_>, _>>();
    let error = |reason: String| Error::Typify {
        file: domain.dir.clone(),
        reason: format!("shared types: {reason}"),
    };
    let definitions = definitions.map_err(|e| error(e.to_string()))?;
    let code =
        typify(&settings(), uses, |space| space.add_ref_types(definitions)).map_err(error)?;
    let mut extra = String::new();
    for (name, schema) in &shared.types {
        if is_constrained_string(schema) {
            extra.push_str(&string_constructor(name, &shared.fields[name], schema));
        } else {
            extra.push_str(&string_constructors(schema, name, &[], &|_| false));
        }
    }
    Ok(format!(
        "/// Types that several messages or versions of `{}` share: one Rust type each, so a \
         field copies from one message into another as it is.\n\
         #[allow(clippy::all, clippy::pedantic, missing_docs)]\n\
         pub mod {module} {{ {code} {extra} }}\n",
        domain.name,
        module = shared.module,
    ))
}

/// Whether typify makes a checked newtype of this schema.
fn is_constrained_string(schema: &Value) -> bool {
    schema.get("type") == Some(&Value::from("string"))
        && schema.get("enum").is_none()
        && schema.get("format").is_none()
        && ["pattern", "minLength", "maxLength"]
            .iter()
            .any(|k| schema.get(k).is_some())
}

/// Fallible constructors for the checked string fields of an object
/// schema whose type is `owner` (typify names them `<owner><Field>`),
/// and of its `$defs` objects; fields in `hoisted` and definitions that
/// `is_shared` are generated in the shared module. Only fields whose type
/// typify names `<owner><Field>` get one (no `title`, a plain name).
fn string_constructors(
    schema: &Value,
    owner: &str,
    hoisted: &[(String, String)],
    is_shared: &dyn Fn(&str) -> bool,
) -> String {
    let mut out = String::new();
    if let Some(properties) = schema.get("properties").and_then(Value::as_object) {
        for (field, property) in properties {
            let named_by_field = property.get("title").is_none() && shared::plain_name(field);
            if named_by_field
                && is_constrained_string(property)
                && !hoisted.iter().any(|(p, _)| p == field)
            {
                let type_name = format!("{owner}{}", pascal_case(field));
                out.push_str(&string_constructor(&type_name, field, property));
            }
        }
    }
    if let Some(defs) = schema.get("$defs").and_then(Value::as_object) {
        for (key, def) in defs.iter().filter(|(key, _)| shared::plain_name(key)) {
            let name = pascal_case(key);
            if !is_shared(&name) {
                out.push_str(&string_constructors(def, &name, &[], &|_| false));
            }
        }
    }
    out
}

/// `Type::new(value)`: the checked constructor of a string newtype, whose
/// error names the field and the rule.
fn string_constructor(type_name: &str, field: &str, schema: &Value) -> String {
    let mut rules = Vec::new();
    if let Some(pattern) = schema.get("pattern").and_then(Value::as_str) {
        rules.push(format!("matches `{pattern}`"));
    }
    if let Some(min) = schema.get("minLength") {
        rules.push(format!("at least {min} characters"));
    }
    if let Some(max) = schema.get("maxLength") {
        rules.push(format!("at most {max} characters"));
    }
    format!(
        "impl {type_name} {{\n\
         /// A `{field}` value: {rules}. The error names the field and the rule it broke.\n\
         pub fn new(value: impl ::std::convert::Into<::std::string::String>) -> ::std::result::Result<Self, ::courier::FieldError> {{\n\
         let value: ::std::string::String = value.into();\n\
         value.parse().map_err(|e: self::error::ConversionError| ::courier::FieldError::new({field:?}, e.to_string()))\n\
         }}\n}}\n",
        rules = rules.join(", "),
    )
}

/// `impl From<narrower enum> for wider enum`, variant by variant.
fn widening_impl(widening: &shared::Widening) -> String {
    let arms: Vec<String> = widening
        .values
        .iter()
        .map(|value| {
            let variant = pascal_case(value);
            format!("{}::{variant} => Self::{variant},", widening.from)
        })
        .collect();
    format!(
        "impl ::std::convert::From<{from}> for {to} {{\n\
         fn from(value: {from}) -> Self {{\n\
         match value {{ {arms} }}\n}}\n}}\n",
        from = widening.from,
        to = widening.to,
        arms = arms.join("\n"),
    )
}

fn contract_impl(schema_name: &str, type_name: &str, version: &MessageVersion) -> String {
    // The schema is embedded minified; it is the same document the registry
    // checked, so the runtime validates against exactly what is committed.
    let json = serde_json::to_string(&version.schema).unwrap_or_default();
    let keys: Vec<String> = version
        .idempotency_key
        .iter()
        .map(|k| format!("{k:?}"))
        .collect();
    format!(
        "impl ::courier::Contract for {type_name} {{\n\
         const SCHEMA: &'static str = {schema_name:?};\n\
         const VERSION: u32 = {version};\n\
         const SCHEMA_JSON: &'static str = {json};\n\
         const IDEMPOTENCY_KEY: &'static [&'static str] = &[{keys}];\n\
         fn validator() -> ::std::result::Result<&'static ::courier::Validator, ::courier::Error> {{\n\
         static VALIDATOR: ::std::sync::OnceLock<::courier::Validator> = ::std::sync::OnceLock::new();\n\
         ::courier::contract::compiled_validator::<Self>(&VALIDATOR)\n\
         }}\n}}\n",
        version = version.version,
        json = raw_string(&json),
        keys = keys.join(", "),
    )
}

/// A Rust raw string literal holding `text`, with enough `#`s.
fn raw_string(text: &str) -> String {
    let mut hashes = 1;
    while text.contains(&format!("\"{}", "#".repeat(hashes))) {
        hashes += 1;
    }
    let fence = "#".repeat(hashes);
    format!("r{fence}\"{text}\"{fence}")
}

fn channel_module(owner: &Domain, channel: &ChannelSpec, message: &Message) -> String {
    let domain = owner.name.as_str();
    let module = ident(&channel.name);
    let message_path = format!("crate::{}", message.name);
    let mut out = String::new();
    let _ = writeln!(out, "#[doc = {:?}]", format!(" {}", channel.description));
    let _ = writeln!(out, "pub mod {module} {{");
    let _ = writeln!(
        out,
        "/// The contract of `{domain}.{name}`, from `schemas/{domain}/channels.json`.\n\
         pub const SPEC: ::courier::ChannelSpec = {spec};",
        name = channel.name,
        spec = spec_literal(channel),
    );
    let _ = writeln!(
        out,
        "/// Every version of the message a consumer of this channel reads.\n\
         pub type Message = {message_path}::{enum_name};\n\
         /// The version producers of this channel write.\n\
         pub type Latest = {message_path}::Latest;\n\
         /// This channel as a type, for [`::courier::Producer::of`] and [`::courier::Consumer::of`].\n\
         #[derive(Debug, Clone, Copy)]\n\
         pub struct {marker};\n\
         impl ::courier::Channel for {marker} {{\n\
         type Message = Message;\n\
         type Latest = Latest;\n\
         const SPEC: &'static ::courier::ChannelSpec = &SPEC;\n}}\n\
         /// A producer publishing [`Latest`] on this channel.\n\
         pub fn producer(client: &::courier::Client) -> ::courier::Producer<Latest> {{\n\
         ::courier::Producer::of::<{marker}>(client)\n}}\n\
         {reader}\n}}",
        enum_name = pascal_case(&message.name),
        marker = channel_marker(&channel.name),
        reader = if channel.transport == Transport::Pubsub {
            "/// A subscriber of this channel's broadcasts (at most once).\n\
             pub fn subscriber(client: &::courier::Client) -> ::courier::Subscriber<Message> {\n\
             ::courier::Subscriber::of::<MARKER>(client)\n}".replace("MARKER", &channel_marker(&channel.name))
        } else {
            "/// A consumer of this channel in consumer group `group`.\n\
             pub fn consumer(client: &::courier::Client, group: &str) -> ::courier::Consumer<Message> {\n\
             ::courier::Consumer::of::<MARKER>(client, group)\n}".replace("MARKER", &channel_marker(&channel.name))
        },
    );
    out
}
