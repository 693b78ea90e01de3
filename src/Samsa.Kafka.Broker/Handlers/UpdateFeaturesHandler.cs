// UpdateFeatures (key 57), versions 0-2: sets finalized feature levels (kafka-features.sh
// upgrade / downgrade / disable, Admin.updateFeatures).
//
// Behaviour: CLUSTER ALTER first (upstream authorizeClusterOperation), else
// CLUSTER_AUTHORIZATION_FAILED. In ZooKeeper mode only the controller answers (upstream ZK-mode
// KafkaApis.handleUpdateFeatures: NOT_CONTROLLER elsewhere; the admin client sends the request
// to Metadata's controller and retries on NOT_CONTROLLER); a single-node broker is its own
// controller. The updates are checked as Kafka 4.x's FeatureControlManager does — all or
// nothing, the first failing feature's INVALID_UPDATE_VERSION for the whole request
// (FeatureStore.Plan) — then written (the /feature znode, or feature.json single-node) unless
// ValidateOnly (v1+) is set. v0's AllowDowngrade maps to the safe-downgrade type, as upstream's
// UpdateFeaturesRequest.getFeature does. Answers (QuorumController.updateFeatures): on success
// ErrorCode 0 and, for v0/v1, one result per feature with error 0; on failure the top-level
// error with "The update failed for all features since the following feature had an error: …"
// and no per-feature results.
// The new levels take effect on every broker when its view loop reads the znode (ApiVersions'
// FinalizedFeatures and epoch; group.version gates ConsumerGroupHeartbeat/Describe,
// share.version the share-group heartbeat/describe).
using Samsa.Kafka.Broker.Features;
using Samsa.Kafka.Protocol;
using Samsa.Kafka.Protocol.Messages;

namespace Samsa.Kafka.Broker.Handlers;

public static class UpdateFeaturesHandler
{
    public static async ValueTask<IKafkaMessage?> HandleAsync(RequestContext context, UpdateFeaturesRequest request)
    {
        var broker = context.Broker;
        if (!Security.Acl.Authz.Cluster(context, Security.Acl.AclOperation.Alter))
            return new UpdateFeaturesResponse { ErrorCode = (short)ErrorCode.ClusterAuthorizationFailed, ErrorMessage = "Cluster authorization failed." };
        var updates = request.FeatureUpdates.Select(u => new FeatureStore.Update(u.Feature, u.MaxVersionLevel,
            context.ApiVersion == 0 ? (u.AllowDowngrade ? (sbyte)2 : (sbyte)1) : u.UpgradeType)).ToList();
        bool validateOnly = context.ApiVersion >= 1 && request.ValidateOnly;
        (ErrorCode Error, string? Message) outcome;
        if (broker.Cluster is { } cluster)
        {
            outcome = await cluster.UpdateFeaturesAsync(updates, validateOnly, request.TimeoutMs);
        }
        else
        {
            var current = broker.Features.Current.Levels;
            var (error, message, target) = FeatureStore.Plan(current, updates);
            outcome = (error, message);
            if (error == ErrorCode.None && !validateOnly && !FeatureStore.Same(current, target))
            {
                try { broker.Features.CommitLocal(target); }
                catch (IOException e) { outcome = (ErrorCode.FeatureUpdateFailed, $"Could not write {FeatureStore.FileName}: {e.Message}"); }
            }
        }
        var response = new UpdateFeaturesResponse { ErrorCode = (short)outcome.Error, ErrorMessage = null };
        if (outcome.Error != ErrorCode.None)
        {
            response.ErrorMessage = outcome.Error == ErrorCode.InvalidUpdateVersion
                ? "The update failed for all features since the following feature had an error: " + outcome.Message
                : outcome.Message;
            return response;
        }
        if (context.ApiVersion <= 1)
            foreach (var u in request.FeatureUpdates)
                response.Results.Add(new UpdateFeaturesResponse.UpdatableFeatureResult { Feature = u.Feature, ErrorCode = 0, ErrorMessage = null });
        return response;
    }
}
