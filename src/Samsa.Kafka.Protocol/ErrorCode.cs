// Kafka error codes: the numbers and names of upstream's org.apache.kafka.common.protocol.Errors
// (apache/kafka trunk, October 2024, codes -1 through 128; 129-132 from Kafka 4.1/4.2). Messages are Samsa's own wording.
namespace Samsa.Kafka.Protocol;

/// <summary>
/// An error code as carried in the int16 <c>ErrorCode</c> fields of Kafka responses.
/// Member names are upstream's UPPER_SNAKE names in PascalCase; <see cref="ErrorCodes.WireName"/> gives the original.
/// </summary>
public enum ErrorCode : short
{
    /// <summary>The broker hit an unexpected failure while handling the request.</summary>
    UnknownServerError = -1,
    /// <summary>No error.</summary>
    None = 0,
    /// <summary>The offset asked for lies outside the range the partition currently holds.</summary>
    OffsetOutOfRange = 1,
    /// <summary>A record or batch is corrupt: bad CRC, bad size, or a null key on a compacted topic.</summary>
    CorruptMessage = 2,
    /// <summary>This broker does not know the topic or partition.</summary>
    UnknownTopicOrPartition = 3,
    /// <summary>The fetch size in the request is not valid.</summary>
    InvalidFetchSize = 4,
    /// <summary>The partition has no leader right now; an election is under way.</summary>
    LeaderNotAvailable = 5,
    /// <summary>This broker is neither the leader nor a follower of the partition as the request requires.</summary>
    NotLeaderOrFollower = 6,
    /// <summary>The request did not complete within its timeout.</summary>
    RequestTimedOut = 7,
    /// <summary>The broker is not available.</summary>
    BrokerNotAvailable = 8,
    /// <summary>A replica of the partition is not available on this broker.</summary>
    ReplicaNotAvailable = 9,
    /// <summary>A record is larger than the largest message the broker accepts.</summary>
    MessageTooLarge = 10,
    /// <summary>The request carries an old controller epoch; the controller has moved.</summary>
    StaleControllerEpoch = 11,
    /// <summary>The metadata string attached to a committed offset is too long.</summary>
    OffsetMetadataTooLarge = 12,
    /// <summary>The connection was closed before a response arrived.</summary>
    NetworkException = 13,
    /// <summary>The coordinator is still loading its state; try again shortly.</summary>
    CoordinatorLoadInProgress = 14,
    /// <summary>The coordinator is not available.</summary>
    CoordinatorNotAvailable = 15,
    /// <summary>This broker is not the coordinator for the given group or transactional id.</summary>
    NotCoordinator = 16,
    /// <summary>The topic name is not valid or the operation is not allowed on this topic.</summary>
    InvalidTopicException = 17,
    /// <summary>The record batch is larger than the topic's segment size.</summary>
    RecordListTooLarge = 18,
    /// <summary>Too few in-sync replicas to accept the write.</summary>
    NotEnoughReplicas = 19,
    /// <summary>The write was appended, but to fewer in-sync replicas than required.</summary>
    NotEnoughReplicasAfterAppend = 20,
    /// <summary>The acks value in the produce request is not valid.</summary>
    InvalidRequiredAcks = 21,
    /// <summary>The group generation id is not the current one.</summary>
    IllegalGeneration = 22,
    /// <summary>The member's protocol type or protocols do not match the group's.</summary>
    InconsistentGroupProtocol = 23,
    /// <summary>The group id is not valid.</summary>
    InvalidGroupId = 24,
    /// <summary>The coordinator does not know this member id.</summary>
    UnknownMemberId = 25,
    /// <summary>The session timeout is outside the range the broker allows.</summary>
    InvalidSessionTimeout = 26,
    /// <summary>The group is rebalancing; the member must rejoin.</summary>
    RebalanceInProgress = 27,
    /// <summary>The offset commit data is not a valid size.</summary>
    InvalidCommitOffsetSize = 28,
    /// <summary>Not authorized to access the topic.</summary>
    TopicAuthorizationFailed = 29,
    /// <summary>Not authorized to access the group.</summary>
    GroupAuthorizationFailed = 30,
    /// <summary>Not authorized for this cluster operation.</summary>
    ClusterAuthorizationFailed = 31,
    /// <summary>A record timestamp is outside the accepted range.</summary>
    InvalidTimestamp = 32,
    /// <summary>The SASL mechanism is not enabled on this listener.</summary>
    UnsupportedSaslMechanism = 33,
    /// <summary>The request is not allowed in the current state of SASL authentication.</summary>
    IllegalSaslState = 34,
    /// <summary>This API version is not supported.</summary>
    UnsupportedVersion = 35,
    /// <summary>A topic with this name already exists.</summary>
    TopicAlreadyExists = 36,
    /// <summary>The partition count is not valid.</summary>
    InvalidPartitions = 37,
    /// <summary>The replication factor is below 1 or above the number of live brokers.</summary>
    InvalidReplicationFactor = 38,
    /// <summary>The replica assignment is not valid.</summary>
    InvalidReplicaAssignment = 39,
    /// <summary>The configuration is not valid.</summary>
    InvalidConfig = 40,
    /// <summary>This broker is not the active controller.</summary>
    NotController = 41,
    /// <summary>The request is malformed or not valid; the client may be sending a request version the broker mishandles.</summary>
    InvalidRequest = 42,
    /// <summary>The broker's message format version does not support this request.</summary>
    UnsupportedForMessageFormat = 43,
    /// <summary>The request violates a configured policy.</summary>
    PolicyViolation = 44,
    /// <summary>A produce sequence number arrived out of order.</summary>
    OutOfOrderSequenceNumber = 45,
    /// <summary>A produce sequence number was already written.</summary>
    DuplicateSequenceNumber = 46,
    /// <summary>The producer epoch is older than the current one.</summary>
    InvalidProducerEpoch = 47,
    /// <summary>The transactional operation is not allowed in the transaction's current state.</summary>
    InvalidTxnState = 48,
    /// <summary>The producer id is not assigned to this transactional id.</summary>
    InvalidProducerIdMapping = 49,
    /// <summary>The transaction timeout exceeds transaction.max.timeout.ms.</summary>
    InvalidTransactionTimeout = 50,
    /// <summary>Another transaction operation for this producer is still in progress.</summary>
    ConcurrentTransactions = 51,
    /// <summary>A newer transaction coordinator has taken over; this one is fenced.</summary>
    TransactionCoordinatorFenced = 52,
    /// <summary>Not authorized to use the transactional id.</summary>
    TransactionalIdAuthorizationFailed = 53,
    /// <summary>Security features are disabled on this broker.</summary>
    SecurityDisabled = 54,
    /// <summary>The broker skipped this operation because another part of the request failed.</summary>
    OperationNotAttempted = 55,
    /// <summary>A disk error prevented access to the log.</summary>
    KafkaStorageError = 56,
    /// <summary>The log directory named in the request is not configured on this broker.</summary>
    LogDirNotFound = 57,
    /// <summary>SASL authentication failed.</summary>
    SaslAuthenticationFailed = 58,
    /// <summary>The broker has no state for this producer id, typically because its records were deleted by retention.</summary>
    UnknownProducerId = 59,
    /// <summary>A partition reassignment is already in progress.</summary>
    ReassignmentInProgress = 60,
    /// <summary>Delegation tokens are not enabled.</summary>
    DelegationTokenAuthDisabled = 61,
    /// <summary>The delegation token was not found.</summary>
    DelegationTokenNotFound = 62,
    /// <summary>The principal is not the owner or a renewer of the delegation token.</summary>
    DelegationTokenOwnerMismatch = 63,
    /// <summary>Delegation token requests need an authenticated, non-token connection.</summary>
    DelegationTokenRequestNotAllowed = 64,
    /// <summary>Not authorized for this delegation token operation.</summary>
    DelegationTokenAuthorizationFailed = 65,
    /// <summary>The delegation token has expired.</summary>
    DelegationTokenExpired = 66,
    /// <summary>The principal type is not supported.</summary>
    InvalidPrincipalType = 67,
    /// <summary>The group still has members.</summary>
    NonEmptyGroup = 68,
    /// <summary>The group does not exist.</summary>
    GroupIdNotFound = 69,
    /// <summary>The fetch session id is not known to this broker.</summary>
    FetchSessionIdNotFound = 70,
    /// <summary>The fetch session epoch does not match.</summary>
    InvalidFetchSessionEpoch = 71,
    /// <summary>The partition leader has no listener with the name of the one the request arrived on.</summary>
    ListenerNotFound = 72,
    /// <summary>Topic deletion is disabled on this cluster.</summary>
    TopicDeletionDisabled = 73,
    /// <summary>The leader epoch in the request is older than the broker's.</summary>
    FencedLeaderEpoch = 74,
    /// <summary>The leader epoch in the request is newer than the broker's.</summary>
    UnknownLeaderEpoch = 75,
    /// <summary>The client cannot handle the compression type used by the partition.</summary>
    UnsupportedCompressionType = 76,
    /// <summary>The broker epoch has changed.</summary>
    StaleBrokerEpoch = 77,
    /// <summary>The new leader's high watermark has not yet caught up; the offset is not available yet.</summary>
    OffsetNotAvailable = 78,
    /// <summary>The member must rejoin with the member id the coordinator assigned.</summary>
    MemberIdRequired = 79,
    /// <summary>The preferred leader is not available.</summary>
    PreferredLeaderNotAvailable = 80,
    /// <summary>The group has reached group.max.size members.</summary>
    GroupMaxSizeReached = 81,
    /// <summary>Another consumer with the same group.instance.id has replaced this one.</summary>
    FencedInstanceId = 82,
    /// <summary>No eligible leader is available for the partition.</summary>
    EligibleLeadersNotAvailable = 83,
    /// <summary>The partition already has the leader the election would choose.</summary>
    ElectionNotNeeded = 84,
    /// <summary>No partition reassignment is in progress.</summary>
    NoReassignmentInProgress = 85,
    /// <summary>Offsets of a topic the group is subscribed to cannot be deleted.</summary>
    GroupSubscribedToTopic = 86,
    /// <summary>A record failed broker-side validation and was rejected.</summary>
    InvalidRecord = 87,
    /// <summary>Transactional offsets are pending for the partition; retry once they are resolved.</summary>
    UnstableOffsetCommit = 88,
    /// <summary>The request would exceed the throttling quota.</summary>
    ThrottlingQuotaExceeded = 89,
    /// <summary>A newer producer with the same transactional id has been started.</summary>
    ProducerFenced = 90,
    /// <summary>The request refers to a resource that does not exist.</summary>
    ResourceNotFound = 91,
    /// <summary>The request names the same resource more than once.</summary>
    DuplicateResource = 92,
    /// <summary>The credential does not meet the acceptance criteria.</summary>
    UnacceptableCredential = 93,
    /// <summary>The voter set of the sender and the receiver disagree.</summary>
    InconsistentVoterSet = 94,
    /// <summary>The update version is not valid.</summary>
    InvalidUpdateVersion = 95,
    /// <summary>Finalized features could not be updated.</summary>
    FeatureUpdateFailed = 96,
    /// <summary>The forwarded request's principal could not be deserialized.</summary>
    PrincipalDeserializationFailure = 97,
    /// <summary>The requested snapshot does not exist.</summary>
    SnapshotNotFound = 98,
    /// <summary>The requested position is outside the snapshot.</summary>
    PositionOutOfRange = 99,
    /// <summary>This broker does not know the topic id.</summary>
    UnknownTopicId = 100,
    /// <summary>Another broker has already registered this broker id.</summary>
    DuplicateBrokerRegistration = 101,
    /// <summary>The broker id is not registered.</summary>
    BrokerIdNotRegistered = 102,
    /// <summary>The topic id in the request does not match the log's topic id.</summary>
    InconsistentTopicId = 103,
    /// <summary>The cluster id in the request does not match this cluster.</summary>
    InconsistentClusterId = 104,
    /// <summary>The transactional id does not exist.</summary>
    TransactionalIdNotFound = 105,
    /// <summary>The fetch session mixed requests with and without topic ids.</summary>
    FetchSessionTopicIdError = 106,
    /// <summary>The proposed ISR contains a replica that is not eligible.</summary>
    IneligibleReplica = 107,
    /// <summary>The partition state was updated, but the leader changed meanwhile.</summary>
    NewLeaderElected = 108,
    /// <summary>The offset has moved to tiered storage.</summary>
    OffsetMovedToTieredStorage = 109,
    /// <summary>The member epoch is fenced; the member must give up its partitions and rejoin.</summary>
    FencedMemberEpoch = 110,
    /// <summary>The instance id is still held by another member, which has to leave first.</summary>
    UnreleasedInstanceId = 111,
    /// <summary>The group does not support the requested assignor or assignor version.</summary>
    UnsupportedAssignor = 112,
    /// <summary>The member epoch is stale; retry after the next heartbeat gives the current epoch.</summary>
    StaleMemberEpoch = 113,
    /// <summary>The request was sent to the wrong kind of endpoint.</summary>
    MismatchedEndpointType = 114,
    /// <summary>This endpoint type is not supported.</summary>
    UnsupportedEndpointType = 115,
    /// <summary>The controller id is not known.</summary>
    UnknownControllerId = 116,
    /// <summary>The client telemetry subscription id is unknown or outdated.</summary>
    UnknownSubscriptionId = 117,
    /// <summary>The client telemetry payload exceeds the broker's limit.</summary>
    TelemetryTooLarge = 118,
    /// <summary>The controller considers the broker registration not valid.</summary>
    InvalidRegistration = 119,
    /// <summary>The transaction hit an error; abort it to keep using the transactional id.</summary>
    TransactionAbortable = 120,
    /// <summary>The record is not in a state that allows this acknowledgement.</summary>
    InvalidRecordState = 121,
    /// <summary>The share session was not found.</summary>
    ShareSessionNotFound = 122,
    /// <summary>The share session epoch does not match.</summary>
    InvalidShareSessionEpoch = 123,
    /// <summary>The share group state epoch does not match the share coordinator's.</summary>
    FencedStateEpoch = 124,
    /// <summary>The voter key does not match the receiving replica.</summary>
    InvalidVoterKey = 125,
    /// <summary>The voter already belongs to the voter set.</summary>
    DuplicateVoter = 126,
    /// <summary>The voter does not belong to the voter set.</summary>
    VoterNotFound = 127,
    /// <summary>The regular expression is not valid.</summary>
    InvalidRegularExpression = 128,
    /// <summary>The client's metadata is stale; it must bootstrap again (KIP-1102).</summary>
    RebootstrapRequired = 129,
    /// <summary>The streams topology is invalid (KIP-1071).</summary>
    StreamsInvalidTopology = 130,
    /// <summary>The streams topology epoch is invalid (KIP-1071).</summary>
    StreamsInvalidTopologyEpoch = 131,
    /// <summary>The streams topology epoch is older than the group's (KIP-1071).</summary>
    StreamsTopologyFenced = 132,
}

/// <summary>Names, retriability and default messages of <see cref="ErrorCode"/> values.</summary>
public static class ErrorCodes
{
    /// <summary>Lowest code upstream defines (UNKNOWN_SERVER_ERROR).</summary>
    public const short LowestKnown = -1;

    /// <summary>Highest code upstream defines at the snapshot this table follows.</summary>
    public const short HighestKnown = 132;

    // One row per code, indexed by code - LowestKnown. Retriable is true exactly when upstream's
    // exception class for the code derives from org.apache.kafka.common.errors.RetriableException
    // (directly or through InvalidMetadataException), which is what clients use to decide whether
    // to retry the request.
    private static readonly Entry[] Table =
    [
        new("UNKNOWN_SERVER_ERROR", false, "The broker hit an unexpected failure while handling the request."), // -1
        new("NONE", false, "No error."), // 0
        new("OFFSET_OUT_OF_RANGE", false, "The offset asked for lies outside the range the partition currently holds."), // 1
        new("CORRUPT_MESSAGE", true, "A record or batch is corrupt: bad CRC, bad size, or a null key on a compacted topic."), // 2
        new("UNKNOWN_TOPIC_OR_PARTITION", true, "This broker does not know the topic or partition."), // 3
        new("INVALID_FETCH_SIZE", false, "The fetch size in the request is not valid."), // 4
        new("LEADER_NOT_AVAILABLE", true, "The partition has no leader right now; an election is under way."), // 5
        new("NOT_LEADER_OR_FOLLOWER", true, "This broker is neither the leader nor a follower of the partition as the request requires."), // 6
        new("REQUEST_TIMED_OUT", true, "The request did not complete within its timeout."), // 7
        new("BROKER_NOT_AVAILABLE", false, "The broker is not available."), // 8
        new("REPLICA_NOT_AVAILABLE", true, "A replica of the partition is not available on this broker."), // 9
        new("MESSAGE_TOO_LARGE", false, "A record is larger than the largest message the broker accepts."), // 10
        new("STALE_CONTROLLER_EPOCH", false, "The request carries an old controller epoch; the controller has moved."), // 11
        new("OFFSET_METADATA_TOO_LARGE", false, "The metadata string attached to a committed offset is too long."), // 12
        new("NETWORK_EXCEPTION", true, "The connection was closed before a response arrived."), // 13
        new("COORDINATOR_LOAD_IN_PROGRESS", true, "The coordinator is still loading its state; try again shortly."), // 14
        new("COORDINATOR_NOT_AVAILABLE", true, "The coordinator is not available."), // 15
        new("NOT_COORDINATOR", true, "This broker is not the coordinator for the given group or transactional id."), // 16
        new("INVALID_TOPIC_EXCEPTION", false, "The topic name is not valid or the operation is not allowed on this topic."), // 17
        new("RECORD_LIST_TOO_LARGE", false, "The record batch is larger than the topic's segment size."), // 18
        new("NOT_ENOUGH_REPLICAS", true, "Too few in-sync replicas to accept the write."), // 19
        new("NOT_ENOUGH_REPLICAS_AFTER_APPEND", true, "The write was appended, but to fewer in-sync replicas than required."), // 20
        new("INVALID_REQUIRED_ACKS", false, "The acks value in the produce request is not valid."), // 21
        new("ILLEGAL_GENERATION", false, "The group generation id is not the current one."), // 22
        new("INCONSISTENT_GROUP_PROTOCOL", false, "The member's protocol type or protocols do not match the group's."), // 23
        new("INVALID_GROUP_ID", false, "The group id is not valid."), // 24
        new("UNKNOWN_MEMBER_ID", false, "The coordinator does not know this member id."), // 25
        new("INVALID_SESSION_TIMEOUT", false, "The session timeout is outside the range the broker allows."), // 26
        new("REBALANCE_IN_PROGRESS", false, "The group is rebalancing; the member must rejoin."), // 27
        new("INVALID_COMMIT_OFFSET_SIZE", false, "The offset commit data is not a valid size."), // 28
        new("TOPIC_AUTHORIZATION_FAILED", false, "Not authorized to access the topic."), // 29
        new("GROUP_AUTHORIZATION_FAILED", false, "Not authorized to access the group."), // 30
        new("CLUSTER_AUTHORIZATION_FAILED", false, "Not authorized for this cluster operation."), // 31
        new("INVALID_TIMESTAMP", false, "A record timestamp is outside the accepted range."), // 32
        new("UNSUPPORTED_SASL_MECHANISM", false, "The SASL mechanism is not enabled on this listener."), // 33
        new("ILLEGAL_SASL_STATE", false, "The request is not allowed in the current state of SASL authentication."), // 34
        new("UNSUPPORTED_VERSION", false, "This API version is not supported."), // 35
        new("TOPIC_ALREADY_EXISTS", false, "A topic with this name already exists."), // 36
        new("INVALID_PARTITIONS", false, "The partition count is not valid."), // 37
        new("INVALID_REPLICATION_FACTOR", false, "The replication factor is below 1 or above the number of live brokers."), // 38
        new("INVALID_REPLICA_ASSIGNMENT", false, "The replica assignment is not valid."), // 39
        new("INVALID_CONFIG", false, "The configuration is not valid."), // 40
        new("NOT_CONTROLLER", true, "This broker is not the active controller."), // 41
        new("INVALID_REQUEST", false, "The request is malformed or not valid; the client may be sending a request version the broker mishandles."), // 42
        new("UNSUPPORTED_FOR_MESSAGE_FORMAT", false, "The broker's message format version does not support this request."), // 43
        new("POLICY_VIOLATION", false, "The request violates a configured policy."), // 44
        new("OUT_OF_ORDER_SEQUENCE_NUMBER", false, "A produce sequence number arrived out of order."), // 45
        new("DUPLICATE_SEQUENCE_NUMBER", false, "A produce sequence number was already written."), // 46
        new("INVALID_PRODUCER_EPOCH", false, "The producer epoch is older than the current one."), // 47
        new("INVALID_TXN_STATE", false, "The transactional operation is not allowed in the transaction's current state."), // 48
        new("INVALID_PRODUCER_ID_MAPPING", false, "The producer id is not assigned to this transactional id."), // 49
        new("INVALID_TRANSACTION_TIMEOUT", false, "The transaction timeout exceeds transaction.max.timeout.ms."), // 50
        new("CONCURRENT_TRANSACTIONS", true, "Another transaction operation for this producer is still in progress."), // 51
        new("TRANSACTION_COORDINATOR_FENCED", false, "A newer transaction coordinator has taken over; this one is fenced."), // 52
        new("TRANSACTIONAL_ID_AUTHORIZATION_FAILED", false, "Not authorized to use the transactional id."), // 53
        new("SECURITY_DISABLED", false, "Security features are disabled on this broker."), // 54
        new("OPERATION_NOT_ATTEMPTED", false, "The broker skipped this operation because another part of the request failed."), // 55
        new("KAFKA_STORAGE_ERROR", true, "A disk error prevented access to the log."), // 56
        new("LOG_DIR_NOT_FOUND", false, "The log directory named in the request is not configured on this broker."), // 57
        new("SASL_AUTHENTICATION_FAILED", false, "SASL authentication failed."), // 58
        new("UNKNOWN_PRODUCER_ID", false, "The broker has no state for this producer id, typically because its records were deleted by retention."), // 59
        new("REASSIGNMENT_IN_PROGRESS", false, "A partition reassignment is already in progress."), // 60
        new("DELEGATION_TOKEN_AUTH_DISABLED", false, "Delegation tokens are not enabled."), // 61
        new("DELEGATION_TOKEN_NOT_FOUND", false, "The delegation token was not found."), // 62
        new("DELEGATION_TOKEN_OWNER_MISMATCH", false, "The principal is not the owner or a renewer of the delegation token."), // 63
        new("DELEGATION_TOKEN_REQUEST_NOT_ALLOWED", false, "Delegation token requests need an authenticated, non-token connection."), // 64
        new("DELEGATION_TOKEN_AUTHORIZATION_FAILED", false, "Not authorized for this delegation token operation."), // 65
        new("DELEGATION_TOKEN_EXPIRED", false, "The delegation token has expired."), // 66
        new("INVALID_PRINCIPAL_TYPE", false, "The principal type is not supported."), // 67
        new("NON_EMPTY_GROUP", false, "The group still has members."), // 68
        new("GROUP_ID_NOT_FOUND", false, "The group does not exist."), // 69
        new("FETCH_SESSION_ID_NOT_FOUND", true, "The fetch session id is not known to this broker."), // 70
        new("INVALID_FETCH_SESSION_EPOCH", true, "The fetch session epoch does not match."), // 71
        new("LISTENER_NOT_FOUND", true, "The partition leader has no listener with the name of the one the request arrived on."), // 72
        new("TOPIC_DELETION_DISABLED", false, "Topic deletion is disabled on this cluster."), // 73
        new("FENCED_LEADER_EPOCH", true, "The leader epoch in the request is older than the broker's."), // 74
        new("UNKNOWN_LEADER_EPOCH", true, "The leader epoch in the request is newer than the broker's."), // 75
        new("UNSUPPORTED_COMPRESSION_TYPE", false, "The client cannot handle the compression type used by the partition."), // 76
        new("STALE_BROKER_EPOCH", false, "The broker epoch has changed."), // 77
        new("OFFSET_NOT_AVAILABLE", true, "The new leader's high watermark has not yet caught up; the offset is not available yet."), // 78
        new("MEMBER_ID_REQUIRED", false, "The member must rejoin with the member id the coordinator assigned."), // 79
        new("PREFERRED_LEADER_NOT_AVAILABLE", true, "The preferred leader is not available."), // 80
        new("GROUP_MAX_SIZE_REACHED", false, "The group has reached group.max.size members."), // 81
        new("FENCED_INSTANCE_ID", false, "Another consumer with the same group.instance.id has replaced this one."), // 82
        new("ELIGIBLE_LEADERS_NOT_AVAILABLE", true, "No eligible leader is available for the partition."), // 83
        new("ELECTION_NOT_NEEDED", true, "The partition already has the leader the election would choose."), // 84
        new("NO_REASSIGNMENT_IN_PROGRESS", false, "No partition reassignment is in progress."), // 85
        new("GROUP_SUBSCRIBED_TO_TOPIC", false, "Offsets of a topic the group is subscribed to cannot be deleted."), // 86
        new("INVALID_RECORD", false, "A record failed broker-side validation and was rejected."), // 87
        new("UNSTABLE_OFFSET_COMMIT", true, "Transactional offsets are pending for the partition; retry once they are resolved."), // 88
        new("THROTTLING_QUOTA_EXCEEDED", true, "The request would exceed the throttling quota."), // 89
        new("PRODUCER_FENCED", false, "A newer producer with the same transactional id has been started."), // 90
        new("RESOURCE_NOT_FOUND", false, "The request refers to a resource that does not exist."), // 91
        new("DUPLICATE_RESOURCE", false, "The request names the same resource more than once."), // 92
        new("UNACCEPTABLE_CREDENTIAL", false, "The credential does not meet the acceptance criteria."), // 93
        new("INCONSISTENT_VOTER_SET", false, "The voter set of the sender and the receiver disagree."), // 94
        new("INVALID_UPDATE_VERSION", false, "The update version is not valid."), // 95
        new("FEATURE_UPDATE_FAILED", false, "Finalized features could not be updated."), // 96
        new("PRINCIPAL_DESERIALIZATION_FAILURE", false, "The forwarded request's principal could not be deserialized."), // 97
        new("SNAPSHOT_NOT_FOUND", false, "The requested snapshot does not exist."), // 98
        new("POSITION_OUT_OF_RANGE", false, "The requested position is outside the snapshot."), // 99
        new("UNKNOWN_TOPIC_ID", true, "This broker does not know the topic id."), // 100
        new("DUPLICATE_BROKER_REGISTRATION", false, "Another broker has already registered this broker id."), // 101
        new("BROKER_ID_NOT_REGISTERED", false, "The broker id is not registered."), // 102
        new("INCONSISTENT_TOPIC_ID", true, "The topic id in the request does not match the log's topic id."), // 103
        new("INCONSISTENT_CLUSTER_ID", false, "The cluster id in the request does not match this cluster."), // 104
        new("TRANSACTIONAL_ID_NOT_FOUND", false, "The transactional id does not exist."), // 105
        new("FETCH_SESSION_TOPIC_ID_ERROR", true, "The fetch session mixed requests with and without topic ids."), // 106
        new("INELIGIBLE_REPLICA", false, "The proposed ISR contains a replica that is not eligible."), // 107
        new("NEW_LEADER_ELECTED", false, "The partition state was updated, but the leader changed meanwhile."), // 108
        new("OFFSET_MOVED_TO_TIERED_STORAGE", false, "The offset has moved to tiered storage."), // 109
        new("FENCED_MEMBER_EPOCH", false, "The member epoch is fenced; the member must give up its partitions and rejoin."), // 110
        new("UNRELEASED_INSTANCE_ID", false, "The instance id is still held by another member, which has to leave first."), // 111
        new("UNSUPPORTED_ASSIGNOR", false, "The group does not support the requested assignor or assignor version."), // 112
        new("STALE_MEMBER_EPOCH", false, "The member epoch is stale; retry after the next heartbeat gives the current epoch."), // 113
        new("MISMATCHED_ENDPOINT_TYPE", false, "The request was sent to the wrong kind of endpoint."), // 114
        new("UNSUPPORTED_ENDPOINT_TYPE", false, "This endpoint type is not supported."), // 115
        new("UNKNOWN_CONTROLLER_ID", false, "The controller id is not known."), // 116
        new("UNKNOWN_SUBSCRIPTION_ID", false, "The client telemetry subscription id is unknown or outdated."), // 117
        new("TELEMETRY_TOO_LARGE", false, "The client telemetry payload exceeds the broker's limit."), // 118
        new("INVALID_REGISTRATION", false, "The controller considers the broker registration not valid."), // 119
        new("TRANSACTION_ABORTABLE", false, "The transaction hit an error; abort it to keep using the transactional id."), // 120
        new("INVALID_RECORD_STATE", false, "The record is not in a state that allows this acknowledgement."), // 121
        new("SHARE_SESSION_NOT_FOUND", true, "The share session was not found."), // 122
        new("INVALID_SHARE_SESSION_EPOCH", true, "The share session epoch does not match."), // 123
        new("FENCED_STATE_EPOCH", false, "The share group state epoch does not match the share coordinator's."), // 124
        new("INVALID_VOTER_KEY", false, "The voter key does not match the receiving replica."), // 125
        new("DUPLICATE_VOTER", false, "The voter already belongs to the voter set."), // 126
        new("VOTER_NOT_FOUND", false, "The voter does not belong to the voter set."), // 127
        new("INVALID_REGULAR_EXPRESSION", false, "The regular expression is not valid."), // 128
        new("REBOOTSTRAP_REQUIRED", false, "The client's metadata is stale; it should bootstrap again."), // 129
        new("STREAMS_INVALID_TOPOLOGY", false, "The streams topology sent is not valid."), // 130
        new("STREAMS_INVALID_TOPOLOGY_EPOCH", false, "The streams topology epoch sent is not valid."), // 131
        new("STREAMS_TOPOLOGY_FENCED", false, "The streams topology epoch sent is older than the group's."), // 132
    ];

    /// <summary>True when upstream defines <paramref name="code"/>.</summary>
    public static bool IsKnown(ErrorCode code) => (short)code >= LowestKnown && (short)code <= HighestKnown;

    /// <summary>
    /// Maps a code read off the wire. Codes this table does not know become
    /// <see cref="ErrorCode.UnknownServerError"/>, as upstream's <c>Errors.forCode</c> does.
    /// </summary>
    public static ErrorCode FromWire(short value) =>
        value >= LowestKnown && value <= HighestKnown ? (ErrorCode)value : ErrorCode.UnknownServerError;

    /// <summary>Upstream's name for the code, e.g. <c>NOT_LEADER_OR_FOLLOWER</c>.</summary>
    /// <remarks>For a value upstream does not define, returns <c>UNKNOWN_ERROR_CODE_&lt;n&gt;</c>.</remarks>
    public static string WireName(ErrorCode code) =>
        IsKnown(code) ? Table[(short)code - LowestKnown].WireName : $"UNKNOWN_ERROR_CODE_{(short)code}";

    /// <summary>
    /// True when a client may retry the failed request unchanged (possibly after refreshing metadata),
    /// following upstream's RetriableException hierarchy. Unknown codes are not retriable.
    /// </summary>
    public static bool IsRetriable(ErrorCode code) => IsKnown(code) && Table[(short)code - LowestKnown].Retriable;

    /// <summary>A short human-readable description, used when a response carries no message of its own.</summary>
    public static string DefaultMessage(ErrorCode code) =>
        IsKnown(code) ? Table[(short)code - LowestKnown].Message : $"Unknown error code {(short)code}.";

    private readonly record struct Entry(string WireName, bool Retriable, string Message);
}
