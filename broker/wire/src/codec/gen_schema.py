#!/usr/bin/env python3
"""Generates schema.rs: the wire layout of the messages weir-wire decodes, used by the
pre-decode guard (guard.rs) that bounds every array length before kafka_protocol allocates.

Input: Apache Kafka's message JSON files (kafka-python 3.0.12 ships them, same versions as
kafka-protocol 0.18). Usage: python3 gen_schema.py RESOURCES_DIR > schema.rs
The transaction APIs go to their own file (fewer edits to shared lines):
python3 gen_schema.py RESOURCES_DIR AddPartitionsToTxn AddOffsetsToTxn EndTxn TxnOffsetCommit \
    WriteTxnMarkers DescribeTransactions ListTransactions DescribeProducers > schema_txn.rs
The cluster APIs (leader epochs, elections, reassignments, config changes):
python3 gen_schema.py RESOURCES_DIR OffsetForLeaderEpoch ElectLeaders AlterPartitionReassignments \
    ListPartitionReassignments IncrementalAlterConfigs AlterConfigs > schema_cluster.rs
The KIP-853 quorum APIs (DescribeQuorum from kafka-python; AddRaftVoter and RemoveRaftVoter,
which it does not ship, from schemas/), concatenated without the second header:
python3 gen_schema.py RESOURCES_DIR DescribeQuorum > schema_quorum.rs
python3 gen_schema.py schemas AddRaftVoter RemoveRaftVoter | tail -n +5 >> schema_quorum.rs
The KIP-848 APIs (kafka-python does not ship their JSON; Kafka 4.0's are in schemas/):
python3 gen_schema.py schemas ConsumerGroupHeartbeat ConsumerGroupDescribe > schema_consumer_group.rs
DescribeLogDirs (per-broker partition sizes):
python3 gen_schema.py RESOURCES_DIR DescribeLogDirs > schema_log_dirs.rs
The ACL APIs:
python3 gen_schema.py RESOURCES_DIR DescribeAcls CreateAcls DeleteAcls > schema_acl.rs
SASL and KIP-554's SCRAM credential administration:
python3 gen_schema.py RESOURCES_DIR SaslHandshake SaslAuthenticate DescribeUserScramCredentials \
    AlterUserScramCredentials > schema_sasl.rs

Adding an API: generate its schema constants into one of the files above, then print the
skeleton of its row for the table in apis.rs (key, Kafka's valid versions, the constants
and structs; narrow the versions and point the conversions at the new convert*.rs
functions): python3 gen_schema.py --row RESOURCES_DIR Heartbeat
"""
import json, re, sys, os

MESSAGES = ["Produce", "Fetch", "ListOffsets", "Metadata", "ApiVersions", "CreateTopics",
            "DeleteTopics", "DescribeConfigs", "CreatePartitions", "DescribeCluster", "InitProducerId",
            "OffsetCommit", "OffsetFetch", "FindCoordinator", "JoinGroup", "Heartbeat",
            "LeaveGroup", "SyncGroup", "DescribeGroups", "ListGroups", "DeleteGroups",
            "OffsetDelete"]
MAX = 32767

def load(path):
    text = open(path).read()
    text = "\n".join(l for l in text.splitlines() if not l.strip().startswith("//"))
    return json.loads(text)

def vrange(s):
    if s is None or s == "none":
        return (1, 0)  # empty
    s = s.strip()
    if s.endswith("+"):
        return (int(s[:-1]), MAX)
    if "-" in s:
        a, b = s.split("-")
        return (int(a), int(b))
    return (int(s), int(s))

PRIM = {"int8": "I8", "int16": "I16", "uint16": "U16", "int32": "I32", "int64": "I64",
        "uint32": "U32", "float64": "F64", "string": "Str", "bytes": "Bytes", "records": "Bytes",
        "uuid": "Uuid", "bool": "Bool"}

def ty(field, common):
    t = field["type"]
    if t.startswith("[]"):
        inner = t[2:]
        if inner in PRIM:
            return f"T::PrimArray(&T::{PRIM[inner]})"
        fields = field.get("fields") or common[inner]
        return f"T::StructArray(&[\n{fields_rs(fields, common)}])"
    if t in PRIM:
        return f"T::{PRIM[t]}"
    fields = field.get("fields") or common[t]
    # A nullable struct carries an int8 presence marker first (-1 = null).
    kind = "NullableStruct" if field.get("nullableVersions") else "Struct"
    return f"T::{kind}(&[\n{fields_rs(fields, common)}])"

def fields_rs(fields, common):
    out = []
    for f in fields:
        v = vrange(f.get("versions"))
        tg = vrange(f.get("taggedVersions"))
        tag = f.get("tag")
        tag_rs = f"Some({tag})" if tag is not None else "None"
        flex_none = "true" if f.get("flexibleVersions") == "none" else "false"
        out.append(f"F {{ name: {json.dumps(f['name'])}, ty: {ty(f, common)}, versions: {v}, "
                   f"tag: {tag_rs}, tagged: {tg}, flex_none: {flex_none} }},\n")
    return "".join(out)

def snake(name):
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()

def row(d, m):
    """The apis! row skeleton of message m (see apis.rs for the syntax)."""
    j = load(os.path.join(d, f"{m}Request.json"))
    lo, hi = vrange(j["validVersions"])
    key = snake(m).upper()
    f = snake(m)
    print(f"    {key} = {j['apiKey']}, {lo}..={hi}, {key}_REQUEST, {key}_RESPONSE => {m} {{")
    print(f"        kafka: k::{m}Request, k::{m}Response;")
    print(f"        decode_request(msg, v, _) = c::{f}_req_to_domain(msg, v);")
    print(f"        encode_response(d, v) = c::{f}_resp_from_domain(d, v);")
    print(f"        encode_request(d, v) = c::{f}_req_from_domain(d, v);")
    print(f"        decode_response(msg, v) = c::{f}_resp_to_domain(msg, v);")
    print(f"        error_response(e, _) = k::{m}Response::default().with_error_code(e);")
    print("    };")

def main():
    if sys.argv[1] == "--row":
        for m in sys.argv[3:]:
            row(sys.argv[2], m)
        return
    d = sys.argv[1]
    print("//! Generated by gen_schema.py from Apache Kafka's message JSON files: the wire layout of")
    print("//! every message weir-wire decodes, for the allocation guard in guard.rs. Do not edit.")
    print("#![allow(clippy::all)]")
    print("use super::guard::{Message, F, T};")
    print()
    for m in (sys.argv[2:] or MESSAGES):
        for kind in ["Request", "Response"]:
            j = load(os.path.join(d, f"{m}{kind}.json"))
            common = {c["name"]: c["fields"] for c in j.get("commonStructs", [])}
            flex = vrange(j["flexibleVersions"])
            name = re.sub(r"(?<!^)(?=[A-Z])", "_", m + kind).upper()
            print(f"pub(crate) const {name}: Message = Message {{ flexible: {flex}, fields: &[")
            print(fields_rs(j["fields"], common), end="")
            print("] };")
            print()

main()
