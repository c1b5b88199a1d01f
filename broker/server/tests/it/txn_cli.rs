//! `weir txn list|describe|producers` and weir-client's transaction admin calls against a
//! transaction driven with raw requests.
//!
//! Goal: the admin client (list_transactions, describe_transactions, describe_producers)
//! and the real binary's `weir txn` tables report an open transaction (Ongoing, its
//! partitions, its producer on each partition with the transaction's first offset) and,
//! after EndTxn, the completed one (CompleteCommit, no partitions, nothing open).
//! Method: spawn `weir serve`; weir-client has no transactional producer, so the test
//! sends InitProducerId, AddPartitionsToTxn, a transactional Produce and EndTxn itself
//! through the admin client's cluster handle, then compares the admin answers and the
//! binary's output with what it did.

use crate::common;

use bytes::Bytes;
use common::{run_cli_at, stdout_of, Process};
use weir_client::{Admin, ClientConfig, ErrorCode, NewTopic, TopicPartition};
use weir_runtime::TokioRuntime;
use weir_wire::domain::txn::{AddPartitionsToTxnRequest, EndTxnRequest, TxnTopic};
use weir_wire::domain::{
    Acks, ApiRequest, ApiResponse, InitProducerIdRequest, ProducePartition, ProduceRequest,
    ProduceTopic, TopicRef,
};
use weir_wire::records::{encode_batch, BatchOptions, Record};

const TOPIC: &str = "txn-cli";
const TID: &str = "txn-cli-tid";

/// The data rows of a table, split on whitespace.
fn rows(output: &str) -> Vec<Vec<String>> {
    (output.lines().skip(1))
        .filter(|line| !line.trim().is_empty())
        .map(|line| line.split_whitespace().map(str::to_owned).collect())
        .collect()
}

async fn call(admin: &Admin<TokioRuntime>, request: ApiRequest) -> ApiResponse {
    admin
        .cluster()
        .request_any(&request)
        .await
        .expect("request answered")
}

fn txn_batch(producer_id: i64, epoch: i16, values: &[&str]) -> Bytes {
    let records: Vec<Record> = (values.iter().enumerate())
        .map(|(index, value)| Record {
            offset: index as i64,
            timestamp: 1_767_225_600_000,
            key: None,
            value: Some(Bytes::copy_from_slice(value.as_bytes())),
            headers: Vec::new(),
        })
        .collect();
    let options = BatchOptions {
        producer_id,
        producer_epoch: epoch,
        base_sequence: 0,
        transactional: true,
        ..BatchOptions::default()
    };
    encode_batch(&records, &options).expect("batch encodes")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn txn_cli_and_admin_report_a_transaction() {
    let data_dir = tempfile::tempdir().expect("temp dir");
    let broker = Process::spawn(data_dir.path());
    let address = broker.address.clone();
    let admin = Admin::connect(
        TokioRuntime::new(1),
        ClientConfig::with_bootstrap(address.clone()),
    )
    .await
    .expect("admin");
    admin
        .create_topic(NewTopic::new(TOPIC, 2, 1))
        .await
        .expect("create topic");

    let ApiResponse::InitProducerId(init) = call(
        &admin,
        ApiRequest::InitProducerId(InitProducerIdRequest {
            transactional_id: Some(TID.to_owned()),
            transaction_timeout_ms: 60_000,
            producer_id: -1,
            producer_epoch: -1,
        }),
    )
    .await
    else {
        panic!("not an InitProducerId response")
    };
    assert_eq!(init.error, ErrorCode::NONE);
    let (pid, epoch) = (init.producer_id, init.producer_epoch);
    let ApiResponse::AddPartitionsToTxn(added) = call(
        &admin,
        ApiRequest::AddPartitionsToTxn(AddPartitionsToTxnRequest {
            transactional_id: TID.to_owned(),
            producer_id: pid,
            producer_epoch: epoch,
            topics: vec![TxnTopic {
                name: TOPIC.to_owned(),
                partitions: vec![0, 1],
            }],
        }),
    )
    .await
    else {
        panic!("not an AddPartitionsToTxn response")
    };
    assert!(added.results[0]
        .partitions
        .iter()
        .all(|p| p.error == ErrorCode::NONE));
    let ApiResponse::Produce(produced) = call(
        &admin,
        ApiRequest::Produce(ProduceRequest {
            transactional_id: Some(TID.to_owned()),
            acks: Acks::All,
            timeout_ms: 30_000,
            topics: vec![ProduceTopic {
                topic: TopicRef::Name(TOPIC.to_owned()),
                partitions: vec![ProducePartition {
                    partition: 1,
                    records: Some(txn_batch(pid, epoch, &["a", "b", "c"])),
                }],
            }],
        }),
    )
    .await
    else {
        panic!("not a Produce response")
    };
    assert_eq!(produced.topics[0].partitions[0].error, ErrorCode::NONE);

    // The admin client's view of the open transaction.
    let listed = admin.list_transactions(&[], &[]).await.expect("list");
    let mine = listed.iter().find(|t| t.transactional_id == TID);
    let mine = mine.expect("listed");
    assert_eq!((mine.producer_id, mine.state.as_str()), (pid, "Ongoing"));
    let ongoing = ["Ongoing".to_owned()];
    assert_eq!(
        (admin
            .list_transactions(&ongoing, &[pid])
            .await
            .expect("list"))
        .len(),
        1
    );
    let described = admin
        .describe_transactions(&[TID.to_owned(), "nope".to_owned()])
        .await
        .expect("describe");
    let txn = described[0].1.as_ref().expect("described");
    assert_eq!(txn.state, "Ongoing");
    assert_eq!(
        txn.partitions,
        [TopicPartition::new(TOPIC, 0), TopicPartition::new(TOPIC, 1)]
    );
    assert_eq!((txn.producer_epoch, txn.timeout_ms), (epoch, 60_000));
    assert!(txn.start_time_ms > 0);
    let missing = described[1].1.as_ref().expect_err("unknown id");
    assert_eq!(missing.code(), Some(ErrorCode::TRANSACTIONAL_ID_NOT_FOUND));
    let producers = admin
        .describe_producers(&[TopicPartition::new(TOPIC, 0), TopicPartition::new(TOPIC, 1)])
        .await
        .expect("describe producers");
    assert!(producers[0].1.as_ref().expect("p0").is_empty());
    let on_1 = producers[1].1.as_ref().expect("p1");
    assert_eq!(on_1.len(), 1);
    assert_eq!(
        (on_1[0].producer_id, on_1[0].last_sequence),
        (pid, 2),
        "{on_1:?}"
    );
    assert_eq!(on_1[0].current_txn_start_offset, Some(0));

    // The binary's tables.
    let list = stdout_of(&run_cli_at(&address, &["txn", "list"]));
    assert!(list.starts_with("TRANSACTIONAL-ID"), "{list}");
    assert!(
        rows(&list).contains(&vec![
            TID.to_owned(),
            "1".to_owned(),
            pid.to_string(),
            "Ongoing".to_owned()
        ]),
        "{list}"
    );
    let describe = stdout_of(&run_cli_at(&address, &["txn", "describe", TID]));
    let row = &rows(&describe)[0];
    assert_eq!(row[4], "Ongoing", "{describe}");
    assert_eq!(row[8], format!("{TOPIC}-0,{TOPIC}-1"), "{describe}");
    let producers = stdout_of(&run_cli_at(
        &address,
        &["txn", "producers", "--topic", TOPIC],
    ));
    let table = rows(&producers);
    assert_eq!(table.len(), 1, "{producers}");
    assert_eq!(
        table[0][..5],
        [TOPIC, "1", &pid.to_string(), &epoch.to_string(), "2"],
        "{producers}"
    );
    assert_eq!(table[0][6], "0", "{producers}");
    let failed = run_cli_at(&address, &["txn", "describe", "nope"]);
    assert!(!failed.status.success());
    assert!(String::from_utf8_lossy(&failed.stderr).contains("TRANSACTIONAL_ID_NOT_FOUND"));

    // Commit, then everything reports the completed transaction.
    let ApiResponse::EndTxn(ended) = call(
        &admin,
        ApiRequest::EndTxn(EndTxnRequest {
            transactional_id: TID.to_owned(),
            producer_id: pid,
            producer_epoch: epoch,
            committed: true,
        }),
    )
    .await
    else {
        panic!("not an EndTxn response")
    };
    assert_eq!(ended.error, ErrorCode::NONE);
    let list = stdout_of(&run_cli_at(
        &address,
        &["txn", "list", "--state", "CompleteCommit"],
    ));
    assert!(list.contains(TID), "{list}");
    let describe = stdout_of(&run_cli_at(&address, &["txn", "describe", TID]));
    let row = &rows(&describe)[0];
    assert_eq!((row[4].as_str(), row[8].as_str()), ("CompleteCommit", "-"));
    let producers = stdout_of(&run_cli_at(
        &address,
        &["txn", "producers", "--topic", TOPIC, "--partition", "1"],
    ));
    assert_eq!(rows(&producers)[0][6], "-", "{producers}");
    broker.kill_9();
}
