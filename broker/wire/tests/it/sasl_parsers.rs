//! Goal: the SASL message parsers never panic on any bytes a client (or a server, for the
//! client side) can send, and well-formed exchanges round-trip for any user name and
//! password. Method: proptest over arbitrary bytes and over byte strings built from the
//! messages' own alphabet (commas, `=`, NULs, `n,,`, `c=`, `r=`, `p=`), which reach the
//! deeper branches random bytes rarely do; then full PLAIN and SCRAM exchanges with random
//! credentials, including names with `,` and `=` (escaped as `=2C` / `=3D`).

use proptest::prelude::*;
use weir_wire::sasl::{
    ClientFinal, ClientFirst, PlainMessage, SaslError, ScramClient, ScramCredential,
    ScramMechanism, ScramServer, ServerFirst,
};

/// Byte strings made of SASL syntax pieces and arbitrary bytes.
fn saslish() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        Just(b",".to_vec()),
        Just(b"=".to_vec()),
        Just(b"\0".to_vec()),
        Just(b"n,,".to_vec()),
        Just(b"y,a=".to_vec()),
        Just(b"p=".to_vec()),
        Just(b"n=".to_vec()),
        Just(b"r=".to_vec()),
        Just(b"c=biws".to_vec()),
        Just(b"s=".to_vec()),
        Just(b"i=4096".to_vec()),
        Just(b"=2C".to_vec()),
        Just(b"=3".to_vec()),
        Just(b"AAAA".to_vec()),
        proptest::collection::vec(any::<u8>(), 0..8),
    ];
    proptest::collection::vec(piece, 0..12).prop_map(|pieces| pieces.concat())
}

/// SASL-shaped or arbitrary bytes.
fn any_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![saslish(), proptest::collection::vec(any::<u8>(), 0..256)]
}

fn credential_text() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9,=@. _-]{1,24}"
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn parsers_never_panic(bytes in any_bytes()) {
        let _ = PlainMessage::parse(&bytes);
        let _ = ClientFirst::parse(&bytes);
        let _ = ClientFinal::parse(&bytes);
        let _ = ServerFirst::parse(&bytes);
    }

    // The later steps of an exchange see attacker bytes too: a client-final for a real
    // server state, and server messages for a real client state.
    #[test]
    fn exchange_steps_never_panic(bytes in any_bytes()) {
        let mechanism = ScramMechanism::Sha256;
        let credential = ScramCredential::from_password(mechanism, "pw", b"salt", 1);
        let (mut client, first) = ScramClient::start(mechanism, "u", "pw", "cnonce");
        let parsed = ClientFirst::parse(&first).expect("own client-first parses");
        let (server, _) = ScramServer::start(mechanism, parsed, credential, "snonce");
        prop_assert!(server.finish(&bytes).is_err());
        let _ = client.server_first(&bytes);
        let _ = client.server_final(&bytes);
    }

    #[test]
    fn plain_round_trips(user in "[^\u{0}]{1,24}", password in "[^\u{0}]{1,24}") {
        let message = PlainMessage { username: user.clone(), password: password.clone() };
        let parsed = PlainMessage::parse(&message.encode()).expect("parses");
        prop_assert_eq!(parsed, message);
    }

}

proptest! {
    // PBKDF2 at 4096 iterations (the client's minimum) is slow in a debug build: few cases.
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn scram_exchanges_succeed_exactly_with_the_right_password(
        user in credential_text(),
        password in credential_text(),
        other in credential_text(),
        sha512 in any::<bool>(),
    ) {
        let mechanism = if sha512 { ScramMechanism::Sha512 } else { ScramMechanism::Sha256 };
        let stored = ScramCredential::from_password(mechanism, &password, b"0123456789ab", 4096);
        for (attempt, expect_ok) in [(&password, true), (&other, other == password)] {
            let (mut client, first) = ScramClient::start(mechanism, &user, attempt, "c1");
            let parsed = ClientFirst::parse(&first).expect("client-first");
            prop_assert_eq!(&parsed.username, &user);
            let (server, server_first) =
                ScramServer::start(mechanism, parsed, stored.clone(), "s1");
            let client_final = client.server_first(&server_first).expect("client-final");
            match server.finish(&client_final) {
                Ok(server_final) => {
                    prop_assert!(expect_ok);
                    prop_assert!(client.server_final(&server_final).is_ok());
                }
                Err(error) => {
                    prop_assert!(!expect_ok);
                    prop_assert_eq!(error, SaslError::BadCredentials);
                }
            }
        }
    }
}
