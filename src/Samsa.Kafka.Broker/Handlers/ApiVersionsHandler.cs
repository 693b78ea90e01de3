// ApiVersions (key 18), versions 0-4.
//
// Behaviour: lists every API of ApiTable with the version range served; the response header is
// always v0 (KIP-511). v3+ client software name/version must match upstream's pattern, else
// INVALID_REQUEST with no ApiKeys (upstream ApiVersionsRequest.getErrorResponse). v3+ answers
// carry the feature table of BrokerFeatures (SupportedFeatures; FinalizedFeatures and
// FinalizedFeaturesEpoch from the broker's FeatureStore, upstream's FinalizedFeatureCache); v4 only differs in that supported ranges starting at 0 are sent too
// (KAFKA-17011/KAFKA-17492).
// A request of a version the broker does not serve (v5+) is not decoded: it gets a v0 body with
// UNSUPPORTED_VERSION whose ApiKeys hold only ApiVersions' own range, as upstream 4.x does
// (ApiVersionsRequest.getErrorResponse, KIP-511), so the client retries with min(its version - 1,
// that max).
// Differences from upstream: no metadata.version / kraft.version features (ZooKeeper mode, see
// BrokerFeatures); min versions stay below Kafka 4.0's KIP-896 floors so older clients still work.
using System.Text.RegularExpressions;
using Samsa.Kafka.Protocol;
using Samsa.Kafka.Protocol.Messages;

namespace Samsa.Kafka.Broker.Handlers;

public static partial class ApiVersionsHandler
{
    [GeneratedRegex("^[a-zA-Z0-9](?:[a-zA-Z0-9\\-.]*[a-zA-Z0-9])?$")]
    private static partial Regex SoftwarePattern();

    public static ValueTask<IKafkaMessage?> HandleAsync(RequestContext context, ApiVersionsRequest request)
    {
        if (context.ApiVersion >= 3 &&
            (!SoftwarePattern().IsMatch(request.ClientSoftwareName) || !SoftwarePattern().IsMatch(request.ClientSoftwareVersion)))
        {
            return ValueTask.FromResult<IKafkaMessage?>(new ApiVersionsResponse { ErrorCode = (short)ErrorCode.InvalidRequest });
        }
        // KIP-714 subscriptions may match on the client software name and version sent here.
        Telemetry.ClientTelemetry.RememberClientSoftware(context, request.ClientSoftwareName, request.ClientSoftwareVersion);
        var response = new ApiVersionsResponse { ApiKeys = ApiTable.Supported.SharedApiVersions() };
        BrokerFeatures.Fill(response, context.ApiVersion, context.Broker.Features.Current);
        return ValueTask.FromResult<IKafkaMessage?>(response);
    }

    /// <summary>The v0 answer to an ApiVersions request of an unserved version: UNSUPPORTED_VERSION
    /// and the one range the client needs to retry, ApiVersions' own.</summary>
    public static ApiVersionsResponse UnsupportedVersionResponse()
    {
        var own = ApiTable.Find((short)ApiKey.ApiVersions)!;
        return new ApiVersionsResponse
        {
            ErrorCode = (short)ErrorCode.UnsupportedVersion,
            ApiKeys = [new ApiVersionsResponse.ApiVersion { ApiKey = (short)ApiKey.ApiVersions, MinVersion = own.MinVersion, MaxVersion = own.MaxVersion }],
        };
    }
}
