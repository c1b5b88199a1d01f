//! SCRAM credentials in a cluster (issue 15 item 2, KIP-554): AlterUserScramCredentials
//! sent to a broker that is not the controller is forwarded, committed through the
//! metadata quorum and then in every broker's image, so every broker can verify the user;
//! DescribeUserScramCredentials answers from any broker; the credentials survive a
//! controller failover (the new controller describes them and takes further changes) and
//! a full restart of every node (replayed from each node's own metadata log), and a
//! deletion reaches every broker too.
//!
//! Method: three in-process brokers (real `Node`s over `MemStorage`, virtual time, all
//! three controller voters), driven by `tests/it/common/cluster.rs`. The salted password is
//! computed as a client does (`weir_wire::sasl`), and each broker's stored credential is
//! checked by running a real SCRAM exchange against it.

use crate::common;

use bytes::Bytes;
use common::cluster::Cluster;
use weir_wire::domain::sasl::*;
use weir_wire::domain::{ApiRequest, ApiResponse};
use weir_wire::error::ErrorCode;
use weir_wire::sasl::{ClientFirst, ScramClient, ScramMechanism, ScramServer};

fn upsert(user: &str, mechanism: ScramMechanism, password: &str) -> ScramCredentialUpsertion {
    let salt = format!("salt-of-{user}").into_bytes();
    let salted = mechanism.salted_password(password, &salt, 4096);
    ScramCredentialUpsertion {
        name: user.into(),
        mechanism: mechanism.code(),
        iterations: 4096,
        salt: Bytes::from(salt),
        salted_password: Bytes::from(salted),
    }
}

fn alter(
    cluster: &mut Cluster,
    at: i32,
    request: AlterUserScramCredentialsRequest,
) -> Vec<ErrorCode> {
    let ApiResponse::AlterUserScramCredentials(response) =
        cluster.call(at, ApiRequest::AlterUserScramCredentials(request))
    else {
        panic!("AlterUserScramCredentials answer expected")
    };
    response.results.iter().map(|r| r.error).collect()
}

fn describe(cluster: &mut Cluster, at: i32) -> Vec<(String, Vec<(i8, i32)>)> {
    let request = DescribeUserScramCredentialsRequest { users: None };
    let ApiResponse::DescribeUserScramCredentials(response) =
        cluster.call(at, ApiRequest::DescribeUserScramCredentials(request))
    else {
        panic!("DescribeUserScramCredentials answer expected")
    };
    assert_eq!(response.error, ErrorCode::NONE, "{response:?}");
    (response.results.into_iter())
        .map(|r| (r.user, r.credentials))
        .collect()
}

/// Whether node `at` accepts `password` for `user` in a full SCRAM exchange.
fn verifies(
    cluster: &Cluster,
    at: i32,
    user: &str,
    mechanism: ScramMechanism,
    password: &str,
) -> bool {
    let Some(credential) = cluster.members[&at].node.scram_credential(user, mechanism) else {
        return false;
    };
    let (mut client, first) = ScramClient::start(mechanism, user, password, "client-nonce");
    let first = ClientFirst::parse(&first).expect("client-first");
    let (server, server_first) = ScramServer::start(mechanism, first, credential, "server-nonce");
    let client_final = client.server_first(&server_first).expect("client-final");
    server.finish(&client_final).is_ok()
}

// Goal and method: see the module comment.
#[test]
fn credentials_reach_every_broker_and_survive_failover_and_restart() {
    let mut cluster = Cluster::new(&[1, 2, 3], &[1, 2, 3], |_| {});
    let first = cluster.agreed_controller();
    let other = (1..=3).find(|id| *id != first).expect("a non-controller");
    // Through a broker that is not the controller: forwarded.
    let errors = alter(
        &mut cluster,
        other,
        AlterUserScramCredentialsRequest {
            deletions: Vec::new(),
            upsertions: vec![
                upsert("alice", ScramMechanism::Sha256, "alice-secret"),
                upsert("alice", ScramMechanism::Sha512, "alice-secret"),
            ],
        },
    );
    assert_eq!(errors, [ErrorCode::NONE]);
    cluster.advance_ms(500);
    for id in [1, 2, 3] {
        assert!(
            verifies(
                &cluster,
                id,
                "alice",
                ScramMechanism::Sha256,
                "alice-secret"
            ),
            "node {id}"
        );
        assert!(
            verifies(
                &cluster,
                id,
                "alice",
                ScramMechanism::Sha512,
                "alice-secret"
            ),
            "node {id}"
        );
        assert!(
            !verifies(&cluster, id, "alice", ScramMechanism::Sha256, "wrong"),
            "node {id}"
        );
        let described = describe(&mut cluster, id);
        assert_eq!(
            described,
            [("alice".to_owned(), vec![(1, 4096), (2, 4096)])],
            "node {id}"
        );
    }

    // The controller dies: the new one has the credential and takes the next change.
    cluster.kill(first);
    let second = cluster.agreed_controller();
    assert_ne!(second, first);
    assert!(verifies(
        &cluster,
        second,
        "alice",
        ScramMechanism::Sha256,
        "alice-secret"
    ));
    let errors = alter(
        &mut cluster,
        second,
        AlterUserScramCredentialsRequest {
            deletions: vec![ScramCredentialDeletion {
                name: "alice".into(),
                mechanism: ScramMechanism::Sha512.code(),
            }],
            upsertions: vec![upsert("bob", ScramMechanism::Sha512, "bob-secret")],
        },
    );
    assert_eq!(errors, [ErrorCode::NONE, ErrorCode::NONE]);

    // Everyone restarts from their own storage: nothing is lost, the deletion included.
    cluster.restart(first);
    for id in [1, 2, 3] {
        if id != first {
            cluster.restart(id);
        }
    }
    cluster.agreed_controller();
    cluster.advance_ms(1_000);
    for id in [1, 2, 3] {
        assert!(
            verifies(
                &cluster,
                id,
                "alice",
                ScramMechanism::Sha256,
                "alice-secret"
            ),
            "node {id}"
        );
        assert!(
            !verifies(
                &cluster,
                id,
                "alice",
                ScramMechanism::Sha512,
                "alice-secret"
            ),
            "node {id}"
        );
        assert!(
            verifies(&cluster, id, "bob", ScramMechanism::Sha512, "bob-secret"),
            "node {id}"
        );
        let described = describe(&mut cluster, id);
        let expected = [
            ("alice".to_owned(), vec![(1, 4096)]),
            ("bob".to_owned(), vec![(2, 4096)]),
        ];
        assert_eq!(described, expected, "node {id}");
    }
    // Deleting what is gone is refused, and changes nothing.
    let errors = alter(
        &mut cluster,
        1,
        AlterUserScramCredentialsRequest {
            deletions: vec![ScramCredentialDeletion {
                name: "alice".into(),
                mechanism: ScramMechanism::Sha512.code(),
            }],
            upsertions: Vec::new(),
        },
    );
    assert_eq!(errors, [ErrorCode::RESOURCE_NOT_FOUND]);
}
