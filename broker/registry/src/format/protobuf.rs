//! Protobuf: protox compiles the .proto text (imports served from the references, and the
//! `google/protobuf/*` well-known files) into descriptors; a schema may also come as a
//! base64 `FileDescriptorProto`, as confluent-kafka's Python serializer sends it.
//! Compatibility follows Confluent's Protobuf rules: a message removed, a field whose kind,
//! scalar wire type or message type changed, a required field added or removed, and fields
//! moved into a oneof break it; adding and removing optional fields does not.

use std::collections::BTreeMap;

use base64::Engine;
use prost_reflect::prost::Message;
use prost_reflect::{
    Cardinality, DescriptorPool, FieldDescriptor, FileDescriptor, Kind, MessageDescriptor,
};
use protox::file::{ChainFileResolver, File, FileResolver, GoogleFileResolver};

use super::ResolvedReference;
use crate::error::RegistryError;

/// The name the schema being parsed has among its imports.
const MAIN_FILE: &str = "__weir_schema__.proto";

#[derive(Debug, Clone)]
pub(super) struct ProtoSchema {
    file: FileDescriptor,
    /// The text as given (trimmed): what is stored and served.
    pub(super) text: String,
    /// Identity: the encoded descriptor without source info, so whitespace and comments do
    /// not make a new schema.
    pub(super) canonical: String,
}

/// Serves the references (by import path) from memory, before the well-known files.
struct MemResolver {
    files: BTreeMap<String, String>,
    descriptor: Option<prost_reflect::prost_types::FileDescriptorProto>,
}

impl FileResolver for MemResolver {
    fn open_file(&self, name: &str) -> Result<File, protox::Error> {
        if name == MAIN_FILE {
            if let Some(descriptor) = &self.descriptor {
                return Ok(File::from_file_descriptor_proto(descriptor.clone()));
            }
        }
        match self.files.get(name) {
            Some(source) => File::from_source(name, source),
            None => Err(protox::Error::file_not_found(name)),
        }
    }
}

impl ProtoSchema {
    pub(super) fn parse(text: &str, resolved: &[ResolvedReference]) -> Result<Self, RegistryError> {
        let text = text.trim();
        let mut files: BTreeMap<String, String> = resolved
            .iter()
            .map(|reference| (reference.name.clone(), reference.schema.clone()))
            .collect();
        let descriptor = decode_descriptor(text);
        if descriptor.is_none() {
            files.insert(MAIN_FILE.to_owned(), text.to_owned());
        }
        let mut resolver = ChainFileResolver::new();
        resolver.add(MemResolver { files, descriptor });
        resolver.add(GoogleFileResolver::new());
        let mut compiler = protox::Compiler::with_file_resolver(resolver);
        compiler.include_source_info(false);
        compiler
            .open_file(MAIN_FILE)
            .map_err(|error| RegistryError::InvalidSchema(error.to_string()))?;
        let pool: DescriptorPool = compiler.descriptor_pool();
        let file = pool.get_file_by_name(MAIN_FILE).ok_or_else(|| {
            RegistryError::InvalidSchema("the schema compiled to no file".to_owned())
        })?;
        let mut proto = file.file_descriptor_proto().clone();
        proto.source_code_info = None;
        let canonical = hex(&proto.encode_to_vec());
        Ok(ProtoSchema {
            file,
            text: text.to_owned(),
            canonical,
        })
    }
}

impl ProtoSchema {
    /// The first message's full name (Confluent's default record name).
    pub(super) fn record_name(&self) -> Option<String> {
        (self.file.messages().next()).map(|message| message.full_name().to_owned())
    }
}

/// A base64 `FileDescriptorProto` (no .proto text is valid base64 of a descriptor that
/// declares something, so trying it first is unambiguous in practice).
fn decode_descriptor(text: &str) -> Option<prost_reflect::prost_types::FileDescriptorProto> {
    if text.contains(|c: char| c.is_whitespace() || c == ';' || c == '{') {
        return None;
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text)
        .ok()?;
    let mut proto =
        prost_reflect::prost_types::FileDescriptorProto::decode(bytes.as_slice()).ok()?;
    if proto.message_type.is_empty() && proto.enum_type.is_empty() && proto.service.is_empty() {
        return None;
    }
    proto.name = Some(MAIN_FILE.to_owned());
    Some(proto)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// The messages a file declares, nested ones included, by full name.
fn messages(file: &FileDescriptor) -> BTreeMap<String, MessageDescriptor> {
    let mut out = BTreeMap::new();
    let mut stack: Vec<MessageDescriptor> = file.messages().collect();
    while let Some(message) = stack.pop() {
        // Map entries are synthetic messages; their fields are checked through the map.
        if message.is_map_entry() {
            continue;
        }
        stack.extend(message.child_messages());
        out.insert(message.full_name().to_owned(), message);
    }
    out
}

/// Confluent's Protobuf rules between the schema data was written with and the one it is
/// read with: Confluent diffs (writer, reader) and refuses the differences it lists as
/// incompatible. Most are symmetric; a removed message and fields moved into a oneof are
/// refused only in that direction (the other way they are an added message and fields
/// moved out of a oneof).
pub(super) fn read_problems(writer: &ProtoSchema, reader: &ProtoSchema) -> Vec<String> {
    let mut problems = Vec::new();
    if writer.file.package_name() != reader.file.package_name() {
        problems.push(format!(
            "package changed from '{}' to '{}'",
            writer.file.package_name(),
            reader.file.package_name()
        ));
    }
    let reader_messages = messages(&reader.file);
    for (name, writer_message) in messages(&writer.file) {
        match reader_messages.get(&name) {
            None => problems.push(format!("message '{name}' removed")),
            Some(reader_message) => {
                message_problems(&writer_message, reader_message, &mut problems)
            }
        }
    }
    problems
}

fn message_problems(
    writer: &MessageDescriptor,
    reader: &MessageDescriptor,
    problems: &mut Vec<String>,
) {
    let name = writer.full_name();
    for writer_field in writer.fields() {
        let number = writer_field.number();
        let Some(reader_field) = reader.get_field(number) else {
            if writer_field.cardinality() == Cardinality::Required {
                problems.push(format!(
                    "required field {name}.{} removed",
                    writer_field.name()
                ));
            } else if let Some(oneof) = writer_field.containing_oneof() {
                if !oneof.is_synthetic() && reader.oneofs().any(|o| o.name() == oneof.name()) {
                    problems.push(format!(
                        "field {name}.{} removed from oneof '{}'",
                        writer_field.name(),
                        oneof.name()
                    ));
                }
            }
            continue;
        };
        field_problems(name, &writer_field, &reader_field, problems);
    }
    for reader_field in reader.fields() {
        if writer.get_field(reader_field.number()).is_none()
            && reader_field.cardinality() == Cardinality::Required
        {
            problems.push(format!(
                "required field {name}.{} added",
                reader_field.name()
            ));
        }
    }
    oneof_problems(writer, reader, problems);
}

fn field_problems(
    message: &str,
    writer: &FieldDescriptor,
    reader: &FieldDescriptor,
    problems: &mut Vec<String>,
) {
    let field = format!("{message}.{} (number {})", reader.name(), reader.number());
    if writer.is_map() != reader.is_map() {
        problems.push(format!("field {field} changed between map and non-map"));
        return;
    }
    match (writer.kind(), reader.kind()) {
        (Kind::Message(w), Kind::Message(r)) => {
            if w.full_name() != r.full_name() {
                problems.push(format!(
                    "field {field} changed message type from '{}' to '{}'",
                    w.full_name(),
                    r.full_name()
                ));
            } else if writer.is_list() != reader.is_list() {
                problems.push(format!(
                    "field {field} changed between repeated and singular"
                ));
            }
        }
        (Kind::Enum(w), Kind::Enum(r)) => {
            if w.full_name() != r.full_name() {
                problems.push(format!(
                    "field {field} changed enum type from '{}' to '{}'",
                    w.full_name(),
                    r.full_name()
                ));
            }
        }
        (w, r) if is_scalar(&w) && is_scalar(&r) => {
            if scalar_group(&w) != scalar_group(&r) {
                problems.push(format!(
                    "field {field} changed scalar type from {} to {}",
                    kind_name(&w),
                    kind_name(&r)
                ));
            }
        }
        (w, r) => problems.push(format!(
            "field {field} changed kind from {} to {}",
            kind_name(&w),
            kind_name(&r)
        )),
    }
    if writer.cardinality() != reader.cardinality()
        && (writer.cardinality() == Cardinality::Required
            || reader.cardinality() == Cardinality::Required)
    {
        problems.push(format!(
            "field {field} changed between required and not required"
        ));
    }
}

/// Fields moved into a oneof: into one that existed, or several into a new one.
fn oneof_problems(
    writer: &MessageDescriptor,
    reader: &MessageDescriptor,
    problems: &mut Vec<String>,
) {
    for oneof in reader.oneofs().filter(|oneof| !oneof.is_synthetic()) {
        let moved: Vec<String> = oneof
            .fields()
            .filter(|field| {
                writer.get_field(field.number()).is_some_and(|old| {
                    old.containing_oneof()
                        .is_none_or(|old_oneof| old_oneof.is_synthetic())
                })
            })
            .map(|field| field.name().to_owned())
            .collect();
        let existed = writer.oneofs().any(|old| old.name() == oneof.name());
        if existed && !moved.is_empty() {
            problems.push(format!(
                "field(s) {} of {} moved into the existing oneof '{}'",
                moved.join(", "),
                reader.full_name(),
                oneof.name()
            ));
        } else if moved.len() > 1 {
            problems.push(format!(
                "fields {} of {} moved into the new oneof '{}'",
                moved.join(", "),
                reader.full_name(),
                oneof.name()
            ));
        }
    }
}

fn is_scalar(kind: &Kind) -> bool {
    !matches!(kind, Kind::Message(_) | Kind::Enum(_))
}

/// Scalars that share a wire encoding and may replace each other (Protobuf's "updating a
/// message type" rules, which Confluent applies).
fn scalar_group(kind: &Kind) -> u8 {
    match kind {
        Kind::Int32 | Kind::Uint32 | Kind::Int64 | Kind::Uint64 | Kind::Bool => 0,
        Kind::Sint32 | Kind::Sint64 => 1,
        Kind::Fixed32 | Kind::Sfixed32 => 2,
        Kind::Fixed64 | Kind::Sfixed64 => 3,
        Kind::String | Kind::Bytes => 4,
        Kind::Double => 5,
        Kind::Float => 6,
        Kind::Message(_) | Kind::Enum(_) => 7,
    }
}

fn kind_name(kind: &Kind) -> String {
    match kind {
        Kind::Message(message) => format!("message {}", message.full_name()),
        Kind::Enum(enumeration) => format!("enum {}", enumeration.full_name()),
        scalar => format!("{scalar:?}").to_ascii_lowercase(),
    }
}

/// Protobuf messages as JSON (protobuf's canonical JSON mapping, prost-reflect's serde) to
/// and from the binary encoding, with the message-index path Confluent's wire format
/// carries (`[0]`: the file's first message; `[1, 0]`: the first nested message of the
/// second one).
pub(super) mod data {
    use prost_reflect::prost::Message;
    use prost_reflect::{DynamicMessage, MessageDescriptor, SerializeOptions};
    use serde_json::Value as Json;

    use super::ProtoSchema;
    use crate::format::DataError;

    /// Message-index path length taken from a record (a bound for any input).
    const INDEX_DEPTH_MAX: usize = 32;

    /// The message `name` names (full or short name; `None`: the file's first message) and
    /// its index path.
    fn message(
        schema: &ProtoSchema,
        name: Option<&str>,
    ) -> Result<(MessageDescriptor, Vec<i32>), DataError> {
        let mut stack: Vec<(MessageDescriptor, Vec<i32>)> = Vec::new();
        for (index, message) in schema.file.messages().enumerate() {
            stack.push((message, vec![i32::try_from(index).unwrap_or(i32::MAX)]));
        }
        let Some(name) = name else {
            return stack
                .into_iter()
                .next()
                .ok_or_else(|| DataError("the schema declares no message".to_owned()));
        };
        while let Some((message, path)) = stack.pop() {
            if message.full_name() == name || message.name() == name {
                return Ok((message, path));
            }
            for (index, child) in message.child_messages().enumerate() {
                let mut child_path = path.clone();
                child_path.push(i32::try_from(index).unwrap_or(i32::MAX));
                stack.push((child, child_path));
            }
        }
        Err(DataError(format!("the schema declares no message {name}")))
    }

    pub(in crate::format) fn encode(
        schema: &ProtoSchema,
        data: &Json,
        name: Option<&str>,
    ) -> Result<(Vec<i32>, Vec<u8>), DataError> {
        let (descriptor, path) = message(schema, name)?;
        let message = DynamicMessage::deserialize(descriptor.clone(), data).map_err(|error| {
            DataError(format!(
                "does not match message {}: {error}",
                descriptor.full_name()
            ))
        })?;
        Ok((path, message.encode_to_vec()))
    }

    pub(in crate::format) fn decode(
        schema: &ProtoSchema,
        indexes: &[i32],
        payload: &[u8],
    ) -> Result<Json, DataError> {
        if indexes.len() > INDEX_DEPTH_MAX {
            return Err(DataError(format!(
                "message index path longer than {INDEX_DEPTH_MAX}"
            )));
        }
        let out_of_range = || DataError(format!("message index path {indexes:?} names no message"));
        let mut iter = indexes.iter();
        let first = iter.next().copied().unwrap_or(0);
        let first = usize::try_from(first).map_err(|_| out_of_range())?;
        let mut descriptor = schema.file.messages().nth(first).ok_or_else(out_of_range)?;
        for &index in iter {
            let index = usize::try_from(index).map_err(|_| out_of_range())?;
            let child = descriptor.child_messages().nth(index);
            descriptor = child.ok_or_else(out_of_range)?;
        }
        let message = DynamicMessage::decode(descriptor.clone(), payload).map_err(|error| {
            DataError(format!("not a {} message: {error}", descriptor.full_name()))
        })?;
        let options = SerializeOptions::new().skip_default_fields(false);
        message
            .serialize_with_options(serde_json::value::Serializer, &options)
            .map_err(|error| DataError(format!("no JSON form: {error}")))
    }
}
