//! Client APIs served through the metadata quorum: Metadata and DescribeCluster from the
//! image, topic administration through the active controller (other brokers forward it),
//! leader elections, reassignments, the KIP-853 quorum APIs (in [`super::quorum`]),
//! OffsetForLeaderEpoch, and the hold of requests that wait for the broker to start or for
//! a topic the controller creates on their behalf.

use uuid::Uuid;
use weir_wire::domain::cluster::{
    config_operation, election_type, AlterConfigsRequest, AlterConfigsResourceResult,
    AlterConfigsResponse, AlterPartitionReassignmentsRequest, AlterPartitionReassignmentsResponse,
    ElectLeadersPartitionResult, ElectLeadersRequest, ElectLeadersResponse,
    ElectLeadersTopicResult, EpochEndOffset, IncrementalAlterConfigsRequest,
    IncrementalAlterConfigsResponse, ListPartitionReassignmentsRequest,
    ListPartitionReassignmentsResponse, OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse,
    OffsetForLeaderTopicResult, OngoingPartitionReassignment, OngoingTopicReassignment,
    ReassignablePartitionResult, ReassignableTopicResult,
};
use weir_wire::domain::{
    ApiRequest, ApiResponse, BrokerInfo, CreatePartitionsRequest, CreatePartitionsResponse,
    CreatePartitionsTopicResult, CreateTopicsRequest, CreateTopicsResponse, DeletableTopicResult,
    DeleteTopicsRequest, DeleteTopicsResponse, MetadataPartition, MetadataTopic, TopicRef,
};
use weir_wire::error::ErrorCode;

use super::cluster::HoldFor;
use super::Node;
use crate::cluster::controller;
use crate::cluster::image::{MetaRecord, PartitionState};
use crate::cluster::peer::PeerMessage;
use crate::event::{Origin, RequestId};
use crate::time::Now;
use crate::topic::is_internal_topic;
use crate::topic::PartitionId;

use super::cluster::FORWARD_TIMEOUT_MS;

impl Node {
    /// IncrementalAlterConfigs, on the active controller (others forward it).
    pub(super) fn incremental_alter_configs(
        &mut self,
        id: RequestId,
        request: IncrementalAlterConfigsRequest,
    ) {
        if self.not_controller(id, &ApiRequest::IncrementalAlterConfigs(request.clone())) {
            return;
        }
        let changes = (request.resources.iter())
            .map(|res| {
                let ops = (res.configs.iter())
                    .map(|c| (c.name.clone(), c.operation, c.value.clone()))
                    .collect();
                (res.resource_type, res.resource_name.clone(), ops)
            })
            .collect();
        let results = self.alter_configs(changes, request.validate_only, true);
        self.answer_configs(id, results, |results| {
            ApiResponse::IncrementalAlterConfigs(IncrementalAlterConfigsResponse {
                throttle_time_ms: 0,
                results,
            })
        });
    }

    /// AlterConfigs (replaces a topic's overrides whole), on the active controller.
    pub(super) fn alter_configs_request(&mut self, id: RequestId, request: AlterConfigsRequest) {
        if self.not_controller(id, &ApiRequest::AlterConfigs(request.clone())) {
            return;
        }
        let changes = (request.resources.iter())
            .map(|res| {
                let ops = (res.configs.iter())
                    .map(|c| (c.name.clone(), config_operation::SET, c.value.clone()))
                    .collect();
                (res.resource_type, res.resource_name.clone(), ops)
            })
            .collect();
        let results = self.alter_configs(changes, request.validate_only, false);
        self.answer_configs(id, results, |results| {
            ApiResponse::AlterConfigs(AlterConfigsResponse {
                throttle_time_ms: 0,
                results,
            })
        });
    }

    fn answer_configs(
        &mut self,
        id: RequestId,
        (results, index): (Vec<AlterConfigsResourceResult>, Option<u64>),
        build: impl FnOnce(Vec<AlterConfigsResourceResult>) -> ApiResponse,
    ) {
        let response = build(results);
        self.respond_after_index(id, index, response);
    }

    /// Topic config changes (broker configs are static here): `(type, name, [(key, op,
    /// value)])`. Incremental changes merge into the current overrides; AlterConfigs
    /// replaces them whole, through the controller's metadata log.
    #[allow(clippy::type_complexity)]
    fn alter_configs(
        &mut self,
        changes: Vec<(i8, String, Vec<(String, i8, Option<String>)>)>,
        validate_only: bool,
        incremental: bool,
    ) -> (Vec<AlterConfigsResourceResult>, Option<u64>) {
        let mut results = Vec::new();
        let mut last = None;
        let active = self.cluster.meta.is_active_controller();
        for (resource_type, name, ops) in changes {
            let mut result = AlterConfigsResourceResult {
                error: ErrorCode::NONE,
                error_message: None,
                resource_type,
                resource_name: name.clone(),
            };
            let outcome = (|| {
                if resource_type != weir_wire::domain::resource_type::TOPIC {
                    return Err((
                        ErrorCode::INVALID_REQUEST,
                        "only topic configs can be changed; broker configs are static".to_string(),
                    ));
                }
                if !active {
                    return Err((
                        ErrorCode::NOT_CONTROLLER,
                        "not the active controller".into(),
                    ));
                }
                let topic_id = *self.topic_ids.get(&name).ok_or((
                    ErrorCode::UNKNOWN_TOPIC_OR_PARTITION,
                    format!("The topic '{name}' does not exist."),
                ))?;
                let topic = self
                    .topics
                    .get(&topic_id)
                    .ok_or((ErrorCode::UNKNOWN_TOPIC_OR_PARTITION, String::new()))?;
                // The controller builds on its decision image: an earlier change of this
                // topic may still be committing.
                let proposed = self
                    .cluster
                    .meta
                    .decision_image()
                    .topics
                    .get(&topic_id.as_u128())
                    .map(|t| t.configs.iter().cloned().collect());
                let mut overrides = if incremental {
                    proposed.unwrap_or_else(|| topic.config.overrides())
                } else {
                    Default::default()
                };
                for (key, op, value) in &ops {
                    match (*op, value) {
                        (config_operation::SET, Some(value)) => {
                            overrides.insert(key.clone(), value.clone());
                        }
                        (config_operation::DELETE, _) | (config_operation::SET, None) => {
                            overrides.remove(key);
                        }
                        _ => {
                            return Err((
                                ErrorCode::INVALID_REQUEST,
                                format!("operation {op} is not supported for {key}"),
                            ))
                        }
                    }
                }
                let pairs = overrides
                    .iter()
                    .map(|(k, v)| (k.as_str(), Some(v.as_str())));
                let config = crate::topic_config::TopicConfig::from_overrides(pairs)
                    .map_err(|e| (ErrorCode::INVALID_CONFIG, e.message))?;
                (config.check_against(&self.config))
                    .map_err(|e| (ErrorCode::INVALID_CONFIG, e.message))?;
                (config.check_change_from(&topic.config, &self.config))
                    .map_err(|e| (ErrorCode::INVALID_CONFIG, e.message))?;
                Ok((topic_id, config))
            })();
            match outcome {
                Ok((topic_id, config)) if !validate_only => {
                    let record = MetaRecord::SetTopicConfig {
                        id: topic_id.as_u128(),
                        configs: config.overrides().into_iter().collect(),
                    };
                    last = self.propose(vec![record]).or(last);
                }
                Ok(_) => {}
                Err((error, message)) => {
                    result.error = error;
                    result.error_message = Some(message);
                }
            }
            results.push(result);
        }
        (results, last)
    }

    /// Admin requests only the active controller decides. Elsewhere they are forwarded to
    /// it (KRaft's envelope), or answered NOT_CONTROLLER when no controller is known.
    /// Returns true when the request was taken care of here.
    pub(super) fn not_controller(&mut self, id: RequestId, request: &ApiRequest) -> bool {
        let cluster = &*self.cluster;
        if cluster.meta.is_active_controller() {
            return false;
        }
        let controller = cluster
            .meta
            .controller()
            .filter(|c| *c != self.config.node_id);
        let forwarded_here = matches!(id.origin, Origin::Forwarded { .. });
        match controller {
            Some(controller) if !forwarded_here => self.forward(id, request, controller),
            _ => {
                let response = super::errors::error_response(
                    request,
                    ErrorCode::NOT_CONTROLLER,
                    "this broker is not the active controller",
                );
                self.respond(id, response);
            }
        }
        true
    }

    fn forward(&mut self, id: RequestId, request: &ApiRequest, controller: i32) {
        let key = weir_wire::codec::api_key_of(request);
        let refuse = |request: &ApiRequest| {
            super::errors::error_response(
                request,
                ErrorCode::NOT_CONTROLLER,
                "this broker is not the active controller",
            )
        };
        let Some((_, version)) = weir_wire::codec::supported_range(key) else {
            self.respond(id, refuse(request));
            return;
        };
        let node_id = self.config.node_id;
        let cluster = &mut *self.cluster;
        let correlation = cluster.correlation();
        let header = weir_wire::codec::RequestHeader {
            api_key: key,
            api_version: version,
            correlation_id: (correlation & 0x7fff_ffff) as i32,
            client_id: Some(format!("weir-forward-{node_id}")),
        };
        let mut frame = bytes::BytesMut::new();
        if weir_wire::codec::encode_request(&header, request, &mut frame).is_err()
            || cluster.router.forwarded.is_full()
        {
            self.respond(id, refuse(request));
            return;
        }
        let deadline = Some(cluster.now.add_ms(FORWARD_TIMEOUT_MS));
        let forwarded = super::cluster::Forwarded {
            id,
            header,
            request: request.clone(),
        };
        let parked = cluster
            .router
            .forwarded
            .insert(correlation, deadline, forwarded);
        debug_assert!(parked.is_ok(), "checked for room above");
        let frame = frame.get(4..).map(<[u8]>::to_vec).unwrap_or_default();
        // The controller authorizes the request as the client that sent it.
        let principal = self.principal(id).name;
        let host = self.client_host(id).to_owned();
        let message = PeerMessage::ForwardAs {
            correlation,
            frame,
            principal,
            host,
        };
        self.send_peer(controller, message);
    }

    /// Controller: handle a forwarded request as if a client had sent it (as `principal`,
    /// when the broker said who; `User:ANONYMOUS` otherwise).
    pub(super) fn on_forward(
        &mut self,
        now: Now,
        from: i32,
        correlation: u64,
        frame: Vec<u8>,
        client: Option<(crate::event::Principal, String)>,
    ) {
        let decoded = weir_wire::codec::decode_request(bytes::Bytes::from(frame));
        let id = RequestId {
            origin: Origin::Forwarded { from },
            seq: correlation,
        };
        // An empty reply frame refuses the request: the broker answers NOT_CONTROLLER and
        // its client retries. So do a malformed frame, a full table and a correlation id
        // already in hand (a peer's bug; a second entry would lose the first's answer).
        let deadline = Some(now.instant.add_ms(FORWARD_TIMEOUT_MS));
        let admitted = match decoded {
            Ok((header, weir_wire::codec::Decoded::Api(request)))
                if self.cluster.router.forwarded_in.get(id).is_none() =>
            {
                let entry = (from, correlation, header);
                (self.cluster.router.forwarded_in.insert(id, deadline, entry))
                    .is_ok()
                    .then_some(request)
            }
            _ => None,
        };
        let Some(request) = admitted else {
            let reply = PeerMessage::ForwardReply {
                correlation,
                frame: Vec::new(),
            };
            self.send_peer(from, reply);
            return;
        };
        if let Some((principal, host)) = client {
            let router = &mut self.cluster.router;
            router.forwarded_principals.insert(id, principal);
            if host != super::acl::UNKNOWN_HOST {
                router.forwarded_hosts.insert(id, host);
            }
        }
        self.handle_request(now, id, request);
    }

    /// Controller: the answer to a forwarded request goes back to its broker. Gives the
    /// response back when `id` is not a forwarded request.
    pub(super) fn answer_forwarded(
        &mut self,
        id: RequestId,
        response: ApiResponse,
    ) -> Option<(RequestId, ApiResponse)> {
        if !matches!(id.origin, Origin::Forwarded { .. }) {
            return Some((id, response));
        }
        let (from, correlation, header) = self.cluster.router.forwarded_in.remove(id)?;
        self.cluster.router.forwarded_principals.remove(&id);
        self.cluster.router.forwarded_hosts.remove(&id);
        let mut out = bytes::BytesMut::new();
        let frame = match weir_wire::codec::encode_response(&header, &response, &mut out) {
            Ok(()) => out.get(4..).map(<[u8]>::to_vec).unwrap_or_default(),
            Err(_) => Vec::new(),
        };
        self.send_peer(from, PeerMessage::ForwardReply { correlation, frame });
        None
    }

    /// Broker: the controller answered a forwarded request.
    pub(super) fn on_forward_reply(&mut self, correlation: u64, frame: Vec<u8>) {
        let Some(forwarded) = self.cluster.router.forwarded.remove(correlation) else {
            return;
        };
        let decoded =
            weir_wire::codec::decode_response(&forwarded.header, bytes::Bytes::from(frame));
        let response = decoded.unwrap_or_else(|_| {
            super::errors::error_response(
                &forwarded.request,
                ErrorCode::NOT_CONTROLLER,
                "the controller could not take the forwarded request",
            )
        });
        self.respond(forwarded.id, response);
    }

    /// Forwarded requests the controller did not answer in time.
    pub(super) fn expire_forwarded(&mut self, now: Now) {
        while let Some((_, forwarded)) = self.cluster.router.forwarded.pop_expired(now.instant) {
            let response = super::errors::error_response(
                &forwarded.request,
                ErrorCode::REQUEST_TIMED_OUT,
                "the controller did not answer the forwarded request",
            );
            self.respond(forwarded.id, response);
        }
        // The broker that forwarded these has timed them out by now: their answers, if
        // they ever come, are dropped.
        while let Some((id, _)) = self.cluster.router.forwarded_in.pop_expired(now.instant) {
            self.cluster.router.forwarded_principals.remove(&id);
            self.cluster.router.forwarded_hosts.remove(&id);
            self.forget_denied(id);
            tracing::debug!(?id, "forwarded request not answered in time");
        }
    }

    pub(super) fn cluster_create(&mut self, id: RequestId, request: CreateTopicsRequest) {
        if self.not_controller(id, &ApiRequest::CreateTopics(request.clone())) {
            return;
        }
        let mut results = Vec::new();
        let mut last = None;
        for topic in &request.topics {
            let dup = request
                .topics
                .iter()
                .filter(|t| t.name == topic.name)
                .count()
                > 1;
            let planned = if dup {
                Err((
                    ErrorCode::INVALID_REQUEST,
                    format!("Duplicate topic name: {}", topic.name),
                ))
            } else {
                self.plan_create_topic(topic)
            };
            match planned {
                Ok(MetaRecord::CreateTopic(image)) => {
                    let spec = self.validate_creatable(topic).ok();
                    let uuid = Uuid::from_u128(image.id);
                    let partitions = image.partitions.len() as i32;
                    let rf = image
                        .partitions
                        .first()
                        .map_or(0, |p| p.replicas.len() as i16);
                    if !request.validate_only {
                        last = self.propose(vec![MetaRecord::CreateTopic(image)]).or(last);
                    }
                    let mut result = match spec {
                        Some(spec) => self.creatable_success(&topic.name, uuid, &spec),
                        None => super::admin::creatable_error(
                            &topic.name,
                            ErrorCode::NONE,
                            String::new(),
                        ),
                    };
                    result.num_partitions = partitions;
                    result.replication_factor = rf;
                    if request.validate_only {
                        result.topic_id = Uuid::nil();
                    }
                    results.push(result);
                }
                Ok(_) => {}
                Err((error, message)) => {
                    results.push(super::admin::creatable_error(&topic.name, error, message))
                }
            }
        }
        let response = ApiResponse::CreateTopics(CreateTopicsResponse {
            throttle_time_ms: 0,
            topics: results,
        });
        self.respond_after_index(id, last, response);
    }

    pub(super) fn cluster_delete(&mut self, id: RequestId, request: DeleteTopicsRequest) {
        if self.not_controller(id, &ApiRequest::DeleteTopics(request.clone())) {
            return;
        }
        let mut results = Vec::new();
        let mut last = None;
        for topic in &request.topics {
            let image = self.cluster.meta.decision_image();
            let found = match topic {
                TopicRef::Name(name) => image.names.get(name).copied(),
                TopicRef::Id(uuid) => image
                    .topics
                    .contains_key(&uuid.as_u128())
                    .then(|| uuid.as_u128()),
            };
            let mut result = DeletableTopicResult {
                name: match topic {
                    TopicRef::Name(name) => Some(name.clone()),
                    TopicRef::Id(_) => None,
                },
                topic_id: Uuid::nil(),
                error: ErrorCode::NONE,
                error_message: None,
            };
            match found {
                None => {
                    result.error = match topic {
                        TopicRef::Name(_) => ErrorCode::UNKNOWN_TOPIC_OR_PARTITION,
                        TopicRef::Id(_) => ErrorCode::UNKNOWN_TOPIC_ID,
                    }
                }
                Some(_) if !self.config.delete_topic_enable => {
                    result.error = ErrorCode::TOPIC_DELETION_DISABLED;
                }
                Some(topic_id) => {
                    result.topic_id = Uuid::from_u128(topic_id);
                    if result.name.is_none() {
                        result.name = self
                            .cluster
                            .meta
                            .decision_image()
                            .topics
                            .get(&topic_id)
                            .map(|t| t.name.clone());
                    }
                    last = self
                        .propose(vec![MetaRecord::DeleteTopic { id: topic_id }])
                        .or(last);
                }
            }
            results.push(result);
        }
        let response = ApiResponse::DeleteTopics(DeleteTopicsResponse {
            throttle_time_ms: 0,
            responses: results,
        });
        self.respond_after_index(id, last, response);
    }

    pub(super) fn cluster_create_partitions(
        &mut self,
        id: RequestId,
        request: CreatePartitionsRequest,
    ) {
        if self.not_controller(id, &ApiRequest::CreatePartitions(request.clone())) {
            return;
        }
        let mut results = Vec::new();
        let mut last = None;
        for topic in &request.topics {
            let planned = (|| {
                let cluster = &*self.cluster;
                let topic_id = *cluster
                    .meta
                    .decision_image()
                    .names
                    .get(&topic.name)
                    .ok_or_else(|| {
                        (
                            ErrorCode::UNKNOWN_TOPIC_OR_PARTITION,
                            format!("The topic '{}' does not exist.", topic.name),
                        )
                    })?;
                let image_topic = &cluster.meta.decision_image().topics[&topic_id];
                let current = image_topic.partitions.len() as i32;
                if topic.count <= current {
                    return Err((
                        ErrorCode::INVALID_PARTITIONS,
                        format!(
                            "Topic currently has {current} partitions, which is higher than or \
                             equal to the requested {}.",
                            topic.count
                        ),
                    ));
                }
                let rf = image_topic
                    .partitions
                    .first()
                    .map_or(1, |p| p.replicas.len()) as i16;
                let added = match &topic.assignments {
                    Some(assignments) => assignments.clone(),
                    None => controller::place_replicas(
                        cluster.meta.decision_image(),
                        topic.count - current,
                        rf,
                        current as usize,
                    )
                    .map_err(|m| (ErrorCode::INVALID_REPLICATION_FACTOR, m))?,
                };
                if added.len() as i32 != topic.count - current {
                    return Err((
                        ErrorCode::INVALID_REPLICA_ASSIGNMENT,
                        "wrong number of assignments".to_string(),
                    ));
                }
                Ok((topic_id, added))
            })();
            let mut result = CreatePartitionsTopicResult {
                name: topic.name.clone(),
                error: ErrorCode::NONE,
                error_message: None,
            };
            match planned {
                Ok((topic_id, added)) => {
                    if !request.validate_only {
                        let record = MetaRecord::AddPartitions {
                            id: topic_id,
                            partitions: added.into_iter().map(PartitionState::new).collect(),
                        };
                        last = self.propose(vec![record]).or(last);
                    }
                }
                Err((error, message)) => {
                    result.error = error;
                    result.error_message = Some(message);
                }
            }
            results.push(result);
        }
        let response = ApiResponse::CreatePartitions(CreatePartitionsResponse {
            throttle_time_ms: 0,
            results,
        });
        self.respond_after_index(id, last, response);
    }

    /// Metadata's broker list and controller: [`Node::cluster_brokers`], plus the brokers
    /// fenced less than a broker session ago (`broker.session.timeout.ms`).
    ///
    /// A controlled shutdown fences the broker in the same record batch that moves its
    /// leaderships, so a Metadata answer without it would tell a client both at once.
    /// librdkafka (2.16) then decommissions the broker while the partitions it led are
    /// still migrating off it, and they fall back to its internal broker until its next
    /// one-second scan of leaderless partitions: a produce stall of up to a second per
    /// restart, measured by tests/compat/test_deploy.py. Kafka lists such a broker until
    /// its session expires (a broker in controlled shutdown is not fenced there, and one
    /// that exited stays registered until then), so clients move the partitions first
    /// and forget the broker later; so does this.
    pub(super) fn metadata_brokers(&self) -> (Vec<BrokerInfo>, i32) {
        let (mut brokers, controller) = self.cluster_brokers();
        let cluster = &*self.cluster;
        let session_ms = cluster.config.broker_session_timeout_ms;
        let lingering = (cluster.meta.fenced_at.iter())
            .filter(|(_, at)| cluster.now < at.add_ms(session_ms))
            .filter_map(|(id, _)| cluster.meta.image.brokers.get(id))
            .filter(|b| b.fenced && b.broker_role);
        for b in lingering {
            brokers.push(BrokerInfo {
                node_id: b.id,
                host: b.host.clone(),
                port: b.port,
                rack: None,
            });
        }
        brokers.sort_by_key(|b| b.node_id);
        (brokers, controller)
    }

    /// The live brokers (registered, unfenced) and the controller clients are sent to.
    pub(super) fn cluster_brokers(&self) -> (Vec<BrokerInfo>, i32) {
        let cluster = &*self.cluster;
        let brokers = cluster
            .meta
            .image
            .brokers
            .values()
            .filter(|b| !b.fenced && b.broker_role)
            .map(|b| BrokerInfo {
                node_id: b.id,
                host: b.host.clone(),
                port: b.port,
                rack: None,
            })
            .collect();
        // Only a controller clients can reach (listed, unfenced) is named; otherwise -1 and
        // clients ask again.
        let controller = cluster
            .meta
            .controller()
            .filter(|c| {
                cluster
                    .meta
                    .image
                    .brokers
                    .get(c)
                    .is_some_and(|b| b.broker_role && !b.fenced)
            })
            // Brokers forward admin requests, so when the controller is not a broker
            // clients are sent here (KRaft brokers name a random broker).
            .unwrap_or(self.config.node_id);
        (brokers, controller)
    }

    /// Describe a topic from the image; `None` when the image lacks it.
    pub(super) fn cluster_describe_topic(
        &self,
        topic_id: Uuid,
        topic_ops: i32,
    ) -> Option<MetadataTopic> {
        let cluster = &*self.cluster;
        let topic = cluster.meta.image.topics.get(&topic_id.as_u128())?;
        let partitions = topic
            .partitions
            .iter()
            .enumerate()
            .map(|(index, state)| {
                let offline: Vec<i32> = state
                    .replicas
                    .iter()
                    .copied()
                    .filter(|r| !cluster.meta.image.is_live(*r))
                    .collect();
                MetadataPartition {
                    error: if state.leader < 0 {
                        ErrorCode::LEADER_NOT_AVAILABLE
                    } else {
                        ErrorCode::NONE
                    },
                    partition: index as i32,
                    leader_id: state.leader,
                    leader_epoch: state.leader_epoch,
                    replica_nodes: state.replicas.clone(),
                    isr_nodes: state.isr.clone(),
                    offline_replicas: offline,
                }
            })
            .collect();
        Some(MetadataTopic {
            error: ErrorCode::NONE,
            name: Some(topic.name.clone()),
            topic_id,
            is_internal: is_internal_topic(&topic.name),
            partitions,
            topic_authorized_operations: topic_ops,
        })
    }

    /// Topics Metadata lists (the image's, sorted by name).
    pub(super) fn cluster_topic_ids(&self) -> Vec<Uuid> {
        (self.cluster.meta.image.names.values())
            .map(|id| Uuid::from_u128(*id))
            .collect()
    }

    /// Auto-creation: ask the controller, answer LEADER_NOT_AVAILABLE
    /// (clients retry, as with Kafka while a topic is being created).
    pub(super) fn cluster_auto_create(&mut self, name: &str) {
        let node_id = self.config.node_id;
        let Some(controller) = self.cluster.meta.controller() else {
            return;
        };
        let message = PeerMessage::AutoCreate {
            names: vec![name.to_string()],
        };
        if self.controller_is_here(controller) {
            self.handle_local_peer(node_id, message);
        } else {
            self.send_peer(controller, message);
        }
    }

    pub(super) fn offset_for_leader_epoch(
        &mut self,
        id: RequestId,
        request: OffsetForLeaderEpochRequest,
    ) {
        let topics = request
            .topics
            .iter()
            .map(|topic| OffsetForLeaderTopicResult {
                topic: topic.topic.clone(),
                partitions: topic
                    .partitions
                    .iter()
                    .map(|p| {
                        let mut answer = EpochEndOffset {
                            error: ErrorCode::NONE,
                            partition: p.partition,
                            leader_epoch: -1,
                            end_offset: -1,
                        };
                        let resolved = self
                            .resolve_partition(&TopicRef::Name(topic.topic.clone()), p.partition)
                            .and_then(|key| {
                                let epoch = self.serving_epoch(key)?;
                                super::check_epoch_against(p.current_leader_epoch, epoch)?;
                                Ok(self.partition(key).expect("resolved"))
                            });
                        match resolved {
                            Ok(log) => {
                                let (epoch, end) = log.end_offset_for_epoch(p.leader_epoch);
                                answer.leader_epoch = epoch;
                                answer.end_offset = end;
                            }
                            Err(error) => answer.error = error,
                        }
                        answer
                    })
                    .collect(),
            })
            .collect();
        self.respond(
            id,
            ApiResponse::OffsetForLeaderEpoch(OffsetForLeaderEpochResponse {
                throttle_time_ms: 0,
                topics,
            }),
        );
    }

    pub(super) fn elect_leaders(&mut self, id: RequestId, request: ElectLeadersRequest) {
        if self.not_controller(id, &ApiRequest::ElectLeaders(request.clone())) {
            return;
        }
        let cluster = &*self.cluster;
        let image = cluster.meta.decision_image().clone();
        let wanted: Vec<(String, i32)> = match &request.topic_partitions {
            Some(topics) => topics
                .iter()
                .flat_map(|t| t.partitions.iter().map(move |p| (t.topic.clone(), *p)))
                .collect(),
            None => image
                .topics
                .values()
                .flat_map(|t| (0..t.partitions.len() as i32).map(move |p| (t.name.clone(), p)))
                .collect(),
        };
        let mut records = Vec::new();
        let mut results: Vec<ElectLeadersTopicResult> = Vec::new();
        for (topic, partition) in wanted {
            let state = image
                .names
                .get(&topic)
                .and_then(|id| image.partition(*id, partition).map(|s| (*id, s)));
            let (error, message) = match state {
                None => (ErrorCode::UNKNOWN_TOPIC_OR_PARTITION, None),
                Some((topic_id, state)) => {
                    let planned = if request.election_type == election_type::UNCLEAN {
                        if state.leader >= 0 && image.is_live(state.leader) {
                            Vec::new()
                        } else {
                            let mut only = image.clone();
                            only.topics.retain(|id, _| *id == topic_id);
                            controller::elect_offline(&only, true)
                                .into_iter()
                                .filter(|r| is_change_of(r, partition))
                                .collect()
                        }
                    } else {
                        match PartitionId::from_wire(Uuid::from_u128(topic_id), partition) {
                            Some(id) => controller::preferred_elections(&image, Some(&[id])),
                            None => Vec::new(),
                        }
                    };
                    if planned.is_empty() {
                        let preferred = state.replicas.first().copied();
                        if preferred == Some(state.leader) {
                            (
                                ErrorCode::ELECTION_NOT_NEEDED,
                                Some("Leader is already the preferred replica".to_string()),
                            )
                        } else {
                            (
                                ErrorCode::PREFERRED_LEADER_NOT_AVAILABLE,
                                Some("The preferred replica is not live and in sync".to_string()),
                            )
                        }
                    } else {
                        records.extend(planned);
                        (ErrorCode::NONE, None)
                    }
                }
            };
            let entry = ElectLeadersPartitionResult {
                partition,
                error,
                error_message: message,
            };
            match results.iter_mut().find(|r| r.topic == topic) {
                Some(r) => r.partitions.push(entry),
                None => results.push(ElectLeadersTopicResult {
                    topic,
                    partitions: vec![entry],
                }),
            }
        }
        let last = self.propose(records);
        let response = ApiResponse::ElectLeaders(ElectLeadersResponse {
            throttle_time_ms: 0,
            error: ErrorCode::NONE,
            results,
        });
        self.respond_after_index(id, last, response);
    }

    pub(super) fn alter_reassignments(
        &mut self,
        id: RequestId,
        request: AlterPartitionReassignmentsRequest,
    ) {
        if self.not_controller(
            id,
            &ApiRequest::AlterPartitionReassignments(request.clone()),
        ) {
            return;
        }
        let cluster = &*self.cluster;
        let image = cluster.meta.decision_image().clone();
        let mut records = Vec::new();
        let mut results = Vec::new();
        for topic in &request.topics {
            let mut partitions = Vec::new();
            for p in &topic.partitions {
                let outcome = match image.names.get(&topic.name) {
                    None => Err((ErrorCode::UNKNOWN_TOPIC_OR_PARTITION, None)),
                    Some(topic_id) => {
                        controller::reassign(&image, *topic_id, p.partition, p.replicas.as_deref())
                            .map_err(|m| {
                                let code = if p.replicas.is_none() {
                                    ErrorCode::NO_REASSIGNMENT_IN_PROGRESS
                                } else {
                                    ErrorCode::INVALID_REPLICA_ASSIGNMENT
                                };
                                (code, Some(m))
                            })
                    }
                };
                let (error, error_message) = match outcome {
                    Ok(record) => {
                        records.extend(record);
                        (ErrorCode::NONE, None)
                    }
                    Err(e) => e,
                };
                partitions.push(ReassignablePartitionResult {
                    partition: p.partition,
                    error,
                    error_message,
                });
            }
            results.push(ReassignableTopicResult {
                name: topic.name.clone(),
                partitions,
            });
        }
        let last = self.propose(records);
        let response =
            ApiResponse::AlterPartitionReassignments(AlterPartitionReassignmentsResponse {
                results,
                ..AlterPartitionReassignmentsResponse::default()
            });
        self.respond_after_index(id, last, response);
    }

    pub(super) fn list_reassignments(
        &mut self,
        id: RequestId,
        request: ListPartitionReassignmentsRequest,
    ) {
        let cluster = &*self.cluster;
        let mut topics = Vec::new();
        for topic in cluster.meta.image.topics.values() {
            let wanted = request
                .topics
                .as_ref()
                .map(|ts| ts.iter().find(|t| t.name == topic.name));
            if matches!(wanted, Some(None)) {
                continue;
            }
            let partitions: Vec<OngoingPartitionReassignment> = topic
                .partitions
                .iter()
                .enumerate()
                .filter(|(i, _)| match wanted {
                    Some(Some(t)) => t.partitions.contains(&(*i as i32)),
                    _ => true,
                })
                .filter(|(_, s)| !s.adding.is_empty() || !s.removing.is_empty())
                .map(|(i, s)| OngoingPartitionReassignment {
                    partition: i as i32,
                    replicas: s.replicas.clone(),
                    adding_replicas: s.adding.clone(),
                    removing_replicas: s.removing.clone(),
                })
                .collect();
            if !partitions.is_empty() {
                topics.push(OngoingTopicReassignment {
                    name: topic.name.clone(),
                    partitions,
                });
            }
        }
        self.respond(
            id,
            ApiResponse::ListPartitionReassignments(ListPartitionReassignmentsResponse {
                throttle_time_ms: 0,
                error: ErrorCode::NONE,
                error_message: None,
                topics,
            }),
        );
    }

    /// The coordinator of a group (`transaction == false`) or transactional
    /// id: the leader of the key's partition of `__consumer_offsets` /
    /// `__transaction_state`, as Kafka does. `Err` when the internal topic does not exist
    /// yet (the controller is asked to create it) or the partition has no leader.
    /// The internal partition (of `__consumer_offsets`, or `__transaction_state` for a
    /// `transaction`) that coordinates `key`; `None` while the image lacks the topic.
    pub(in crate::node) fn coordinator_partition(
        &self,
        key: &str,
        transaction: bool,
    ) -> Option<PartitionId> {
        let image = &self.cluster.meta.image;
        let id = *image.names.get(coordinator_topic(transaction))?;
        let count = image.topics.get(&id)?.partitions.len();
        let count = i32::try_from(count).ok().filter(|n| *n > 0)?;
        let index = crate::group::offsets_log::partition_for(key, count);
        let index = usize::try_from(index).ok()?;
        Some(PartitionId::new(Uuid::from_u128(id), index))
    }

    pub(super) fn coordinator_for(
        &mut self,
        key: &str,
        transaction: bool,
    ) -> Result<i32, ErrorCode> {
        let name = coordinator_topic(transaction);
        let found = self
            .coordinator_partition(key, transaction)
            .map(|index| (self.cluster.meta.image.partition_state(index)).map_or(-1, |p| p.leader));
        match found {
            Some(leader) if leader >= 0 => Ok(leader),
            Some(_) => Err(ErrorCode::COORDINATOR_NOT_AVAILABLE),
            None => {
                self.cluster_auto_create(name);
                Err(ErrorCode::COORDINATOR_NOT_AVAILABLE)
            }
        }
    }

    /// Why this node cannot serve a request about a group or transactional id:
    /// NOT_COORDINATOR when another broker coordinates it, COORDINATOR_LOAD_IN_PROGRESS when
    /// the image names this node but it does not hold the leader role of the key's
    /// partition (a restarted broker is unfenced before its new registration applies). For
    /// a group: its groups are still mirrored, their timers off. For a transactional id: its
    /// copy of the table may be behind and it could not persist a change, so an answer
    /// would promise a transition no log holds (an EndTxn(abort) answered so let the
    /// producer's next transaction commit the aborted records; the Jepsen-style txn
    /// workload found it). OffsetFetch is served from the mirrored offsets.
    pub(super) fn coordinator_refusal(&mut self, request: &ApiRequest) -> Option<ErrorCode> {
        if self.foreign_coordinator_key(request) {
            return Some(ErrorCode::NOT_COORDINATOR);
        }
        if matches!(request, ApiRequest::OffsetFetch(_)) {
            return None;
        }
        let (key, transaction) = coordinator_key(request)?;
        let partition = self.coordinator_partition(&key, transaction)?;
        let leads = matches!(
            self.cluster.replication.replicas.get(&partition),
            Some(super::cluster::Replica::Leader(_))
        );
        (!leads).then_some(ErrorCode::COORDINATOR_LOAD_IN_PROGRESS)
    }

    /// The internal topics a coordinator request needs, when the image does not have them
    /// yet: `__consumer_offsets` for group requests (TxnOffsetCommit included),
    /// `__transaction_state` for transactional ones, both for AddOffsetsToTxn
    /// (FindCoordinator by its key type).
    fn missing_topics(&self, request: &ApiRequest) -> Vec<String> {
        use crate::group::offsets_log::OFFSETS_TOPIC;
        use crate::txn_log::TXN_STATE_TOPIC;
        let cluster = &*self.cluster;
        let known = |name: &str| cluster.meta.image.names.contains_key(name);
        if let ApiRequest::Metadata(r) = request {
            if !(r.allow_auto_topic_creation && self.config.auto_create_topics) {
                return Vec::new();
            }
            let names = r.topics.iter().flatten().filter_map(|t| match t {
                TopicRef::Name(name) => Some(name.as_str()),
                TopicRef::Id(_) => None,
            });
            return names
                .filter(|n| {
                    !known(n)
                        && !is_internal_topic(n)
                        && crate::topic::validate_topic_name(n).is_ok()
                })
                .map(str::to_string)
                .collect();
        }
        let names: &[&str] = match request {
            ApiRequest::FindCoordinator(r) => match r.key_type {
                0 => &[OFFSETS_TOPIC],
                1 => &[TXN_STATE_TOPIC],
                _ => return Vec::new(),
            },
            ApiRequest::JoinGroup(_)
            | ApiRequest::SyncGroup(_)
            | ApiRequest::Heartbeat(_)
            | ApiRequest::LeaveGroup(_)
            | ApiRequest::OffsetCommit(_)
            | ApiRequest::OffsetDelete(_)
            | ApiRequest::OffsetFetch(_)
            | ApiRequest::TxnOffsetCommit(_)
            | ApiRequest::ConsumerGroupHeartbeat(_) => &[OFFSETS_TOPIC],
            // The group's offsets partition joins the transaction (`node/txn_offsets.rs`).
            ApiRequest::AddOffsetsToTxn(_) => &[TXN_STATE_TOPIC, OFFSETS_TOPIC],
            ApiRequest::EndTxn(_) | ApiRequest::AddPartitionsToTxn(_) => &[TXN_STATE_TOPIC],
            ApiRequest::InitProducerId(r) if r.transactional_id.is_some() => &[TXN_STATE_TOPIC],
            _ => return Vec::new(),
        };
        let missing: Vec<&str> = names.iter().copied().filter(|n| !known(n)).collect();
        if missing.is_empty() {
            return Vec::new();
        }
        // Not creatable now (too few live brokers for its replication factor): answer at
        // once (COORDINATOR_NOT_AVAILABLE, as Kafka does) rather than hold the request for
        // nothing; a held answer also holds every later answer on its connection.
        let voters = cluster.meta.raft.voters().len();
        let (rf, live) = super::cluster::internal_topic_placement(&cluster.meta.image, voters);
        if live < rf {
            return Vec::new();
        }
        missing.into_iter().map(str::to_string).collect()
    }

    /// Hold a client request until what it needs exists ([`HoldFor`]): this broker
    /// serving (every request, while the broker starts; ApiVersions is the server's), or topics the
    /// controller is asked here to create on its behalf (a coordinator's internal topic;
    /// Kafka answers COORDINATOR_NOT_AVAILABLE at once and the client asks again, holding
    /// answers the first FindCoordinator of a fresh cluster as soon as the topic exists).
    /// Gives the request back when it need not (or cannot) wait.
    pub(super) fn hold_request(
        &mut self,
        now: Now,
        id: RequestId,
        mut request: ApiRequest,
    ) -> Option<ApiRequest> {
        // Auto-creation needs CREATE (node/authz.rs), decided before a topic is asked for.
        self.gate_auto_create(id, &mut request);
        let started = self.cluster.broker.started;
        let hold = if !started {
            HoldFor::Start
        } else {
            let names = self.missing_topics(&request);
            if names.is_empty() {
                return Some(request);
            }
            HoldFor::Topics(names)
        };
        let cluster = &mut *self.cluster;
        let deadline = Some(now.instant.add_ms(super::cluster::HELD_REQUEST_MS));
        match cluster
            .router
            .held
            .insert(id, deadline, (hold.clone(), request))
        {
            Ok(()) => {
                if let HoldFor::Topics(names) = hold {
                    for name in &names {
                        self.cluster_auto_create(name);
                    }
                }
                None
            }
            Err((_, request)) => Some(request),
        }
    }

    /// Dispatch the held requests whose wait is over: what they waited for exists (a
    /// request held for the start may then wait for a topic), or their time is up (then
    /// answered as if they had not waited).
    pub(super) fn release_held_requests(&mut self, now: Now) {
        let serving = self.is_serving();
        let cluster = &mut *self.cluster;
        cluster.broker.started |= serving;
        if cluster.router.held.is_empty() {
            return;
        }
        let started = cluster.broker.started;
        let names = &cluster.meta.image.names;
        let ready = cluster.router.held.remove_where(|_, (hold, _)| match hold {
            HoldFor::Start => started,
            HoldFor::Topics(wanted) => wanted.iter().all(|n| names.contains_key(n)),
        });
        let mut expired = Vec::new();
        while let Some(entry) = cluster.router.held.pop_expired(now.instant) {
            expired.push(entry);
        }
        for (id, (hold, request)) in ready {
            let request = match hold {
                HoldFor::Start => match self.hold_request(now, id, request) {
                    Some(request) => request,
                    None => continue,
                },
                HoldFor::Topics(_) => match self.other_shard_coordinates(&request) {
                    Some(shard) => {
                        let reroute = crate::Output::Reroute { id, shard, request };
                        self.outputs.push_back(reroute);
                        continue;
                    }
                    None => request,
                },
            };
            self.dispatch_request(now, id, request);
        }
        for (id, (_, request)) in expired {
            self.dispatch_request(now, id, request);
        }
    }

    /// The group or transactional id a request is about, when this node is
    /// not its coordinator (the request is then answered NOT_COORDINATOR).
    fn foreign_coordinator_key(&mut self, request: &ApiRequest) -> bool {
        let Some((key, transaction)) = coordinator_key(request) else {
            return false;
        };
        !self.coordinates(&key, transaction)
    }

    /// True when this node (this shard of its broker) coordinates group or transactional id
    /// `key`: not another broker, nor another shard.
    pub(super) fn coordinates(&mut self, key: &str, transaction: bool) -> bool {
        self.coordinator_for(key, transaction) == Ok(self.config.node_id)
            && (self.coordinator_shard(key, transaction))
                .is_none_or(|shard| shard == self.config.shard.index())
    }

    /// The other shard of this broker that coordinates `request`'s group or transactional
    /// id, if another shard of this broker does ([`crate::Output::Reroute`]).
    fn other_shard_coordinates(&mut self, request: &ApiRequest) -> Option<u16> {
        if self.config.shard.count() <= 1 {
            return None;
        }
        let (key, transaction) = coordinator_key(request)?;
        if self.coordinator_for(&key, transaction) != Ok(self.config.node_id) {
            return None;
        }
        let shard = self.coordinator_shard(&key, transaction)?;
        (shard != self.config.shard.index()).then_some(shard)
    }

    /// `(id, host, port)` of a registered, unfenced broker.
    pub(super) fn live_broker(&self, id: i32) -> Option<(i32, String, i32)> {
        let broker = self.cluster.meta.image.brokers.get(&id)?;
        (!broker.fenced).then(|| (broker.id, broker.host.clone(), broker.port))
    }
}

/// The group or transactional id a coordinator request is about, and whether it is a
/// transactional id (its coordinator is `__transaction_state`'s). TxnOffsetCommit is the
/// group's: its offsets are held by the group's coordinator until the transaction's marker
/// (`node/txn_offsets.rs`), and clients send it there.
fn coordinator_key(request: &ApiRequest) -> Option<(String, bool)> {
    let transaction = matches!(
        request,
        ApiRequest::EndTxn(_)
            | ApiRequest::AddOffsetsToTxn(_)
            | ApiRequest::AddPartitionsToTxn(_)
            | ApiRequest::InitProducerId(_)
    );
    let key = match request {
        ApiRequest::JoinGroup(r) => Some(r.group_id.as_str()),
        ApiRequest::SyncGroup(r) => Some(r.group_id.as_str()),
        ApiRequest::Heartbeat(r) => Some(r.group_id.as_str()),
        ApiRequest::LeaveGroup(r) => Some(r.group_id.as_str()),
        ApiRequest::OffsetCommit(r) => Some(r.group_id.as_str()),
        ApiRequest::OffsetDelete(r) => Some(r.group_id.as_str()),
        ApiRequest::ConsumerGroupHeartbeat(r) => Some(r.group_id.as_str()),
        ApiRequest::OffsetFetch(r) => r.groups.first().map(|g| g.group_id.as_str()),
        ApiRequest::EndTxn(r) => Some(r.transactional_id.as_str()),
        ApiRequest::AddOffsetsToTxn(r) => Some(r.transactional_id.as_str()),
        ApiRequest::AddPartitionsToTxn(r) => Some(r.transactional_id.as_str()),
        ApiRequest::TxnOffsetCommit(r) => Some(r.group_id.as_str()),
        ApiRequest::InitProducerId(r) => r.transactional_id.as_deref(),
        _ => None,
    };
    key.map(|key| (key.to_owned(), transaction))
}

/// True when `record` changes partition `partition` (of the one topic it was planned for).
fn is_change_of(record: &MetaRecord, partition: i32) -> bool {
    matches!(record, MetaRecord::PartitionChange { partition: p, .. } if *p == partition)
}

/// The internal topic whose partitions coordinate groups, or transactional ids.
fn coordinator_topic(transaction: bool) -> &'static str {
    if transaction {
        crate::txn_log::TXN_STATE_TOPIC
    } else {
        crate::group::offsets_log::OFFSETS_TOPIC
    }
}
