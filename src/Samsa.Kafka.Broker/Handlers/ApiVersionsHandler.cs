// ApiVersions (key 18), versions 0-3.
//
// Behaviour: lists every API of ApiTable with the version range served; the response header is
// always v0 (KIP-511). A request of a version the broker does not serve gets a v0 body with
// UNSUPPORTED_VERSION and the full list, so the client can retry with a version both know.
// v3+ client software name/version must match upstream's pattern, else INVALID_REQUEST.
// Differences from upstream: no supported/finalized features are advertised (a ZooKeeper-mode
// broker advertises none either); v4 is not served (Kafka 3.8.0's set).
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
        Telemetry.ClientTelemetry.RememberClientSoftware(context, request.ClientSoftwareName, request.ClientSoftwareVersion);
        return ValueTask.FromResult<IKafkaMessage?>(Build(ErrorCode.None));
    }

    public static ApiVersionsResponse UnsupportedVersionResponse() => Build(ErrorCode.UnsupportedVersion);

    private static ApiVersionsResponse Build(ErrorCode error) => new()
    {
        ErrorCode = (short)error,
        ApiKeys = ApiTable.Supported.ToApiVersions(),
    };
}
