//! The principal of a client that authenticated with its TLS certificate (mTLS):
//! the certificate subject as an RFC 2253 string, mapped by `ssl.principal.mapping.rules`.
//!
//! Kafka's behaviour, which this follows: on an `SSL` listener a client that presented a
//! certificate is `User:<DN>`, where DN is `X500Principal.getName()` (RFC 2253: RDNs most
//! specific first, `CN=alice,OU=eng,O=Acme,C=US`, no spaces, keywords CN L ST O OU C STREET
//! DC UID, other attribute types as `1.2.3.4=#<hex DER>`), transformed by the first rule
//! whose pattern matches the whole DN: `RULE:<regex>/<replacement>/[L|U]` or `DEFAULT`.
//! No rule matching fails the authentication.
//!
//! Invariants:
//! - Rules are parsed and their patterns compiled once, at config time; a bad rule (or a
//!   Java regex feature the `regex` crate lacks, such as look-around) is a config error.
//! - Mapping never panics on a peer's certificate: an unparsable certificate is an error.

use std::fmt;
use std::sync::Arc;

use regex::{Captures, Regex};
use weir_core::Principal;
use x509_parser::prelude::{FromDer, X509Certificate};
use x509_parser::x509::{AttributeTypeAndValue, X509Name};

/// Kafka's default for `ssl.principal.mapping.rules`.
pub const DEFAULT_RULES: &str = "DEFAULT";

/// Parsed `ssl.principal.mapping.rules`. Two mappers are equal when their rule text is.
#[derive(Clone)]
pub struct PrincipalMapper {
    source: String,
    rules: Arc<[Rule]>,
}

impl fmt::Debug for PrincipalMapper {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("PrincipalMapper")
            .field(&self.source)
            .finish()
    }
}

impl PartialEq for PrincipalMapper {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

impl Eq for PrincipalMapper {}

impl Default for PrincipalMapper {
    fn default() -> Self {
        PrincipalMapper {
            source: DEFAULT_RULES.to_owned(),
            rules: Arc::new([Rule::Default]),
        }
    }
}

#[derive(Debug)]
enum Rule {
    /// The DN unchanged.
    Default,
    /// `RULE:pattern/replacement/[LU]`.
    Pattern {
        /// The pattern as written, for `replace_all` (Java's `String.replaceAll`).
        pattern: Regex,
        /// `^(?:pattern)$`: Java's `Matcher.matches()`, the whole DN.
        whole: Regex,
        replacement: Vec<Piece>,
        case: Case,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Case {
    Keep,
    Lower,
    Upper,
}

/// A part of a replacement string.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Literal(String),
    Group(usize),
    Named(String),
}

/// Why `ssl.principal.mapping.rules` was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid rule `{rule}`: {reason}")]
pub struct RuleError {
    /// The rule as written (or the rest of the text from it).
    pub rule: String,
    /// What is wrong.
    pub reason: String,
}

/// Why a client certificate gave no principal.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MappingError {
    /// The certificate could not be parsed.
    #[error("cannot read the client certificate's subject: {0}")]
    Certificate(String),
    /// No rule matches the DN (Kafka's `NoMatchingRule`).
    #[error("no ssl.principal.mapping.rules rule applies to {dn}")]
    NoMatchingRule {
        /// The certificate's subject.
        dn: String,
    },
}

impl PrincipalMapper {
    /// Parse `ssl.principal.mapping.rules`: comma-separated `DEFAULT` and
    /// `RULE:pattern/replacement/` with an optional `L` or `U`; a `/` or `\` inside the
    /// pattern or the replacement is escaped with `\`. Empty entries are ignored.
    pub fn parse(text: &str) -> Result<PrincipalMapper, RuleError> {
        let mut rules = Vec::new();
        let mut rest = text.trim();
        while !rest.is_empty() {
            let (rule, after) = parse_rule(rest)?;
            rules.extend(rule);
            rest = after;
        }
        Ok(PrincipalMapper {
            source: text.trim().to_owned(),
            rules: rules.into(),
        })
    }

    /// The rules as written.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The principal name of `dn`: the first rule whose pattern matches all of it.
    pub fn map(&self, dn: &str) -> Result<String, MappingError> {
        for rule in self.rules.iter() {
            if let Some(name) = rule.apply(dn) {
                return Ok(name);
            }
        }
        Err(MappingError::NoMatchingRule { dn: dn.to_owned() })
    }

    /// The principal name of the client whose leaf certificate (DER) is `cert`.
    pub fn map_certificate(&self, cert: &[u8]) -> Result<String, MappingError> {
        self.map(&subject_dn(cert)?)
    }
}

impl Rule {
    fn apply(&self, dn: &str) -> Option<String> {
        let Rule::Pattern {
            pattern,
            whole,
            replacement,
            case,
        } = self
        else {
            return Some(dn.to_owned());
        };
        if !whole.is_match(dn) {
            return None;
        }
        let replaced = pattern.replace_all(dn, |captures: &Captures<'_>| {
            let mut out = String::new();
            for piece in replacement {
                match piece {
                    Piece::Literal(text) => out.push_str(text),
                    Piece::Group(index) => {
                        out.push_str(captures.get(*index).map_or("", |m| m.as_str()));
                    }
                    Piece::Named(name) => {
                        out.push_str(captures.name(name).map_or("", |m| m.as_str()));
                    }
                }
            }
            out
        });
        Some(match case {
            Case::Keep => replaced.into_owned(),
            Case::Lower => replaced.to_lowercase(),
            Case::Upper => replaced.to_uppercase(),
        })
    }
}

/// One rule from the start of `text` (trimmed), and the text after its separator.
fn parse_rule(text: &str) -> Result<(Option<Rule>, &str), RuleError> {
    let invalid = |reason: &str| RuleError {
        rule: text.split(',').next().unwrap_or(text).trim().to_owned(),
        reason: reason.to_owned(),
    };
    let (rule, after) = if let Some(after) = text.strip_prefix("DEFAULT") {
        (Some(Rule::Default), after)
    } else if let Some(body) = text.strip_prefix("RULE:") {
        let (pattern, after) = until_slash(body).ok_or_else(|| {
            invalid("a rule is RULE:<pattern>/<replacement>/ with an optional L or U")
        })?;
        let (replacement, after) = until_slash(after).ok_or_else(|| {
            invalid("a rule is RULE:<pattern>/<replacement>/ with an optional L or U")
        })?;
        let (case, after) = match after.chars().next() {
            Some('L') => (Case::Lower, &after[1..]),
            Some('U') => (Case::Upper, &after[1..]),
            _ => (Case::Keep, after),
        };
        (
            Some(compile(pattern, replacement, case).map_err(|e| invalid(&e))?),
            after,
        )
    } else {
        // Kafka ignores an empty entry and refuses anything else.
        let (entry, after) = text.split_once(',').unwrap_or((text, ""));
        if !entry.trim().is_empty() {
            return Err(invalid(
                "a rule is DEFAULT or RULE:<pattern>/<replacement>/[L|U]",
            ));
        }
        return Ok((None, after.trim_start()));
    };
    let after = after.trim_start();
    match after.strip_prefix(',') {
        Some(next) => Ok((rule, next.trim_start())),
        None if after.is_empty() => Ok((rule, after)),
        None => Err(invalid(&format!(
            "unexpected `{}` after the rule",
            after.split(',').next().unwrap_or(after)
        ))),
    }
}

/// The text up to the first `/` not escaped by `\` (escapes kept), and the text after it.
fn until_slash(text: &str) -> Option<(&str, &str)> {
    let mut escaped = false;
    for (index, c) in text.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '/' => return Some((&text[..index], &text[index + 1..])),
            _ => {}
        }
    }
    None
}

fn compile(pattern: &str, replacement: &str, case: Case) -> Result<Rule, String> {
    let unsupported = |error: regex::Error| {
        format!(
            "pattern is not supported (Weir uses the regex crate: no look-around, no \
             back-references): {error}"
        )
    };
    let compiled = Regex::new(pattern).map_err(unsupported)?;
    let whole = Regex::new(&format!("^(?:{pattern})$")).map_err(unsupported)?;
    // Java counts groups without the whole match.
    let groups = compiled.captures_len() - 1;
    let replacement = parse_replacement(replacement, groups, &compiled)?;
    Ok(Rule::Pattern {
        pattern: compiled,
        whole,
        replacement,
        case,
    })
}

/// A Java replacement string: `$n` and `${name}` refer to groups, `\x` is a literal `x`.
/// As Kafka does, `$n` with no group `n` is literal text; digits after the first join the
/// group number while such a group exists (Java's `appendReplacement`).
fn parse_replacement(text: &str, groups: usize, pattern: &Regex) -> Result<Vec<Piece>, String> {
    let mut pieces = Vec::new();
    let mut literal = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(next) => literal.push(next),
                None => return Err("the replacement ends with a lone \\".to_owned()),
            },
            '$' => match chars.peek().copied() {
                Some(digit @ '0'..='9') => {
                    let first = digit as usize - '0' as usize;
                    if first > groups {
                        literal.push('$');
                        continue;
                    }
                    chars.next();
                    let mut index = first;
                    while let Some(next) = chars.peek().and_then(|c| c.to_digit(10)) {
                        let longer = index * 10 + next as usize;
                        if longer > groups {
                            break;
                        }
                        index = longer;
                        chars.next();
                    }
                    pieces.push(Piece::Literal(std::mem::take(&mut literal)));
                    pieces.push(Piece::Group(index));
                }
                Some('{') => {
                    chars.next();
                    let name: String = chars.by_ref().take_while(|&c| c != '}').collect();
                    if !pattern.capture_names().any(|n| n == Some(name.as_str())) {
                        return Err(format!(
                            "the replacement names no group of the pattern: {name}"
                        ));
                    }
                    pieces.push(Piece::Literal(std::mem::take(&mut literal)));
                    pieces.push(Piece::Named(name));
                }
                _ => {
                    return Err(
                        "a $ in the replacement must be followed by a group number or \
                                {name} (write \\$ for a literal $)"
                            .to_owned(),
                    )
                }
            },
            other => literal.push(other),
        }
    }
    pieces.push(Piece::Literal(literal));
    pieces.retain(|piece| piece != &Piece::Literal(String::new()));
    Ok(pieces)
}

/// The principal of a finished server-side TLS connection on an SSL listener: the mapped
/// subject of the client's leaf certificate, `None` (anonymous) without one.
pub fn client_principal(
    connection: &rustls::ServerConnection,
    mapping: &PrincipalMapper,
) -> Result<Option<Principal>, MappingError> {
    let Some(leaf) = connection
        .peer_certificates()
        .and_then(|chain| chain.first())
    else {
        return Ok(None);
    };
    let name = mapping.map_certificate(leaf.as_ref())?;
    Ok(Some(Principal::user(&name)))
}

/// The subject of the DER certificate `cert` in RFC 2253 form, as Java's
/// `X500Principal.getName()` writes it.
pub fn subject_dn(cert: &[u8]) -> Result<String, MappingError> {
    let (_, parsed) = X509Certificate::from_der(cert)
        .map_err(|error| MappingError::Certificate(error.to_string()))?;
    Ok(rfc2253(parsed.subject()))
}

/// RFC 2253: the last RDN first, RDNs joined by `,`, the values of a multi-valued RDN by
/// `+` in their encoded order.
fn rfc2253(name: &X509Name<'_>) -> String {
    let rdns: Vec<String> = (name.iter())
        .map(|rdn| {
            let values: Vec<String> = rdn.iter().map(attribute).collect();
            values.join("+")
        })
        .collect();
    let mut out = String::new();
    for (index, rdn) in rdns.iter().rev().enumerate() {
        if index > 0 {
            out.push(',');
        }
        out.push_str(rdn);
    }
    out
}

/// Java's RFC 2253 keywords; any other type is written as its dotted OID.
const KEYWORDS: [(&str, &str); 9] = [
    ("2.5.4.3", "CN"),
    ("2.5.4.6", "C"),
    ("2.5.4.7", "L"),
    ("2.5.4.8", "ST"),
    ("2.5.4.10", "O"),
    ("2.5.4.11", "OU"),
    ("2.5.4.9", "STREET"),
    ("0.9.2342.19200300.100.1.25", "DC"),
    ("0.9.2342.19200300.100.1.1", "UID"),
];

/// One `type=value`: a keyword with an escaped string, or an OID with `#` and the hex of
/// the value's DER encoding (also for a keyword whose value is not a string type).
fn attribute(attribute: &AttributeTypeAndValue<'_>) -> String {
    let oid = attribute.attr_type().to_id_string();
    let keyword = KEYWORDS.iter().find(|(id, _)| *id == oid);
    let value = attribute.attr_value();
    match (keyword, keyword.and_then(|_| string_value(value))) {
        (Some((_, keyword)), Some(text)) => format!("{keyword}={}", escape(&text)),
        (keyword, _) => {
            let name = keyword.map_or(oid.as_str(), |(_, keyword)| keyword);
            format!("{name}=#{}", hex(&der(value)))
        }
    }
}

/// The text of the string types Java's `X500Principal` prints as text.
fn string_value(value: &x509_parser::der_parser::asn1_rs::Any<'_>) -> Option<String> {
    use x509_parser::der_parser::asn1_rs::Tag;
    let data = value.data;
    match value.tag() {
        Tag::PrintableString | Tag::Ia5String | Tag::Utf8String => {
            std::str::from_utf8(data).ok().map(str::to_owned)
        }
        // One byte per character (Latin-1 as Java decodes them).
        Tag::T61String | Tag::GeneralString => Some(data.iter().map(|&b| char::from(b)).collect()),
        Tag::BmpString => {
            if !data.len().is_multiple_of(2) {
                return None;
            }
            let units = data
                .chunks_exact(2)
                .map(|u| u16::from_be_bytes([u[0], u[1]]));
            char::decode_utf16(units)
                .collect::<Result<String, _>>()
                .ok()
        }
        _ => None,
    }
}

/// RFC 2253 escaping as Java does it: `,+"\<>;` get a backslash, NUL is `\00`, leading
/// and trailing spaces (and CRs) and a leading `#` get a backslash.
fn escape(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let blank = |c: &char| *c == ' ' || *c == '\r';
    let lead = chars.iter().take_while(|c| blank(c)).count();
    let trail = chars.len() - chars.iter().rev().take_while(|c| blank(c)).count();
    let mut out = String::with_capacity(text.len() + 4);
    for (index, &c) in chars.iter().enumerate() {
        match c {
            ',' | '+' | '"' | '\\' | '<' | '>' | ';' => {
                out.push('\\');
                out.push(c);
            }
            '\0' => out.push_str("\\00"),
            '#' if index == 0 => out.push_str("\\#"),
            _ if index < lead || index >= trail => {
                out.push('\\');
                out.push(c);
            }
            _ => out.push(c),
        }
    }
    out
}

/// The DER encoding (tag, length, contents) of `value`.
fn der(value: &x509_parser::der_parser::asn1_rs::Any<'_>) -> Vec<u8> {
    let header = &value.header;
    let tag = header.tag().0;
    let class = header.class() as u8;
    let mut out = Vec::with_capacity(value.data.len() + 6);
    let first = (class << 6) | (u8::from(header.is_constructed()) << 5);
    if tag < 31 {
        out.push(first | tag as u8);
    } else {
        out.push(first | 31);
        let mut digits = Vec::new();
        let mut rest = tag;
        loop {
            digits.push((rest & 0x7f) as u8);
            rest >>= 7;
            if rest == 0 {
                break;
            }
        }
        let last = digits.len() - 1;
        for (index, digit) in digits.iter().rev().enumerate() {
            out.push(if index < last { digit | 0x80 } else { *digit });
        }
    }
    let len = value.data.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes: Vec<u8> = (len.to_be_bytes().into_iter())
            .skip_while(|&b| b == 0)
            .collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend(bytes);
    }
    out.extend_from_slice(value.data);
    out
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        let _ = write!(out, "{byte:02x}");
    }
    out
}

#[cfg(test)]
mod tests {
    use rcgen::{CertificateParams, DistinguishedName, DnType, DnValue, KeyPair};

    use super::*;

    /// A self-signed certificate whose subject has `entries` in encoded order (the
    /// least specific first, as certificates usually list them).
    fn certificate(entries: Vec<(DnType, DnValue)>) -> Vec<u8> {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        let mut name = DistinguishedName::new();
        for (kind, value) in entries {
            name.push(kind, value);
        }
        params.distinguished_name = name;
        let key = KeyPair::generate().expect("key");
        let cert = params.self_signed(&key).expect("certificate");
        cert.der().to_vec()
    }

    fn utf8(text: &str) -> DnValue {
        DnValue::Utf8String(text.to_owned())
    }

    // Goal: the DN reads as Java's X500Principal.getName() does: most specific RDN first,
    // keywords for the RFC 2253 types, no spaces. Method: a four-attribute subject.
    #[test]
    fn dn_is_rfc2253_most_specific_first() {
        let cert = certificate(vec![
            (
                DnType::CountryName,
                DnValue::PrintableString("US".try_into().expect("ps")),
            ),
            (DnType::OrganizationName, utf8("Acme")),
            (DnType::OrganizationalUnitName, utf8("eng")),
            (DnType::CommonName, utf8("alice")),
        ]);
        assert_eq!(
            subject_dn(&cert).expect("DN"),
            "CN=alice,OU=eng,O=Acme,C=US"
        );
        let cert = certificate(vec![
            (DnType::LocalityName, utf8("Fulton")),
            (DnType::StateOrProvinceName, utf8("MD")),
            (DnType::CustomDnType(vec![2, 5, 4, 9]), utf8("1 Main St")),
            (
                DnType::CustomDnType(vec![0, 9, 2342, 19_200_300, 100, 1, 1]),
                utf8("u7"),
            ),
            (
                DnType::CustomDnType(vec![0, 9, 2342, 19_200_300, 100, 1, 25]),
                utf8("com"),
            ),
        ]);
        assert_eq!(
            subject_dn(&cert).expect("DN"),
            "DC=com,UID=u7,STREET=1 Main St,ST=MD,L=Fulton"
        );
    }

    // Goal: attribute types without an RFC 2253 keyword are the dotted OID and `#` with the
    // hex of the value's DER (emailAddress is the common case). Method: an IA5 email.
    #[test]
    fn other_types_are_oid_and_hex_der() {
        let email = DnType::CustomDnType(vec![1, 2, 840, 113_549, 1, 9, 1]);
        let cert = certificate(vec![
            (DnType::CommonName, utf8("bob")),
            (email, DnValue::Ia5String("a@b".try_into().expect("ia5"))),
        ]);
        // IA5String tag 0x16, length 3, "a@b".
        assert_eq!(
            subject_dn(&cert).expect("DN"),
            "1.2.840.113549.1.9.1=#1603614062,CN=bob"
        );
    }

    // Goal: RFC 2253's special characters are escaped as Java escapes them.
    #[test]
    fn dn_values_are_escaped() {
        let cases = [
            ("a,b", r"a\,b"),
            ("a+b", r"a\+b"),
            ("say \"hi\"", r#"say \"hi\""#),
            (r"back\slash", r"back\\slash"),
            ("<x>;", r"\<x\>\;"),
            ("#hash", r"\#hash"),
            ("mid#", "mid#"),
            (" lead", r"\ lead"),
            ("trail ", r"trail\ "),
            ("in side", "in side"),
        ];
        for (value, escaped) in cases {
            let cert = certificate(vec![
                (DnType::OrganizationName, utf8("O")),
                (DnType::CommonName, utf8(value)),
            ]);
            let expected = format!("CN={escaped},O=O");
            assert_eq!(subject_dn(&cert).expect("DN"), expected, "{value:?}");
        }
        assert_eq!(escape("a\0b"), r"a\00b");
        assert_eq!(escape("  "), r"\ \ ");
    }

    #[test]
    fn a_broken_certificate_is_an_error_not_a_panic() {
        let error = PrincipalMapper::default().map_certificate(b"\x30\x03\x02\x01");
        assert!(
            matches!(error, Err(MappingError::Certificate(_))),
            "{error:?}"
        );
    }

    fn map(rules: &str, dn: &str) -> Result<String, MappingError> {
        PrincipalMapper::parse(rules).expect("rules").map(dn)
    }

    // Goal: the rules Kafka's own tests accept parse, and the ones it refuses are refused.
    #[test]
    fn rule_syntax_as_kafka() {
        let valid = [
            "DEFAULT",
            "RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/",
            "RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/L",
            "RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/U",
            "RULE:^CN=(.*?),OU=(.*?),O=(.*?),L=(.*?),ST=(.*?),C=(.*?)$/$1@$2/L",
            "RULE:^.*[Cc][Nn]=([a-zA-Z0-9.]*).*$/$1/L",
            "RULE:^cn=(.?),ou=(.?),dc=(.?),dc=(.?)$/$1@$2/U",
            "RULE:^CN=([^,ADEFLTU,]+)(,.*|$)/$1/",
            "RULE:^CN=([^,DEFAULT,]+)(,.*|$)/$1/",
            "RULE:^CN=(.*)\\/x$/$1/",
            "",
            " DEFAULT , ,RULE:^(.*)$/$1/ ",
        ];
        for rules in valid {
            assert!(PrincipalMapper::parse(rules).is_ok(), "{rules:?}");
        }
        let invalid = [
            "default",
            "DEFAUL",
            "DEFAULT/L",
            "DEFAULT/U",
            "RULE:CN=(.*?),OU=ServiceUsers.*/$1",
            "rule:^CN=(.*?),OU=ServiceUsers.*$/$1/",
            "RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/L/U",
            "RULE:^CN=(.*?),OU=ServiceUsers.*$/L",
            "RULE:^CN=(.*?),OU=ServiceUsers.*$/U",
            "RULE:^CN=(.*?),OU=ServiceUsers.*$/LU",
            "RULE:^CN=(?=x)(.*)$/$1/",
            "RULE:^(.*)$/$x/",
            "DEFAULT,nonsense",
        ];
        for rules in invalid {
            assert!(PrincipalMapper::parse(rules).is_err(), "{rules:?}");
        }
        let error = PrincipalMapper::parse("RULE:^CN=(?=x)(.*)$/$1/").expect_err("look-ahead");
        assert!(error.to_string().contains("look-around"), "{error}");
    }

    // Goal: the first rule matching the whole DN wins; L and U change the case; DEFAULT
    // keeps the DN; no match is an error. Method: Kafka's rule list and DNs.
    #[test]
    fn first_matching_rule_wins() {
        let rules = "RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/,\
             RULE:^CN=(.*?),OU=(.*?),O=(.*?),L=(.*?),ST=(.*?),C=(.*?)$/$1@$2/L,\
             RULE:^cn=(.*?),ou=(.*?),dc=(.*?),dc=(.*?)$/$1@$2/U,\
             RULE:^.*[Cc][Nn]=([a-zA-Z0-9.]*).*$/$1/U,\
             DEFAULT";
        let cases = [
            ("CN=Duke,OU=ServiceUsers,O=Org,C=US", "Duke"),
            ("CN=Duke,OU=SME,O=mycp,L=Fulton,ST=MD,C=US", "duke@sme"),
            ("cn=duke,ou=sme,dc=mycp,dc=com", "DUKE@SME"),
            ("cN=duke,OU=JavaSoft,O=Sun Microsystems", "DUKE"),
            (
                "OU=JavaSoft,O=Sun Microsystems,C=US",
                "OU=JavaSoft,O=Sun Microsystems,C=US",
            ),
        ];
        for (dn, name) in cases {
            assert_eq!(map(rules, dn).expect("mapped"), name, "{dn}");
        }
        assert_eq!(
            map("RULE:^CN=([^,]*).*$/$1/", "CN=alice,O=Acme").expect("m"),
            "alice"
        );
        // The pattern must match the whole DN, not a part of it.
        let error = map("RULE:CN=([^,]*)/$1/", "CN=alice,O=Acme").expect_err("no whole match");
        assert_eq!(
            error,
            MappingError::NoMatchingRule {
                dn: "CN=alice,O=Acme".into()
            }
        );
        assert!(map("", "CN=a").is_err(), "no rules: nothing matches");
        assert_eq!(map("DEFAULT", "CN=a,O=b").expect("default"), "CN=a,O=b");
    }

    // Goal: replacement strings follow Java's: `\` escapes, a `$n` past the groups is
    // literal (Kafka's escapeLiteralBackReferences), digits join while the group exists.
    #[test]
    fn replacement_references() {
        let dn = "CN=a,OU=b,O=c";
        let three = "RULE:^CN=(.*),OU=(.*),O=(.*)$";
        assert_eq!(map(&format!("{three}/$1@$4/"), dn).expect("m"), "a@$4");
        assert_eq!(map(&format!("{three}/$12/"), dn).expect("m"), "a2");
        assert_eq!(map(&format!("{three}/$0/"), dn).expect("m"), dn);
        assert_eq!(map(&format!("{three}/\\$1-$3/"), dn).expect("m"), "$1-c");
        let named = "RULE:^CN=(?P<user>[^,]*),.*$/${user}/U";
        assert_eq!(map(named, dn).expect("m"), "A");
    }
}
